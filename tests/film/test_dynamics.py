"""Training dynamics: the scores on hand-made sequences of probabilities, the label-noise setting and its record,
and the stage's files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedding_film.film.common import UserError, save_npy
from embedding_film.film.data import noisy_labels, with_label_noise
from embedding_film.film.data_map import plot_data_map, plot_label_errors
from embedding_film.film.dynamics import (
    REGIONS,
    dynamics_table,
    forgetting_events,
    learned_steps,
    margins,
    ranks,
    region_borders,
    regions,
    running_trace,
    scores,
    write_dynamics,
)


def probs_of(rows: list[list[list[float]]]) -> np.ndarray:
    """[T, N, C] from per-checkpoint lists of per-image probabilities."""
    return np.asarray(rows, dtype=np.float32)


# Three images, two classes, four checkpoints, given labels 0, 0, 1:
# image 0 learned at once and kept; image 1 learned, forgotten, learned again; image 2 (label 1) never learned.
STEPS = [10, 20, 30, 40]
LABELS = np.array([0, 0, 1])
PROBS = probs_of(
    [
        [[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]],
        [[0.9, 0.1], [0.3, 0.7], [0.9, 0.1]],
        [[0.9, 0.1], [0.7, 0.3], [0.9, 0.1]],
        [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]],
    ]
)


def test_scores_on_a_hand_made_sequence() -> None:
    s = scores(PROBS, LABELS, STEPS)
    np.testing.assert_allclose(s["confidence"], [0.9, 0.6, 0.175], atol=1e-6)
    np.testing.assert_allclose(
        s["variability"], np.std([[0.9] * 4, [0.6, 0.3, 0.7, 0.8], [0.2, 0.1, 0.1, 0.3]], axis=1), atol=1e-6
    )
    np.testing.assert_allclose(s["correctness"], [1.0, 0.75, 0.0])
    assert s["forgetting"].tolist() == [0, 1, 0]
    assert s["learned_step"].tolist() == [10, 30, -1]
    assert s["final_p_given"] == pytest.approx([0.9, 0.8, 0.3], abs=1e-6)
    assert s["suggested_label"].tolist() == [0, 0, 0]  # image 2's checkpoints say class 0
    # AUM: the mean of log p(given) - log p(other)
    expected = np.mean(np.log(PROBS[:, :, 0] / PROBS[:, :, 1]), axis=0) * np.array([1, 1, -1])
    np.testing.assert_allclose(s["aum"], expected, rtol=1e-5)
    # the never-learned image is the likeliest label error, the always-right one the least likely
    assert ranks(s["label_error_score"]).tolist() == [3, 2, 1]


def test_margin_is_the_logit_margin_and_survives_zero_probabilities() -> None:
    logits = np.array([[[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]]])
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    np.testing.assert_allclose(margins(probs, np.array([0, 2])), [[1.5, -2.0]], rtol=1e-9)
    hard = probs_of([[[1.0, 0.0], [0.0, 1.0]]])
    assert np.isfinite(margins(hard, np.array([0, 0]))).all()


def test_forgetting_and_learned_step_count_transitions() -> None:
    correct = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [1, 1, 1]], dtype=bool)
    assert forgetting_events(correct).tolist() == [1, 0, 1]
    assert learned_steps(correct, [1, 2, 3, 4]).tolist() == [3, 3, 4]
    assert learned_steps(correct[:3], [1, 2, 3]).tolist() == [3, 3, -1]


def test_regions_are_the_runs_thirds_of_the_data_map() -> None:
    rng = np.random.default_rng(0)
    confidence, variability = rng.uniform(size=300), rng.uniform(0, 0.4, size=300)
    region = regions(confidence, variability)
    ambiguous, hard = region_borders(confidence, variability)
    assert (region == REGIONS[1]).sum() == 100  # the third that varies most
    assert ((region == REGIONS[2]) == ((variability < ambiguous) & (confidence <= hard))).all()
    assert set(region[(variability < ambiguous) & (confidence > hard)]) == {REGIONS[0]}
    # a steady, never-learned image is hard to learn; one the model keeps changing its mind on is ambiguous
    steady = probs_of([[[0.9, 0.1], [0.1, 0.9], [0.3, 0.7]]] * 2 + [[[0.95, 0.05], [0.9, 0.1], [0.3, 0.7]]] * 2)
    assert scores(steady, np.array([0, 0, 0]), STEPS)["region"].tolist() == [REGIONS[0], REGIONS[1], REGIONS[2]]


def test_the_table_names_ranks_and_categories() -> None:
    table = dynamics_table(
        pd.DataFrame({"row": [0, 1, 2], "id": ["a", "b", "c"], "label": LABELS}), ["zero", "one"], PROBS, STEPS
    )
    assert table["label_error_rank"].tolist() == [3, 2, 1]
    assert table["suggested_name"].tolist() == ["zero", "zero", "zero"]


def test_running_trace_ends_at_the_scores() -> None:
    trace = running_trace(PROBS, LABELS)
    s = scores(PROBS, LABELS, STEPS)
    assert trace["confidence"].shape == (4, 3)
    np.testing.assert_allclose(trace["confidence"][-1], s["confidence"], atol=1e-6)
    np.testing.assert_allclose(trace["variability"][-1], s["variability"], atol=1e-6)
    np.testing.assert_allclose(trace["confidence"][0], PROBS[0, [0, 1, 2], LABELS], atol=1e-6)
    assert trace["variability"][0].tolist() == [0, 0, 0]
    assert trace["predicted"][1].tolist() == [0, 1, 0]


def test_probabilities_that_do_not_fit_the_labels_are_refused() -> None:
    with pytest.raises(UserError, match="classes"):
        scores(PROBS, np.array([0, 0, 2]), STEPS)
    with pytest.raises(UserError, match="shape"):
        scores(PROBS[:, :2], LABELS, STEPS)


@pytest.mark.parametrize("kind", ["uniform", "pair"])
def test_label_noise_changes_the_given_share_to_another_class(kind: str) -> None:
    labels = np.repeat(np.arange(5), 40)
    noisy = noisy_labels(labels, 5, 0.15, kind, seed=3)
    changed = noisy != labels
    assert changed.sum() == 30
    if kind == "pair":
        assert ((labels[changed] + 1) % 5 == noisy[changed]).all()
    else:
        assert len(set(noisy[changed].tolist())) > 2
    np.testing.assert_array_equal(noisy, noisy_labels(labels, 5, 0.15, kind, seed=3))  # seeded
    assert (noisy_labels(labels, 5, 0.0, kind, seed=3) == labels).all()


def test_label_noise_record_names_every_changed_row(tmp_path: Path) -> None:
    from datasets import ClassLabel, Dataset, Features, Image, Value
    from PIL import Image as PILImage

    images = [PILImage.new("RGB", (4, 4), (i, 0, 0)) for i in range(30)]
    features = Features({"id": Value("string"), "image": Image(), "label": ClassLabel(names=["a", "b", "c"])})
    ds = Dataset.from_dict(
        {"id": [f"train/{i}" for i in range(30)], "image": images, "label": [i % 3 for i in range(30)]},
        features=features,
    )
    noisy = with_label_noise(ds, {"fraction": 0.2, "kind": "pair"}, 0, str(tmp_path / "noise.csv"))
    record = pd.read_csv(tmp_path / "noise.csv")
    assert len(record) == 6 and noisy.features == ds.features and noisy.column_names == ds.column_names
    given = np.asarray(noisy["label"])
    assert (given[record["row"]] == record["given_label"]).all()
    assert (np.asarray(ds["label"])[record["row"]] == record["original_label"]).all()
    assert record["id"].tolist() == [f"train/{r}" for r in record["row"]]
    assert (np.delete(given, record["row"]) == np.delete(np.asarray(ds["label"]), record["row"])).all()
    off = with_label_noise(ds, {"fraction": 0.0}, 0, str(tmp_path / "off.csv"))
    assert off is ds and len(pd.read_csv(tmp_path / "off.csv")) == 0


def _stage_files(tmp_path: Path, probs: np.ndarray) -> dict[str, str]:
    index = pd.DataFrame({"row": [4, 5, 6], "id": ["train/4", "train/5", "train/6"], "label": LABELS})
    index.to_parquet(tmp_path / "index.parquet")
    (tmp_path / "classes.json").write_text(json.dumps({"names": ["zero", "one"], "ids": []}))
    paths = []
    for step, p in zip(STEPS, probs):
        save_npy(tmp_path / f"{step}.npy", p)
        paths.append(str(tmp_path / f"{step}.npy"))
    out = {k: str(tmp_path / n) for k, n in (("table", "d.parquet"), ("errors", "e.csv"), ("trace", "t.npz"))}
    write_dynamics(
        str(tmp_path / "index.parquet"), str(tmp_path / "classes.json"), paths, STEPS, **out_args(out), top_k=2
    )
    return out


def out_args(out: dict[str, str]) -> dict[str, str]:
    return {"out_table": out["table"], "out_errors": out["errors"], "out_trace": out["trace"]}


def test_the_stage_writes_table_errors_and_trace(tmp_path: Path) -> None:
    out = _stage_files(tmp_path, PROBS)
    table = pd.read_parquet(out["table"])
    assert table["id"].tolist() == ["train/4", "train/5", "train/6"]
    assert table["row"].tolist() == [4, 5, 6]
    errors = pd.read_csv(out["errors"])
    assert errors["id"].tolist() == ["train/6", "train/5"]
    trace = np.load(out["trace"])
    assert trace["steps"].tolist() == STEPS and trace["confidence"].shape == (4, 3)
    # the pictures draw from these files (label noise on: the changed rows are ringed)
    pd.DataFrame({"row": [6]}).to_csv(tmp_path / "noise.csv", index=False)
    save_npy(tmp_path / "thumbs.npy", np.zeros((3, 8, 8, 3), np.uint8))
    plot_data_map(out["table"], str(tmp_path / "noise.csv"), str(tmp_path / "map.png"))
    plot_label_errors(
        out["table"], str(tmp_path / "thumbs.npy"), str(tmp_path / "noise.csv"), str(tmp_path / "g.png"), 2
    )
    assert (tmp_path / "map.png").stat().st_size > 1000 and (tmp_path / "g.png").stat().st_size > 1000


def test_without_a_head_the_stage_says_dynamics_are_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = _stage_files(tmp_path, np.zeros((4, 3, 0), np.float32))
    assert "no classification head" in caplog.text
    assert len(pd.read_parquet(out["table"])) == 0 and len(pd.read_csv(out["errors"])) == 0


def test_label_noise_is_refused_for_checkpoints_the_workflow_did_not_train(tmp_path: Path) -> None:
    from embedding_film.film.data import prepare

    out = {k: str(tmp_path / f"{k}.out") for k in ("train", "eval", "labels", "thumbnails", "classes", "label_noise")}
    cfg = {"name": "builtin:digits", "image_size": 8, "eval_size": 20, "label_noise": {"fraction": 0.1}}
    with pytest.raises(UserError, match="label_noise.*external checkpoints"):
        prepare(cfg, 0, need_train=False, out=out, want_train=True)
    assert not any(Path(p).exists() for p in out.values())


def test_the_ranking_follows_confidence_where_a_memorising_model_swamps_the_margin() -> None:
    """Image 1 was learned (wrongly, say) only at the last checkpoint, with a huge margin; image 0 was never
    quite learned. The margin's mean puts image 0 first; the ranking, the data-map confidence, puts image 1."""
    probs = probs_of([[[0.4, 0.6], [0.01, 0.99]]] * 3 + [[[0.4, 0.6], [1 - 1e-7, 1e-7]]])
    s = scores(probs, np.array([0, 0]), STEPS)
    assert s["aum"][0] < s["aum"][1]  # by the margin, image 0 is the likelier error
    np.testing.assert_allclose(s["label_error_score"], 1 - s["confidence"])
    assert ranks(s["label_error_score"]).tolist() == [2, 1]
