"""Stage 6b: the interpolated frames between consecutive checkpoints (rule tween, animation.tween > 0).

In:  what the checkpoint's own frame reads (frame.py), plus the next checkpoint's projection and view (the
     camera moves between the two views as the points do).
Out: frames/tween/{step}-{j}.png: the j-th of `tween` frames between a checkpoint and the next, each point
     moved along the straight line between its two aligned positions, titled as interpolated.
"""

from embedding_film.adapters import Job
from embedding_film.film.camera import between_views, read_view
from embedding_film.film.common import load_json, load_npy
from embedding_film.film.render import (
    Frame,
    between,
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
    alpha, position, title = between(p.step, p.next_step, p.j, p.tween)
    coords = (1 - alpha) * load_npy(i.projection) + alpha * load_npy(i.next_projection)
    view = between_views(read_view(i.view, p.step), read_view(i.next_view, p.next_step), alpha)
    frame = Frame(title, position, coords, board, load_json(i.metrics), view, layout_label(i.layout, p.align))
    render_frame(frame, ctx, job.output.frame, **p.style)
