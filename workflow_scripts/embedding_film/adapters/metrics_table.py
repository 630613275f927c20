"""Stage 5d: the whole film's metrics (rule metrics_table).

In:  metrics/{step}.json, embeddings/{step}.npy and projection/{step}.npy of every checkpoint.
Out: metrics.csv (one row per checkpoint, the columns of metrics.COLUMNS) and film_metrics.json (the film's
     stability_spearman and movement_stress, trustworthiness mean and worst, a warning when a shared PCA
     basis fits some checkpoint much worse than its own PCA, and `skipped`: the checkpoints left out of the
     film, each with its step and why).
"""

from embedding_film.adapters import Job
from embedding_film.film.camera import read_view
from embedding_film.film.common import load_json
from embedding_film.film.metrics_table import layout_info, write_metrics_table


def warm(job: Job | None = None) -> None:
    import scipy.stats  # noqa: F401


def main(job: Job) -> None:
    i, o, p = job.input, job.output, job.params
    steps = [int(load_json(path)["step"]) for path in i.steps]
    views = [read_view(view_file, step) for view_file, step in zip(p.view_files, steps)]
    layout = layout_info(i.layout[0]) if i.layout else None
    targets = (
        {k: float(p.targets[k]) for k in ("min_stability", "min_trust_mean", "min_trust_worst")}
        if p.fit == "auto"
        else None
    )
    write_metrics_table(i.steps, i.embeddings, i.projections, o.csv, o.film, p.align, p.skipped, views, layout, targets)
