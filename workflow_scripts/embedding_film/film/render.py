"""Stage 6: one frame per checkpoint (rule frame; the interpolated frames' rule tween is tween.py).

In:  projection/{step}.npy, ood/{step}.npy, label_issues/{step}.npy, metrics/{step}.json,
     the frame's view (projection/limits.json, the camera's camera.json, or the causal view the frame job
     replayed: axis limits and zoom), data/labels.npy, data/thumbnails.npy, data/classes.json, the loss curve
     (train_log.csv, or for external checkpoints the checkpoint's own trainer_state.json), and the previous
     checkpoint's scores and label issues (rank changes).
Out: frames/{step}.png: the 2-D embedding coloured by class (fixed axes for the whole film) with the top-k
     marked, a leaderboard (top-k outliers by cleanlab OOD score, or top-k label issues) with each entry's
     rank change since the previous checkpoint, the loss curve with the current step, the checkpoint's
     metrics, and the true step number in the title.

Matplotlib's object-oriented API with the Agg canvas (no pyplot state, no GUI backend); the scatter is
rasterised so a 10,000-point frame renders as fast as a 100-point one.
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedding_film.film.checkpoints import read_train_log
from embedding_film.film.common import UserError, atomic_path, load_json, load_npy
from embedding_film.film.ood import top_outliers

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
    view: dict[str, Any] = field(default_factory=dict)  # {"x": [x0, x1], "y": [y0, y1], "zoom": z}
    layout: str = "PCA, aligned"  # what the scatter's positions are (layout_label)


def layout_label(layout_files: str | list[str], align: str) -> str:
    """What the scatter shows, for its title: the film-wide layout's method (the one auto kept), else PCA."""
    layout_files = [layout_files] if isinstance(layout_files, str) else list(layout_files)
    if not layout_files:
        return "PCA, aligned"
    with np.load(layout_files[0], allow_pickle=False) as layout:
        method = str(layout["method"]) if "method" in layout.files else "pca"
    if method == "pca":
        return {"global": "PCA, one basis", "reference": "PCA, one basis", "gpa": "PCA, aligned (GPA)"}.get(
            align, "PCA, aligned"
        )
    return {"param": "learned map", "tsne": "pooled t-SNE", "umap": "AlignedUMAP"}.get(method, method)


def read_loss_curve(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(steps, losses) of train_log.csv or a checkpoint's trainer_state.json (empty without one)."""
    pairs = read_train_log(path).get("loss", []) if path else []
    return np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=float)


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


def embedding_panel(ax: Any, frame: Frame, ctx: FilmContext, colours: np.ndarray, point_size: float) -> None:
    """The 2-D embedding in the film's fixed axes, coloured by class, the leaderboard's images ringed and
    numbered, the class legend beside it and the checkpoint's metrics underneath."""
    from matplotlib.lines import Line2D

    top = frame.board.indices
    xlim, ylim = frame.view["x"], frame.view["y"]
    xy = np.column_stack([np.clip(frame.coords[:, 0], *xlim), np.clip(frame.coords[:, 1], *ylim)])
    ax.scatter(xy[:, 0], xy[:, 1], c=colours[ctx.labels], s=point_size, linewidths=0, alpha=0.8, rasterized=True)
    ax.scatter(xy[top, 0], xy[top, 1], s=point_size * 8, facecolors="none", edgecolors="black", linewidths=1.2)
    for rank, i in enumerate(top, start=1):
        ax.annotate(str(rank), xy[i], xytext=(4, 4), textcoords="offset points", fontsize=8, weight="bold")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    zoom = float(frame.view.get("zoom", 1.0))
    if zoom > 1.05:  # the camera magnifies this frame: say so (the widest frame is zoom 1)
        ax.text(
            0.99,
            0.01,
            f"zoom \u00d7{zoom:.1f}",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=9,
            color="0.3",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "0.7"},
        )
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"Embeddings of the eval images ({frame.layout})", fontsize=11)
    handles = [
        Line2D([], [], linestyle="none", marker="o", markersize=5.5, markeredgewidth=0, color=colours[i], label=name)
        for i, name in enumerate(ctx.class_names[:20])
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
        title="class",
        title_fontsize=9,
        handletextpad=0.2,
        borderaxespad=0.2,
    )
    shown = [
        f"{label} {frame.metrics[key]:.2f}"
        for key, label in METRIC_LABELS
        if key in frame.metrics and not math.isnan(frame.metrics[key])
    ]
    if shown:
        ax.text(0.0, -0.03, "   ".join(shown), transform=ax.transAxes, ha="left", va="top", fontsize=9, color="0.25")


def leaderboard_panel(fig: Any, cell: Any, frame: Frame, ctx: FilmContext, colours: np.ndarray) -> None:
    """The top-k images of the leaderboard as thumbnails framed in their class colour, with rank changes.

    One axes holds the whole grid (each thumbnail an image with its own extent): six thumbnail axes of their
    own cost a third of a frame's drawing time in ticks and spines nobody sees.
    """
    top = frame.board.indices
    heading = (
        f"Top-{len(top)} outliers (cleanlab OOD score, low = outlying)"
        if frame.board.kind == "ood"
        else f"Top-{len(top)} label issues (cleanlab, by self-confidence)"
    )
    fig.text(0.79, 0.935, heading, ha="center", fontsize=10)
    if not len(top):
        fig.text(0.79, 0.75, "none", ha="center", fontsize=10, color="0.5")
        return
    from matplotlib.patches import Rectangle

    cols = min(4, len(top))
    rows = -(-len(top) // cols)
    gap_x, gap_y = 0.25, 0.6  # between thumbnails, in thumbnail sizes (room for the two-line titles)
    ax = fig.add_subplot(cell)
    ax.set_axis_off()
    ax.set_xlim(-gap_x / 2, cols * (1 + gap_x) - gap_x / 2)
    ax.set_ylim(rows * (1 + gap_y) - gap_y / 2, -gap_y / 2)
    ax.set_aspect("equal", adjustable="box", anchor="C")
    for rank, (i, value) in enumerate(zip(top, frame.board.values), start=1):
        x0, y0 = ((rank - 1) % cols) * (1 + gap_x), ((rank - 1) // cols) * (1 + gap_y) + gap_y / 2
        ax.imshow(ctx.thumbnails[i], interpolation="nearest", extent=(x0, x0 + 1, y0 + 1, y0))
        ax.add_patch(Rectangle((x0, y0), 1, 1, fill=False, edgecolor=colours[ctx.labels[i]], linewidth=3))
        detail = f"{value:.2g}" if frame.board.kind == "ood" else "suspect label"
        ax.text(
            x0 + 0.5,
            y0 - 0.04,
            f"#{rank}{frame.board.change(i, rank)} {ctx.class_names[ctx.labels[i]]}\n{detail}",
            ha="center",
            va="bottom",
            fontsize=8,
        )


def loss_panel(ax: Any, frame: Frame, ctx: FilmContext) -> None:
    """The training loss, red up to the current step, with a cursor at the current step."""
    if len(ctx.loss_steps):
        ax.plot(ctx.loss_steps, ctx.loss_values, color="0.3", linewidth=1.2)
        seen = ctx.loss_steps <= frame.step
        ax.plot(ctx.loss_steps[seen], ctx.loss_values[seen], color="tab:red", linewidth=1.8)
    else:
        ax.text(0.5, 0.5, "no training log", ha="center", va="center", transform=ax.transAxes, color="0.5")
    ax.axvline(frame.step, color="tab:red", linestyle="--", linewidth=1)
    ax.set_xlim(0, max(ctx.max_step, 1))
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel("training loss", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def film_figure(width: int, height: int) -> Any:
    """An empty figure of the film's size on the Agg canvas (no pyplot state, no GUI backend). The layout is
    designed at 1280 px wide; other widths scale the resolution, so text keeps its proportion."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = width / 12.8
    fig = Figure(figsize=(12.8, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def draw_frame(frame: Frame, ctx: FilmContext, width: int = 1280, height: int = 720, point_size: float = 12.0) -> Any:
    """One frame (embedding, leaderboard, loss curve) as a matplotlib Figure (film_figure)."""
    fig = film_figure(width, height)
    outer = fig.add_gridspec(
        2,
        2,
        width_ratios=[1.55, 1],
        height_ratios=[1.35, 1],
        left=0.04,
        right=0.98,
        bottom=0.1,
        top=0.88,
        wspace=0.12,
        hspace=0.3,
    )
    colours = class_colours(len(ctx.class_names))
    embedding_panel(fig.add_subplot(outer[:, 0]), frame, ctx, colours, point_size)
    leaderboard_panel(fig, outer[0, 1], frame, ctx, colours)
    loss_panel(fig.add_subplot(outer[1, 1]), frame, ctx)
    fig.suptitle(f"{ctx.title}   {frame.title}", fontsize=14, weight="bold")
    return fig


def save_png(fig: Any, out: Any) -> None:
    """The figure as PNG at its own resolution; zlib level 3: a third faster to write than matplotlib's 6 for
    about 8% more bytes (frames are drawn every run, and read once by the animation)."""
    fig.savefig(out, format="png", dpi=fig.dpi, pil_kwargs={"compress_level": 3})


def render_frame(frame: Frame, ctx: FilmContext, out_png: str, **style: Any) -> None:
    """Draw one frame (`style`: draw_frame's width, height, point_size) and write it atomically as PNG."""
    fig = draw_frame(frame, ctx, **style)
    with atomic_path(out_png) as tmp:
        save_png(fig, tmp)


def load_context(inputs: Any, max_step: int, title: str) -> FilmContext:
    """What a frame shares with the rest of the film, from a frame or tween job's inputs."""
    loss_steps, loss_values = read_loss_curve(inputs.get("loss_log"))
    return FilmContext(
        labels=load_npy(inputs.labels),
        class_names=list(load_json(inputs.classes)["names"]),
        thumbnails=load_npy(inputs.thumbnails),
        loss_steps=loss_steps,
        loss_values=loss_values,
        max_step=max_step,
        title=title,
    )


def checkpoint_board(inputs: Any, kind: str, top_k: int, n_images: int) -> Leaderboard:
    """A checkpoint's leaderboard, with rank changes against the previous checkpoint when there is one."""
    if top_k >= n_images:
        raise UserError(
            f"frames.top_k ({top_k}) must be smaller than the number of eval images ({n_images}); "
            "lower it or raise dataset.eval_size."
        )
    previous = None
    if "previous_scores" in inputs.keys():
        previous = (load_npy(inputs.previous_scores), load_npy(inputs.previous_issues))
    return leaderboard(kind, load_npy(inputs.scores), load_npy(inputs.issues), top_k, previous)


# ---------------------------------------------------------------- from rule loss_curve


def plot_loss(train_log: str, out: str, steps: Sequence[int], title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = read_train_log(train_log)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if history.get("loss"):
        ax.plot(*zip(*history["loss"]), color="tab:blue", lw=1.5, label="training loss")
        ax.set_ylabel("loss")
        if history.get("learning_rate"):
            lr = ax.twinx()
            lr.plot(*zip(*history["learning_rate"]), color="tab:gray", lw=1, ls="--", label="learning rate")
            lr.set_ylabel("learning rate", color="tab:gray")
            lr.tick_params(axis="y", colors="tab:gray")
    else:
        ax.text(
            0.5,
            0.5,
            "no training log (checkpoints without trainer_state.json)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    for step in steps:  # the filmed checkpoints
        ax.axvline(step, color="tab:orange", alpha=0.25, lw=1)
    ax.set_xlabel("step (orange: filmed checkpoints)")
    ax.set_xlim(min(steps, default=0), max(steps, default=1) or 1)
    ax.set_title(title or "Training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    log.info("wrote %s: %d loss values, %d checkpoints", out, len(history.get("loss", [])), len(steps))


# ---------------------------------------------------------------- from rule tween


def between(step: int, next_step: int, j: int, tween: int) -> tuple[float, float, str]:
    """The interpolation weight, the (fractional) step and the title of the j-th of `tween` frames."""
    alpha = j / (tween + 1)
    title = f"step {step} \u2192 {next_step} (interpolated {j}/{tween + 1})"
    return alpha, step + alpha * (next_step - step), title


_rehearsed = False


def warm_up() -> None:
    """Import matplotlib and draw one throwaway frame (`rehearse`), once per process: a warm worker calls it
    before it forks the frame jobs."""
    global _rehearsed
    if not _rehearsed:
        _rehearsed = True
        rehearse()


def rehearse() -> None:
    """Draw one throwaway frame of made-up data into memory: matplotlib's one-time costs (fonts found for every
    size and weight, glyph and text-layout caches, the PNG writer) are then paid once per worker instead of
    once per frame."""
    import io

    rng = np.random.default_rng(0)
    n, classes = 40, 10
    ctx = FilmContext(
        labels=np.arange(n) % classes,
        class_names=[f"class {c}" for c in range(classes)],
        thumbnails=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8),
        loss_steps=np.arange(10.0),
        loss_values=rng.random(10),
        max_step=9,
        title="rehearsal",
    )
    scores = rng.random(n)
    board = leaderboard("ood", scores, np.arange(3), 6, (scores[::-1].copy(), np.arange(3)))
    metrics = {key: 0.5 for key, _ in METRIC_LABELS}
    frame = Frame("step 1 / 9", 1, rng.normal(size=(n, 2)), board, metrics, {"x": [-3, 3], "y": [-3, 3], "zoom": 2.0})
    save_png(draw_frame(frame, ctx), io.BytesIO())
