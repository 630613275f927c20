"""Stage 6: one frame per checkpoint.

In:  projection/{step}.npy, ood/{step}.npy, projection/limits.json, data/labels.npy, data/thumbnails.npy,
     data/classes.json, train_log.csv.
Out: frames/{step}.png: the 2-D embedding coloured by class (fixed axes for the whole film), a leaderboard
     of the top-k outliers (thumbnail, class, score), the loss curve with the current step marked, and the
     true step number in the title.

Matplotlib's object-oriented API with the Agg canvas (no pyplot state, no GUI backend); the scatter is
rasterised so a 10,000-point frame renders as fast as a 100-point one.
"""


import csv
import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from workflow_scripts.common import atomic_path, load_json, load_npy, progress, run_job
from workflow_scripts.ood import top_outliers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FilmContext:
    """What every frame of the film shares."""

    labels: np.ndarray
    class_names: list[str]
    thumbnails: np.ndarray
    loss_steps: np.ndarray
    loss_values: np.ndarray
    limits: dict[str, list[float]]
    max_step: int
    title: str


def read_loss_curve(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, losses) from train_log.csv, read by column name."""
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("loss") not in (None, "")]
    return np.array([float(r["step"]) for r in rows]), np.array([float(r["loss"]) for r in rows])


def class_colours(n: int) -> np.ndarray:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"]
    return np.array([cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(n)])


def render_frame(
    step: int,
    coords: np.ndarray,
    scores: np.ndarray,
    ctx: FilmContext,
    out_png: str,
    width: int = 1280,
    height: int = 720,
    top_k: int = 8,
    point_size: float = 12.0,
    dpi: int = 100,
) -> None:
    """Draw one frame and write it atomically as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(2, 2, width_ratios=[1.55, 1], height_ratios=[1.35, 1], left=0.04, right=0.98,
                             bottom=0.08, top=0.88, wspace=0.12, hspace=0.3)
    colours = class_colours(len(ctx.class_names))
    top = top_outliers(scores, min(top_k, len(scores)))

    # The embedding, fixed axes; points beyond the limits are drawn on the edge.
    ax = fig.add_subplot(outer[:, 0])
    xy = np.column_stack([np.clip(coords[:, 0], *ctx.limits["x"]), np.clip(coords[:, 1], *ctx.limits["y"])])
    ax.scatter(xy[:, 0], xy[:, 1], c=colours[ctx.labels], s=point_size, linewidths=0, alpha=0.8, rasterized=True)
    ax.scatter(xy[top, 0], xy[top, 1], s=point_size * 8, facecolors="none", edgecolors="black", linewidths=1.2)
    for rank, i in enumerate(top, start=1):
        ax.annotate(str(rank), xy[i], xytext=(4, 4), textcoords="offset points", fontsize=8, weight="bold")
    ax.set_xlim(*ctx.limits["x"])
    ax.set_ylim(*ctx.limits["y"])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("Embeddings of the eval images (PCA, aligned)", fontsize=11)
    handles = [
        ax.scatter([], [], color=colours[i], s=30, label=name) for i, name in enumerate(ctx.class_names[:20])
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
              title="class", title_fontsize=9, handletextpad=0.2, borderaxespad=0.2)

    # Leaderboard of the most outlying images.
    cols = min(4, len(top)) or 1
    rows = -(-len(top) // cols)
    board = outer[0, 1].subgridspec(rows, cols, wspace=0.25, hspace=0.55)
    for rank, i in enumerate(top, start=1):
        tax = fig.add_subplot(board[(rank - 1) // cols, (rank - 1) % cols])
        tax.imshow(ctx.thumbnails[i], interpolation="nearest")
        tax.set_xticks([])
        tax.set_yticks([])
        for spine in tax.spines.values():
            spine.set_edgecolor(colours[ctx.labels[i]])
            spine.set_linewidth(3)
        tax.set_title(f"#{rank} {ctx.class_names[ctx.labels[i]]}\n{scores[i]:.2g}", fontsize=8, pad=2)
    fig.text(0.79, 0.935, f"Top-{len(top)} outliers (cleanlab OOD score, low = outlying)", ha="center", fontsize=10)

    # Loss curve with the current step.
    lax = fig.add_subplot(outer[1, 1])
    if len(ctx.loss_steps):
        lax.plot(ctx.loss_steps, ctx.loss_values, color="0.3", linewidth=1.2)
        seen = ctx.loss_steps <= step
        lax.plot(ctx.loss_steps[seen], ctx.loss_values[seen], color="tab:red", linewidth=1.8)
    else:
        lax.text(0.5, 0.5, "no training log", ha="center", va="center", transform=lax.transAxes, color="0.5")
    lax.axvline(step, color="tab:red", linestyle="--", linewidth=1)
    lax.set_xlim(0, max(ctx.max_step, 1))
    lax.set_xlabel("step", fontsize=9)
    lax.set_ylabel("training loss", fontsize=9)
    lax.tick_params(labelsize=8)
    lax.grid(alpha=0.3)

    fig.suptitle(f"{ctx.title}   step {step} / {ctx.max_step}", fontsize=14, weight="bold")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def load_context(inputs: Any, max_step: int, title: str) -> FilmContext:
    loss_steps, loss_values = read_loss_curve(inputs.train_log)
    return FilmContext(
        labels=load_npy(inputs.labels),
        class_names=list(load_json(inputs.classes)["names"]),
        thumbnails=load_npy(inputs.thumbnails),
        loss_steps=loss_steps,
        loss_values=loss_values,
        limits=load_json(inputs.limits),
        max_step=max_step,
        title=title,
    )


def render_chunk(
    steps: Sequence[int], projections: Sequence[str], scores: Sequence[str], outputs: Sequence[str], ctx: FilmContext, **style: Any
) -> None:
    for step, proj, score, out in progress(zip(steps, projections, scores, outputs), "frames", len(steps)):
        render_frame(step, load_npy(proj), load_npy(score), ctx, out, **style)


def _main(snakemake: Any) -> None:
    p = snakemake.params
    ctx = load_context(snakemake.input, p.max_step, p.title)
    render_chunk(p.steps, snakemake.input.projections, snakemake.input.scores, snakemake.output.frames, ctx, **p.style)


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
