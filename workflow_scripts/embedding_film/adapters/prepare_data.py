"""Rule prepare_data: reads the job's files and settings and calls embedding_film.film.data."""

from embedding_film.adapters import Job
from embedding_film.film.data import prepare


def main(job: Job) -> None:
    p = job.params
    prepare(dict(p.dataset), p.seed, p.need_train, dict(job.output.items()), p.want_train)
