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

sys.path.insert(0, str(REPO))


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """Run Snakemake on this repo's Snakefile with `workdir` as working directory."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
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


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Dry-run and return {rule: job count} of what Snakemake would run (empty when nothing)."""
    proc = snakemake(workdir, "-n", *args, "--configfile", "test.yaml")
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    jobs = {}
    for line in table.splitlines():
        m = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if m and m.group(1) != "job":
            jobs[m.group(1)] = int(m.group(2))
    jobs.pop("all", None)
    return jobs


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
