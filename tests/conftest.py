"""Shared fixtures: run the real workflow on a tiny config in a temporary folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

sys.path[:0] = [str(REPO / "workflow_scripts"), str(REPO)]
# Warm workers end with the run that used them, as they did before they lingered for the next run (300 s by
# default): hundreds of test runs in as many folders would otherwise each leave theirs. The tests of lingering set
# it themselves.
os.environ.setdefault("FILM_WORKER_LINGER", "0")


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """Run Snakemake on this repo's Snakefile with `workdir` as working directory."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def set_config(workdir: Path, overrides: dict[str, Any], base: Path | None = None) -> None:
    """Update the workdir's test.yaml (or start from `base`) with `overrides`, one level deep."""
    config = yaml.safe_load((base or workdir / "test.yaml").read_text())
    for key, value in overrides.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    (workdir / "test.yaml").write_text(yaml.safe_dump(config))


def make_workdir(path: Path, overrides: dict[str, Any] | None = None) -> Path:
    """A working directory with the default config.yaml and the tiny config (plus overrides) as test.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.yaml", path / "config.yaml")
    set_config(path, overrides or {}, base=TINY)
    return path


def planned(workdir: Path, *args: str, configfile: str = "test.yaml") -> dict[str, list[str]]:
    """Dry-run and return {rule: sorted job names} of what Snakemake would run (empty when nothing). A job is
    named by its wildcards other than run: the step ("15"), step-j for a tween frame ("15-1"), the format
    for animate ("gif"), "" for a film-level job."""
    proc = snakemake(workdir, "-n", *args, "--configfile", configfile)
    out = proc.stdout + proc.stderr
    jobs: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        if rule == "all":
            continue
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        values = dict(kv.split("=", 1) for kv in wildcards.group(1).split(", ")) if wildcards else {}
        values.pop("run", None)
        jobs.setdefault(rule, []).append("-".join(values[k] for k in ("step", "j", "format") if k in values))
    return {
        rule: sorted(names, key=lambda n: [int(x) if x.isdigit() else x for x in n.split("-")])
        for rule, names in jobs.items()
    }


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Dry-run and return {rule: job count} of what Snakemake would run (empty when nothing)."""
    return {rule: len(names) for rule, names in planned(workdir, *args).items()}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full run of the workflow on the tiny config; tests must not modify it (use `tiny_copy`)."""
    workdir = make_workdir(tmp_path_factory.mktemp("tiny_run"))
    snakemake(workdir, "--configfile", "test.yaml")
    return workdir


def copy_run(workdir: Path, tmp_path: Path) -> Path:
    """A private copy of a finished run's working directory (file times and Snakemake's metadata kept)."""
    dest = tmp_path / "run"
    shutil.copytree(workdir, dest, symlinks=True, copy_function=shutil.copy2)
    return dest


@pytest.fixture
def tiny_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the finished tiny run."""
    return copy_run(tiny_run, tmp_path)
