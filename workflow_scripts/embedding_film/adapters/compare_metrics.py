"""Stage 9d: the runs' metrics in one table (rule compare_metrics).

In:  every run's metrics.csv (one row per checkpoint) and film_metrics.json.
Out: results/compare/{name}/metrics.csv: run, step, fraction (of the run's training), the per-checkpoint
     columns (head and kNN accuracy, silhouette, trustworthiness, ...), and the run's film metrics
     (stability_spearman, movement_stress, mean and min trustworthiness) on each of its rows.
"""

from embedding_film.adapters import Job
from embedding_film.film.compare import compare_metrics


def main(job: Job) -> None:
    p = job.params
    compare_metrics(p.runs, job.input.tables, job.input.films, p.last_steps, job.output.csv)
