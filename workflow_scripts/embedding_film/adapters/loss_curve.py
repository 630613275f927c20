"""The report's loss curve: training loss (and learning rate, when logged) against the optimizer step,
with a tick for every filmed checkpoint.

In:  train_log.csv (step, epoch, loss, [learning_rate, ...]); params: the checkpoint steps.
Out: loss_curve.png (for `snakemake --report`; not part of the film itself).

An empty log (external checkpoints without trainer_state.json) gives a figure saying so, not an error.
"""

from embedding_film.adapters import Job
from embedding_film.film.render import plot_loss


def warm(job: Job | None = None) -> None:
    import matplotlib.pyplot  # noqa: F401


def main(job: Job) -> None:
    plot_loss(job.input.train_log, job.output.png, job.params.steps, job.params.title)
