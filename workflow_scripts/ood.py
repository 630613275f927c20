"""Stage 4: outlier scores per checkpoint with cleanlab's OutOfDistribution.

In:  embeddings/{step}.npy.
Out: ood/{step}.npy (float64 [N] in [0, 1]; lower = more outlying: cleanlab's convention).
"""


import logging
from typing import Any, Sequence

import numpy as np

from workflow_scripts.common import UserError, load_npy, progress, run_job, save_npy

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


def score_checkpoints(embeddings: Sequence[str], outputs: Sequence[str], k: int) -> None:
    for emb_path, out_path in progress(zip(embeddings, outputs), "ood", len(embeddings)):
        save_npy(out_path, ood_scores(load_npy(emb_path), k))


def _main(snakemake: Any) -> None:
    score_checkpoints(snakemake.input.embeddings, snakemake.output.scores, snakemake.params.k)


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
