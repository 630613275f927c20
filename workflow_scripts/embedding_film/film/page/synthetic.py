"""A synthetic film from random arrays (no training): for the tests and benchmarks/film_html.py."""

from __future__ import annotations

import numpy as np

from embedding_film.film.page import FilmData
from embedding_film.film.page.compare import CompareData, fraction_clock
from embedding_film.film.page.data_map import DataMapData


def synthetic_film(
    n_images: int,
    n_steps: int,
    *,
    n_classes: int = 10,
    thumb: int = 32,
    seed: int = 0,
    camera: bool = False,
    image_seed: int | None = None,
) -> FilmData:
    """Clusters that form over the checkpoints, blocky random thumbnails, plausible scores and metrics.

    camera=True adds per-step limits that zoom in as the clusters tighten (zoom up to about x2). With
    `image_seed`, labels and thumbnails come from that seed alone: films of other seeds and lengths share
    their images (as runs evaluated on one eval set do).
    """
    rng = np.random.default_rng(seed)
    images = rng if image_seed is None else np.random.default_rng(image_seed)
    labels = images.integers(0, n_classes, n_images)
    centres = rng.normal(0, 4, (n_classes, 2))
    start = rng.normal(0, 3, (n_images, 2))
    progress = np.linspace(0, 1, n_steps)[:, None, None]
    jitter = (
        rng.normal(0, 0.15, (n_steps, n_images, 2)).cumsum(axis=0) / np.sqrt(np.arange(1, n_steps + 1))[:, None, None]
    )
    projections = ((1 - progress) * start + progress * centres[labels] + jitter).astype(np.float32)
    blocks = images.integers(0, 256, (n_images, 8, 1, 8, 1, 3), dtype=np.uint8)
    f = thumb // 8
    thumbnails = np.broadcast_to(blocks, (n_images, 8, f, 8, f, 3)).reshape(n_images, 8 * f, 8 * f, 3)
    ood = rng.beta(5, 2, (n_steps, n_images))
    probs = np.exp(rng.standard_normal((n_steps, n_images, n_classes), dtype=np.float32))
    probs[:, np.arange(n_images), labels] *= np.exp(4 * progress[:, :, 0]).astype(np.float32)
    probs /= probs.sum(axis=2, keepdims=True)
    issues = [np.argsort(probs[s, np.arange(n_images), labels])[: max(1, n_images // 20)] for s in range(n_steps)]
    steps = np.arange(n_steps) * 5
    acc = (probs.argmax(axis=2) == labels).mean(axis=1)
    limits = zoom = None
    if camera:
        half = np.linspace(9, 4.5, n_steps)
        limits = np.stack([-half, half, -half, half], axis=1)
        zoom = half[0] / half
    return FilmData(
        steps=steps,
        projections=projections,
        labels=labels,
        class_names=[f"class {k}" for k in range(n_classes)],
        thumbnails=thumbnails,
        ids=[f"test/{i}" for i in range(n_images)],
        ood=ood,
        probs=probs,
        label_issues=issues,
        metrics={
            "head_accuracy": acc,
            "knn_accuracy": np.clip(acc + 0.05, 0, 1),
            "trustworthiness": np.linspace(0.8, 0.95, n_steps),
            "silhouette": np.linspace(-0.1, 0.4, n_steps),
        },
        loss_steps=np.arange(0, steps[-1] + 1, 1, dtype=np.float64),
        loss_values=2.3 * np.exp(-np.arange(0, steps[-1] + 1) / max(steps[-1], 1) * 3) + 0.05,
        top_k=8,
        limits=limits,
        zoom=zoom,
        layout_note="synthetic: random clusters forming" + ("; camera zooms in" if camera else ""),
    )


def synthetic_comparison(
    n_images: int,
    n_steps: list[int],
    *,
    thumb: int = 16,
    seed: int = 0,
    step_every: list[int] | None = None,
    shared_layout: bool = False,
) -> CompareData:
    """Runs of different lengths on the same synthetic images, on a clock of fractions of training.

    Run r has n_steps[r] checkpoints, every step_every[r] steps (default 5), and its own dynamics (seed + r).
    """
    films = []
    for r, count in enumerate(n_steps):
        film = synthetic_film(n_images, count, thumb=thumb, seed=seed + 1 + r, image_seed=seed)
        every = (step_every or [5] * len(n_steps))[r]
        film.steps = np.arange(count) * every
        film.loss_steps = np.arange(0, film.steps[-1] + 1, dtype=np.float64)
        film.loss_values = (2.3 - 0.2 * r) * np.exp(-film.loss_steps / max(film.steps[-1], 1) * 3) + 0.05
        films.append(film)
    ticks, shown = fraction_clock([f.steps.tolist() for f in films])
    return CompareData(
        runs=[f"run{r}" for r in range(len(films))],
        films=films,
        ticks=ticks,
        shown=shown,
        clock="the same fraction of each run's training",
        shared_layout=shared_layout,
        layout_note="synthetic: each run its own random layout"
        if not shared_layout
        else "synthetic: one shared layout",
    )


def synthetic_data_map(
    n_images: int, steps: np.ndarray, *, n_classes: int = 10, thumb: int = 32, seed: int = 0, noise: float = 0.1
) -> DataMapData:
    """Training images learned over the checkpoints `steps`, a share `noise` of them with a wrong given label
    (never learned: low confidence), scored by film.dynamics as the workflow scores them."""
    from embedding_film.film.dynamics import REGIONS, ranks, running_trace, scores

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_images)
    noisy = rng.random(n_images) < noise
    given = np.where(noisy, (truth + rng.integers(1, n_classes, n_images)) % n_classes, truth)
    progress = np.linspace(0.1, 1, len(steps))[:, None, None]
    speed = rng.uniform(1, 6, n_images)[None, :, None]  # some learned early, some late
    logits = rng.standard_normal((len(steps), n_images, n_classes))
    logits[:, np.arange(n_images), truth] += (speed * progress)[:, :, 0]
    probs = np.exp(logits)
    probs /= probs.sum(axis=2, keepdims=True)
    s = scores(probs.astype(np.float32), given, steps)
    trace = running_trace(probs.astype(np.float32), given)
    blocks = rng.integers(0, 256, (n_images, 8, 1, 8, 1, 3), dtype=np.uint8)
    f = thumb // 8
    return DataMapData(
        steps=np.asarray(steps, np.int64),
        confidence=trace["confidence"],
        variability=trace["variability"],
        predicted=trace["predicted"].astype(np.int64),
        labels=given,
        ids=[f"train/{i}" for i in range(n_images)],
        thumbnails=np.broadcast_to(blocks, (n_images, 8, f, 8, f, 3)).reshape(n_images, 8 * f, 8 * f, 3),
        label_error_score=s["label_error_score"],
        label_error_rank=ranks(s["label_error_score"]),
        region=np.array([REGIONS.index(r) for r in s["region"]]),
        noisy=noisy,
        original_labels=truth,
        noise_on=bool(noisy.any()),
    )
