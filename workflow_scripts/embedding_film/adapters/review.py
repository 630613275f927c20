"""Rule review: reads the job's files and settings and calls embedding_film.film.review."""

from embedding_film.adapters import Job
from embedding_film.film.review import build_review, write_review


def warm(job: Job | None = None) -> None:
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401


def main(job: Job) -> None:
    i = job.input
    table = build_review(
        i.eval,
        i.classes,
        {"embeddings": i.emb_first, "projection": i.proj_first, "scores": i.ood_first, "probs": i.probs_first},
        {"embeddings": i.emb_last, "projection": i.proj_last, "scores": i.ood_last, "probs": i.probs_last},
    )
    write_review(table, job.output.review)
