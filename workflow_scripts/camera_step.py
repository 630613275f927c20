"""Stage 5d (camera.mode causal): one checkpoint's camera from the frames up to it (rule camera_step).

In:  projection/{step}.npy of this checkpoint and every one before it.
Out: projection/camera/{step}.json: {"<step>": {"x": [x0, x1], "y": [y0, y1], "zoom": z, "spread": s}}. Frame
     i's camera depends on frames 0..i only, so appending a checkpoint changes no earlier frame's camera.
"""

from workflow_scripts.camera import main as plan_and_write
from workflow_scripts.job import Job


def main(job: Job) -> None:
    plan_and_write(job, only_last=True)
