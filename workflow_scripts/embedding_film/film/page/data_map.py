"""The film page's data map: the training images at their running (variability, confidence), checkpoint by
checkpoint, beside the embedding scatter and on its time slider.

In:  dynamics.parquet (one row per scored training image: id, row, label, label-error score and rank, region),
     dynamics_trace.npz (each image's running confidence and variability, and each checkpoint's prediction, at
     every dynamics checkpoint), data/train_thumbnails.npy (their thumbnails, same order) and
     data/label_noise.csv (the rows dataset.label_noise changed; header only when it is off): film.dynamics.
Out: a DataMapData on FilmData.data_map; build_film_html encodes it (`encode_data_map`) into the page's payload
     under "dm." names, its thumbnails as a sprite sheet of their own ("dm.sprite").

Above max_points training images a seeded sample is shown that always keeps the likeliest label errors (the
top KEEP_TOP by label_error_rank), so the points worth looking at are on the map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedding_film.film.common import UserError, load_npy, seeded_subset
from embedding_film.film.dynamics import REGIONS, region_borders

# The likeliest label errors always shown, whatever the sample (by label_error_rank).
KEEP_TOP = 100


@dataclass
class DataMapData:
    """The training images' data map over the dynamics checkpoints (T of them, N images, in scoring order)."""

    steps: np.ndarray  # [T] int, the dynamics checkpoints (a subset of the film's steps, normally)
    confidence: np.ndarray  # [T, N] running mean of p(given label) up to and including each checkpoint
    variability: np.ndarray  # [T, N] running std of p(given label)
    predicted: np.ndarray  # [T, N] int, each checkpoint's predicted class
    labels: np.ndarray  # [N] int, the given (possibly noisy) labels
    ids: list[str]  # [N]
    thumbnails: np.ndarray  # [N, h, w, 3] uint8
    label_error_score: np.ndarray  # [N] float, higher = likelier a label error
    label_error_rank: np.ndarray  # [N] int, 1 = likeliest label error
    region: np.ndarray  # [N] int, index into REGIONS (over all dynamics checkpoints)
    noisy: np.ndarray  # [N] bool, the label was changed by dataset.label_noise
    original_labels: np.ndarray  # [N] int, the label before label_noise (= labels where not noisy)
    noise_on: bool = False  # label_noise changed at least one training label

    @property
    def n_images(self) -> int:
        return len(self.labels)

    def validate(self, n_classes: int) -> None:
        """Raise ValueError naming the first field that does not fit the others."""
        t, n = len(self.steps), self.n_images
        for name in ("confidence", "variability", "predicted"):
            if np.shape(getattr(self, name)) != (t, n):
                raise ValueError(f"DataMapData.{name} has shape {np.shape(getattr(self, name))}; expected ({t}, {n})")
        for name in ("label_error_score", "label_error_rank", "region", "noisy", "original_labels"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"DataMapData.{name} has {len(getattr(self, name))} entries for {n} images")
        if len(self.ids) != n or np.shape(self.thumbnails)[:1] != (n,) or np.ndim(self.thumbnails) != 4:
            raise ValueError(f"DataMapData.ids or thumbnails do not hold one entry per image ({n})")
        if t == 0 or n == 0:
            raise ValueError(f"DataMapData holds {t} checkpoints and {n} images; a data map needs at least one of each")
        if np.any(np.diff(np.asarray(self.steps)) <= 0):
            raise ValueError("DataMapData.steps must be strictly increasing")
        for name in ("labels", "predicted", "original_labels"):
            values = np.asarray(getattr(self, name))
            if values.min() < 0 or values.max() >= n_classes:
                raise ValueError(f"DataMapData.{name} runs outside the film's {n_classes} classes")
        if not (np.all(np.isfinite(self.confidence)) and np.all(np.isfinite(self.variability))):
            raise ValueError("DataMapData.confidence or variability holds NaN or infinite values")


def data_map_from_run(table_path: str, trace_path: str, thumbnails_path: str, noise_csv: str) -> DataMapData | None:
    """Read the dynamics stage's files into a DataMapData; None when the run scored no training image (the
    dynamics job's log says why), so the page is built without a data map."""
    import pandas as pd

    for path in (table_path, trace_path, thumbnails_path):
        if not Path(path).is_file():
            raise UserError(f"{path} is missing; run the workflow's training dynamics (rule dynamics) first.")
    table = pd.read_parquet(table_path)
    with np.load(trace_path, allow_pickle=False) as trace:
        arrays = {k: trace[k] for k in trace.files}
    if not len(table) or "confidence" not in arrays:
        return None
    thumbnails = load_npy(thumbnails_path)
    if len(thumbnails) != len(table) or arrays["confidence"].shape[1] != len(table):
        raise UserError(
            f"{table_path}, {trace_path} and {thumbnails_path} hold different numbers of training images "
            f"({len(table)}, {arrays['confidence'].shape[1]}, {len(thumbnails)}); rerun the dynamics stage."
        )
    labels = table["label"].to_numpy(np.int64)
    original = labels.copy()
    noisy = np.zeros(len(table), bool)
    noise = pd.read_csv(noise_csv) if Path(noise_csv).is_file() else pd.DataFrame(columns=["row"])
    if len(noise):
        position = {int(r): i for i, r in enumerate(table["row"])}
        for row, before in zip(noise["row"], noise["original_label"]):
            if int(row) in position:
                noisy[position[int(row)]] = True
                original[position[int(row)]] = int(before)
    return DataMapData(
        steps=np.asarray(arrays["steps"], np.int64),
        confidence=np.asarray(arrays["confidence"], np.float32),
        variability=np.asarray(arrays["variability"], np.float32),
        predicted=np.asarray(arrays["predicted"], np.int64),
        labels=labels,
        ids=[str(i) for i in table["id"]],
        thumbnails=thumbnails,
        label_error_score=table["label_error_score"].to_numpy(np.float64),
        label_error_rank=table["label_error_rank"].to_numpy(np.int64),
        region=np.array([REGIONS.index(str(r)) for r in table["region"]], np.int64),
        noisy=noisy,
        original_labels=original,
        noise_on=bool(len(noise)),
    )


def choose_train_points(ranks: np.ndarray, max_points: int, seed: int, keep_top: int = KEEP_TOP) -> np.ndarray:
    """All training images, or a seeded sample of `max_points` (film.common.seeded_subset of the rest) that keeps
    the `keep_top` likeliest label errors (label_error_rank 1..keep_top)."""
    ranks = np.asarray(ranks)
    n = len(ranks)
    if n <= max_points:
        return np.arange(n)
    keep = np.flatnonzero(ranks <= min(keep_top, max_points))
    rest = np.setdiff1d(np.arange(n), keep)
    extra = rest[seeded_subset(len(rest), max_points - len(keep), seed)]
    return np.sort(np.concatenate([keep, extra]))


def film_index(film_steps: Sequence[int], steps: Sequence[int]) -> list[int]:
    """For each film checkpoint, the latest dynamics checkpoint at or before it (its index; -1 before the first)."""
    steps = np.asarray(steps, np.int64)
    return [int(np.searchsorted(steps, int(s), side="right")) - 1 for s in film_steps]


def encode_data_map(
    dm: DataMapData, shown: np.ndarray, film_steps: Sequence[int]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The data map's arrays (for the page's payload, under "dm." names) and metadata for the `shown` images.

    "xy" is float32 (variability, confidence) [T, n, 2]; build_film_html quantises it like the scatter's
    coordinates (uint16 per axis and checkpoint) and adds meta["dequant"]. Ranks are uint32 (training sets can
    exceed 65,535 images).
    """
    xy = np.stack([np.asarray(dm.variability)[:, shown], np.asarray(dm.confidence)[:, shown]], axis=2)
    n_classes = int(max(np.max(dm.predicted), np.max(dm.labels))) + 1
    label_type = "u1" if n_classes <= 256 else "<u2"
    arrays = {
        "xy": xy.astype(np.float32),
        "labels": np.asarray(dm.labels)[shown].astype("<u2"),
        "pred": np.asarray(dm.predicted)[:, shown].astype(label_type),
        "rank": np.asarray(dm.label_error_rank)[shown].astype("<u4"),
        "score": np.asarray(dm.label_error_score)[shown].astype("<f4"),
        "region": np.asarray(dm.region)[shown].astype("u1"),
        "noisy": np.asarray(dm.noisy)[shown].astype("u1"),
        "original": np.asarray(dm.original_labels)[shown].astype("<u2"),
    }
    v_max = float(np.max(dm.variability))
    ambiguous, hard = region_borders(np.asarray(dm.confidence)[-1], np.asarray(dm.variability)[-1])
    meta = {
        "steps": [int(s) for s in dm.steps],
        "film_index": film_index(film_steps, dm.steps),
        "n": len(shown),
        "n_total": dm.n_images,
        "ids": [dm.ids[i] for i in shown],
        # fixed axes over the whole film: variability 0..its maximum, confidence 0..1; the regions' borders are
        # those of the whole run (the last checkpoint's running values are the table's)
        "limits": [0.0, max(v_max, 1e-6) * 1.05, 0.0, 1.0],
        "ambiguous_variability": ambiguous,
        "easy_confidence": hard,
        "regions": list(REGIONS),
        "noise_on": dm.noise_on,
        "noisy_total": int(np.sum(dm.noisy)),
        "note": (
            f"Showing {len(shown):,} of {dm.n_images:,} training images (seeded random sample; the top "
            f"{min(KEEP_TOP, len(shown))} label-error candidates kept; ranks are over all images)."
            if len(shown) < dm.n_images
            else ""
        ),
    }
    return arrays, meta
