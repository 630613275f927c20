"""Stage 4b: likely label issues per checkpoint, with cleanlab (rule label_issues).

In:  probs/{step}.npy (the checkpoint's own predicted class probabilities), data/labels.npy.
Out: label_issues/{step}.npy  int64 indices of likely label issues from cleanlab.filter.find_label_issues,
     most severe first (empty when the checkpoint has no classification head).
"""

import numpy as np

from workflow_scripts.common import UserError, load_npy, save_npy
from workflow_scripts.job import Job

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


def warm(job: Job | None = None) -> None:
    import cleanlab.filter  # noqa: F401


def main(job: Job) -> None:
    save_npy(job.output.issues, label_issues(load_npy(job.input.labels), load_npy(job.input.probs)))
