"""Stage 5, one layout for the whole film: PCA, a pooled t-SNE, a learned map or AlignedUMAP, fitted once.

Every checkpoint's frame is read from the same fitted layout (`projection.method`):
  pca   one PCA basis fitted on the fitted checkpoints' embeddings together (project.pca_fit), every
        checkpoint projected on it: the film of `align: global` (or of `align: reference`).
  tsne  openTSNE fitted on the fitted checkpoints' embeddings pooled, i.e. on all their rows at once, or on
        a seeded subsample of at most `max_fit_rows` of them. Each checkpoint's rows of that one map are its
        frame. Rows outside the fit are placed the way openTSNE's `TSNEEmbedding.transform` places new points:
        each is optimised against the fitted points, which stay where they are. The embeddings are first
        reduced to `pca_dims` principal components (optionally after L2 normalisation), as is usual for t-SNE.
  param a learned global map (workflow_scripts/embedding_film/film/param_map.py): one small network f: R^D -> R^2 trained on the
        fitted checkpoints' embeddings pooled with the t-SNE objective plus a movement term, every checkpoint's
        frame is f(its embeddings). An image whose embedding does not move does not move on screen, and a
        checkpoint outside the fit is placed by one forward pass.
  umap  umap-learn's AlignedUMAP with identity relations (image i at one checkpoint is image i at the next).
  auto  `fit_auto`: fits the candidate layouts in order (cheapest first), measures each with the workflow's
        own metrics and keeps the first that meets the targets, fitting no more (see `choose`).

`reference_steps` fits the layout on those checkpoints only; every other checkpoint is placed on the frozen
layout by `place`, from the layout file and that checkpoint's embeddings alone, so appending a checkpoint
changes no earlier frame. The rules pass the fit steps of `projection.fit` (layout_plan.py: auto, the
default, keeps a layout's fit steps while the checkpoints placed on it meet the film's targets).

A fitted layout is a dict of plain arrays, saved as .npz and read back with allow_pickle=False (`save_layout`,
`load_layout`):
  method            str, "pca" | "tsne" | "param" | "umap" (the chosen one under auto)
  steps             int64 [S]        checkpoints whose frames the file holds, ascending
  coords            float32 [S, N, 2] their frames
  fit_steps         int64 [F]        checkpoints the layout was fitted on (a subset of steps)
  settings          str              JSON of the method's settings as used (auto: also `choice`)
  pca:  mean float64 [D], components float64 [2, D]
  tsne: reduce_mean float64 [D], reduce_components float64 [d, D] (absent without pca_dims),
        reference_rows float32 [M, d] (the fitted rows, reduced), reference_coords float64 [M, 2]
  param: the fitted network's arrays (param_map.py's docstring: mean, components, scale, log_scale, w0, b0, ...)
  auto: choice str (JSON: which candidate was kept, why, and every candidate's measurements)
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import embedding_film.film.param_map as param_map
from embedding_film.film.common import UserError, atomic_path, per_checkpoint, progress, seeded_subset
from embedding_film.film.projection import principal_axes

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne", "param", "umap", "auto")

# Defaults of projection.tsne / projection.umap / projection.auto (schemas/config.schema.yaml mirrors them).
TSNE_DEFAULTS: dict[str, Any] = {
    "perplexity": 200.0,  # neighbours whose distances the map keeps; large = steadier, more global
    "exaggeration": 2.0,  # attraction multiplier after the early phase (1 = plain t-SNE)
    "early_exaggeration": 12.0,
    "early_exaggeration_iter": 250,
    "n_iter": 500,
    "learning_rate": "auto",  # openTSNE's "auto" = rows / exaggeration (Belkina et al. 2019)
    "dof": 1.0,  # degrees of freedom of the low-dimensional kernel (< 1: heavier tails)
    "initialization": "pca",  # pca (the pooled rows' first two principal components) or random
    "pca_dims": 50,  # reduce embeddings to this many principal components first; null = no
    "normalise": False,  # L2-normalise every embedding first (cosine neighbourhoods)
    "max_fit_rows": 20000,  # pooled rows the map is fitted on (seeded subsample); the rest is placed
    "transform_perplexity": 30.0,  # neighbours among the fitted rows that place one new row
    "transform_iter": 100,  # openTSNE's 250 places rows no better here and costs more (RESULTS.md)
    "transform_learning_rate": 0.1,
    "transform_exaggeration": 1.5,
    "threads": 1,  # openTSNE threads (1 keeps the result independent of the core count)
}
UMAP_DEFAULTS: dict[str, Any] = {
    "n_neighbors": 15,
    "min_dist": 0.1,
    "alignment_regularisation": 0.1,
    "alignment_window_size": 3,
    "n_epochs": 200,
}
AUTO_DEFAULTS: dict[str, Any] = {
    "candidates": ["pca", "param"],
    "min_stability": 0.90,
    "min_trust_mean": 0.95,
    "min_trust_worst": 0.85,
    "k": 10,  # trustworthiness neighbours (metrics.k)
    "max_points": 2000,  # trustworthiness on a seeded subsample of each checkpoint (metrics.max_points)
}
# auto measures its candidates' trustworthiness on at most this many images per checkpoint: sklearn's exact
# trustworthiness costs n^2 log n per checkpoint, and a decision between layouts needs no more.
AUTO_MAX_POINTS = 1000
DEFAULTS = {"tsne": TSNE_DEFAULTS, "param": param_map.DEFAULTS, "umap": UMAP_DEFAULTS, "auto": AUTO_DEFAULTS}
PCA_MAX_ROWS = 200_000  # as project.fit_basis


def may_learn(method: str, candidates: Sequence[str]) -> bool:
    """Whether a layout of `method` (with auto's `candidates`) may be the learned map, whose jobs need torch."""
    return method == "param" or (method == "auto" and "param" in candidates)


def resolve_settings(settings: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """The config's projection.{tsne,param,umap,auto} sub-dicts completed with the defaults; unknown keys are refused."""
    out = {name: dict(defaults) for name, defaults in DEFAULTS.items()}
    for name, values in (settings or {}).items():
        if name not in DEFAULTS:
            raise UserError(f"projection.{name} is not a layout setting; use one of {sorted(DEFAULTS)}.")
        unknown = set(values or {}) - set(DEFAULTS[name])
        if unknown:
            raise UserError(
                f"projection.{name} has unknown keys {sorted(unknown)}; known keys are {sorted(DEFAULTS[name])}."
            )
        out[name].update(values or {})
    return out


# ----------------------------------------------------------------------------------------------- fitting


def fit_layout(
    embeddings: Sequence[np.ndarray],
    steps: Sequence[int],
    method: str = "tsne",
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    reference_steps: Sequence[int] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Fit one layout over a film's checkpoints and place every one of them.

    In: `embeddings[i]` is checkpoint `steps[i]`'s [N, D] array (memory-mapped is fine: rows are read per
    checkpoint); `method` one of METHODS; `settings` the config's projection sub-dicts ({"tsne": {...}, ...});
    `reference_steps` the checkpoints to fit on (None: all of them); `seed` makes the result reproducible.
    Out: the layout's arrays (module docstring), `coords` holding a frame for every step.
    """
    steps = [int(s) for s in steps]
    if len(steps) != len(embeddings) or not steps:
        raise UserError(
            f"the layout needs one embedding file per checkpoint; got {len(embeddings)} for {len(steps)} steps."
        )
    if sorted(set(steps)) != steps:
        raise UserError("the layout's checkpoint steps must be distinct and ascending; check the checkpoint folders.")
    if len({np.shape(e) for e in embeddings}) != 1:
        raise UserError(
            "every checkpoint must embed the same eval images with the same width; re-run embed for all checkpoints."
        )
    fit_idx = _fit_indices(steps, reference_steps)
    s = resolve_settings(settings)
    if method == "auto":
        return fit_auto(embeddings, steps, s, reference_steps, seed)
    if method == "pca":
        layout = _fit_pca(embeddings, fit_idx, seed)
    elif method == "tsne":
        layout = _fit_tsne(embeddings, steps, fit_idx, s["tsne"], seed)
    elif method == "param":
        layout = _fit_param(embeddings, steps, fit_idx, s["param"], seed)
    elif method == "umap":
        if len(fit_idx) != len(steps):
            raise UserError(
                "projection.fit: reference is not available for projection.method umap; use fit: all or method tsne."
            )
        layout = _fit_umap(embeddings, s["umap"], seed)
    else:
        raise UserError(f"projection.method '{method}' is unknown; use one of {METHODS}.")
    layout["steps"] = np.asarray(steps, dtype=np.int64)
    layout["fit_steps"] = np.asarray([steps[i] for i in fit_idx], dtype=np.int64)
    return layout


def _fit_indices(steps: Sequence[int], reference_steps: Sequence[int] | None) -> list[int]:
    if reference_steps is None:
        return list(range(len(steps)))
    missing = sorted(set(int(s) for s in reference_steps) - set(steps))
    if missing or not reference_steps:
        raise UserError(
            f"projection.reference_steps {list(reference_steps)} must name existing checkpoints (missing: {missing}); "
            f"choose among {steps[:5]}{' ...' if len(steps) > 5 else ''}."
        )
    wanted = {int(s) for s in reference_steps}
    return [i for i, s in enumerate(steps) if s in wanted]


def _sample_rows(n_steps: int, n: int, max_rows: int, seed: int) -> np.ndarray:
    """Flat indices (checkpoint * n + row) of the pooled rows to fit on: all, or a sorted seeded subsample."""
    return seeded_subset(n_steps * n, max_rows, seed)


def _gather(embeddings: Sequence[np.ndarray], fit_idx: Sequence[int], flat: np.ndarray, n: int) -> np.ndarray:
    """The pooled rows `flat` (indices into the fitted checkpoints' stacked rows) as one float32 array."""
    parts = []
    which, rows = np.divmod(flat, n)
    for j in np.unique(which):
        parts.append(np.asarray(embeddings[fit_idx[j]][rows[which == j]], dtype=np.float32))
    return np.concatenate(parts)


def _fit_pca(embeddings: Sequence[np.ndarray], fit_idx: Sequence[int], seed: int) -> dict[str, np.ndarray]:
    """One PCA basis over the fitted checkpoints (as project.fit_basis: the same rows, the same seed)."""
    from embedding_film.film.projection import pca_fit, pca_project

    n = len(embeddings[0])
    rows = _gather(embeddings, fit_idx, _sample_rows(len(fit_idx), n, PCA_MAX_ROWS, seed), n)
    mean, components = pca_fit(rows)
    coords = np.stack(
        per_checkpoint(lambda e: pca_project(e, mean, components).astype(np.float32), embeddings, "projecting")
    )
    return {
        "method": np.array("pca"),
        "mean": mean,
        "components": components,
        "coords": coords,
        "settings": np.array(json.dumps({})),
    }


def _prepare(x: np.ndarray, layout: Mapping[str, np.ndarray], normalise: bool) -> np.ndarray:
    """What t-SNE sees of embeddings `x`: optionally L2-normalised, then reduced (float32)."""
    x = np.asarray(x, dtype=np.float64)
    if normalise:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if "reduce_components" in layout:
        x = (x - layout["reduce_mean"]) @ layout["reduce_components"].T
    return np.ascontiguousarray(x, dtype=np.float32)


def _check_tsne(s: Mapping[str, Any]) -> None:
    if s["initialization"] not in ("pca", "random"):
        raise UserError(f"projection.tsne.initialization '{s['initialization']}' is unknown; use pca or random.")
    for key in ("perplexity", "exaggeration", "transform_perplexity", "dof", "early_exaggeration"):
        if not float(s[key]) > 0:
            raise UserError(f"projection.tsne.{key} must be positive, got {s[key]}; raise it.")
    if int(s["max_fit_rows"]) < 10:
        raise UserError(
            f"projection.tsne.max_fit_rows ({s['max_fit_rows']}) is too small; use at least a few thousand."
        )


def _fit_tsne(
    embeddings: Sequence[np.ndarray], steps: Sequence[int], fit_idx: Sequence[int], s: Mapping[str, Any], seed: int
) -> dict[str, np.ndarray]:
    from openTSNE import TSNE
    from openTSNE.affinity import PerplexityBasedNN
    from openTSNE.initialization import rescale

    from embedding_film.film.projection import pca_2d

    _check_tsne(s)
    n, width = np.shape(embeddings[0])
    flat = _sample_rows(len(fit_idx), n, int(s["max_fit_rows"]), seed)
    raw = _gather(embeddings, fit_idx, flat, n)
    layout: dict[str, np.ndarray] = {}
    if s["normalise"]:
        raw = (raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    if s["pca_dims"] and int(s["pca_dims"]) < width:
        axes = principal_axes(raw.astype(np.float64), min(int(s["pca_dims"]), len(raw)))
        layout["reduce_mean"], layout["reduce_components"] = axes
    reference = _prepare(raw, layout, normalise=False)  # raw is already normalised
    del raw
    perplexity = min(float(s["perplexity"]), (len(reference) - 1) / 3)
    threads = int(s["threads"])
    affinities = PerplexityBasedNN(
        reference,
        perplexity=perplexity,
        method="exact",
        n_jobs=threads,
        random_state=seed,
        knn_kwargs={"algorithm": "brute"},
    )
    if s["initialization"] == "pca":
        init = rescale(pca_2d(reference))
    else:
        init = rescale(np.random.default_rng(seed).normal(size=(len(reference), 2)))
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        learning_rate=s["learning_rate"],
        early_exaggeration=float(s["early_exaggeration"]),
        early_exaggeration_iter=int(s["early_exaggeration_iter"]),
        n_iter=int(s["n_iter"]),
        exaggeration=float(s["exaggeration"]),
        dof=float(s["dof"]),
        n_jobs=threads,
        random_state=seed,
        negative_gradient_method="auto",
        verbose=False,
    )
    coords = np.asarray(tsne.fit(affinities=affinities, initialization=init), dtype=np.float64)
    coords -= (coords.max(axis=0) + coords.min(axis=0)) / 2  # centred, as openTSNE's transform expects
    layout.update(
        method=np.array("tsne"),
        reference_rows=reference,
        reference_coords=coords,
        settings=np.array(json.dumps({**s, "perplexity_used": perplexity})),
    )
    frames = np.empty((len(steps), n, 2), dtype=np.float32)
    which, rows = np.divmod(flat, n)
    fitted = {fit_idx[j]: rows[which == j] for j in range(len(fit_idx))}
    offsets = np.concatenate([[0], np.cumsum([len(fitted[i]) for i in fit_idx])])
    for i in progress(range(len(steps)), "place", len(steps)):
        own = fitted.get(i, np.array([], dtype=np.int64))
        rest = np.setdiff1d(np.arange(n), own)
        if len(own):
            j = list(fit_idx).index(i)
            frames[i, own] = coords[offsets[j] : offsets[j + 1]]
        if len(rest):
            frames[i, rest] = _place_tsne(layout, np.asarray(embeddings[i])[rest])
    layout["coords"] = frames
    return layout


def _place_tsne(layout: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Rows `x` placed on the frozen t-SNE map: openTSNE's transform with the fitted points held fixed.

    Each row is optimised independently of the others (point-wise normalised affinities to the fitted rows,
    per-point normalisation of the repulsion), so placing a checkpoint alone gives what placing it with
    others gives.
    """
    import scipy.sparse as sp
    from openTSNE import TSNEEmbedding
    from openTSNE.affinity import PrecomputedAffinities, joint_probabilities_nn
    from openTSNE.tsne import PartialTSNEEmbedding
    from sklearn.neighbors import NearestNeighbors

    s = json.loads(str(layout["settings"]))
    ref_rows, ref_coords = layout["reference_rows"], np.asarray(layout["reference_coords"], dtype=np.float64)
    m = len(ref_rows)
    rows = _prepare(x, layout, bool(s["normalise"]))
    perplexity = min(float(s["transform_perplexity"]), (m - 1) / 3)
    k = min(m, max(int(3 * perplexity), 25))
    distances, neighbours = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(ref_rows).kneighbors(rows)
    threads = int(s["threads"])
    p = joint_probabilities_nn(
        neighbours,
        distances,
        [perplexity],
        symmetrize=False,
        normalization="point-wise",
        n_reference_samples=m,
        n_jobs=threads,
    )
    start = np.median(ref_coords[neighbours[:, :25]], axis=1)
    frozen = TSNEEmbedding(
        ref_coords,
        PrecomputedAffinities(sp.csr_matrix((m, m)), normalize=False),
        dof=float(s["dof"]),
        negative_gradient_method="fft",
        n_jobs=threads,
    )
    partial = PartialTSNEEmbedding(np.ascontiguousarray(start), frozen, p, **frozen.gradient_descent_params)
    placed = partial.optimize(
        n_iter=int(s["transform_iter"]),
        learning_rate=float(s["transform_learning_rate"]),
        exaggeration=float(s["transform_exaggeration"]),
        momentum=0.8,
        max_grad_norm=0.25,
        inplace=True,
    )
    return np.asarray(placed, dtype=np.float32)


def _fit_param(
    embeddings: Sequence[np.ndarray], steps: Sequence[int], fit_idx: Sequence[int], s: Mapping[str, Any], seed: int
) -> dict[str, np.ndarray]:
    """param_map.fit on the fitted checkpoints, then every checkpoint placed by the map (the fitted ones from
    the rows the fit reduced)."""
    fitted = embeddings if len(fit_idx) == len(embeddings) else [embeddings[i] for i in fit_idx]
    model, frames = param_map.fit_and_place(fitted, s, seed, [steps[i] for i in fit_idx])
    placed = dict(zip(fit_idx, frames))
    rest = [i for i in range(len(embeddings)) if i not in placed]
    placed.update(
        zip(rest, per_checkpoint(lambda i: param_map.place(model, np.asarray(embeddings[i])), rest, "placing"))
    )
    return {**model, "coords": np.stack([placed[i] for i in range(len(embeddings))])}


def _fit_umap(embeddings: Sequence[np.ndarray], s: Mapping[str, Any], seed: int) -> dict[str, np.ndarray]:
    import umap

    n = len(embeddings[0])
    identity = {i: i for i in range(n)}
    mapper = umap.AlignedUMAP(
        n_neighbors=int(s["n_neighbors"]),
        min_dist=float(s["min_dist"]),
        alignment_regularisation=float(s["alignment_regularisation"]),
        alignment_window_size=int(s["alignment_window_size"]),
        n_epochs=int(s["n_epochs"]),
        random_state=seed,
    ).fit([np.asarray(e, dtype=np.float32) for e in embeddings], relations=[identity] * (len(embeddings) - 1))
    coords = np.stack([np.asarray(e, dtype=np.float32) for e in mapper.embeddings_])
    return {"method": np.array("umap"), "coords": coords, "settings": np.array(json.dumps(dict(s)))}


# ----------------------------------------------------------------------------------------------- placing


def place(layout: Mapping[str, np.ndarray], step: int, embeddings: np.ndarray) -> np.ndarray:
    """One checkpoint's frame [N, 2] float32 from a fitted layout (as `load_layout` returns it).

    A step the layout holds is read from it (`embeddings` are then not used); any other step is placed on the
    frozen layout from `embeddings` [N, D] alone: projected on the PCA basis, or placed on the t-SNE map.
    """
    held = np.flatnonzero(layout["steps"] == int(step))
    if len(held):
        return np.array(layout["coords"][held[0]], dtype=np.float32)
    method = str(layout["method"])
    if method == "pca":
        from embedding_film.film.projection import pca_project

        return pca_project(embeddings, layout["mean"], layout["components"]).astype(np.float32)
    if method == "tsne":
        return _place_tsne(layout, embeddings)
    if method == "param":
        return param_map.place(layout, embeddings)
    raise UserError(
        f"checkpoint {step} is not in the {method} layout and {method} cannot place new checkpoints; "
        "refit the layout (projection.fit: all) or use projection.method param, tsne or pca."
    )


def save_layout(path: str | os.PathLike[str], layout: Mapping[str, np.ndarray]) -> None:
    """Write a fitted layout atomically as an .npz of plain arrays (no pickle)."""
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{key: np.asarray(value) for key, value in layout.items()})


def load_layout(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a layout written by save_layout (allow_pickle=False)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


# ----------------------------------------------------------------------------------------- measuring, auto


def film_quality(
    embeddings: Sequence[np.ndarray],
    frames: Sequence[np.ndarray],
    k: int = 10,
    max_points: int = 2000,
    seed: int = 0,
    threads: int | None = None,
    high: np.ndarray | None = None,
) -> dict[str, Any]:
    """The workflow's film metrics of one layout: stability and movement stress (metrics.temporal_stability)
    and trustworthiness with k neighbours per checkpoint (on metrics.subsample's rows, as metrics.step_metrics),
    the checkpoints measured on `threads` threads (None: every core this process may use). `high`: the
    embeddings' metrics.film_movements, when the caller measures several layouts of one film.

    Out: stability_spearman, movement_stress, trust_mean, trust_worst (floats), trust (list per checkpoint).
    """
    from embedding_film.film.metrics import subsample, temporal_stability, trustworthiness

    film = temporal_stability(embeddings, frames, high)
    idx = subsample(len(frames[0]), max_points, seed)
    kk = max(1, min(k, len(idx) // 2 - 1))

    def trust_of(step: int) -> float:
        return trustworthiness(
            np.asarray(embeddings[step][idx], np.float64), np.asarray(frames[step], np.float64)[idx], kk
        )

    trust = per_checkpoint(trust_of, range(len(frames)), "measuring", threads)
    return {**film, "trust_mean": float(np.mean(trust)), "trust_worst": float(np.min(trust)), "trust": trust}


def choose(scores: Mapping[str, Mapping[str, float]], targets: Mapping[str, float]) -> dict[str, Any]:
    """Which candidate layout `auto` keeps, and why.

    In: `scores[name]` with stability_spearman, trust_mean, trust_worst (film_quality's), in the order the
    candidates were listed (cheapest first); `targets` with min_stability, min_trust_mean, min_trust_worst.
    The first candidate that meets all three targets is kept: a later one costs more and the film needs no
    more than the targets. When none meets them, the one whose worst shortfall is smallest is kept (the
    first listed wins a tie). With a single checkpoint the stability is undefined and only trustworthiness
    counts.
    Out: {"method", "reason", "met" (bool), "margins" {name: {target: value - target}}}.
    """
    if not scores:
        raise UserError("projection.auto.candidates is empty; list at least one of pca, tsne, param, umap.")
    keys = {"stability_spearman": "min_stability", "trust_mean": "min_trust_mean", "trust_worst": "min_trust_worst"}
    margins: dict[str, dict[str, float]] = {}
    for name, sc in scores.items():
        margins[name] = {}
        for metric, target in keys.items():
            value = float(sc[metric])
            # an undefined stability (one checkpoint: nothing moves) neither meets nor misses the target
            margins[name][metric] = math.inf if math.isnan(value) else value - float(targets[target])
    meeting = [name for name in scores if min(margins[name].values()) >= 0]
    if meeting:
        best = meeting[0]
        reason = (
            f"{best} meets every target (stability {scores[best]['stability_spearman']:.3f} >= "
            f"{targets['min_stability']}, trustworthiness mean {scores[best]['trust_mean']:.3f} >= "
            f"{targets['min_trust_mean']}, worst frame {scores[best]['trust_worst']:.3f} >= {targets['min_trust_worst']})"
        )
        earlier = [name for name in scores if name != best and list(scores).index(name) < list(scores).index(best)]
        if earlier:
            reason += "; " + "; ".join(f"{name} misses {_missed(margins[name])}" for name in earlier)
        return {"method": best, "reason": reason + ".", "met": True, "margins": _finite(margins)}
    best = max(scores, key=lambda name: (min(margins[name].values()), -list(scores).index(name)))
    reason = f"no candidate meets every target; {best} comes closest (misses {_missed(margins[best])}); " + "; ".join(
        f"{name} misses {_missed(margins[name])}" for name in scores if name != best
    )
    return {"method": best, "reason": reason + ".", "met": False, "margins": _finite(margins)}


def _finite(margins: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float | None]]:
    """Margins for JSON: an undefined one (inf) as None."""
    return {name: {m: (None if math.isinf(v) else round(v, 4)) for m, v in ms.items()} for name, ms in margins.items()}


def _missed(margins: Mapping[str, float]) -> str:
    names = {"stability_spearman": "stability", "trust_mean": "trustworthiness mean", "trust_worst": "worst frame"}
    return ", ".join(f"{names[m]} by {-v:.3f}" for m, v in margins.items() if v < 0) or "nothing"


def fit_auto(
    embeddings: Sequence[np.ndarray],
    steps: Sequence[int],
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    reference_steps: Sequence[int] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """`method: auto`: fit the candidates of settings["auto"]["candidates"] in their order (cheapest first),
    measure each (film_quality) and stop at the first that meets every target; when none does, keep the one
    `choose` picks. Out: that candidate's layout plus `choice` (JSON: method, reason, met, margins, targets,
    each measured candidate's stability_spearman, movement_stress, trust_mean, trust_worst, fit_seconds, and
    `not_fitted`: the candidates after the kept one, which the film did not need).
    """
    import time

    from embedding_film.film.metrics import film_movements

    s = resolve_settings(settings)
    a = s["auto"]
    candidates = list(a["candidates"])
    if any(c not in ("pca", "tsne", "param", "umap") for c in candidates) or not candidates:
        raise UserError(f"projection.auto.candidates {candidates} must list some of pca, tsne, param, umap.")
    targets = {key: float(a[key]) for key in ("min_stability", "min_trust_mean", "min_trust_worst")}
    layouts, scores = {}, {}
    high = film_movements(embeddings)  # the embeddings' part of the stability, the same for every candidate
    for name in candidates:
        start = time.perf_counter()
        layouts[name] = fit_layout(embeddings, steps, name, s, reference_steps, seed)
        seconds = time.perf_counter() - start
        q = film_quality(
            embeddings,
            list(layouts[name]["coords"]),
            int(a["k"]),
            min(int(a["max_points"]), AUTO_MAX_POINTS),
            high=high,
        )
        scores[name] = {key: q[key] for key in ("stability_spearman", "movement_stress", "trust_mean", "trust_worst")}
        scores[name]["fit_seconds"] = round(seconds, 2)
        log.info("auto: %s %s", name, scores[name])
        if choose({name: scores[name]}, targets)["met"]:
            break
    choice = {
        **choose(scores, targets),
        "candidates": scores,
        "targets": targets,
        "not_fitted": [c for c in candidates if c not in scores],
    }
    log.info("auto chose %s: %s", choice["method"], choice["reason"])
    chosen = dict(layouts[choice["method"]])
    chosen["choice"] = np.array(json.dumps(choice, default=float))
    return chosen
