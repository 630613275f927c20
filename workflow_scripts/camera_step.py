"""Stage 5d (camera.mode causal): one checkpoint's camera from the frames up to it (rule camera_step).

In:  projection/{step}.npy of this checkpoint and of the `window` - 1 before it, and the previous checkpoint's
     camera/{step}.json (its state).
Out: projection/camera/{step}.json: {"<step>": {"x": [x0, x1], "y": [y0, y1], "zoom": z, "spread": s},
     "state": {...}}. Frame i's camera depends on frames 0..i only (camera.causal_next), so appending a
     checkpoint changes no earlier frame's camera, and each camera reads a few files, not every frame.
"""

from workflow_scripts.camera import main_step
from workflow_scripts.job import Job


def main(job: Job) -> None:
    main_step(job)
