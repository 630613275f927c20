"""Stage 5: 2-D projections of every checkpoint's embeddings, aligned so the film does not flip or spin.

Modes (`projection.align`) and what goes stale when one checkpoint's embeddings change:
  first      PCA per checkpoint, Procrustes-aligned onto step 0's PCA: only that checkpoint (all of them
             when it is step 0). Appending a checkpoint invalidates nothing.
  previous   PCA per checkpoint, aligned onto the previous aligned frame (the article's chain): that
             checkpoint and every later one.
  reference  one PCA basis fitted on `reference_step` and applied to all: only that checkpoint (all of them
             when it is the reference). With reference_step: last, appending a checkpoint moves the reference.
  global     one PCA basis fitted on all checkpoints (every `global_every`-th): all of them.
  gpa        PCA per checkpoint, generalised Procrustes analysis (Gower 1975) of all frames: all of them.

Procrustes here is orthogonal (rotation or reflection) with translation and an explicit uniform scale that
gives each frame the reference's size, inside axes fixed for the whole film (no per-frame rescaling to the
extreme point). Reflections are allowed because a PCA axis may change sign between checkpoints: undoing
that is what keeps the film from flipping. The Procrustes modes show shape; the shared-basis modes
(reference, global) apply no scaling at all, so they also show how the embedding spreads.

Out: projection/{step}.npy (float32 [N, 2]); projection/basis.npz for the shared-basis modes;
     projection/limits.json (fixed axis limits for every frame).
"""

import logging
from collections.abc import Sequence

import numpy as np

from embedding_film.film.common import UserError, seeded_subset

log = logging.getLogger(__name__)

MODES = ("first", "previous", "reference", "global", "gpa")


def pca_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and the two principal axes [2, D] of `x` (deterministic signs, as scikit-learn's svd_flip)."""
    if len(x) < 3:
        raise UserError(f"PCA needs at least 3 eval images, got {len(x)}; raise dataset.eval_size.")
    return principal_axes(np.asarray(x, dtype=np.float64), 2)


def principal_axes(x: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the rows of x (float64 [N, D]): mean [D] and the first n_components axes [n_components, D].
    With many more rows than dimensions (a basis over all checkpoints) the eigendecomposition of the D x D
    covariance needs no [N, D] factor, so a basis of many checkpoints fits in a fraction of the memory."""
    from sklearn.decomposition import PCA

    solver = "covariance_eigh" if x.shape[0] > 4 * x.shape[1] else "full"
    pca = PCA(n_components=n_components, svd_solver=solver).fit(x)
    return pca.mean_, pca.components_


def pca_project(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) - mean) @ components.T


def pca_2d(x: np.ndarray) -> np.ndarray:
    return pca_project(x, *pca_fit(x))


def procrustes_align(y: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, float]:
    """Rotate (or reflect), scale uniformly and translate `y` onto `ref`.

    Returns the aligned points and the Procrustes disparity (residual sum of squares divided by the
    reference's centred sum of squares: 0 = identical shapes).
    """
    from scipy.linalg import orthogonal_procrustes

    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    y_mean, ref_mean = y.mean(axis=0), ref.mean(axis=0)
    yc, refc = y - y_mean, ref - ref_mean
    norm = float((yc**2).sum())
    if norm == 0.0:
        return np.broadcast_to(ref_mean, y.shape).copy(), 1.0
    rotation, _ = orthogonal_procrustes(yc, refc)
    # Scale to the reference's size. The least-squares scale (sum of singular values / |y|^2) shrinks a frame
    # in proportion to how much its shape changed, and along the `previous` chain that compounds until the
    # film collapses to a point; equal size keeps every frame readable inside the fixed axes.
    scale = float(np.sqrt((refc**2).sum() / norm))
    aligned = scale * (yc @ rotation) + ref_mean
    disparity = float(((aligned - ref) ** 2).sum() / max((refc**2).sum(), np.finfo(float).tiny))
    return aligned, disparity


def generalised_procrustes(frames: Sequence[np.ndarray], tol: float = 1e-10, max_iter: int = 100) -> list[np.ndarray]:
    """Align all frames to their iteratively re-estimated mean shape (GPA), in the scale of the first frame."""
    current = [np.asarray(f, dtype=np.float64) for f in frames]
    mean = current[0]
    scale = np.sqrt(((mean - mean.mean(0)) ** 2).sum())
    for _ in range(max_iter):
        current = [procrustes_align(f, mean)[0] for f in current]
        new_mean = np.mean(current, axis=0)
        new_mean = (new_mean - new_mean.mean(0)) * (scale / np.sqrt(((new_mean - new_mean.mean(0)) ** 2).sum()))
        if ((new_mean - mean) ** 2).sum() <= tol * scale**2:
            mean = new_mean
            break
        mean = new_mean
    return [procrustes_align(f, mean)[0] for f in current]


def fit_basis(
    embeddings: Sequence[np.ndarray], max_rows: int = 200_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One PCA basis for several checkpoints' embeddings stacked (randomly subsampled beyond max_rows)."""
    stacked = np.concatenate([np.asarray(e, dtype=np.float32) for e in embeddings])
    return pca_fit(stacked[seeded_subset(len(stacked), max_rows, seed)])


def project_step(
    align: str,
    embeddings: np.ndarray,
    layout: dict[str, np.ndarray] | None = None,
    anchor: np.ndarray | None = None,
    step: int | None = None,
) -> np.ndarray:
    """One checkpoint's aligned 2-D projection (float32 [N, 2]).

    `layout` is the film-wide layout (layout.npz: the PCA basis of reference/global, or gpa's aligned frames by
    step); `anchor` the aligned projection this one is aligned onto (first: the film's first frame, previous:
    the previous checkpoint's), None for the film's first checkpoint.
    """
    if align in ("reference", "global"):
        return pca_project(embeddings, layout["mean"], layout["components"]).astype(np.float32)
    if align == "gpa":
        return np.asarray(layout["coords"][list(layout["steps"]).index(step)], dtype=np.float32)
    if align not in ("first", "previous"):
        raise UserError(f"projection.align '{align}' is unknown; use one of {MODES}.")
    frame = pca_2d(embeddings)
    if anchor is None:
        return frame.astype(np.float32)  # the film's first frame defines the orientation
    aligned, disparity = procrustes_align(frame, np.asarray(anchor, dtype=np.float64))
    log.info("Procrustes disparity to the anchor frame: %.4f", disparity)
    return aligned.astype(np.float32)


def fit_pca_layout(
    align: str, embeddings: Sequence[np.ndarray], steps: Sequence[int], seed: int = 0
) -> dict[str, np.ndarray]:
    """The film-wide layout of the PCA modes that tie all frames (reference, global: the basis; gpa: the aligned
    frames by step): what layout.npz holds for projection.method pca."""
    if align in ("reference", "global"):
        mean, components = fit_basis(embeddings, seed=seed)
        return {"mean": mean, "components": components}
    if align == "gpa":
        return {"steps": np.asarray(steps), "coords": np.stack(generalised_procrustes([pca_2d(e) for e in embeddings]))}
    raise UserError(f"projection.align '{align}' has no film-wide layout.")


def project_all(align: str, embeddings: Sequence[np.ndarray], reference: int = -1, every: int = 1) -> list[np.ndarray]:
    """Every checkpoint's projection in memory, as the workflow's jobs compute them (used to compare modes).

    `align="article"` is the article's method for comparison: per-checkpoint PCA chained with
    scipy.spatial.procrustes, which rescales every frame to unit size and discards the disparity.
    """
    if align == "article":
        from scipy.spatial import procrustes

        frames = [pca_2d(embeddings[0])]
        for emb in embeddings[1:]:
            frames.append(procrustes(frames[-1], pca_2d(emb))[1])
        return frames
    if align == "gpa":
        return generalised_procrustes([pca_2d(e) for e in embeddings])
    if align in ("reference", "global"):
        basis = fit_basis([embeddings[reference]] if align == "reference" else list(embeddings[::every]))
        return [pca_project(e, *basis) for e in embeddings]
    frames = [pca_2d(embeddings[0])]
    for emb in embeddings[1:]:
        ref = frames[0] if align == "first" else frames[-1]
        frames.append(procrustes_align(pca_2d(emb), ref)[0])
    return frames
