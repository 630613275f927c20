"""benchmarks/projection_limits.py: the estimates behind the layouts chapter's statement that the film's target is
out of reach of a linear 2-D film on the runs measured."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def limits_module():
    spec = importlib.util.spec_from_file_location("projection_limits", REPO / "benchmarks" / "projection_limits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["projection_limits"] = module
    spec.loader.exec_module(module)
    return module


def drifting_film(n_checkpoints: int = 4, n: int = 60, d: int = 12, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 4
    labels = rng.integers(0, 3, n)
    base = centres[labels] + rng.normal(size=(n, d))
    return [base + t * rng.normal(scale=0.3, size=(n, d)) for t in range(n_checkpoints)]


def test_hill_climb_only_accepts_improvements(limits_module):
    target = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    start = np.zeros_like(target) + 0.1

    def score(w):
        return -float(np.abs(w - target).sum())

    w, best = limits_module.hill_climb(start, score, iterations=200)
    assert best == pytest.approx(score(w))
    assert best > score(start)


def test_limits_bound_the_pca_film(limits_module):
    film = drifting_film()
    r = limits_module.limits(film, iterations=30)
    # Each search starts at the PCA map it tries to beat and only accepts improvements.
    assert r["best_linear_trust"] >= r["own_pca_trust_probe"] - 1e-12
    assert r["searched_stability"] >= r["global_stability"] - 1e-12
    assert r["own_pca_trust_mean"] >= r["own_pca_trust_min"]
    for key in ("global_trust_mean", "own_pca_trust_mean", "tsne_trust", "joint_trust", "searched_stability_trust"):
        assert 0.0 < r[key] <= 1.0, key
    assert -1.0 <= r["joint_stability"] <= 1.0


def test_cli_prints_one_row_per_run(limits_module, tmp_path, capsys):
    run = tmp_path / "results" / "toy"
    (run / "embeddings").mkdir(parents=True)
    for step, emb in zip((0, 5, 10, 15), drifting_film()):
        np.save(run / "embeddings" / f"{step}.npy", emb.astype(np.float32))
    limits_module.main([str(run), "--iterations", "5"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| toy |")]
    assert len(rows) == 1 and "4 x 60" in rows[0]


def test_cli_refuses_a_folder_without_embeddings(limits_module, tmp_path):
    with pytest.raises(SystemExit, match="fewer than two"):
        limits_module.main([str(tmp_path)])


def test_pretrained_backbone_loads_through_the_workflows_hub_path(tmp_path):
    """benchmarks/pretrain_backbone.py saves a folder the `finetune` config fine-tunes: from_pretrained with a
    fresh 10-class head in place of the 4-way rotation head."""
    spec = importlib.util.spec_from_file_location("pretrain_backbone", REPO / "benchmarks" / "pretrain_backbone.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "pretrained"
    module.pretrain(out, steps=2, batch_size=8)
    from embedding_film.film.models import load_for_training

    model = load_for_training(str(out), 10, {i: str(i) for i in range(10)}, allow_pickle=False)
    assert model.config.num_labels == 10
    assert model.classifier.out_features == 10
    assert (out / "preprocessor_config.json").is_file()
    from transformers import ViTForImageClassification

    saved = ViTForImageClassification.from_pretrained(out)
    kept = saved.vit.embeddings.patch_embeddings.projection.weight
    assert np.array_equal(
        model.vit.embeddings.patch_embeddings.projection.weight.detach().numpy(), kept.detach().numpy()
    )
