"""Local runs drop Snakemake's default job-rate limiter (workflow_scripts/embedding_film/runtime/local_scheduling.py, called from the
Snakefile's onstart:); cluster runs and limits set by hand keep theirs. Checked against Snakemake's own classes, so
an upgrade that renames what this relies on fails here instead of silently bringing the timers back."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest
from conftest import REPO
from snakemake.cli import get_argument_parser
from snakemake.scheduling.job_scheduler import JobRateLimiter, JobScheduler
from snakemake.settings.types import MaxJobsPerTimespan

from embedding_film.runtime.local_scheduling import drop_default_rate_limit


def fake_workflow(limit: str, local: bool) -> SimpleNamespace:
    limiter = JobRateLimiter(MaxJobsPerTimespan.parse_choice(limit))
    return SimpleNamespace(local_exec=local, scheduler=SimpleNamespace(job_rate_limiter=limiter))


def test_snakemakes_default_limit_is_what_the_workflow_recognises() -> None:
    default = get_argument_parser().get_default("max_jobs_per_timespan")
    limiter = JobRateLimiter(MaxJobsPerTimespan.parse_choice(default))
    assert (limiter.max_jobs, limiter.timespan) == (100, 1)
    assert "self.job_rate_limiter" in inspect.getsource(JobScheduler)  # the attribute the scheduler consults


def test_a_local_run_drops_the_default_limit() -> None:
    workflow = fake_workflow("100/1s", local=True)
    assert drop_default_rate_limit(workflow)
    assert workflow.scheduler.job_rate_limiter is None


@pytest.mark.parametrize("limit, local", [("100/1s", False), ("20/1s", True), ("100/10s", True)])
def test_cluster_runs_and_limits_set_by_hand_keep_theirs(limit: str, local: bool) -> None:
    workflow = fake_workflow(limit, local)
    assert not drop_default_rate_limit(workflow)
    assert workflow.scheduler.job_rate_limiter is not None


def test_the_snakefile_drops_it_when_the_run_starts() -> None:
    snakefile = (REPO / "Snakefile").read_text()
    assert "onstart:\n    drop_default_rate_limit(workflow)" in snakefile
