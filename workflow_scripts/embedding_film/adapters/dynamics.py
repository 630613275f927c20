"""Rule dynamics: the training images' scores over the checkpoints (embedding_film.film.dynamics)."""

from embedding_film.adapters import Job
from embedding_film.film.dynamics import write_dynamics


def warm(job: Job | None = None) -> None:
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401


def main(job: Job) -> None:
    i, o = job.input, job.output
    write_dynamics(i.index, i.classes, i.probs, job.params.steps, o.table, o.errors, o.trace, job.params.top_k)
