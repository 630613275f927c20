"""Film metrics on tiny, hand-checkable data."""

import math

import numpy as np
import pytest

from embedding_film.film.metrics import (
    film_movements,
    knn_accuracy,
    neighbour_preservation,
    step_metrics,
    temporal_stability,
    trustworthiness,
)


def clusters(n_per: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0]], dtype=float)
    x = np.concatenate([c + rng.normal(scale=0.5, size=(n_per, 4)) for c in centres])
    return x, np.repeat(np.arange(3), n_per)


def test_knn_accuracy_is_perfect_on_separated_clusters_and_chance_on_noise() -> None:
    x, y = clusters()
    assert knn_accuracy(x, y, 5) == 1.0
    noise = np.random.default_rng(1).normal(size=(300, 4))
    labels = np.random.default_rng(2).integers(0, 3, 300)
    assert knn_accuracy(noise, labels, 5) < 0.5


def test_neighbour_preservation_is_one_for_an_isometry() -> None:
    x = np.random.default_rng(3).normal(size=(50, 2))
    assert neighbour_preservation(x, 3 * x + 1, 5) == pytest.approx(1.0)


@pytest.mark.parametrize(("n", "d", "k"), [(30, 3, 2), (300, 20, 10), (600, 64, 12)])
def test_trustworthiness_is_scikit_learns(n: int, d: int, k: int) -> None:
    from sklearn.manifold import trustworthiness as scikit_learns

    rng = np.random.default_rng(n)
    high = rng.normal(size=(n, d))
    for low in (high[:, :2], high[:, :2] + rng.normal(scale=0.5, size=(n, 2)), rng.normal(size=(n, 2))):
        assert trustworthiness(high, low, k) == scikit_learns(high, low, n_neighbors=k)


def test_film_movements_pool_every_pair_in_order_whatever_the_threads() -> None:
    rng = np.random.default_rng(4)
    frames = [rng.normal(size=(30, 5)) for _ in range(5)]
    pooled = np.concatenate([np.linalg.norm(b - a, axis=1) for a, b in zip(frames[:-1], frames[1:])])
    for threads in (1, 2, 3):
        assert np.array_equal(film_movements(frames, threads), pooled), threads
    assert film_movements(frames[:1]).shape == (0,)
    screen = [f[:, :2] for f in frames]
    assert temporal_stability(frames, screen, film_movements(frames)) == temporal_stability(frames, screen)


def test_step_metrics_reports_head_accuracy_and_nan_without_head() -> None:
    x, y = clusters()
    probs = np.eye(3)[y]
    probs[0] = [0, 1, 0]  # one wrong prediction
    m = step_metrics(x, x[:, :2], y, probs, None, k=5)
    assert m["head_accuracy"] == pytest.approx(1 - 1 / len(y))
    assert m["silhouette"] > 0.8 and m["trustworthiness"] > 0.9
    assert math.isnan(m["disparity_previous"])
    m2 = step_metrics(x, x[:, :2], y, np.zeros((len(y), 0)), x[:, :2] + 1.0, k=5)
    assert math.isnan(m2["head_accuracy"])
    assert m2["displacement_previous"] == pytest.approx(np.sqrt(2))
    assert m2["disparity_previous"] == pytest.approx(0.0, abs=1e-12)


def test_temporal_stability_rewards_projections_that_move_with_the_embeddings() -> None:
    rng = np.random.default_rng(4)
    emb = [rng.normal(size=(80, 6))]
    for _ in range(4):
        step = np.zeros((80, 6))
        step[:, 0] = rng.exponential(size=80)  # points move by different amounts along one axis
        emb.append(emb[-1] + step)
    faithful = [e[:, :2] for e in emb]
    scrambled = [rng.normal(size=(80, 2)) for _ in emb]
    good, bad = temporal_stability(emb, faithful), temporal_stability(emb, scrambled)
    assert good["stability_spearman"] > 0.95 and good["movement_stress"] < 0.05
    assert bad["stability_spearman"] < 0.3
