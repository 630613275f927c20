"""Stage 5b: measure the film.

Per checkpoint (metrics/{step}.json, rule metrics):
  head_accuracy         accuracy of the checkpoint's own classifier head on the eval images (NaN without one)
  knn_accuracy          leave-one-out k-NN accuracy in embedding space
  silhouette            silhouette score of the classes in embedding space
  trustworthiness       sklearn.manifold.trustworthiness of the 2-D projection (computed by `trustworthiness`)
  neighbour_preservation  mean share of each point's k nearest neighbours (embedding space) kept in 2-D
  pca_trustworthiness   trustworthiness of this checkpoint's own 2-D PCA: a shared basis that fits the
                        checkpoint much worse than its own PCA (shared_basis_gap > 0.1) means the embedding
                        dimensions did not keep their identity (see basis_warning)
  disparity_previous    Procrustes disparity of the projection to the previous checkpoint's
  displacement_previous mean on-screen movement of a point since the previous checkpoint
Whole film (metrics.csv + film_metrics.json, rule metrics_table: metrics_table.py):
  stability_spearman    Spearman correlation between each point's movement in embedding space and on screen
                        between consecutive checkpoints, pooled over all points and pairs (Vernier et al.,
                        EuroVis 2020); 1 = the film moves exactly where the embeddings move
  movement_stress       sum((m_hi - m_lo)^2) / sum(m_hi^2) with both movements scaled to a maximum of 1
Large eval sets are subsampled (seeded) to `max_points` for the neighbourhood metrics.
"""

import logging
import math
from collections.abc import Sequence

import numpy as np

from embedding_film.film.common import per_checkpoint, seeded_subset
from embedding_film.film.projection import pca_2d, procrustes_align

log = logging.getLogger(__name__)

# A shared basis this much less trustworthy than a checkpoint's own PCA means the dimensions moved (at
# random initialisation the demo shows 0.065; a swapped or re-initialised model shows far more).
BASIS_GAP_WARNING = 0.1

COLUMNS = (
    "step",
    "head_accuracy",
    "knn_accuracy",
    "silhouette",
    "trustworthiness",
    "neighbour_preservation",
    "pca_trustworthiness",
    "shared_basis_gap",
    "disparity_previous",
    "displacement_previous",
    "spread",
    "zoom",
)


def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """The images a checkpoint's metrics are measured on (common.seeded_subset)."""
    return seeded_subset(n, max_points, seed)


def knn_indices(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k nearest other rows."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]


def knn_accuracy(embeddings: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Leave-one-out k-NN accuracy (majority vote of the k nearest other points, ties to the nearest)."""
    neighbours = labels[knn_indices(embeddings, k)]
    votes = np.apply_along_axis(lambda row: np.bincount(row, minlength=labels.max() + 1), 1, neighbours)
    best = votes.max(axis=1, keepdims=True)
    # among tied classes, take the one whose member is nearest
    tied = votes[np.arange(len(votes))[:, None], neighbours] == best
    predicted = neighbours[np.arange(len(neighbours)), tied.argmax(axis=1)]
    return float((predicted == labels).mean())


def trustworthiness(high: np.ndarray, low: np.ndarray, k: int) -> float:
    """scikit-learn's `sklearn.manifold.trustworthiness(high, low, n_neighbors=k)` (euclidean), the same value
    (tested; the two differ only where two distances from one point tie exactly), found without sorting every
    row of the n x n distances: a point's rank in another's neighbourhood is the number of points closer to
    it, and only the k on-screen neighbours of each point need one. The film measures every checkpoint of
    every layout candidate, so the sort was most of `auto`'s measuring."""
    from sklearn.metrics import pairwise_distances
    from sklearn.neighbors import NearestNeighbors

    n = len(high)
    dist = pairwise_distances(high)
    np.fill_diagonal(dist, np.inf)
    on_screen = NearestNeighbors(n_neighbors=k).fit(low).kneighbors(return_distance=False)
    penalty = 0
    for start in range(0, n, 256):  # [rows, k, n] comparisons a block of rows at a time
        d = dist[start : start + 256]
        kept = np.take_along_axis(d, on_screen[start : start + 256], axis=1)
        ranks = np.count_nonzero(d[:, None, :] < kept[:, :, None], axis=2) + 1  # 1 = the nearest point
        penalty += int(np.maximum(ranks - k, 0).sum())
    return float(1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))))


def neighbour_preservation(high: np.ndarray, low: np.ndarray, k: int) -> float:
    a, b = knn_indices(high, k), knn_indices(low, k)
    return float(np.mean([len(set(r1) & set(r2)) / k for r1, r2 in zip(a, b)]))


def step_metrics(
    embeddings: np.ndarray,
    projection: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    previous_projection: np.ndarray | None,
    k: int = 10,
    max_points: int = 2000,
) -> dict[str, float]:
    """All per-checkpoint metrics (see the module docstring)."""
    from sklearn.metrics import silhouette_score

    idx = subsample(len(embeddings), max_points)
    emb, proj, lab = np.asarray(embeddings, np.float64)[idx], np.asarray(projection, np.float64)[idx], labels[idx]
    k = max(1, min(k, len(idx) // 2 - 1))
    out: dict[str, float] = {
        "head_accuracy": float((probs.argmax(axis=1) == labels).mean()) if probs.shape[1] else math.nan,
        "knn_accuracy": knn_accuracy(emb, lab, k),
        "silhouette": float(silhouette_score(emb, lab)) if len(np.unique(lab)) > 1 else math.nan,
        "trustworthiness": trustworthiness(emb, proj, k),
        "neighbour_preservation": neighbour_preservation(emb, proj, k),
        "pca_trustworthiness": trustworthiness(emb, pca_2d(emb), k),
        "disparity_previous": math.nan,
        "displacement_previous": math.nan,
    }
    out["shared_basis_gap"] = out["pca_trustworthiness"] - out["trustworthiness"]
    if previous_projection is not None:
        out["disparity_previous"] = procrustes_align(projection, previous_projection)[1]
        out["displacement_previous"] = float(np.linalg.norm(projection - previous_projection, axis=1).mean())
    return out


def movements(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(b, np.float64) - np.asarray(a, np.float64), axis=1)


def film_movements(frames: Sequence[np.ndarray], threads: int | None = None) -> np.ndarray:
    """Every point's movement between consecutive checkpoints, pooled in checkpoint order [(T - 1) * N]; the
    pairs on `threads` threads (None: every core this process may use), the same values whatever the threads."""
    pairs = per_checkpoint(lambda t: movements(frames[t - 1], frames[t]), range(1, len(frames)), "measuring", threads)
    return np.concatenate(pairs) if pairs else np.empty(0)


def temporal_stability(
    embeddings: Sequence[np.ndarray], projections: Sequence[np.ndarray], high: np.ndarray | None = None
) -> dict[str, float]:
    """Spearman correlation and normalised stress between embedding-space and on-screen movement, on one
    thread (the jobs that call it hold one core). `high`: the embeddings' film_movements when the caller has
    them (the layout job measures them once, on every core, for all its candidates)."""
    from scipy.stats import spearmanr

    if len(embeddings) < 2:
        return {"stability_spearman": math.nan, "movement_stress": math.nan}
    high = film_movements(embeddings, threads=1) if high is None else high
    low = film_movements(projections, threads=1)
    rho = float(spearmanr(high, low).statistic) if high.std() > 0 and low.std() > 0 else math.nan
    h, lo = high / max(high.max(), 1e-12), low / max(low.max(), 1e-12)
    return {"stability_spearman": rho, "movement_stress": float(((h - lo) ** 2).sum() / max((h**2).sum(), 1e-12))}
