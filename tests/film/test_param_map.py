"""The learned global map (workflow_scripts/embedding_film/film/param_map.py) on a tiny synthetic film: shapes, the file format,
determinism (in one process and across two) and that placing a new checkpoint changes no fitted frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedding_film.film.common import UserError
from embedding_film.film.layout import load_layout as load
from embedding_film.film.layout import save_layout as save
from embedding_film.film.param_map import DEFAULTS, fit, fit_and_place, log_z, place, resolve

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "iterations": 40,
    "hidden": 16,
    "batch": 64,
    "negatives": 32,
    "movement": 1.0,
    "movement_batch": 64,
    "perplexity": 5.0,
    "pca_dims": 6,
}


def film(steps: int = 4, images: int = 40, dims: int = 10, seed: int = 0) -> list[np.ndarray]:
    """Three classes drifting apart over the checkpoints (float32 [images, dims] each)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dims)) * 3
    base = rng.normal(size=(images, dims))
    labels = np.arange(images) % 3
    return [(base * (1 - 0.2 * t) + t * centres[labels] / steps).astype(np.float32) for t in range(steps)]


@pytest.fixture(scope="module")
def fitted() -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    embeddings = film()
    return embeddings, fit(embeddings, TINY, seed=0, steps=[0, 10, 20, 30])


def test_shapes_and_keys(fitted: tuple[list[np.ndarray], dict[str, np.ndarray]]) -> None:
    embeddings, model = fitted
    frame = place(model, embeddings[0])
    assert frame.shape == (40, 2) and frame.dtype == np.float32 and np.isfinite(frame).all()
    assert model["components"].shape == (6, 10) and model["mean"].shape == (10,)
    assert model["w0"].shape == (16, 6) and model["w2"].shape == (2, 16)
    assert list(model["fit_steps"]) == [0, 10, 20, 30]
    assert json.loads(str(model["settings"]))["movement"] == 1.0
    assert all(v.dtype != object for v in model.values())


def test_save_load_round_trip_without_pickle(
    fitted: tuple[list[np.ndarray], dict[str, np.ndarray]], tmp_path: Path
) -> None:
    embeddings, model = fitted
    save(tmp_path / "map.npz", model)
    loaded = load(tmp_path / "map.npz")
    assert loaded.keys() == model.keys()
    np.testing.assert_array_equal(place(loaded, embeddings[2]), place(model, embeddings[2]))


def test_fit_is_deterministic_in_one_process(fitted: tuple[list[np.ndarray], dict[str, np.ndarray]]) -> None:
    embeddings, model = fitted
    again = fit(embeddings, TINY, seed=0, steps=[0, 10, 20, 30])
    assert all(np.array_equal(model[k], again[k]) for k in model)
    other = fit(embeddings, TINY, seed=1, steps=[0, 10, 20, 30])
    assert not np.array_equal(model["w0"], other["w0"])


@pytest.mark.parametrize("movement", [1.0, 0.0])
def test_fit_and_place_fits_the_same_map_and_places_each_checkpoint_as_place_does(movement: float) -> None:
    """The layout job places the fitted checkpoints from the rows the fit reduced for its movement term (or,
    without that term, reads them again): the same model and the same frame bytes as fit, then place."""
    embeddings, settings = film(), {**TINY, "movement": movement}
    model = fit(embeddings, settings, seed=0)
    again, frames = fit_and_place(embeddings, settings, seed=0)
    assert again.keys() == model.keys() and all(np.array_equal(model[k], again[k]) for k in model)
    assert len(frames) == len(embeddings)
    assert all(np.array_equal(frame, place(model, e)) for frame, e in zip(frames, embeddings))


def test_fit_is_byte_identical_across_processes(
    fitted: tuple[list[np.ndarray], dict[str, np.ndarray]], tmp_path: Path
) -> None:
    embeddings, model = fitted
    code = (
        "import sys, numpy as np; sys.path[:0] = [sys.argv[1] + '/workflow_scripts', sys.argv[1] + '/tests/film'];"
        "from test_param_map import film, TINY; from embedding_film.film.param_map import fit, place; from embedding_film.film.layout import save_layout as save;"
        "e = film(); m = fit(e, TINY, seed=0, steps=[0, 10, 20, 30]); save(sys.argv[2], m);"
        "np.save(sys.argv[3], np.stack([place(m, x) for x in e]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(REPO), str(tmp_path / "map.npz"), str(tmp_path / "frames.npy")], check=True
    )
    other = load(tmp_path / "map.npz")
    assert other.keys() == model.keys() and all(np.array_equal(model[k], other[k]) for k in model)
    np.testing.assert_array_equal(np.load(tmp_path / "frames.npy"), np.stack([place(model, x) for x in embeddings]))


def test_placing_a_new_checkpoint_changes_no_fitted_frame(
    fitted: tuple[list[np.ndarray], dict[str, np.ndarray]],
) -> None:
    embeddings, model = fitted
    before = [place(model, e) for e in embeddings]
    new = film(steps=5)[4]  # a later checkpoint the map never saw
    placed = place(model, new)
    assert placed.shape == (40, 2) and np.isfinite(placed).all()
    after = [place(model, e) for e in embeddings]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_an_image_that_does_not_move_does_not_move_on_screen(
    fitted: tuple[list[np.ndarray], dict[str, np.ndarray]],
) -> None:
    embeddings, model = fitted
    moved = embeddings[1].copy()
    moved[5:] = embeddings[2][5:]  # images 0-4 keep their step-10 embeddings
    np.testing.assert_array_equal(place(model, moved)[:5], place(model, embeddings[1])[:5])


def test_fit_stops_when_the_objective_stops_improving() -> None:
    """With tol > 0 the fit ends once the objective's 50-iteration means stop improving, after `anneal` more
    iterations; with tol 0 it runs every iteration."""
    embeddings = film()
    settings = {**TINY, "iterations": 3000, "early_iterations": 50, "learning_rate": 0.01}
    stopped = fit(embeddings, {**settings, "tol": 0.05, "patience": 100, "anneal": 50}, seed=0)
    full = fit(embeddings, {**settings, "tol": 0.0, "iterations": 400}, seed=0)
    last = int(stopped["loss_trace"][-1, 0])
    assert 50 + 100 + 50 <= last < 2999
    assert int(full["loss_trace"][-1, 0]) == 399
    assert np.isfinite(place(stopped, embeddings[0])).all()


@pytest.mark.parametrize("offset", [0.0, 40.0])
def test_log_z_has_the_pairwise_formulas_value_and_gradient(offset: float) -> None:
    """The normaliser's estimate (its own backward pass) against autograd of the pairwise formula in float64,
    also far from the origin (the squared norms' expansion is centred first)."""
    import torch

    y = torch.from_numpy(np.random.default_rng(0).normal(scale=5, size=(300, 2)) + offset)
    fast = y.float().requires_grad_()
    value = log_z(fast)
    value.backward()
    exact = y.clone().requires_grad_()
    m = len(y)
    d2 = ((exact[:, None, :] - exact[None, :, :]) ** 2).sum(dim=2)
    reference = torch.log(((1 / (1 + d2)).sum() - m) / (m * (m - 1)))
    reference.backward()
    assert float(value.detach()) == pytest.approx(float(reference.detach()), rel=1e-5)
    np.testing.assert_allclose(
        fast.grad.numpy(), exact.grad.numpy(), rtol=1e-3, atol=1e-4 * float(exact.grad.abs().max())
    )


def test_the_maps_optimiser_steps_as_torchs_adam_bit_for_bit() -> None:
    """_Adam against torch.optim.Adam: the same parameters (a matrix and a scalar, as the map has), the same
    gradients, a learning rate that changes every step (the plateau rule's anneal), bit for bit."""
    import torch

    from embedding_film.film.param_map import _Adam

    rng = np.random.default_rng(0)
    start = [torch.from_numpy(rng.normal(size=(8, 5)).astype(np.float32)), torch.tensor(0.3)]
    ours = [torch.nn.Parameter(p.clone()) for p in start]
    theirs = [torch.nn.Parameter(p.clone()) for p in start]
    mine, reference = _Adam(ours), torch.optim.Adam(theirs, lr=1.0)
    for step in range(30):
        lr = 0.01 * (1 - step / 40)
        grads = [torch.from_numpy(rng.normal(size=p.shape).astype(np.float32)) for p in start]
        for params, optimiser in ((ours, mine), (theirs, reference)):
            optimiser.zero_grad()
            for p, g in zip(params, grads):
                p.grad = g.clone()
        for group in reference.param_groups:
            group["lr"] = lr
        mine.step(lr)
        reference.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert not torch.equal(ours[0], start[0])


def test_plateau_rule() -> None:
    """_Plateau on a made-up objective: it improves for 300 iterations, then stays flat."""
    from embedding_film.film.param_map import _Plateau

    plateau = _Plateau(tol=0.01, patience=100, anneal=40)
    factors = []
    for it in range(2000):
        factors.append(plateau.step(it, -min(it, 300) / 100.0, watching=True))
        if plateau.done(it):
            break
    # the last improving window ends at iteration 349; 100 flat iterations later the anneal starts
    assert plateau.stop_at == 449 and it == 489
    assert factors[:450] == [1.0] * 450 and factors[-1] == 0.0 and factors[460] == pytest.approx(1 - 11 / 40)


def test_affinities_are_openTSNEs_exact_ones() -> None:
    from openTSNE.affinity import PerplexityBasedNN

    from embedding_film.film.param_map import _affinities

    rows = np.random.default_rng(5).normal(size=(300, 8)).astype(np.float32)
    P = PerplexityBasedNN(
        rows, perplexity=30.0, method="exact", random_state=0, knn_kwargs={"algorithm": "brute"}, verbose=False
    ).P.tocoo()
    off = P.row != P.col
    i, j, p = _affinities(rows, 30.0, seed=0, threads=2)
    assert np.array_equal(i, P.row[off]) and np.array_equal(j, P.col[off])
    assert np.array_equal(p, P.data[off] / P.data[off].astype(np.float64).sum())


def test_settings_are_checked() -> None:
    assert resolve(None) == DEFAULTS
    with pytest.raises(UserError, match="unknown"):
        resolve({"perplexitty": 30})


WARM = """
import os, sys, threading
import tqdm
tqdm.tqdm.monitor_interval = 0  # as in the worker
from embedding_film.adapters import layout
layout.warm()  # the worker's start
started = int("torch" in sys.modules)
key = layout.warm_ahead_key(dict(os.environ))  # the run's first job: the worker asks what to warm up ahead
if key:
    layout.warm_ahead()
print(started, key, int("torch" in sys.modules), int("torch._dynamo" in sys.modules), threading.active_count(),
      layout.warm_ahead_key(dict(os.environ)), int("pynndescent" in sys.modules))
"""


@pytest.mark.parametrize("flag", ["1", "0"])
def test_a_worker_warms_the_learned_map_only_for_films_that_may_need_it(flag: str) -> None:
    """A worker's start does not import torch (on a few cores that would slow the run's first jobs); for a run
    with FILM_WARM_LEARNED_MAP=1 the layout adapter asks for the map's warm-up ahead of its job (its first
    training steps: torch and autograd, off the layout job, a barrier of the film), once; the warm-up starts no
    thread (the worker forks) and imports no torch._dynamo (the map's optimiser is no torch.optim one, whose
    constructor would) and no pynndescent (openTSNE would, to choose a neighbour index, unless handed one)."""
    env = {
        **os.environ,
        "FILM_WARM_LEARNED_MAP": flag,
        "PYTHONPATH": str(Path(__file__).parents[2] / "workflow_scripts"),
    }
    out = subprocess.run(
        [sys.executable, "-c", WARM], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == (
        ["0", "learned", "map", "1", "0", "1", "None", "0"]
        if flag == "1"
        else ["0", "None", "0", "0", "1", "None", "0"]
    )
