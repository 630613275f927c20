"""One layout for the whole film: pooled t-SNE, its reference variant, AlignedUMAP, PCA, and auto's choice.
Small synthetic films (a few checkpoints of ~60 points whose classes separate over time), short optimisations."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from embedding_film.film.common import UserError, per_checkpoint
from embedding_film.film.layout import (
    choose,
    film_quality,
    fit_auto,
    fit_layout,
    load_layout,
    place,
    resolve_settings,
    save_layout,
)

FAST = {"tsne": {"perplexity": 15, "early_exaggeration_iter": 50, "n_iter": 100, "transform_iter": 50, "pca_dims": 8}}
STEPS = [0, 10, 20, 30]


def synthetic_film(steps: int = 4, n: int = 60, d: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Checkpoints of n points in d dimensions: 3 classes that separate as 'training' goes on."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 3
    labels = np.arange(n) % 3
    base = rng.normal(size=(n, d))
    return [
        ((t / (steps - 1)) * centres[labels] + base + 0.05 * rng.normal(size=(n, d))).astype(np.float32)
        for t in range(steps)
    ]


@pytest.fixture(scope="module")
def film() -> list[np.ndarray]:
    return synthetic_film()


@pytest.fixture(scope="module")
def tsne(film: list[np.ndarray]) -> dict[str, np.ndarray]:
    return fit_layout(film, STEPS, "tsne", FAST, seed=0)


def test_pooled_tsne_gives_every_checkpoint_a_frame(tsne: dict[str, np.ndarray]) -> None:
    assert tsne["coords"].shape == (4, 60, 2) and tsne["coords"].dtype == np.float32
    assert np.isfinite(tsne["coords"]).all()
    assert list(tsne["steps"]) == STEPS and list(tsne["fit_steps"]) == STEPS
    assert tsne["reference_rows"].shape == (240, 8)  # every pooled row, reduced to pca_dims
    assert str(tsne["method"]) == "tsne"
    assert json.loads(str(tsne["settings"]))["perplexity"] == 15


def test_same_seed_gives_identical_bytes(film: list[np.ndarray], tsne: dict[str, np.ndarray]) -> None:
    again = fit_layout(film, STEPS, "tsne", FAST, seed=0)
    assert again["coords"].tobytes() == tsne["coords"].tobytes()
    other = fit_layout(film, STEPS, "tsne", {"tsne": {**FAST["tsne"], "initialization": "random"}}, seed=1)
    assert other["coords"].tobytes() != tsne["coords"].tobytes()


def test_same_seed_gives_identical_bytes_in_another_process(tmp_path: Path, tsne: dict[str, np.ndarray]) -> None:
    script = (
        "import sys; sys.path.insert(0, sys.argv[1] + '/workflow_scripts'); sys.path[:0] = [sys.argv[1] + '/tests', sys.argv[1] + '/tests/film']\n"
        "from test_layout import synthetic_film, FAST, STEPS\n"
        "from embedding_film.film.layout import fit_layout, save_layout\n"
        "save_layout(sys.argv[2], fit_layout(synthetic_film(), STEPS, 'tsne', FAST, seed=0))\n"
    )
    out = tmp_path / "layout.npz"
    subprocess.run([sys.executable, "-c", script, str(REPO), str(out)], check=True, timeout=300)
    assert load_layout(out)["coords"].tobytes() == tsne["coords"].tobytes()


def test_layout_file_round_trips_without_pickle(tmp_path: Path, tsne: dict[str, np.ndarray]) -> None:
    save_layout(tmp_path / "layout.npz", tsne)
    back = load_layout(tmp_path / "layout.npz")  # np.load(allow_pickle=False) inside
    assert set(back) == set(tsne)
    for key in tsne:
        assert back[key].dtype != object
        np.testing.assert_array_equal(back[key], tsne[key])


def test_reference_variant_appending_a_checkpoint_changes_no_old_frame(tmp_path: Path) -> None:
    film = synthetic_film(steps=5)
    reference = [0, 40]
    before = fit_layout(film[:4], [0, 10, 20, 40], "tsne", FAST, reference_steps=reference)
    after = fit_layout(film, [0, 10, 20, 40, 50], "tsne", FAST, reference_steps=reference)
    np.testing.assert_array_equal(after["coords"][:4], before["coords"])
    assert list(after["fit_steps"]) == reference
    # a separate per-checkpoint job: only the saved file and that checkpoint's embeddings
    save_layout(tmp_path / "layout.npz", before)
    placed = place(load_layout(tmp_path / "layout.npz"), 50, film[4])
    assert placed.dtype == np.float32 and placed.shape == (60, 2)
    np.testing.assert_array_equal(placed, after["coords"][4])


def test_place_reads_held_checkpoints_and_places_others_near_their_neighbours(
    tsne: dict[str, np.ndarray], film: list[np.ndarray]
) -> None:
    np.testing.assert_array_equal(place(tsne, 20, film[2]), tsne["coords"][2])
    # an unseen copy of the last checkpoint lands where that checkpoint's points are
    placed = place(tsne, 99, film[3])
    typical = np.linalg.norm(np.diff(tsne["coords"][3], axis=0), axis=1).mean()
    assert np.linalg.norm(placed - tsne["coords"][3], axis=1).mean() < typical


def test_subsampled_fit_places_the_rest(film: list[np.ndarray]) -> None:
    layout = fit_layout(film, STEPS, "tsne", {"tsne": {**FAST["tsne"], "max_fit_rows": 100}})
    assert len(layout["reference_rows"]) == 100
    assert layout["coords"].shape == (4, 60, 2) and np.isfinite(layout["coords"]).all()


def test_pca_layout_is_the_global_pca_film(film: list[np.ndarray]) -> None:
    from embedding_film.film.projection import pca_project, project_all

    layout = fit_layout(film, STEPS, "pca")
    for mine, theirs in zip(layout["coords"], project_all("global", film)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-5)
    new = film[3] + 1.0  # a checkpoint the basis was not fitted on: projected on it
    np.testing.assert_allclose(
        place(layout, 40, new), pca_project(new, layout["mean"], layout["components"]), rtol=1e-6
    )


def test_checkpoints_placed_on_several_threads_get_the_bits_of_one_thread() -> None:
    """The layout job places (and projects) its checkpoints on every core at once (per_checkpoint): each frame is
    the same bytes as placed alone, in the checkpoints' order, whatever the threads."""
    from embedding_film.film import param_map

    film = synthetic_film(steps=6, n=300, d=48)
    model = param_map.fit(film, {"iterations": 20}, seed=0)
    alone = [param_map.place(model, e) for e in film]
    for threads in (1, 2, 3):
        together = per_checkpoint(lambda e: param_map.place(model, e), film, "placing", threads)
        assert len(together) == len(film) and all(np.array_equal(a, b) for a, b in zip(alone, together)), threads


class FakeAlignedUMAP:
    """Records what layout.py hands to umap.AlignedUMAP; 'embeds' each checkpoint by its first two columns."""

    seen: dict = {}

    def __init__(self, **kwargs: object) -> None:
        FakeAlignedUMAP.seen = {"init": kwargs}

    def fit(self, x: list[np.ndarray], relations: list[dict[int, int]]) -> FakeAlignedUMAP:
        FakeAlignedUMAP.seen.update(x=x, relations=relations)
        self.embeddings_ = [e[:, :2] * 1.0 for e in x]
        return self


def test_aligned_umap_is_called_with_identity_relations(
    film: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(AlignedUMAP=FakeAlignedUMAP))
    layout = fit_layout(film, STEPS, "umap", {"umap": {"n_neighbors": 10, "alignment_regularisation": 0.3}}, seed=7)
    seen = FakeAlignedUMAP.seen
    assert len(seen["x"]) == 4 and len(seen["relations"]) == 3
    assert all(r == {i: i for i in range(60)} for r in seen["relations"])
    assert seen["init"]["random_state"] == 7 and seen["init"]["n_neighbors"] == 10
    assert seen["init"]["alignment_regularisation"] == 0.3
    np.testing.assert_array_equal(layout["coords"], np.stack([f[:, :2] for f in film]))
    with pytest.raises(UserError, match="umap"):
        place(layout, 50, film[0])  # AlignedUMAP cannot place a checkpoint it was not fitted on
    with pytest.raises(UserError, match="reference"):
        fit_layout(film, STEPS, "umap", reference_steps=[0])


def test_aligned_umap_really_fits_and_is_deterministic(film: list[np.ndarray]) -> None:
    settings = {"umap": {"n_neighbors": 10, "n_epochs": 30}}
    a, b = fit_layout(film, STEPS, "umap", settings), fit_layout(film, STEPS, "umap", settings)
    assert a["coords"].shape == (4, 60, 2) and np.isfinite(a["coords"]).all()
    assert a["coords"].tobytes() == b["coords"].tobytes()


def test_choose_keeps_the_first_listed_layout_that_meets_every_target() -> None:
    targets = {"min_stability": 0.90, "min_trust_mean": 0.95, "min_trust_worst": 0.85}

    def sc(stab: float, mean: float, worst: float) -> dict[str, float]:
        return {"stability_spearman": stab, "trust_mean": mean, "trust_worst": worst}

    both = choose({"pca": sc(0.92, 0.96, 0.90), "tsne": sc(0.95, 0.99, 0.97)}, targets)
    assert both["method"] == "pca" and both["met"] and "tsne" not in both["reason"]
    one = choose({"pca": sc(0.96, 0.90, 0.80), "tsne": sc(0.91, 0.98, 0.90)}, targets)
    assert one["method"] == "tsne" and one["met"] and "pca misses trustworthiness mean by 0.050" in one["reason"]
    none = choose({"pca": sc(0.85, 0.90, 0.87), "tsne": sc(0.89, 0.98, 0.90)}, targets)
    assert none["method"] == "tsne" and not none["met"] and "no candidate" in none["reason"]
    tie = choose({"tsne": sc(0.88, 0.99, 0.95), "pca": sc(0.88, 0.97, 0.90)}, targets)
    assert tie["method"] == "tsne" and not tie["met"]
    single = choose({"pca": sc(math.nan, 0.96, 0.96), "tsne": sc(math.nan, 0.94, 0.94)}, targets)
    assert single["method"] == "pca" and single["met"]
    json.dumps(single, allow_nan=False)  # written into film_metrics.json


def test_auto_keeps_pca_when_the_film_is_planar_and_fits_nothing_else() -> None:
    """A film whose global PCA already meets every target keeps it: the learned map is not even fitted."""
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(2, 16))
    film = [((rng.normal(size=(50, 2)) * [3, 1]) * (1 + t) @ plane).astype(np.float32) for t in range(4)]
    layout = fit_auto(film, STEPS, {**PARAM, "auto": {"candidates": ["pca", "param"]}})
    choice = json.loads(str(layout["choice"]))
    assert choice["method"] == "pca" == str(layout["method"]) and choice["met"]
    assert choice["candidates"]["pca"]["stability_spearman"] == pytest.approx(1.0)
    assert set(choice["candidates"]) == {"pca"} and choice["not_fitted"] == ["param"]


def test_auto_fits_the_next_candidate_when_pca_misses(film: list[np.ndarray]) -> None:
    """The synthetic film's clusters drift apart in directions a 2-D PCA cannot show at once: PCA misses a
    target, so auto measures the next candidate too and says so."""
    layout = fit_auto(film, STEPS, {**PARAM, "auto": {"candidates": ["pca", "param"], "min_trust_worst": 0.999}})
    choice = json.loads(str(layout["choice"]))
    assert set(choice["candidates"]) == {"pca", "param"} and choice["not_fitted"] == []
    assert (
        "pca" in choice["reason"] and "param misses" in choice["reason"] and choice["method"] == str(layout["method"])
    )


def test_film_quality_uses_the_workflow_metrics(film: list[np.ndarray], tsne: dict[str, np.ndarray]) -> None:
    from embedding_film.film.metrics import temporal_stability

    q = film_quality(film, list(tsne["coords"]))
    assert q["stability_spearman"] == temporal_stability(film, list(tsne["coords"]))["stability_spearman"]
    assert len(q["trust"]) == 4 and q["trust_worst"] == min(q["trust"]) and 0 < q["trust_mean"] <= 1


def test_user_errors_name_the_setting(film: list[np.ndarray]) -> None:
    with pytest.raises(UserError, match="projection.tsne"):
        resolve_settings({"tsne": {"perplexty": 30}})
    with pytest.raises(UserError, match="projection.method"):
        fit_layout(film, STEPS, "mds")
    with pytest.raises(UserError, match="reference_steps"):
        fit_layout(film, STEPS, "tsne", FAST, reference_steps=[5])
    with pytest.raises(UserError, match="initialization"):
        fit_layout(film, STEPS, "tsne", {"tsne": {"initialization": "spectral"}})


def test_the_schema_states_the_layout_defaults_the_code_uses() -> None:
    """config.yaml users read the defaults in schemas/config.schema.yaml; layout.DEFAULTS is what runs."""
    import yaml

    from embedding_film.film.layout import DEFAULTS

    schema = yaml.safe_load((Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml").read_text())
    projection = schema["properties"]["projection"]["properties"]
    for name, defaults in DEFAULTS.items():
        stated = {key: spec.get("default") for key, spec in projection[name]["properties"].items()}
        from_metrics = {"k", "max_points"} if name == "auto" else set()  # auto measures with metrics.k, max_points
        assert stated.keys() == defaults.keys() - from_metrics, name
        for key in stated:
            value = defaults[key]
            assert stated[key] == value, (name, key, stated[key], value)


PARAM = {
    "param": {
        "iterations": 60,
        "hidden": 16,
        "batch": 64,
        "negatives": 32,
        "movement_batch": 64,
        "perplexity": 5.0,
        "pca_dims": 6,
    }
}


def test_learned_map_reference_variant_places_appended_checkpoints_from_the_file(tmp_path: Path) -> None:
    """method param, fit: reference: appending a checkpoint changes no old frame; a per-checkpoint job places the
    new one from the saved file and its embeddings alone, as the fit placed it."""
    film = synthetic_film(steps=5)
    reference = [0, 40]
    before = fit_layout(film[:4], [0, 10, 20, 40], "param", PARAM, reference_steps=reference)
    after = fit_layout(film, [0, 10, 20, 40, 50], "param", PARAM, reference_steps=reference)
    assert str(before["method"]) == "param" and before["coords"].shape == (4, 60, 2)
    np.testing.assert_array_equal(after["coords"][:4], before["coords"])
    assert list(after["fit_steps"]) == reference
    save_layout(tmp_path / "layout.npz", before)
    placed = place(load_layout(tmp_path / "layout.npz"), 50, film[4])
    np.testing.assert_array_equal(placed, after["coords"][4])
