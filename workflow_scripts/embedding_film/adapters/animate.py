"""Rule animate: reads the job's files and settings and calls embedding_film.film.animation."""

from embedding_film.adapters import Job
from embedding_film.film.animation import warm_up, write_gif, write_mp4


def warm(job: Job | None = None) -> None:
    warm_up()


def main(job: Job) -> None:
    p, frames = job.params, list(job.input.frames)
    if job.wildcards.format == "gif":
        write_gif(frames, job.output.film, p.fps, p.hold_last, p.loop, job.threads)
    else:
        write_mp4(frames, job.output.film, p.fps, p.hold_last)
