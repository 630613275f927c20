"""Rule prepare_data: reads the job's files and settings and calls workflow_scripts.film.data."""

from workflow_scripts.adapters import Job
from workflow_scripts.film.data import prepare


def main(job: Job) -> None:
    p = job.params
    prepare(dict(p.dataset), p.seed, p.need_train, dict(job.output.items()), p.want_train)
