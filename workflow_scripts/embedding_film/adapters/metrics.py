"""Rule metrics: reads the job's files and settings and calls embedding_film.film.metrics."""

from embedding_film.adapters import Job
from embedding_film.film.common import load_npy, save_json
from embedding_film.film.metrics import step_metrics


def warm(job: Job | None = None) -> None:
    import scipy.stats  # noqa: F401
    import sklearn.manifold  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.neighbors  # noqa: F401


def main(job: Job) -> None:
    i = job.input
    previous = load_npy(i.previous) if "previous" in i.keys() else None
    values = step_metrics(
        load_npy(i.embeddings),
        load_npy(i.projection),
        load_npy(i.labels),
        load_npy(i.probs),
        previous,
        k=job.params.k,
        max_points=job.params.max_points,
    )
    save_json(job.output.metrics, {"step": int(job.wildcards.step), **values})
