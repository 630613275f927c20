"""Stage 9d: the runs' metrics in one table (rule compare_metrics).

In:  every run's metrics.csv (one row per checkpoint) and film_metrics.json.
Out: results/compare/{name}/metrics.csv: run, step, fraction (of the run's training), the per-checkpoint
     columns (head and kNN accuracy, silhouette, trustworthiness, ...), and the run's film metrics
     (stability_spearman, movement_stress, mean and min trustworthiness) on each of its rows.
"""

import csv
from typing import Any, Sequence

from workflow_scripts.common import atomic_path, load_json
from workflow_scripts.job import Job
from workflow_scripts.metrics import COLUMNS

FILM = ("stability_spearman", "movement_stress", "mean_trustworthiness", "min_trustworthiness")


def compare_metrics(runs: Sequence[str], tables: Sequence[str], films: Sequence[str], last: dict[str, int], out: str) -> int:
    """Write the combined table; returns its row count."""
    rows: list[dict[str, Any]] = []
    for run, table, film_path in zip(runs, tables, films):
        film = load_json(film_path)
        with open(table, newline="") as handle:
            for row in csv.DictReader(handle):
                step = int(row["step"])
                rows.append({"run": run, "fraction": round(step / last[run], 4) if last[run] else 1.0, **row,
                             **{k: film.get(k) for k in FILM}})
    columns = ["run", "step", "fraction", *(c for c in COLUMNS if c != "step"), *FILM]
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(job: Job) -> None:
    p = job.params
    compare_metrics(p.runs, job.input.tables, job.input.films, p.last_steps, job.output.csv)
