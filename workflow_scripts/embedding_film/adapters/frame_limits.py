"""Stage 5c: the film's fixed axis limits (rule frame_limits).

In:  the projections the limits come from: the alignment's anchor (the first frame for first/previous, the
     reference step's for reference), or every frame (global, gpa).
Out: projection/limits.json {"x": [lo, hi], "y": [lo, hi]}, square, the same for every frame.
"""

from embedding_film.adapters import Job
from embedding_film.film.camera import axis_limits
from embedding_film.film.common import load_npy, save_json


def main(job: Job) -> None:
    save_json(job.output.limits, axis_limits([load_npy(p) for p in job.input.projections], job.params.margin))
