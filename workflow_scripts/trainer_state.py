"""The loss curve of an external training run, from its newest checkpoint's trainer_state.json.

In:  checkpoint-{newest}/trainer_state.json (its `log_history`); none when no checkpoint has one
     (checkpoints saved with save_pretrained only), which gives an empty loss curve.
Out: train_log.csv (step, epoch, loss, learning_rate, grad_norm), read by key name.

The checkpoints folder is only read.
"""


import logging
from typing import Any, Sequence

from workflow_scripts.common import UserError, load_json, run_job
from workflow_scripts.train import write_train_log

log = logging.getLogger(__name__)


def read_log_history(state_path: str) -> list[dict[str, Any]]:
    try:
        state = load_json(state_path)
    except (OSError, ValueError) as err:
        raise UserError(f"'{state_path}' is not readable JSON ({type(err).__name__}); fix or delete that trainer_state.json.") from err
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise UserError(f"'{state_path}' has no log_history list; it is not a Trainer's trainer_state.json (fix or delete it).")
    return [entry for entry in history if isinstance(entry, dict)]


def import_log(state_paths: str | Sequence[str], out: str) -> int:
    """Write the loss rows of the (first) trainer_state.json in `state_paths`; none gives a header-only CSV."""
    paths = [state_paths] if isinstance(state_paths, str) else list(state_paths)
    history = read_log_history(paths[0]) if paths else []
    if not paths:
        log.warning("no checkpoint has a trainer_state.json: the frames show no loss curve")
    return write_train_log(history, out)


def _main(snakemake: Any) -> None:
    rows = import_log(list(snakemake.input), snakemake.output.train_log)
    log.info("%d loss rows", rows)


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
