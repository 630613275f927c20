"""Rule train_review: the training images with their training-dynamics scores, for Spotlight or pandas
(embedding_film.film.review)."""

from embedding_film.adapters import Job
from embedding_film.film.review import build_train_review, write_review


def warm(job: Job | None = None) -> None:
    import pyarrow  # noqa: F401


def main(job: Job) -> None:
    write_review(build_train_review(job.input.table, job.input.train), job.output.review)
