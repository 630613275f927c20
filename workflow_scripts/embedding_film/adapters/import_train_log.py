"""Rule import_train_log: the loss curve of an external training run, from its newest checkpoint's trainer_state.json.

In:  checkpoint-{newest}/trainer_state.json (its `log_history`); none when no checkpoint has one
     (checkpoints saved with save_pretrained only), which gives an empty loss curve.
Out: train_log.csv (step, epoch, loss, learning_rate, grad_norm), read by key name.

The checkpoints folder is only read.
"""

from embedding_film.adapters import Job
from embedding_film.film.checkpoints import import_log, log


def main(job: Job) -> None:
    rows = import_log(list(job.input.state), job.output.train_log)
    log.info("%d loss rows", rows)
