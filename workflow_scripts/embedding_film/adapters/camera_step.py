"""Stage 5d (camera.mode causal): one checkpoint's camera from the frames up to it (rule camera_step).

In:  projection/{step}.npy of the checkpoints since the one whose camera state it starts from (the previous
     checkpoint's, or an earlier one's: rules/inputs.smk, camera_base) and of the `window` - 1 before them, and
     that checkpoint's camera/{step}.json (its state).
Out: projection/camera/{step}.json: {"<step>": {"x": [x0, x1], "y": [y0, y1], "zoom": z, "spread": s},
     "state": {...}}. Frame i's camera depends on frames 0..i only (camera.causal_next), so appending a
     checkpoint changes no earlier frame's camera, and each camera reads a few files, not every frame.
"""

from embedding_film.adapters import Job
from embedding_film.film.camera import causal_replay, views
from embedding_film.film.common import load_json, load_npy, save_json


def main(job: Job) -> None:
    """Rule camera_step (causal): one checkpoint's view, replaying the cameras of the `replay` checkpoints up to
    it from the camera state of the one before them, written with its own state for the checkpoints after it."""
    p, i = job.params, job.input
    frames = [load_npy(path) for path in i.projections]
    state = load_json(i.previous)["state"] if "previous" in i.keys() else None
    s = p.settings
    row, new_state = causal_replay(
        frames,
        state,
        p.replay,
        min_spread=s["min_spread"],
        max_spread=s["max_spread"],
        max_zoom_change=s["max_zoom_change"],
        max_shift=s["max_shift"],
        margin=p.margin,
        window=s["window"],
    )
    view = views(frames[-1:], row[None, :], [p.step])
    save_json(job.output.camera, {**view, "state": new_state})
