"""Label issues: the eval images whose given label a checkpoint's predicted probabilities doubt (cleanlab)."""

import numpy as np

from embedding_film.film.common import UserError


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
