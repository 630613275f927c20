"""Rule import_train_log: the loss curve of an external training run, from its newest checkpoint's trainer_state.json.

In:  checkpoint-{newest}/trainer_state.json (its `log_history`); none when no checkpoint has one
     (checkpoints saved with save_pretrained only), which gives an empty loss curve.
Out: train_log.csv (step, epoch, loss, learning_rate, grad_norm), read by key name.

The checkpoints folder is only read.
"""


import logging
from typing import Sequence

from workflow_scripts.checkpoints import read_log_history, write_train_log
from workflow_scripts.job import Job

log = logging.getLogger(__name__)


def import_log(state_paths: str | Sequence[str], out: str) -> int:
    """Write the loss rows of the (first) trainer_state.json in `state_paths`; none gives a header-only CSV."""
    paths = [state_paths] if isinstance(state_paths, str) else list(state_paths)
    history = read_log_history(paths[0]) if paths else []
    if not paths:
        log.warning("no checkpoint has a trainer_state.json: the frames show no loss curve")
    return write_train_log(history, out)


def main(job: Job) -> None:
    rows = import_log(list(job.input.state), job.output.train_log)
    log.info("%d loss rows", rows)
