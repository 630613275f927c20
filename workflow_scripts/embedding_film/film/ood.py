"""Outlier scores: cleanlab's out-of-distribution score of every eval image per checkpoint, the most outlying
images, and the film's table of them (outliers.csv)."""

import csv
import logging
from collections.abc import Sequence

import numpy as np

from embedding_film.film.common import UserError, atomic_path, load_npy

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


def write_outliers(steps: Sequence[int], scores: Sequence[str], ids: Sequence[str], top_k: int, out: str) -> None:
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "rank", "id", "index", "score"])
        for step, path in zip(steps, scores):
            values = load_npy(path)
            for rank, i in enumerate(top_outliers(values, top_k), start=1):
                writer.writerow([step, rank, ids[i], int(i), f"{values[i]:.6g}"])
