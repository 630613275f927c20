"""Stage 4: outlier scores per checkpoint, with cleanlab (rule ood; label issues: label_issues.py).

In:  embeddings/{step}.npy.
Out: ood/{step}.npy  float64 [N] in [0, 1] from cleanlab.outlier.OutOfDistribution().fit_score
                     (lower = more outlying: cleanlab's convention).
"""

import logging

import numpy as np

from workflow_scripts.common import UserError, load_npy, save_npy
from workflow_scripts.job import Job

log = logging.getLogger(__name__)


def ood_scores(embeddings: np.ndarray, k: int) -> np.ndarray:
    """cleanlab's feature-based OOD score of every row against all rows (its k nearest neighbours)."""
    from cleanlab.outlier import OutOfDistribution

    if k >= len(embeddings):
        raise UserError(
            f"ood.k ({k}) must be smaller than the number of eval images ({len(embeddings)}); lower ood.k or raise dataset.eval_size."
        )
    return np.asarray(OutOfDistribution(params={"k": k}).fit_score(features=embeddings), dtype=np.float64)


def top_outliers(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most outlying rows (lowest scores), most outlying first; ties broken by index."""
    return np.lexsort((np.arange(len(scores)), scores))[:k]


def warm(job: Job | None = None) -> None:
    import cleanlab.outlier  # noqa: F401


def main(job: Job) -> None:
    save_npy(job.output.scores, ood_scores(load_npy(job.input.embeddings), job.params.k))
