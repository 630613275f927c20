"""Rule frame: reads the job's files and settings and calls embedding_film.film.render."""

from embedding_film.adapters import Job
from embedding_film.film.camera import read_view
from embedding_film.film.common import load_json, load_npy
from embedding_film.film.render import (
    Frame,
    checkpoint_board,
    layout_label,
    load_context,
    render_frame,
    warm_up,
)


def warm(job: Job | None = None) -> None:
    warm_up()


def main(job: Job) -> None:
    i, p = job.input, job.params
    ctx = load_context(i, p.max_step, p.title)
    board = checkpoint_board(i, p.leaderboard, p.top_k, len(ctx.labels))
    view = read_view(i.view, p.step)
    frame = Frame(
        f"step {p.step} / {ctx.max_step}",
        p.step,
        load_npy(i.projection),
        board,
        load_json(i.metrics),
        view,
        layout_label(i.layout, p.align),
    )
    render_frame(frame, ctx, job.output.frame, **p.style)
