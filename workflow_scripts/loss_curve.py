"""The report's loss curve: training loss (and learning rate, when logged) against the optimizer step,
with a tick for every filmed checkpoint.

In:  train_log.csv (step, epoch, loss, [learning_rate, ...]); params: the checkpoint steps.
Out: loss_curve.png (for `snakemake --report`; not part of the film itself).

An empty log (external checkpoints without trainer_state.json) gives a figure saying so, not an error.
"""

import logging
from typing import Sequence

from workflow_scripts.checkpoints import read_train_log
from workflow_scripts.common import atomic_path
from workflow_scripts.job import Job

log = logging.getLogger(__name__)


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


def warm(job: Job | None = None) -> None:
    import matplotlib.pyplot  # noqa: F401


def main(job: Job) -> None:
    plot_loss(job.input.train_log, job.output.png, job.params.steps, job.params.title)
