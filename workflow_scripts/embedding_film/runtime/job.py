"""What a rule's job receives, and running one job in this process.

Every rule's shell command has the same form (rules/jobs.smk, job("RULE")):

    exec python -S -c "$RUN_CLIENT" RULE --log LOG --spec JOB_JSON_FILE  (client.RUN_CLIENT runs client.main)

JOB_JSON_FILE (.snakemake/film-jobs/, named by its content) holds the job's named input, output, params, wildcards, threads and resources (built by Snakemake
from the rule, see `job_params` in rules/jobs.smk). `embedding_film.runtime.client` runs the job in a warm
worker (locally, workflow_scripts/embedding_film/runtime/worker.py) or in its own place (clusters, `FILM_WORKERS=off`); either way `run` below imports
`embedding_film.adapters.<rule>` and calls its `main(job)`, the rule's one adapter.

Standard library only: the worker client imports this module before any heavy library is loaded.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from embedding_film.adapters import Job

log = logging.getLogger("embedding_film")


def setup_logging(log_file: str | os.PathLike[str] | None) -> None:
    """Send this job's log records (and warnings) to the rule's log file and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    logging.captureWarnings(True)


_THREADPOOLS: Any = None  # threadpoolctl's view of the loaded BLAS/OpenMP libraries, found once per worker
# The variables the numeric libraries read their thread counts from when they load (Snakemake sets the first
# four to a job's `threads:`).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def limit_threads(threads: int) -> None:
    """Hold the numeric libraries to the job's `threads:` (a forked job inherits the worker's thread pools'
    settings, which the environment variables Snakemake sets per job can no longer change). A warm worker
    calls it once before forking, so its jobs do not search the loaded libraries again."""
    global _THREADPOOLS
    threads = max(1, int(threads))
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if _THREADPOOLS is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return
        _THREADPOOLS = ThreadpoolController()
    _THREADPOOLS.limit(limits=threads)


_CLIENT_FD: int | None = None  # a job forked by a warm worker: its connection to the job's client


class ClientGone(BaseException):
    """The job's client went away (Ctrl-C, Snakemake cancelled the job): its outputs must not appear. Not an
    Exception, so that no adapter's handler takes it for a failure of its own."""


def watch_client(fd: int) -> None:
    """Make `fd`, the worker's connection to this forked job's client, the one check_client watches, and have
    the film's library call check_client before it moves any output into place."""
    from embedding_film.film.common import check_before_publishing

    global _CLIENT_FD
    if _CLIENT_FD is None:
        check_before_publishing(check_client)
    _CLIENT_FD = fd


def check_client() -> None:
    """Raise ClientGone when this job's client has gone away; called right before an output is moved into place
    (the film library's before_publishing: atomic_path, the trainer's checkpoints). The worker kills such a job too: this closes the moment between the client's end
    and the kill. (The client sends nothing after its request: a readable connection is a closed one.)"""
    if _CLIENT_FD is None:
        return
    import select

    poller = select.poll()
    poller.register(_CLIENT_FD, select.POLLIN | select.POLLRDHUP)
    if poller.poll(0):
        raise ClientGone("the job's client went away: its outputs are not moved into place")


def adapter(rule: str) -> Any:
    """The module of a rule's adapter: workflow_scripts/embedding_film/adapters/<rule>.py, which defines main(job)."""
    if not rule.isidentifier():
        raise ValueError(f"not a rule name: {rule!r}")
    return importlib.import_module(f"embedding_film.adapters.{rule}")


def run(job: Job) -> int:
    """Run one job in this process: log to the rule's log, turn a UserError into one clear line.

    Returns the exit status (0 = success). Any user error or exception is logged, never raised.
    """
    from embedding_film.film.common import UserError

    setup_logging(job.log)
    limit_threads(job.threads)
    try:
        adapter(job.rule).main(job)
    except (UserError, ClientGone) as err:
        log.error("%s", err)
        return 1
    except Exception:  # noqa: BLE001 - every failure ends in the job's log
        log.exception("rule %s failed", job.rule)
        return 1
    return 0
