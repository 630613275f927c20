"""Stage 5a: the film-wide layout of the alignment modes that tie all frames together (rule layout).

In:  the embeddings the mode fits on: the reference step's (reference), every global_every-th checkpoint's
     (global), every checkpoint's (gpa).
Out: projection/layout.npz: the PCA basis (mean [D], components [2, D]) of reference and global, or gpa's
     aligned frames (steps [S], coords [S, N, 2]); each checkpoint's `project` job reads it.
"""

import numpy as np

from workflow_scripts.common import atomic_path, load_npy
from workflow_scripts.job import Job
from workflow_scripts.project import fit_layout


def warm(job: Job | None = None) -> None:
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401


def main(job: Job) -> None:
    embeddings = [load_npy(path) for path in job.input.embeddings]
    layout = fit_layout(job.params.align, embeddings, job.params.steps, seed=job.params.seed)
    with atomic_path(job.output.layout, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **layout)
