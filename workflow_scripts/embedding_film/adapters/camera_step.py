"""Stage 5d (camera.mode causal): the camera state of every tenth checkpoint (rule camera_step), where the
causal cameras of the checkpoints after it start from.

In:  projection/{step}.npy of the checkpoints since the one whose camera state it starts from (the chain's
     previous link: rules/inputs.smk, camera_base) and of the `window` - 1 before them, and that checkpoint's
     camera/{step}.json.
Out: projection/camera/{step}.json: {"<step>": {"x": [x0, x1], "y": [y0, y1], "zoom": z, "spread": s},
     "state": {...}}. Frame i's camera depends on frames 0..i only (camera.causal_next), so appending a
     checkpoint changes no earlier frame's camera; each frame job replays its own camera from the last link
     before it (adapters/frame.py), so the film's cameras take n / 10 jobs, not n.
"""

from embedding_film.adapters import Job
from embedding_film.film.camera import causal_view
from embedding_film.film.common import load_json, load_npy, save_json


def main(job: Job) -> None:
    """Rule camera_step (causal): one checkpoint's camera and state, replaying the cameras of the `replay`
    checkpoints up to it from the camera state of the one before them."""
    i, p = job.input, job.params
    frames = [load_npy(path) for path in i.projections]
    state = load_json(i.previous)["state"] if "previous" in i.keys() else None
    save_json(job.output.camera, causal_view(frames, state, p.replay, p.step, p.settings, p.margin))
