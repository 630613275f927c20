"""Training dynamics: how each training image's prediction changes from checkpoint to checkpoint, and which
given labels are likely wrong.

In:  train_probs/{step}.npy (float32 [N, C]: a checkpoint's class probabilities on the scored training images)
     for the checkpoints that enter the scores, and the images' given labels.
Out: dynamics.parquet, one row per scored training image (`dynamics_table`), label_errors.csv (the top of the
     ranking) and dynamics_trace.npz (each image's running confidence and variability, checkpoint by checkpoint,
     for the film page's data map).

The scores are the established ones: Dataset Cartography's data map (Swayamdipta et al., 2020: confidence and
variability, the mean and standard deviation over checkpoints of p(given label), and correctness), forgetting
events (Toneva et al., 2019) and the Area Under the Margin (Pleiss et al., 2020: the given label's logit minus
the largest other logit, averaged over checkpoints; log-probabilities give the same difference). Examples
with wrong labels are learned late or never: low confidence and a negative margin. docs/dynamics.md says which
score the ranking uses and why, with the measurements.
"""

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedding_film.film.common import UserError, atomic_path, load_json, load_npy

log = logging.getLogger(__name__)

# Data-map regions, in Dataset Cartography's terms (Swayamdipta et al.): the third of the images whose
# predictions vary most is "ambiguous" (the model changes its mind); of the others, those in the third of least
# confidence are "hard to learn" (where wrong labels gather), the rest "easy to learn". Thirds of this run's
# images, not fixed values: a model trained from scratch moves every image from chance to its final
# confidence, so the absolute spread depends on the run (region_borders).
REGION_SHARE = 1 / 3
REGIONS = ("easy to learn", "ambiguous", "hard to learn")
# The smallest probability a log-probability margin sees (float32 probabilities round tiny ones to 0).
_TINY = 1e-12


def check_probs(probs: np.ndarray, labels: np.ndarray) -> None:
    """One clear sentence when the checkpoints' probabilities cannot score these labels."""
    if probs.ndim != 3 or probs.shape[1] != len(labels):
        raise UserError(
            f"the training probabilities have shape {probs.shape}, not [checkpoints, {len(labels)}, classes]; "
            "delete results/<run>/train_probs/ and run again."
        )
    if len(labels) and labels.max() >= probs.shape[2]:
        raise UserError(
            f"the checkpoints' head predicts {probs.shape[2]} classes but the training labels go up to "
            f"{labels.max()}; use checkpoints fine-tuned on this dataset."
        )


def given_probability(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """p(given label) [T, N] from probabilities [T, N, C]."""
    return np.take_along_axis(probs, labels[None, :, None], axis=2)[..., 0].astype(np.float64)


def margins(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The given label's log-probability minus the largest other one [T, N]: the logit margin of AUM."""
    logp = np.log(np.maximum(probs.astype(np.float64), _TINY))
    given = np.take_along_axis(logp, labels[None, :, None], axis=2)[..., 0]
    others = logp.copy()
    np.put_along_axis(others, labels[None, :, None], -np.inf, axis=2)
    return given - others.max(axis=2)


def forgetting_events(correct: np.ndarray) -> np.ndarray:
    """How often each image goes from predicted correctly to wrongly between consecutive checkpoints [N]."""
    return (correct[:-1] & ~correct[1:]).sum(axis=0).astype(np.int64)


def learned_steps(correct: np.ndarray, steps: Sequence[int]) -> np.ndarray:
    """The first step from which each image is predicted correctly at every later checkpoint; -1 when it is
    wrong at the last one [N]."""
    steps = np.asarray(steps, dtype=np.int64)
    wrong_after = np.flipud(np.cumsum(np.flipud(~correct), axis=0))  # wrong predictions from t to the end
    stays = wrong_after == 0
    first = np.where(stays.any(axis=0), stays.argmax(axis=0), -1)
    return np.where(first >= 0, steps[np.maximum(first, 0)], -1)


def region_borders(confidence: np.ndarray, variability: np.ndarray) -> tuple[float, float]:
    """(the variability from which an image is ambiguous, the confidence under which it is hard to learn): the
    top third of the run's variabilities and the bottom third of its confidences (REGION_SHARE)."""
    if not len(confidence):
        return 0.0, 0.0
    return float(np.quantile(variability, 1 - REGION_SHARE)), float(np.quantile(confidence, REGION_SHARE))


def regions(confidence: np.ndarray, variability: np.ndarray) -> np.ndarray:
    """Each image's data-map region: ambiguous, easy to learn or hard to learn (region_borders)."""
    ambiguous, hard = region_borders(confidence, variability)
    out = np.where(confidence > hard, REGIONS[0], REGIONS[2]).astype(object)
    out[variability >= ambiguous] = REGIONS[1]
    return out


def label_error_score(confidence: np.ndarray) -> np.ndarray:
    """Higher = more likely mislabeled: 1 - the data-map confidence, the mean probability the checkpoints gave
    the given label. Of the scores measured (docs/dynamics.md), the one that stays high both while the model
    learns and once it has memorised the wrong labels: the margin (AUM) is swamped by the large margins of a
    memorising model's last checkpoints, the last checkpoint alone has learned the wrong labels, and how often
    an image is predicted correctly ranks in a few coarse ties."""
    return 1.0 - confidence


def scores(probs: np.ndarray, labels: np.ndarray, steps: Sequence[int]) -> dict[str, np.ndarray]:
    """Every per-image score from the probabilities [T, N, C] of the checkpoints `steps` on images with the
    given `labels` [N]."""
    labels = np.asarray(labels, dtype=np.int64)
    check_probs(probs, labels)
    p = given_probability(probs, labels)
    predicted = probs.argmax(axis=2)
    correct = predicted == labels[None, :]
    margin = margins(probs, labels)
    confidence, variability = p.mean(axis=0), p.std(axis=0)
    aum = margin.mean(axis=0)
    return {
        "confidence": confidence,
        "variability": variability,
        "correctness": correct.mean(axis=0),
        "forgetting": forgetting_events(correct),
        "learned_step": learned_steps(correct, steps),
        "aum": aum,
        "final_p_given": p[-1],
        "predicted": predicted[-1],
        "suggested_label": probs.mean(axis=0).argmax(axis=1),
        "region": regions(confidence, variability),
        "label_error_score": label_error_score(confidence),
    }


def ranks(score: np.ndarray) -> np.ndarray:
    """1 for the highest score, ties broken by row order (a stable, reproducible ranking)."""
    order = np.argsort(-score, kind="stable")
    out = np.empty(len(score), dtype=np.int64)
    out[order] = np.arange(1, len(score) + 1)
    return out


def dynamics_table(index: Any, names: Sequence[str], probs: np.ndarray, steps: Sequence[int]) -> Any:
    """dynamics.parquet's table: `index` (row, id, label of each scored training image) with its scores."""
    import pandas as pd

    labels = index["label"].to_numpy(dtype=np.int64)
    s = scores(probs, labels, steps)
    names = [str(n) for n in names]
    table = pd.DataFrame(
        {
            "id": index["id"].astype(str).to_numpy(),
            "row": index["row"].to_numpy(dtype=np.int64),
            "label": labels,
            "class_name": [names[i] for i in labels],
            "confidence": s["confidence"],
            "variability": s["variability"],
            "correctness": s["correctness"],
            "forgetting": s["forgetting"],
            "learned_step": s["learned_step"],
            "aum": s["aum"],
            "final_p_given": s["final_p_given"],
            "predicted_label": s["predicted"],
            "predicted_name": [names[i] for i in s["predicted"]],
            "region": s["region"],
            "suggested_label": s["suggested_label"],
            "suggested_name": [names[i] for i in s["suggested_label"]],
            "label_error_score": s["label_error_score"],
            "label_error_rank": ranks(s["label_error_score"]),
        }
    )
    # categories over every class (in label order) and region: Spotlight shows them as categories
    for column in ("class_name", "predicted_name", "suggested_name"):
        table[column] = pd.Categorical(table[column], categories=names)
    table["region"] = pd.Categorical(table["region"], categories=list(REGIONS))
    return table


def running_trace(probs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Each image's data-map position after every checkpoint: confidence and variability of p(given label) over
    the checkpoints so far, and the checkpoint's prediction ([T, N] each; the film page's data map)."""
    labels = np.asarray(labels, dtype=np.int64)
    p = given_probability(probs, labels)
    count = np.arange(1, len(p) + 1)[:, None]
    mean = np.cumsum(p, axis=0) / count
    mean_sq = np.cumsum(p * p, axis=0) / count
    return {
        "confidence": mean.astype(np.float32),
        "variability": np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)).astype(np.float32),
        "predicted": probs.argmax(axis=2).astype(np.int16),
    }


def write_dynamics(
    index_path: str,
    classes_path: str,
    prob_paths: Sequence[str],
    steps: Sequence[int],
    out_table: str,
    out_errors: str,
    out_trace: str,
    top_k: int,
) -> None:
    """The dynamics stage: read the scored images and their per-checkpoint probabilities, write the table, the
    top `top_k` suspected label errors and the running trace. Without training images or a classification head
    it writes empty files and says why in one line."""
    import pandas as pd

    index = pd.read_parquet(index_path)
    names = load_json(classes_path)["names"]
    probs = [load_npy(p) for p in prob_paths]
    why = off_reason(len(index), probs)
    if why:
        log.warning("training dynamics are off: %s.", why)
        probs_all = np.zeros((len(steps), 0, len(names)), np.float32)
        index = index.iloc[:0]
    else:
        probs_all = np.stack(probs)
    table = dynamics_table(index, names, probs_all, steps)
    with atomic_path(out_table) as tmp:
        table.to_parquet(tmp, index=False)
    errors = table.sort_values("label_error_rank").head(max(top_k, 0))
    with atomic_path(out_errors) as tmp:
        errors.to_csv(tmp, index=False, float_format="%.6g")
    trace = running_trace(probs_all, table["label"].to_numpy()) if len(table) else {}
    with atomic_path(out_trace) as tmp:
        np.savez(tmp, steps=np.asarray(steps, dtype=np.int64), **trace)
    if not why:
        log.info(
            "scored %d training images over %d checkpoints (steps %s..%s); regions %s",
            len(table),
            len(steps),
            steps[0],
            steps[-1],
            table["region"].value_counts().to_dict(),
        )


def off_reason(n_images: int, probs: Sequence[np.ndarray]) -> str:
    """Why there are no training dynamics to compute ('' when there are)."""
    if n_images == 0:
        return "the run has no training images (dataset.train_split)"
    if not probs:
        return "no checkpoint is in dynamics.from_step..until_step"
    if probs[0].shape[1] == 0:
        return "the checkpoints have no classification head to predict the training labels"
    return ""
