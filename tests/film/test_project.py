"""Projection and alignment on tiny arrays."""

import numpy as np
import pytest

from embedding_film.film.camera import axis_limits
from embedding_film.film.common import load_npy, save_npy
from embedding_film.film.projection import (
    fit_basis,
    fit_pca_layout,
    generalised_procrustes,
    pca_2d,
    pca_project,
    procrustes_align,
    project_all,
    project_step,
)


def rotation(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


@pytest.fixture
def shape() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(50, 2)) * [3.0, 1.0]


def test_procrustes_undoes_rotation_scale_translation(shape: np.ndarray) -> None:
    moved = 2.5 * shape @ rotation(1.1) + [4.0, -7.0]
    aligned, disparity = procrustes_align(moved, shape)
    np.testing.assert_allclose(aligned, shape, atol=1e-9)
    assert disparity == pytest.approx(0.0, abs=1e-12)


def test_procrustes_undoes_a_pca_sign_flip(shape: np.ndarray) -> None:
    flipped = shape * [-1.0, 1.0]  # what a PCA axis changing sign does to a frame
    aligned, _ = procrustes_align(flipped, shape)
    np.testing.assert_allclose(aligned, shape, atol=1e-9)


def test_procrustes_keeps_the_reference_scale(shape: np.ndarray) -> None:
    noisy = 0.1 * shape + np.random.default_rng(1).normal(scale=0.01, size=shape.shape)
    aligned, disparity = procrustes_align(noisy, shape)
    assert np.linalg.norm(aligned - aligned.mean(0)) == pytest.approx(np.linalg.norm(shape - shape.mean(0)), rel=0.05)
    assert 0 < disparity < 0.05


def test_pca_is_deterministic_and_two_dimensional() -> None:
    x = np.random.default_rng(2).normal(size=(40, 16)).astype(np.float32)
    a, b = pca_2d(x), pca_2d(x.copy())
    assert a.shape == (40, 2)
    np.testing.assert_array_equal(a, b)


def test_shared_basis_projects_every_checkpoint_the_same_way() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 8))
    mean, components = fit_basis([x, x + 1e-3])
    assert components.shape == (2, 8)
    np.testing.assert_allclose(pca_project(x, mean, components), pca_project(x, mean, components))


def test_gpa_aligns_all_frames_to_a_common_shape(shape: np.ndarray) -> None:
    frames = [shape, 2 * shape @ rotation(0.5) + 3, 0.5 * shape @ rotation(-2.0) * [1, -1]]
    aligned = generalised_procrustes(frames)
    for frame in aligned[1:]:
        np.testing.assert_allclose(frame, aligned[0], atol=1e-6)


def test_axis_limits_are_square_and_contain_the_anchor(shape: np.ndarray) -> None:
    limits = axis_limits([shape], margin=1.2)
    (x0, x1), (y0, y1) = limits["x"], limits["y"]
    assert x1 - x0 == pytest.approx(y1 - y0)
    inner = shape[(np.abs(shape) < np.percentile(np.abs(shape), 99, axis=0)).all(axis=1)]
    assert (inner[:, 0] > x0).all() and (inner[:, 0] < x1).all()


def _embeddings(tmp_path, n_steps: int = 5) -> list[str]:
    rng = np.random.default_rng(4)
    base = rng.normal(size=(60, 12))
    paths = []
    for s in range(n_steps):
        drift = base + 0.2 * s * rng.normal(size=base.shape)
        path = tmp_path / f"emb{s}.npy"
        save_npy(path, drift.astype(np.float32))
        paths.append(str(path))
    return paths


def _jobs(align: str, embeddings: list[np.ndarray], tmp_path) -> list[np.ndarray]:
    """Every checkpoint's projection as the workflow's jobs make it: one job per checkpoint, each reading the
    layout or its anchor back from the file an earlier job wrote."""
    steps = list(range(len(embeddings)))
    layout = fit_pca_layout(align, embeddings, steps) if align in ("global", "gpa") else None
    written: list[str] = []
    for step, emb in enumerate(embeddings):
        anchor = None
        if step > 0 and align in ("first", "previous"):
            anchor = load_npy(written[0] if align == "first" else written[-1])
        path = str(tmp_path / f"{align}{step}.npy")
        save_npy(path, project_step(align, emb, layout, anchor, step))
        written.append(path)
    return [load_npy(p) for p in written]


@pytest.mark.parametrize("align", ["first", "previous", "global", "gpa"])
def test_one_job_per_checkpoint_equals_projecting_the_whole_film(tmp_path, align: str) -> None:
    """Per-checkpoint jobs (through files) give the projections of the whole film computed at once."""
    embeddings = [load_npy(p) for p in _embeddings(tmp_path)]
    whole = project_all(align, embeddings)
    for job, frame in zip(_jobs(align, embeddings, tmp_path), whole):
        np.testing.assert_allclose(job, frame, atol=1e-4)


def test_first_alignment_never_flips_between_frames(tmp_path) -> None:
    emb = load_npy(_embeddings(tmp_path)[0])
    # the same embeddings with one coordinate negated: PCA may flip an axis, alignment must undo it
    first = project_step("first", emb)
    flipped = project_step("first", -emb, anchor=first)
    np.testing.assert_allclose(flipped, first, atol=1e-4)
