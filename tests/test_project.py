"""Projection and alignment on tiny arrays."""

import numpy as np
import pytest

from workflow_scripts.common import load_npy, save_npy
from workflow_scripts.project import (
    axis_limits,
    fit_basis,
    generalised_procrustes,
    pca_2d,
    pca_project,
    procrustes_align,
    project_chunk,
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


@pytest.mark.parametrize("align", ["first", "previous"])
def test_chunked_projection_equals_one_chunk(tmp_path, align: str) -> None:
    """Splitting the checkpoints into chunks (separate jobs) gives byte-identical projections."""
    emb = _embeddings(tmp_path)
    whole = [str(tmp_path / f"whole{s}.npy") for s in range(5)]
    project_chunk(align, emb, whole)
    parts = [str(tmp_path / f"part{s}.npy") for s in range(5)]
    project_chunk(align, emb[:2], parts[:2])
    anchor = parts[0] if align == "first" else parts[1]
    project_chunk(align, emb[2:], parts[2:], anchor=anchor)
    for a, b in zip(whole, parts):
        np.testing.assert_array_equal(load_npy(a), load_npy(b))


def test_first_alignment_never_flips_between_frames(tmp_path) -> None:
    emb = _embeddings(tmp_path)
    # the same embeddings with one coordinate negated: PCA may flip an axis, alignment must undo it
    flipped = str(tmp_path / "flipped.npy")
    save_npy(flipped, -load_npy(emb[0]))
    outs = [str(tmp_path / "p0.npy"), str(tmp_path / "p1.npy")]
    project_chunk("first", [emb[0], flipped], outs)
    np.testing.assert_allclose(load_npy(outs[1]), load_npy(outs[0]), atol=1e-4)
