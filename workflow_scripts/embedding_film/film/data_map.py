"""Pictures of the training dynamics: the data map and a gallery of the suspected label errors.

In:  dynamics.parquet (film.dynamics), data/train_thumbnails.npy (the scored training images, in its order)
     and data/label_noise.csv (the labels dataset.label_noise changed, if any).
Out: data_map.png (confidence against variability, coloured by correctness, as in Dataset Cartography) and
     label_errors.png (the top suspected label errors: image, given label, suggested label, score).

When label noise is on, the changed labels are ringed in both pictures and the titles say so.
"""

import logging
from pathlib import Path
from typing import Any

import numpy as np

from embedding_film.film.common import atomic_path, load_npy
from embedding_film.film.dynamics import region_borders

log = logging.getLogger(__name__)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def changed_rows(noise_csv: str) -> set[int]:
    """The training-split rows whose label dataset.label_noise changed (empty when it is off)."""
    import pandas as pd

    if not Path(noise_csv).is_file():
        return set()
    return {int(r) for r in pd.read_csv(noise_csv)["row"]}


def _message(fig: Any, text: str) -> None:
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12)


def _save(fig: Any, out: str) -> None:
    plt = _pyplot()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_data_map(table_path: str, noise_csv: str, out: str, title: str = "") -> None:
    """The data map: each training image at (variability, confidence), coloured by how often it was predicted
    correctly, with the regions' borders; changed labels ringed when label noise is on."""
    import pandas as pd

    plt = _pyplot()
    table = pd.read_parquet(table_path)
    changed = changed_rows(noise_csv)
    fig, ax = plt.subplots(figsize=(7.5, 6), dpi=100)
    if len(table):
        order = np.argsort(-table["correctness"].to_numpy())  # the rarely correct ones drawn on top
        t = table.iloc[order]
        points = ax.scatter(
            t["variability"], t["confidence"], c=t["correctness"], cmap="RdYlBu", vmin=0, vmax=1, s=9, lw=0
        )
        fig.colorbar(points, ax=ax, label="correctness (share of checkpoints predicting the given label)")
        if changed:
            mask = table["row"].isin(changed).to_numpy()
            ax.scatter(
                table["variability"][mask],
                table["confidence"][mask],
                s=40,
                facecolors="none",
                edgecolors="black",
                lw=0.7,
                label=f"label changed by label_noise ({mask.sum()})",
            )
            ax.legend(loc="lower right", fontsize=8)
        ambiguous, hard = region_borders(table["confidence"].to_numpy(), table["variability"].to_numpy())
        ax.axvline(ambiguous, color="gray", lw=0.8, ls="--")
        ax.plot([0, ambiguous], [hard, hard], color="gray", lw=0.8, ls="--")
        ax.text(0.01, 0.98, "easy to learn", transform=ax.transAxes, va="top", fontsize=9, color="gray")
        ax.annotate(
            "hard to learn (label errors)",
            (0, hard),
            xytext=(4, -4),
            textcoords="offset points",
            va="top",
            fontsize=9,
            color="gray",
        )
        ax.text(0.99, 0.98, "ambiguous", transform=ax.transAxes, ha="right", va="top", fontsize=9, color="gray")
        ax.set_xlim(0, max(1e-6, float(table["variability"].max())) * 1.05)
        ax.set_ylim(-0.02, 1.02)
    else:
        _message(fig, "no training dynamics (see the dynamics job's log)")
    ax.set_xlabel("variability (std of p(given label) over checkpoints)")
    ax.set_ylabel("confidence (mean p(given label))")
    ax.set_title(title or "Data map of the training images")
    fig.tight_layout()
    _save(fig, out)
    log.info("wrote %s: %d training images", out, len(table))


def plot_label_errors(
    table_path: str, thumbnails_path: str, noise_csv: str, out: str, top_k: int, title: str = ""
) -> None:
    """A grid of the `top_k` suspected label errors: image, given -> suggested label, score; a ringed title marks
    a label that label_noise changed."""
    import pandas as pd

    plt = _pyplot()
    table = pd.read_parquet(table_path)
    thumbnails = load_npy(thumbnails_path, mmap=True)
    changed = changed_rows(noise_csv)
    top = table.sort_values("label_error_rank").head(top_k)
    cols = min(8, max(1, len(top)))
    rows = max(1, -(-len(top) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows + 0.6), dpi=100, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    positions = {int(r): i for i, r in enumerate(table["row"])}
    for ax, (_, row) in zip(axes.ravel(), top.iterrows()):
        ax.imshow(thumbnails[positions[int(row["row"])]], interpolation="nearest")
        flipped = int(row["row"]) in changed
        ax.set_title(
            f"#{row['label_error_rank']} {row['class_name']}\u2192{row['suggested_name']}\n"
            f"score {row['label_error_score']:.2f}{' *' if flipped else ''}",
            fontsize=8,
            color="firebrick" if flipped else "black",
        )
    if not len(top):
        _message(fig, "no training dynamics (see the dynamics job's log)")
    note = " (* red: a label that label_noise changed)" if changed else ""
    fig.suptitle((title or "Suspected label errors") + ": given\u2192suggested label" + note, fontsize=10)
    fig.tight_layout()
    _save(fig, out)
    log.info("wrote %s: %d suspected label errors", out, len(top))
