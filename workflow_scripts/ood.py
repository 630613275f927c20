"""Stage 4: outlier scores and label issues per checkpoint, with cleanlab.

In:  embeddings/{step}.npy, probs/{step}.npy, data/labels.npy.
Out: ood/{step}.npy           float64 [N] in [0, 1] from cleanlab.outlier.OutOfDistribution().fit_score
                              (lower = more outlying: cleanlab's convention).
     label_issues/{step}.npy  int64 indices of likely label issues from cleanlab.filter.find_label_issues on
                              the checkpoint's own predicted probabilities, most severe first (empty when the
                              checkpoint has no classification head).
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


def label_issues(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Indices of likely label issues ranked by cleanlab's self-confidence (empty without probabilities)."""
    if probs.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    from cleanlab.filter import find_label_issues

    n_classes = probs.shape[1]
    if labels.max() >= n_classes:
        raise UserError(
            f"the checkpoint's head predicts {n_classes} classes but the eval labels go up to {labels.max()}; "
            "use checkpoints fine-tuned on this dataset."
        )
    ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    return np.asarray(ranked, dtype=np.int64)


def top_outliers(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most outlying rows (lowest scores), most outlying first; ties broken by index."""
    return np.lexsort((np.arange(len(scores)), scores))[:k]


def score_checkpoints(
    embeddings: Sequence[str],
    probs: Sequence[str],
    labels_path: str,
    out_scores: Sequence[str],
    out_issues: Sequence[str],
    k: int,
) -> None:
    labels = load_npy(labels_path)
    for emb_path, prob_path, out_path, issues_path in progress(
        zip(embeddings, probs, out_scores, out_issues), "ood", len(embeddings)
    ):
        save_npy(out_path, ood_scores(load_npy(emb_path), k))
        save_npy(issues_path, label_issues(labels, load_npy(prob_path)))


def _main(snakemake: Any) -> None:
    i, o = snakemake.input, snakemake.output
    score_checkpoints(i.embeddings, i.probs, i.labels, o.scores, o.label_issues, snakemake.params.k)


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
