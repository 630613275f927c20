"""Stage 5c: the film's fixed axis limits (rule frame_limits).

In:  the projections the limits come from: the alignment's anchor (the first frame for first/previous, the
     reference step's for reference), or every frame (global, gpa).
Out: projection/limits.json {"x": [lo, hi], "y": [lo, hi]}, square, the same for every frame.
"""

from typing import Sequence

import numpy as np

from workflow_scripts.common import load_npy, save_json
from workflow_scripts.job import Job


def axis_limits(projections: Sequence[np.ndarray], margin: float) -> dict[str, list[float]]:
    """Square, fixed axis limits around the anchor projection(s): the largest extent times `margin`."""
    points = np.concatenate([np.asarray(p, dtype=np.float64) for p in projections])
    low, high = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    centre = (low + high) / 2
    half = float(max(high - low) / 2 * margin) or 1.0
    return {"x": [centre[0] - half, centre[0] + half], "y": [centre[1] - half, centre[1] + half]}


def main(job: Job) -> None:
    save_json(job.output.limits, axis_limits([load_npy(p) for p in job.input.projections], job.params.margin))
