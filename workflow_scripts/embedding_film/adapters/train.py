"""Rule train: reads the job's files and settings and calls embedding_film.film.training."""

from embedding_film.adapters import Job
from embedding_film.film.training import train


def main(job: Job) -> None:
    p = job.params
    train(
        job.input.train,
        p.model,
        dict(p.training),
        dict(p.tiny_vit),
        dict(p.dataset),
        p.seed,
        p.allow_pickle,
        job.output.checkpoints,
        job.output.train_log,
        job.threads,
        p.staging,
    )
