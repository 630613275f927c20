"""Stage 9b: one frame of the comparison film per tick of its common clock (rule compare_frame).

In:  results/compare/{name}/layout.npz (each run's coordinates and panel limits), for every run the OOD
     scores and metrics of the checkpoint its panel shows at this tick, every run's train_log.csv, the eval
     labels and class names (the same eval images in every run).
Out: results/compare/{name}/frames/{tick}.png: one panel per run (its checkpoint at this tick, coloured by
     class, its top-k outliers ringed, its step, loss and accuracies above), one shared colour legend, the
     tick and what the layout means in the title.
"""

import math
from typing import Any

import numpy as np

from workflow_scripts.checkpoints import read_train_log
from workflow_scripts.common import atomic_path, load_json, load_npy
from workflow_scripts.frame import class_colours, film_figure, save_png
from workflow_scripts.job import Job
from workflow_scripts.ood import top_outliers


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
    handles = [fig.axes[0].scatter([], [], color=colours[i], s=30, label=name) for i, name in enumerate(class_names[:20])]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False, title="class", title_fontsize=9)
    fig.suptitle(title, fontsize=14, weight="bold")
    fig.text(0.5, 0.905, note, ha="center", fontsize=9, color="0.3")
    with atomic_path(out_png) as tmp:
        save_png(fig, tmp)


def warm(job: Job | None = None) -> None:
    from workflow_scripts.frame import warm as warm_frame

    warm_frame(job)


def main(job: Job) -> None:
    i, p = job.input, job.params
    runs = list(p.steps)
    with np.load(i.layout, allow_pickle=False) as layout:
        coords = [layout[f"coords_{r}"] for r in range(len(runs))]
        limits, note = layout["limits"], str(layout["note"])
    scores, metrics = iter(i.scores), iter(i.metrics)
    panels = []
    for r, (run, log) in enumerate(zip(runs, i.loss_logs)):
        step = p.shown[run]
        if step is None:
            panels.append({"run": run, "coords": None, "limits": limits[r], "caption": f"{run}: not started"})
            continue
        values = load_json(next(metrics))
        loss = loss_at(read_train_log(log).get("loss", []), step)
        panels.append({
            "run": run,
            "coords": coords[r][p.steps[run].index(step)],
            "limits": limits[r],
            "scores": load_npy(next(scores)),
            "caption": panel_caption(run, step, p.last_steps[run], loss, values),
        })
    clock = "the same training step" if p.clock == "step" else "the same fraction of each run's training"
    render_comparison(
        panels, load_npy(i.labels), list(load_json(i.classes)["names"]), f"{p.tick}  ({clock})", note,
        job.output.frame, top_k=p.top_k, **p.style,
    )
