"""The loss curve of an external training run, from its newest checkpoint's trainer_state.json.

In:  checkpoint-{last}/trainer_state.json (its `log_history`).
Out: train_log.csv (step, epoch, loss, learning_rate, grad_norm), read by key name.
"""


import logging
from typing import Any

from workflow_scripts.common import UserError, load_json, run_job
from workflow_scripts.train import write_train_log

log = logging.getLogger(__name__)


def import_log(state_path: str, out: str) -> int:
    try:
        history = load_json(state_path)["log_history"]
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"'{state_path}' is not a readable trainer_state.json with a log_history ({err}).") from err
    return write_train_log(history, out)


def _main(snakemake: Any) -> None:
    rows = import_log(snakemake.input.state, snakemake.output.train_log)
    log.info("%d loss rows", rows)


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
