"""Rule frame: reads the job's files and settings and calls embedding_film.film.render.

In:  what render draws (the checkpoint's projection, scores, label issues, metrics, the film's data and loss
     log) and its view: the film's limits.json or camera.json, or (camera.mode causal, params.camera set) the
     camera state of the last tenth checkpoint before it and the projections since, from which it replays its
     own causal camera (camera.causal_view).
Out: frames/{step}.png and frames/{step}.json, the view it shows in camera.json's format (with the camera
     state in causal mode), which the film's page, its metrics table and the tween frames read.
"""

from embedding_film.adapters import Job
from embedding_film.film.camera import causal_view, read_view
from embedding_film.film.common import load_json, load_npy, save_json
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
    if p.camera:
        state = load_json(i.previous)["state"] if "previous" in i.keys() else None
        frames = [load_npy(path) for path in i.projections]
        record = causal_view(frames, state, p.camera["replay"], p.step, p.camera["settings"], p.camera["margin"])
    else:
        record = {str(p.step): read_view(i.view, p.step)}
    frame = Frame(
        f"step {p.step} / {ctx.max_step}",
        p.step,
        load_npy(i.projection),
        board,
        load_json(i.metrics),
        record[str(p.step)],
        layout_label(i.layout, p.align),
    )
    render_frame(frame, ctx, job.output.frame, **p.style)
    save_json(job.output.view, record)
