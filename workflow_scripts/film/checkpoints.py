"""Checkpoints and their training logs: which steps exist, what trained them, and the loss curve.

Light on purpose (standard library + the project's common helpers): the workflow imports it when it is
parsed, and the training, log-import, frame and report jobs share it.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workflow_scripts.film.common import UserError, atomic_path, load_json

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
        "dataset": dict(dataset),
        "seed": seed,
    }


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
