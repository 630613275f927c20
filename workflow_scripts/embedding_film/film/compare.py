"""compare"""

import csv
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedding_film.film.camera import axis_limits
from embedding_film.film.common import atomic_path, load_json, load_npy, progress
from embedding_film.film.metrics import COLUMNS, film_movements, subsample, temporal_stability, trustworthiness
from embedding_film.film.ood import top_outliers
from embedding_film.film.projection import fit_basis, pca_project, project_all
from embedding_film.film.render import class_colours, film_figure, save_png

log = logging.getLogger(__name__)

MODES = ("article", "previous", "first", "gpa", "global", "reference")


def compare(
    embeddings: Sequence[np.ndarray], k: int = 10, max_points: int = 2000, modes: Sequence[str] = MODES
) -> list[dict[str, Any]]:
    idx = subsample(len(embeddings[0]), max_points)
    embeddings = [np.asarray(e, dtype=np.float64)[idx] for e in embeddings]
    rows, high = [], film_movements(embeddings, threads=1)  # the same for every mode; the job holds one core
    for mode in progress(modes, "modes", len(modes)):
        frames = project_all(mode, embeddings)
        trust = [trustworthiness(e, f, k) for e, f in zip(embeddings, frames)]
        rows.append(
            {
                "align": mode,
                **temporal_stability(embeddings, frames, high),
                "mean_trustworthiness": float(np.mean(trust)),
                "min_trustworthiness": float(np.min(trust)),
            }
        )
        log.info("%s", rows[-1])
    return rows


def write_comparison(rows: Sequence[dict[str, Any]], out: str) -> None:
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: f"{v:.4f}" if isinstance(v, float) else v for key, v in row.items()})


# ---------------------------------------------------------------- from rule compare_frame


def loss_at(series: list[tuple[float, float]], step: int) -> float:
    """The last logged loss at or before `step` (NaN before the first)."""
    before = [loss for s, loss in series if s <= step]
    return before[-1] if before else math.nan


def panel_caption(run: str, step: int, last: int, loss: float, metrics: dict[str, float]) -> str:
    parts = [f"loss {loss:.3f}" if not math.isnan(loss) else None]
    for key, label in (("head_accuracy", "head acc"), ("knn_accuracy", "kNN acc")):
        value = metrics.get(key, math.nan)
        parts.append(f"{label} {value:.2f}" if value is not None and not math.isnan(value) else None)
    return f"{run}: step {step} / {last}\n" + "   ".join(p for p in parts if p)


def render_comparison(
    panels: list[dict[str, Any]],
    labels: np.ndarray,
    class_names: list[str],
    title: str,
    note: str,
    out_png: str,
    top_k: int = 8,
    width: int = 1280,
    height: int = 720,
    point_size: float = 12.0,
) -> None:
    """Draw the panels side by side (up to 3 per row) with one class legend, and write the PNG atomically.

    Each panel: {"run", "coords" [N, 2] or None (not started), "limits" [x0, x1, y0, y1], "scores" or None,
    "caption"}.
    """
    fig = film_figure(width, height)
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    grid = fig.add_gridspec(rows, cols, left=0.02, right=0.86, bottom=0.04, top=0.84, wspace=0.08, hspace=0.25)
    colours = class_colours(len(class_names))
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        x0, x1, y0, y1 = panel["limits"]
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(panel["caption"], fontsize=9)
        if panel["coords"] is None:
            ax.text(0.5, 0.5, "not started", ha="center", va="center", transform=ax.transAxes, color="0.5")
            continue
        xy = np.column_stack([np.clip(panel["coords"][:, 0], x0, x1), np.clip(panel["coords"][:, 1], y0, y1)])
        ax.scatter(xy[:, 0], xy[:, 1], c=colours[labels], s=point_size, linewidths=0, alpha=0.8, rasterized=True)
        top = top_outliers(panel["scores"], top_k)
        ax.scatter(xy[top, 0], xy[top, 1], s=point_size * 8, facecolors="none", edgecolors="black", linewidths=1.0)
    handles = [
        fig.axes[0].scatter([], [], color=colours[i], s=30, label=name) for i, name in enumerate(class_names[:20])
    ]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False, title="class", title_fontsize=9)
    fig.suptitle(title, fontsize=14, weight="bold")
    fig.text(0.5, 0.905, note, ha="center", fontsize=9, color="0.3")
    with atomic_path(out_png) as tmp:
        save_png(fig, tmp)


# ---------------------------------------------------------------- from rule compare_layout

SHARED = (
    "one PCA layout for all runs (they start from the same weights): positions are comparable across panels, "
    "on the same axes"
)
SEPARATE = "each run its own aligned layout (they start from different weights): compare shapes, not positions"


def per_run(files: Sequence[str], counts: Sequence[int]) -> list[list[str]]:
    """`files` (every run's checkpoints, run after run) split into one list per run."""
    out, start = [], 0
    for n in counts:
        out.append(list(files[start : start + n]))
        start += n
    return out


def same_start(firsts: Sequence[np.ndarray]) -> bool:
    """Whether the runs' first checkpoints embed the eval images identically (same model, same weights)."""
    return all(f.shape == firsts[0].shape and np.array_equal(f, firsts[0]) for f in firsts[1:])


def compare_layout(
    embeddings: Sequence[Sequence[str]],
    projections: Sequence[Sequence[str]],
    limits: Sequence[str],
    every: int,
    margin: float,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The comparison's layout (see the module docstring): per-run coordinates, panel limits, and why."""
    if same_start([load_npy(run[0]) for run in embeddings]):
        basis = fit_basis([load_npy(p) for run in embeddings for p in run[::every]], seed=seed)
        coords = [np.stack([pca_project(load_npy(p), *basis) for p in run]).astype(np.float32) for run in embeddings]
        common = axis_limits([c.reshape(-1, 2) for c in coords], margin)
        panel_limits = [[*common["x"], *common["y"]]] * len(coords)
        shared, note = True, SHARED
    else:
        coords = [np.stack([load_npy(p) for p in run]).astype(np.float32) for run in projections]
        panel_limits = [[*(lim := load_json(path))["x"], *lim["y"]] for path in limits]
        shared, note = False, SEPARATE
    return {
        **{f"coords_{i}": c for i, c in enumerate(coords)},
        "limits": np.asarray(panel_limits, dtype=np.float64),
        "shared": np.asarray(shared),
        "note": np.asarray(note),
    }


# ---------------------------------------------------------------- from rule compare_metrics

FILM = ("stability_spearman", "movement_stress", "mean_trustworthiness", "min_trustworthiness")


def compare_metrics(
    runs: Sequence[str], tables: Sequence[str], films: Sequence[str], last: dict[str, int], out: str
) -> int:
    """Write the combined table; returns its row count."""
    rows: list[dict[str, Any]] = []
    for run, table, film_path in zip(runs, tables, films):
        film = load_json(film_path)
        with open(table, newline="") as handle:
            for row in csv.DictReader(handle):
                step = int(row["step"])
                rows.append(
                    {
                        "run": run,
                        "fraction": round(step / last[run], 4) if last[run] else 1.0,
                        **row,
                        **{k: film.get(k) for k in FILM},
                    }
                )
    columns = ["run", "step", "fraction", *(c for c in COLUMNS if c != "step"), *FILM]
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
