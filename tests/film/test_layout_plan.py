"""When the film-wide layout is kept for appended checkpoints and when it is refitted (layout_plan.py)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from embedding_film.film.layout_plan import FIRST_FIT, fingerprint, kept_fit_steps, refit_due

TARGETS = {"min_stability": 0.90, "min_trust_mean": 0.95, "min_trust_worst": 0.85}


def test_a_placed_checkpoint_that_keeps_every_target_needs_no_refit() -> None:
    assert refit_due([0, 1, 2, 3], [0, 1, 2], [0.97, 0.96, 0.98, 0.95], 0.93, 0.94, TARGETS) is None
    assert refit_due([0, 1, 2], [0, 1, 2], [0.5, 0.5, 0.5], 0.1, 0.1, TARGETS) is None  # nothing placed


def test_a_placed_frame_below_the_worst_frame_target_calls_for_a_refit() -> None:
    why = refit_due([0, 1, 2, 3], [0, 1, 2], [0.97, 0.96, 0.98, 0.80], 0.93, 0.94, TARGETS)
    assert why.startswith("checkpoint 3, placed on the layout, has trustworthiness 0.800 < 0.85")
    assert why.endswith("(fitted on 3 checkpoints, 1 placed)")


def test_the_film_falling_below_its_stability_or_mean_target_calls_for_a_refit() -> None:
    assert "stability falls to 0.880 < 0.9" in refit_due([0, 1, 2, 3], [0, 1, 2], [0.97] * 4, 0.88, 0.93, TARGETS)
    assert "trustworthiness mean falls to 0.940" in refit_due(
        [0, 1, 2, 3], [0, 1, 2], [0.96, 0.96, 0.96, 0.88], 0.95, 0.95, TARGETS
    )


def test_a_target_the_fitted_checkpoints_miss_too_is_no_reason_to_refit() -> None:
    """A refit would not help: the layout misses it on its own fitted checkpoints."""
    assert refit_due([0, 1, 2, 3], [0, 1, 2], [0.97, 0.80, 0.98, 0.82], 0.85, 0.86, TARGETS) is None
    assert refit_due([0, 1], [0], [0.97, 0.96], 0.80, math.nan, TARGETS) is not None  # one fitted: stability undefined


def write_layout(path: Path, fit_steps: list[int], settings: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, fit_steps=np.asarray(fit_steps, dtype=np.int64), fingerprint=np.array(settings))


def test_kept_fit_steps(tmp_path: Path) -> None:
    layout, film = tmp_path / "projection" / "layout.npz", tmp_path / "film_metrics.json"
    cfg = {
        "seed": 0,
        "metrics": {"k": 10, "max_points": 2000},
        "projection": {"method": "auto", "tsne": {}, "param": {}, "umap": {}, "auto": {}},
    }
    current = fingerprint(cfg)
    assert kept_fit_steps(layout, film, [0, 1, 2], current) == (None, FIRST_FIT)
    write_layout(layout, [0, 1], current)
    assert kept_fit_steps(layout, film, [0, 1, 2], current) == ([0, 1], "kept")
    assert (
        kept_fit_steps(layout, film, [0, 1, 2], fingerprint({**cfg, "seed": 1}))[1] == "the layout's settings changed"
    )
    assert "[0] the layout was fitted on are no longer in the film" in kept_fit_steps(layout, film, [1, 2], current)[1]
    film.write_text(json.dumps({"layout": {"refit_due": "checkpoint 2 misses"}}))
    later = time.time() + 5
    os.utime(film, (later, later))
    assert kept_fit_steps(layout, film, [0, 1, 2], current) == (None, "checkpoint 2 misses")
    os.utime(layout, (later + 5, later + 5))  # a layout refitted after that film: its verdict is stale
    assert kept_fit_steps(layout, film, [0, 1, 2], current) == ([0, 1], "kept")
