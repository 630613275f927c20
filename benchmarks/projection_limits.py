#!/usr/bin/env python
"""How far can a 2-D film go on a finished run? Upper-end estimates for the film's quality target
(stability Spearman >= 0.90 with trustworthiness >= 0.95).

    python benchmarks/projection_limits.py results/demo [more run folders ...] [--iterations 300]

For each run (a results/{run} folder with embeddings/{step}.npy) it prints one markdown row:
  global            the workflow's default: one PCA basis fitted on all checkpoints (stability, trust mean/min)
  own PCA           trustworthiness of every checkpoint's own 2-D PCA: the best any PCA-based mode can reach
                    frame by frame (Procrustes is rigid and cannot change it)
  best linear       a random hill climb over 2 x D linear maps, started at each checkpoint's own PCA, that
                    maximises that checkpoint's trustworthiness directly (on the first, middle and last
                    checkpoints): what is reachable with any linear map, found by search (a lower bound of
                    the true optimum, not a proof)
  stability search  the same hill climb over one fixed 2 x D map for the whole film, maximising the
                    stability Spearman directly, with the mean trustworthiness that map then scores
  joint search      the same hill climb over one fixed map, maximising min(stability - 0.90, mean trust - 0.95):
                    the closest a fixed linear map found gets to that target on both at once
  t-SNE             trustworthiness of scikit-learn's t-SNE of the same three checkpoints: a non-linear
                    reference (Vernier et al. measured per-step t-SNE's stability at -0.16 on CIFAR-10)
Metrics are the workflow's own (embedding_film.film.metrics); k = 10 neighbours as in config.yaml.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

from embedding_film.film.metrics import temporal_stability  # noqa: E402
from embedding_film.film.projection import fit_basis, pca_2d, pca_fit, pca_project  # noqa: E402

K = 10
TARGET_STABILITY, TARGET_TRUST = 0.90, 0.95


def load_run(folder: Path) -> list[np.ndarray]:
    steps = sorted(int(p.stem) for p in (folder / "embeddings").glob("*.npy"))
    if len(steps) < 2:
        raise SystemExit(f"{folder} has fewer than two embeddings/*.npy files; run the workflow on it first.")
    return [np.load(folder / "embeddings" / f"{s}.npy").astype(np.float64) for s in steps]


def trust(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(x, y, n_neighbors=K))


def hill_climb(
    w: np.ndarray, score: Callable[[np.ndarray], float], iterations: int, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Keep a random perturbation of the map `w` whenever it raises `score`."""
    rng = np.random.default_rng(seed)
    best = score(w)
    step = 0.1 * float(np.abs(w).mean())
    for _ in range(iterations):
        candidate = w + step * rng.standard_normal(w.shape)
        value = score(candidate)
        if value > best:
            w, best = candidate, value
    return w, best


def stability_of(embeddings: Sequence[np.ndarray], w: np.ndarray) -> float:
    """The workflow's stability Spearman of the film that the fixed linear map `w` draws."""
    return temporal_stability(embeddings, [e @ w for e in embeddings])["stability_spearman"]


def film_trust(embeddings: Sequence[np.ndarray], mean: np.ndarray, w: np.ndarray) -> float:
    return float(np.mean([trust(e, (e - mean) @ w) for e in embeddings]))


def limits(embeddings: Sequence[np.ndarray], iterations: int) -> dict[str, float]:
    from sklearn.manifold import TSNE

    out: dict[str, float] = {}
    mean, axes = fit_basis(list(embeddings))
    frames = [pca_project(e, mean, axes) for e in embeddings]
    trusts = [trust(e, f) for e, f in zip(embeddings, frames)]
    out["global_stability"] = temporal_stability(embeddings, frames)["stability_spearman"]
    out["global_trust_mean"], out["global_trust_min"] = float(np.mean(trusts)), float(np.min(trusts))
    own = [trust(e, pca_2d(e)) for e in embeddings]
    out["own_pca_trust_mean"], out["own_pca_trust_min"] = float(np.mean(own)), float(np.min(own))
    probe = sorted({0, len(embeddings) // 2, len(embeddings) - 1})
    best_linear, tsne = [], []
    for i in probe:
        e = embeddings[i]
        m, c = pca_fit(e)
        centred = e - m
        best_linear.append(hill_climb(c.T, lambda w, e=e, centred=centred: trust(e, centred @ w), iterations)[1])
        tsne.append(trust(e, TSNE(n_components=2, random_state=0, init="pca").fit_transform(e)))
    out["best_linear_trust"] = float(np.mean(best_linear))
    out["own_pca_trust_probe"] = float(np.mean([own[i] for i in probe]))
    out["tsne_trust"] = float(np.mean(tsne))
    w, out["searched_stability"] = hill_climb(axes.T, lambda w: stability_of(embeddings, w), iterations)
    out["searched_stability_trust"] = film_trust(embeddings, mean, w)

    def to_target(w: np.ndarray) -> float:  # > 0 only when both targets are met
        return min(stability_of(embeddings, w) - TARGET_STABILITY, film_trust(embeddings, mean, w) - TARGET_TRUST)

    w, _ = hill_climb(axes.T, to_target, iterations)
    out["joint_stability"], out["joint_trust"] = stability_of(embeddings, w), film_trust(embeddings, mean, w)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="results/{run} folders")
    parser.add_argument("--iterations", type=int, default=300, help="hill-climb steps per search")
    args = parser.parse_args(argv)
    print(
        "| run | checkpoints x images | global: stability / trust mean (min) | own PCA trust mean (min) "
        "| first, middle, last: own PCA / best linear found / t-SNE trust | stability-searched map: stability / trust | joint search: stability / trust |"
    )
    print("|---|---|---|---|---|---|---|")
    for folder in args.runs:
        emb = load_run(folder)
        r = limits(emb, args.iterations)
        print(
            f"| {folder.name} | {len(emb)} x {len(emb[0])} "
            f"| {r['global_stability']:.2f} / {r['global_trust_mean']:.3f} ({r['global_trust_min']:.3f}) "
            f"| {r['own_pca_trust_mean']:.3f} ({r['own_pca_trust_min']:.3f}) "
            f"| {r['own_pca_trust_probe']:.3f} / {r['best_linear_trust']:.3f} / {r['tsne_trust']:.3f} "
            f"| {r['searched_stability']:.2f} / {r['searched_stability_trust']:.3f} "
            f"| {r['joint_stability']:.2f} / {r['joint_trust']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
