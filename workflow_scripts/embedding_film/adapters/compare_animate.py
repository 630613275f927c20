"""Stage 9c: the comparison film (rule compare_animate): its frames, one per tick, as a GIF or MP4."""

from embedding_film.adapters import Job
from embedding_film.film.animation import warm_up, write_gif, write_mp4


def warm(job: Job | None = None) -> None:
    warm_up()


def main(job: Job) -> None:
    p, frames = job.params, list(job.input.frames)
    if job.wildcards.format == "gif":
        write_gif(frames, job.output.film, p.fps, p.hold_last, p.loop)
    else:
        write_mp4(frames, job.output.film, p.fps, p.hold_last)
