"""Stage 6: one frame per checkpoint (plus optional interpolated frames between checkpoints).

In:  projection/{step}.npy, ood/{step}.npy, label_issues/{step}.npy, metrics/{step}.json,
     projection/limits.json, data/labels.npy, data/thumbnails.npy, data/classes.json, and the loss curve:
     train_log.csv, or for external checkpoints each checkpoint's own trainer_state.json;
     the previous checkpoint's scores (rank changes) and the next checkpoint's projection (tweening).
Out: frames/{step}.png: the 2-D embedding coloured by class (fixed axes for the whole film) with the top-k
     marked, a leaderboard (top-k outliers by cleanlab OOD score, or top-k label issues) with each entry's
     rank change since the previous checkpoint, the loss curve with the current step, the checkpoint's
     metrics, and the true step number in the title.
     frames/tween/{step}-{j}.png: `tween` frames between a checkpoint and the next, points moved along
     the straight line between the two aligned projections, titled as interpolated.

Matplotlib's object-oriented API with the Agg canvas (no pyplot state, no GUI backend); the scatter is
rasterised so a 10,000-point frame renders as fast as a 100-point one.
"""

import csv
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from workflow_scripts.common import UserError, atomic_path, load_json, load_npy, progress, run_job
from workflow_scripts.ood import top_outliers
from workflow_scripts.train import loss_rows
from workflow_scripts.trainer_state import read_log_history

log = logging.getLogger(__name__)

METRIC_LABELS = (
    ("head_accuracy", "head acc"),
    ("knn_accuracy", "kNN acc"),
    ("silhouette", "silhouette"),
    ("trustworthiness", "trustworthiness"),
)


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


@dataclass
class Leaderboard:
    """The ranked images of one checkpoint: indices, the value shown, and the rank each had before."""

    kind: str  # "ood" or "label_issues"
    indices: np.ndarray
    values: np.ndarray
    previous_rank: dict[int, int] | None = None  # image index -> 1-based rank at the previous checkpoint

    def change(self, index: int, rank: int) -> str:
        if self.previous_rank is None:
            return ""
        before = self.previous_rank.get(int(index))
        if before is None:
            return " new"
        if before == rank:
            return " ="
        return f" \u25b2{before - rank}" if before > rank else f" \u25bc{rank - before}"


@dataclass
class Frame:
    """What differs between frames."""

    title: str
    step: float
    coords: np.ndarray
    board: Leaderboard
    metrics: dict[str, float] = field(default_factory=dict)


def read_loss_curve(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, losses) from train_log.csv, read by column name."""
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("loss") not in (None, "")]
    return np.array([float(r["step"]) for r in rows]), np.array([float(r["loss"]) for r in rows])


def class_colours(n: int) -> np.ndarray:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"]
    return np.array([cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(n)])


def full_ranking(kind: str, scores: np.ndarray, issues: np.ndarray) -> np.ndarray:
    """All ranked image indices: by OOD score (lowest first) or cleanlab's label-issue order."""
    return top_outliers(scores, len(scores)) if kind == "ood" else np.asarray(issues, dtype=np.int64)


def leaderboard(
    kind: str, scores: np.ndarray, issues: np.ndarray, top_k: int, previous: tuple[np.ndarray, np.ndarray] | None
) -> Leaderboard:
    ranking = full_ranking(kind, scores, issues)
    top = ranking[:top_k]
    values = scores[top] if kind == "ood" else np.arange(1, len(top) + 1, dtype=float)
    before = None
    if previous is not None:
        prev_ranking = full_ranking(kind, *previous)
        before = {int(i): r for r, i in enumerate(prev_ranking, start=1)}
    return Leaderboard(kind, top, values, before)


def render_frame(
    frame: Frame,
    ctx: FilmContext,
    out_png: str,
    width: int = 1280,
    height: int = 720,
    point_size: float = 12.0,
) -> None:
    """Draw one frame and write it atomically as PNG.

    The layout is designed at 1280 px wide; other widths scale the resolution, so text keeps its proportion.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = width / 12.8
    fig = Figure(figsize=(12.8, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(2, 2, width_ratios=[1.55, 1], height_ratios=[1.35, 1], left=0.04, right=0.98,
                             bottom=0.1, top=0.88, wspace=0.12, hspace=0.3)
    colours = class_colours(len(ctx.class_names))
    top = frame.board.indices

    # The embedding, fixed axes; points beyond the limits are drawn on the edge.
    ax = fig.add_subplot(outer[:, 0])
    coords = frame.coords
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
    handles = [ax.scatter([], [], color=colours[i], s=30, label=name) for i, name in enumerate(ctx.class_names[:20])]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
              title="class", title_fontsize=9, handletextpad=0.2, borderaxespad=0.2)
    shown = [f"{label} {frame.metrics[key]:.2f}" for key, label in METRIC_LABELS
             if key in frame.metrics and not math.isnan(frame.metrics[key])]
    if shown:
        ax.text(0.0, -0.03, "   ".join(shown), transform=ax.transAxes, ha="left", va="top", fontsize=9, color="0.25")

    # Leaderboard.
    heading = (f"Top-{len(top)} outliers (cleanlab OOD score, low = outlying)" if frame.board.kind == "ood"
               else f"Top-{len(top)} label issues (cleanlab, by self-confidence)")
    fig.text(0.79, 0.935, heading, ha="center", fontsize=10)
    if len(top):
        cols = min(4, len(top))
        rows = -(-len(top) // cols)
        board = outer[0, 1].subgridspec(rows, cols, wspace=0.25, hspace=0.6)
        for rank, (i, value) in enumerate(zip(top, frame.board.values), start=1):
            tax = fig.add_subplot(board[(rank - 1) // cols, (rank - 1) % cols])
            tax.imshow(ctx.thumbnails[i], interpolation="nearest")
            tax.set_xticks([])
            tax.set_yticks([])
            for spine in tax.spines.values():
                spine.set_edgecolor(colours[ctx.labels[i]])
                spine.set_linewidth(3)
            detail = f"{value:.2g}" if frame.board.kind == "ood" else "suspect label"
            tax.set_title(f"#{rank}{frame.board.change(i, rank)} {ctx.class_names[ctx.labels[i]]}\n{detail}",
                          fontsize=8, pad=2)
    else:
        fig.text(0.79, 0.75, "none", ha="center", fontsize=10, color="0.5")

    # Loss curve with the current step.
    lax = fig.add_subplot(outer[1, 1])
    if len(ctx.loss_steps):
        lax.plot(ctx.loss_steps, ctx.loss_values, color="0.3", linewidth=1.2)
        seen = ctx.loss_steps <= frame.step
        lax.plot(ctx.loss_steps[seen], ctx.loss_values[seen], color="tab:red", linewidth=1.8)
    else:
        lax.text(0.5, 0.5, "no training log", ha="center", va="center", transform=lax.transAxes, color="0.5")
    lax.axvline(frame.step, color="tab:red", linestyle="--", linewidth=1)
    lax.set_xlim(0, max(ctx.max_step, 1))
    lax.set_xlabel("step", fontsize=9)
    lax.set_ylabel("training loss", fontsize=9)
    lax.tick_params(labelsize=8)
    lax.grid(alpha=0.3)

    fig.suptitle(f"{ctx.title}   {frame.title}", fontsize=14, weight="bold")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def read_state_loss_curve(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, losses) from a checkpoint's trainer_state.json log history, read by key name."""
    rows = loss_rows(read_log_history(path))
    return np.array([float(e["step"]) for e in rows]), np.array([float(e["loss"]) for e in rows])


def loss_curves(
    train_log: str | None, states: Sequence[str], checkpoint_dirs: Sequence[str]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The loss curve of each frame: the training log for all (when given), else each checkpoint's own
    trainer_state.json (empty for a checkpoint without one)."""
    if train_log:
        return [read_loss_curve(train_log)] * len(checkpoint_dirs)
    by_folder = {str(Path(p).parent): p for p in states}
    empty = (np.zeros(0), np.zeros(0))
    return [read_state_loss_curve(by_folder[d]) if d in by_folder else empty for d in checkpoint_dirs]


def load_context(inputs: Any, max_step: int, title: str, loss: tuple[np.ndarray, np.ndarray] | None = None) -> FilmContext:
    loss_steps, loss_values = loss if loss is not None else read_loss_curve(inputs.train_log)
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
    steps: Sequence[int],
    projections: Sequence[str],
    scores: Sequence[str],
    issues: Sequence[str],
    metrics: Sequence[str],
    frames: Sequence[str],
    ctx: FilmContext,
    kind: str = "ood",
    top_k: int = 8,
    previous: tuple[str, str] | None = None,
    tween: int = 0,
    tween_frames: Sequence[str] = (),
    next_step: int | None = None,
    next_projection: str | None = None,
    loss_curves: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    **style: Any,
) -> None:
    """Render a chunk of consecutive checkpoints (and the tween frames after each, when tween > 0)."""
    if top_k >= len(ctx.labels):
        raise UserError(
            f"frames.top_k ({top_k}) must be smaller than the number of eval images ({len(ctx.labels)}); "
            "lower it or raise dataset.eval_size."
        )
    prev = (load_npy(previous[0]), load_npy(previous[1])) if previous else None
    tweens = iter(tween_frames)
    n = len(steps)
    curves = list(loss_curves) if loss_curves is not None else [None] * n
    for j, (step, proj, score, issue, metric, out) in enumerate(
        progress(zip(steps, projections, scores, issues, metrics, frames), "frames", n)
    ):
        if curves[j] is not None:
            ctx = replace(ctx, loss_steps=curves[j][0], loss_values=curves[j][1])
        current = (load_npy(score), load_npy(issue))
        board = leaderboard(kind, *current, top_k, prev)
        coords = load_npy(proj)
        values = load_json(metric)
        render_frame(Frame(f"step {step} / {ctx.max_step}", step, coords, board, values), ctx, out, **style)
        prev = current
        following = (steps[j + 1], projections[j + 1]) if j + 1 < n else (next_step, next_projection)
        if tween and following[0] is not None:
            target = load_npy(following[1])
            for t in range(1, tween + 1):
                alpha = t / (tween + 1)
                position = step + alpha * (following[0] - step)
                title = f"step {step} \u2192 {following[0]} (interpolated {t}/{tween + 1})"
                between = Frame(title, position, (1 - alpha) * coords + alpha * target, board, values)
                render_frame(between, ctx, next(tweens), **style)


def _main(snakemake: Any) -> None:
    i, p = snakemake.input, snakemake.params
    curves = loss_curves(i.get("train_log"), list(i.get("loss_states", [])), p.checkpoint_dirs)
    ctx = load_context(i, p.max_step, p.title, curves[0])
    render_chunk(
        p.steps,
        i.projections,
        i.scores,
        i.label_issues,
        i.metrics,
        snakemake.output.frames,
        ctx,
        kind=p.leaderboard,
        top_k=p.top_k,
        previous=(i.previous_scores, i.previous_issues) if "previous_scores" in i.keys() else None,
        tween=p.tween,
        tween_frames=snakemake.output.tweens,
        next_step=p.next_step,
        next_projection=i.get("next_projection"),
        loss_curves=curves,
        **p.style,
    )


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
