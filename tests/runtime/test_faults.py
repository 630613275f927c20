"""Faults lose nothing: SIGKILL the whole workflow at several points, rerun, and get the same film."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SNAKEMAKE, make_workdir, snakemake

pytestmark = pytest.mark.workflow

# Each kill happens once the named job's log appears (the job has started), in this order.
KILL_POINTS = [
    ("training", "training/checkpoint-5/trainer_state.json", 0.0),  # after the first checkpoint, mid-training
    ("embeddings", "logs/embed/10.log", 0.05),
    ("frames", "logs/frames/10.log", 0.05),
    ("animation", "logs/animate-gif.log", 0.0),
]


def run_until(workdir: Path, marker: Path, delay: float, timeout: float = 300) -> bool:
    """Start the workflow in its own process group; SIGKILL the group `delay` s after `marker` appears.

    Returns False when the run finished before the marker appeared (nothing to kill)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.Popen(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--cores", "2", "--configfile", "test.yaml"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + timeout
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)  # the tiny model trains its remaining 15 steps in about 0.4 s
    if proc.poll() is not None:
        return False
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def workers_of(workdir: Path, wait: float = 5.0) -> list[int]:
    """The warm workers still running in `workdir` after `wait` seconds (they end with their Snakemake)."""
    deadline = time.time() + wait
    while True:
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
                if (
                    b"embedding_film.runtime.worker" in cmd
                    and b"--serve" in cmd
                    and (proc / "cwd").resolve() == workdir.resolve()
                ):
                    pids.append(int(proc.name))
            except (OSError, ValueError):
                continue
        if not pids or time.time() > deadline:
            return pids
        time.sleep(0.1)


def film_files(workdir: Path) -> dict[str, bytes]:
    res = workdir / "results" / "tiny"
    files = [
        *res.glob("embeddings/*.npy"),
        *res.glob("projection/*.npy"),
        *res.glob("frames/*.png"),
        res / "animation.gif",
    ]
    return {str(p.relative_to(res)): p.read_bytes() for p in files}


def test_killed_runs_resume_to_the_identical_film(tiny_run: Path, tmp_path: Path) -> None:
    workdir = make_workdir(tmp_path / "killed")
    killed = []
    for name, log, delay in KILL_POINTS:
        marker = workdir / "results" / "tiny" / log
        if run_until(workdir, marker, delay):
            killed.append(name)
        snakemake(workdir, "--unlock", "--configfile", "test.yaml")  # a SIGKILLed Snakemake leaves its lock
        if marker.suffix == ".log":
            marker.unlink(missing_ok=True)  # the next run must reach the next point
    assert killed[:3] == ["training", "embeddings", "frames"], killed
    assert "resuming the interrupted training" in (workdir / "results/tiny/logs/train.log").read_text()
    snakemake(workdir, "--configfile", "test.yaml")  # --rerun-incomplete comes from profiles/default
    # (.snakemake_timestamp: Snakemake's own mark of a finished directory() output, the checkpoints folder)
    leftovers = [p for p in (workdir / "results").rglob(".*") if p.is_file() and p.name != ".snakemake_timestamp"]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    assert not workers_of(workdir), "a warm worker outlived its Snakemake"
    expected, got = film_files(tiny_run), film_files(workdir)
    assert sorted(got) == sorted(expected)
    different = [name for name in expected if expected[name] != got[name]]
    assert not different, f"not identical to an uninterrupted run: {different}"
