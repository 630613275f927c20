"""Checkpoints and their training logs: which steps exist, what trained them, and the loss curve.

Light on purpose (standard library + the project's common helpers): the workflow imports it when it is
parsed, and the training, log-import, frame and report jobs share it.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedding_film.film.common import UserError, atomic_path, load_json, save_json

log = logging.getLogger(__name__)


def import_log(state_paths: str | Sequence[str], out: str) -> int:
    """Write the loss rows of the (first) trainer_state.json in `state_paths`; none gives a header-only CSV."""
    paths = [state_paths] if isinstance(state_paths, str) else list(state_paths)
    history = read_log_history(paths[0]) if paths else []
    if not paths:
        log.warning("no checkpoint has a trainer_state.json: the frames show no loss curve")
    return write_train_log(history, out)


# ---------------------------------------------------------------- from rule checkpoints

LOG_COLUMNS = ("step", "epoch", "loss", "learning_rate", "grad_norm")


def checkpoint_steps(max_steps: int, save_steps: int) -> list[int]:
    """The steps the Trainer saves at, plus 0 (the model before fine-tuning) and the final step."""
    return sorted({0, *range(save_steps, max_steps + 1, save_steps), max_steps})


def checkpoint_folder_steps(folder: str | Path) -> list[int]:
    """The steps of the checkpoint-<step> sub-folders of a Trainer output folder, sorted."""
    return sorted(
        int(m.group(1))
        for p in Path(folder).iterdir()
        if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
    )


def training_fingerprint(
    model: str, training: dict[str, Any], tiny_vit: dict[str, Any] | None, dataset: dict[str, Any], seed: int
) -> dict[str, Any]:
    """The settings that decide what the checkpoints contain (`tiny_vit` only matters for builtin:tiny-vit;
    `dataset` is the whole dataset: section, image size included)."""
    return {
        "model": model,
        "training": dict(training),
        "tiny_vit": dict(tiny_vit) if tiny_vit is not None and model.startswith("builtin:") else None,
        "dataset": training_dataset(dataset),
        "seed": seed,
    }


def training_dataset(dataset: dict[str, Any]) -> dict[str, Any]:
    """The dataset: section as training sees it: without label_noise while it is off, so checkpoints trained
    before that setting existed keep their fingerprint."""
    out = dict(dataset)
    if not (out.get("label_noise") or {}).get("fraction"):
        out.pop("label_noise", None)
    return out


def check_existing_checkpoints(checkpoint_root: str | Path, fingerprint: dict[str, Any]) -> None:
    """Refuse to train over checkpoints made with other settings.

    Called when the workflow is parsed (before Snakemake would delete outputs it plans to remake; as root,
    protected() file modes do not stop that) and again by the training job. The settings are recorded in
    `training.json` next to the checkpoints; the same settings (e.g. after an interruption) may proceed.
    """
    root = Path(checkpoint_root)
    existing = sorted(p.parent.name for p in root.glob("checkpoint-*/model.safetensors"))
    if not existing:
        return
    record = root / "training.json"
    before = json.loads(record.read_text()) if record.is_file() else {}
    if before != json.loads(json.dumps(fingerprint)):
        changed = sorted(k for k in fingerprint if before.get(k) != fingerprint[k]) or ["unknown"]
        raise UserError(
            f"'{root}' already holds {len(existing)} checkpoints trained with other settings ({', '.join(changed)} changed); "
            "revert those settings, choose a new run: name, or move that folder away to retrain."
        )


def read_log_history(state_path: str | Path) -> list[dict[str, Any]]:
    """The `log_history` of a Trainer's trainer_state.json."""
    try:
        state = load_json(state_path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"'{state_path}' is not readable JSON ({type(err).__name__}); fix or delete that trainer_state.json."
        ) from err
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise UserError(
            f"'{state_path}' has no log_history list; it is not a Trainer's trainer_state.json (fix or delete it)."
        )
    return [entry for entry in history if isinstance(entry, dict)]


def loss_rows(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training-loss entries of a Trainer log history (other entries: eval, runtime summary)."""
    return [entry for entry in log_history if isinstance(entry, dict) and "loss" in entry and "step" in entry]


def write_train_log(log_history: list[dict[str, Any]], path: str | Path) -> int:
    """Write the training-loss rows of the Trainer's log history as CSV, by key name. Returns the row count."""
    rows = loss_rows(log_history)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for entry in rows:
            writer.writerow({key: entry.get(key, "") for key in LOG_COLUMNS})
    return len(rows)


def log_series(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """{column: [(step, value), ...]} of the finite numeric values of the loss rows (learning rate, ...)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for row in loss_rows(log_history):
        try:
            step = float(row["step"])
        except (TypeError, ValueError):
            continue
        for key, value in row.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if key != "step" and math.isfinite(number):
                series.setdefault(key, []).append((step, number))
    return series


def read_train_log(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """The series of train_log.csv (or of a trainer_state.json's log history), read by column name."""
    if str(path).endswith(".json"):
        return log_series(read_log_history(path))
    with open(path, newline="") as handle:
        return log_series([dict(row) for row in csv.DictReader(handle)])


# --- which checkpoint folders can be filmed now, and which failed before (parse time, the watch loop; no torch)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


# --- cheap checks (no torch): used at parse time and before any model is loaded --------------------------


def safetensors_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a .safetensors file is unusable (truncated, corrupt header), or None when its header is sound.

    Reads only the header: 8 bytes of header length, the JSON header, and compares the data offsets
    with the file size, so a truncated download or an interrupted save is caught in milliseconds.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                return f"is {size} bytes long, too short for a safetensors header"
            (length,) = struct.unpack("<Q", head)
            if length > size - 8 or length > 100_000_000:
                return f"declares a {length}-byte header but the file is {size} bytes (truncated or not safetensors)"
            header = json.loads(handle.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"has an unreadable header ({type(err).__name__})"
    if not isinstance(header, dict):
        return "has a header that is not a JSON object"
    ends = [
        t["data_offsets"][1]
        for k, t in header.items()
        if k != "__metadata__" and isinstance(t, dict) and "data_offsets" in t
    ]
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        return f"is {size} bytes but its header needs {expected} (truncated)"
    return None


def weight_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The safetensors files of a model folder (the shards named by an index, or model.safetensors)."""
    path = Path(folder)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError) as err:
            raise UserError(
                f"'{index}' is not a readable safetensors index ({type(err).__name__}); re-save the model."
            ) from err
        return [path / s for s in shards]
    return [path / "model.safetensors"] if (path / "model.safetensors").is_file() else []


# --- which checkpoints can be filmed now (parse time and the watch loop; no torch) ------------------------


def incomplete_checkpoints(root: str | Path, steps: list[int]) -> dict[int, str]:
    """{step: why} of the checkpoint-<step> folders of a Trainer output folder that cannot be filmed (yet):
    still being written, or broken (see incomplete_checkpoint). A checkpoint newer than every checkpoint
    with a trainer_state.json must have one too: the Trainer writes it last (an older one, such as a
    checkpoint-0 saved by hand before training, need not)."""
    root = Path(root)
    with_state = [s for s in steps if (root / f"checkpoint-{s}" / "trainer_state.json").is_file()]
    newest = max(with_state, default=None)
    problems = {}
    for step in steps:
        needs_state = newest is not None and step > newest
        if why := incomplete_checkpoint(root / f"checkpoint-{step}", needs_state):
            problems[step] = why
    return problems


def incomplete_checkpoint(folder: str | Path, needs_state: bool) -> str | None:
    """Why a checkpoint folder cannot be filmed (yet): still being written, or broken; None when it can.
    `needs_state`: it is complete only with its trainer_state.json. Header and size checks only (no torch):
    milliseconds per folder."""
    path = Path(folder)
    if not (path / "config.json").is_file():
        return "has no config.json yet"
    try:
        weights = weight_files(path)
    except UserError as err:
        return f"has an unreadable weight index ({err})"
    if not weights:
        if any((path / name).is_file() for name in PICKLE_FILES):
            return None  # only pickled weights: allowed or refused by allow_pickle_checkpoints, not incomplete
        return "has no model.safetensors yet"
    for file in weights:
        if not file.is_file():
            return f"lacks the weight file '{file.name}' yet"
        problem = safetensors_problem(file)
        if problem:
            return f"has a {file.name} that {problem}"
    if needs_state:
        state = path / "trainer_state.json"
        if not state.is_file():
            return "has no trainer_state.json yet (the Trainer writes it last)"
        try:
            json.loads(state.read_text())
        except (OSError, ValueError):
            return "has a trainer_state.json that is not whole JSON yet"
    return None


def weights_of(folder: str | Path) -> Path:
    """A checkpoint's (first) weight file: what changes when the checkpoint is replaced."""
    path = Path(folder)
    try:
        files = weight_files(path)
    except UserError:
        files = []
    return next(iter(files), next((path / n for n in PICKLE_FILES if (path / n).is_file()), path / "model.safetensors"))


def record_failure(record: str | Path, checkpoint: str | Path, reason: str) -> None:
    """Note that a checkpoint failed for a reason of its own (common.CheckpointError), with its weight file's
    size and time, so that later runs leave it out until the file changes."""
    weights = weights_of(checkpoint)
    stat = weights.stat()
    save_json(record, {"reason": reason, "weights": str(weights), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})


def failed_before(record: str | Path, checkpoint: str | Path) -> str | None:
    """The reason a checkpoint failed earlier, while its weight file is unchanged since; else None."""
    path = Path(record)
    if not path.is_file():
        return None
    try:
        noted = load_json(path)
        stat = weights_of(checkpoint).stat()
    except (OSError, ValueError):
        return None
    if (noted.get("size"), noted.get("mtime_ns")) != (stat.st_size, stat.st_mtime_ns):
        return None
    return str(noted.get("reason", "it failed before"))
