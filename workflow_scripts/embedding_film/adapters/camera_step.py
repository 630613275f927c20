"""Stage 5d (camera.mode causal): one checkpoint's camera from the frames up to it (rule camera_step).

In:  projection/{step}.npy of this checkpoint and of the `window` - 1 before it, and the previous checkpoint's
     camera/{step}.json (its state).
Out: projection/camera/{step}.json: {"<step>": {"x": [x0, x1], "y": [y0, y1], "zoom": z, "spread": s},
     "state": {...}}. Frame i's camera depends on frames 0..i only (camera.causal_next), so appending a
     checkpoint changes no earlier frame's camera, and each camera reads a few files, not every frame.
"""

from embedding_film.adapters import Job
from embedding_film.film.camera import causal_next, views
from embedding_film.film.common import load_json, load_npy, save_json


def main(job: Job) -> None:
    """Rule camera_step (causal): one checkpoint's view from the last `window` frames up to it and the
    previous checkpoint's camera state, written with its own state for the next checkpoint."""
    p, i = job.params, job.input
    frames = [load_npy(path) for path in i.projections]
    state = load_json(i.previous)["state"] if "previous" in i.keys() else None
    s = p.settings
    row, new_state = causal_next(
        frames, state, s["min_spread"], s["max_spread"], s["max_zoom_change"], s["max_shift"], p.margin, s["window"]
    )
    view = views(frames[-1:], row[None, :], [p.step])
    save_json(job.output.camera, {**view, "state": new_state})
