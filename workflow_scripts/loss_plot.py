"""The report's loss curve: training loss (and learning rate, when logged) against the optimizer step,
with a tick for every filmed checkpoint.

In:  train_log.csv (step, epoch, loss, [learning_rate, ...]); params: the checkpoint steps.
Out: loss_curve.png (for `snakemake --report`; not part of the film itself).

An empty log (external checkpoints without trainer_state.json) gives a figure saying so, not an error.
"""

import csv
import logging
import math
from typing import Any, Sequence

from workflow_scripts.common import atomic_path, run_job

log = logging.getLogger(__name__)


def read_log(train_log: str) -> dict[str, list[tuple[float, float]]]:
    """{column: [(step, value), ...]} of the numeric columns of train_log.csv, empty cells skipped."""
    series: dict[str, list[tuple[float, float]]] = {}
    with open(train_log, newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = float(row["step"])
            except (KeyError, TypeError, ValueError):
                continue
            for key, value in row.items():
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    continue
                if key != "step" and math.isfinite(number):
                    series.setdefault(key, []).append((step, number))
    return series


def plot_loss(train_log: str, out: str, steps: Sequence[int], title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = read_log(train_log)
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
        ax.text(0.5, 0.5, "no training log (checkpoints without trainer_state.json)", ha="center", va="center",
                transform=ax.transAxes)
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


def _main(snakemake: Any) -> None:
    plot_loss(snakemake.input.train_log, snakemake.output.png, snakemake.params.steps, snakemake.params.title)


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
