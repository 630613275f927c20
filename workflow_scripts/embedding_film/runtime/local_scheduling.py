"""Snakemake's scheduling, tuned for local runs (called from the Snakefile's `onstart:`).

Snakemake's job-rate limiter (`--max-jobs-per-timespan`, default 100/1s, which no option turns off) schedules a
one-second timer at the end of every scheduling pass, and the pass each timer starts schedules the next one: every
job that finishes starts one more chain of passes, so an 80-checkpoint film ends with about 80 passes a second, each
re-reading the sizes of the ready jobs' inputs (benchmarks/RESULTS.md, "Third pass": a frame setting's 81 frames
took 26-27 s with it, 24-25 s without; Snakemake's CPU 10 -> 7.5 s). Local jobs are limited by `--cores` already, so
the default limit is dropped there; a cluster run (where the limit protects the batch system), or a limit other
than the default, keeps it.
"""

from typing import Any

DEFAULT_LIMIT = (100, 1)  # jobs per seconds: Snakemake's default --max-jobs-per-timespan


def drop_default_rate_limit(workflow: Any) -> bool:
    """Remove the default job-rate limiter of a local run's scheduler (Snakemake's `workflow.scheduler`, built
    before `onstart:` runs). Returns whether it did."""
    scheduler = getattr(workflow, "scheduler", None)
    limiter = getattr(scheduler, "job_rate_limiter", None)
    if not workflow.local_exec or limiter is None or (limiter.max_jobs, limiter.timespan) != DEFAULT_LIMIT:
        return False
    scheduler.job_rate_limiter = None
    return True
