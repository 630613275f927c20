"""Warm workers (workflow_scripts/embedding_film/runtime/client.py, worker.py): a job runs in a forked child of a worker that imported the heavy
libraries once, with the job's own log, exit status and process; workers kill a job whose client or run went
away, linger after their runs for the next one (FILM_WORKER_LINGER; the tests' default is 0: they end with their
run), serve no new job once what they imported changed on disk, and serve nobody but their user."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from embedding_film.runtime.client import RUN_CLIENT, START_TIMEOUT

PYTHON = sys.executable


def job_spec(tmp_path: Path, k: int = 5, embeddings: Path | None = None) -> str:
    """The JSON of an `ood` job on 40 random embeddings (what rules/setup.smk's job_params builds)."""
    if embeddings is None:
        embeddings = tmp_path / "emb.npy"
        np.save(embeddings, np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
    return json.dumps(
        {
            "input": {"embeddings": str(embeddings)},
            "output": {"scores": str(tmp_path / "ood.npy")},
            "params": {"k": k},
            "wildcards": {"run": "t", "step": "0"},
            "threads": 1,
        }
    )


def client(
    tmp_path: Path, spec: str, owner: int, rule: str = "ood", prelude: str = "", **env: str
) -> subprocess.Popen[str]:
    """Start a job's client as a rule's shell command does (python -S, the job's JSON on stdin); `prelude` runs
    first in the client (to simulate another platform)."""
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO / "workflow_scripts"),
        "FILM_OWNER_PID": str(owner),
        "FILM_WORKERS": "on",
        **env,
    }
    proc = subprocess.Popen(
        [PYTHON, "-S", "-c", prelude + RUN_CLIENT, rule, "--log", str(tmp_path / f"{rule}.log")],
        cwd=tmp_path,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdin.write(spec)
    proc.stdin.close()
    return proc


def workers(owner: int) -> list[int]:
    """The pids of the warm workers serving `owner`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--serve" in cmd and str(owner).encode() in cmd and any(b"embedding_film.runtime.worker" in c for c in cmd):
            found.append(int(proc.name))
    return found


def worker_log(folder: Path, kind: str) -> str:
    """Everything the workers of `kind` serving `folder` logged (one log per kind and setting: client.worker_log)."""
    return "".join(p.read_text() for p in sorted((folder / ".snakemake" / "film-workers").glob(f"{kind}-*.log")))


def children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(proc.name))
    return found


def running_job(folder: Path, owner: int) -> tuple[int, int] | None:
    """(worker, job) once the analysis worker serving `folder` is ready and runs exactly one job, else None.
    (Before it is ready, the process a client started has a child too: the worker it forks to detach.)"""
    if "analysis worker ready" not in worker_log(folder, "analysis"):
        return None
    pairs = [(w, c) for w in workers(owner) for c in children(w)]
    return pairs[0] if len(pairs) == 1 else None


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def owner() -> int:
    """A stand-in for the Snakemake process the workers serve; killed at the end (which ends the workers)."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.kill()
    proc.wait()
    assert wait_until(lambda: not workers(proc.pid)), "workers outlived their Snakemake process"


def test_jobs_run_in_one_warm_worker_with_their_own_log_and_status(tmp_path: Path, owner: int) -> None:
    first = client(tmp_path, job_spec(tmp_path), owner)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    scores = np.load(tmp_path / "ood.npy")
    assert scores.shape == (40,) and ((0 <= scores) & (scores <= 1)).all()
    log = (tmp_path / "ood.log").read_text()
    assert "job resources (forked from a warm worker)" in log  # the job's own process, measured by the worker
    (pid,) = [p for p in workers(owner) if b"analysis" in Path(f"/proc/{p}/cmdline").read_bytes()]
    # a second job is served by the same worker (no second import), and a failing one reports its sentence
    bad = client(tmp_path, job_spec(tmp_path, k=40), owner)
    assert bad.wait(timeout=60) == 1
    assert "ood.k (40) must be smaller than the number of eval images (40)" in (tmp_path / "ood.log").read_text()
    assert pid in workers(owner)
    assert worker_log(tmp_path, "analysis").count("analysis worker ready") == 1


def outliers_spec(tmp_path: Path) -> str:
    """The JSON of an `outliers_table` job (a rule that runs once per film) over two checkpoints' scores."""
    scores = []
    for step in (0, 1):
        scores.append(str(tmp_path / f"scores{step}.npy"))
        np.save(scores[-1], np.random.default_rng(step).random(12))
    (tmp_path / "classes.json").write_text(json.dumps({"names": ["a", "b"], "ids": [f"img{i}" for i in range(12)]}))
    return json.dumps(
        {
            "input": {"scores": scores, "classes": str(tmp_path / "classes.json")},
            "output": {"csv": str(tmp_path / "outliers.csv")},
            "params": {"steps": [0, 1], "top_k": 3},
            "wildcards": {"run": "t"},
            "threads": 1,
        }
    )


def test_a_once_per_film_job_does_not_wait_for_a_starting_worker(tmp_path: Path, owner: int) -> None:
    """prepare_data, layout, animate, ... run in their own process while the workers import for the jobs after
    them; once a worker serves, they are forked from it like the per-checkpoint jobs."""
    first = client(tmp_path, outliers_spec(tmp_path), owner, rule="outliers_table")
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert len((tmp_path / "outliers.csv").read_text().splitlines()) == 1 + 2 * 3
    assert "forked from a warm worker" not in (tmp_path / "outliers_table.log").read_text()
    assert wait_until(lambda: "render worker ready" in worker_log(tmp_path, "render"), timeout=120)
    (tmp_path / "outliers.csv").unlink()
    second = client(tmp_path, outliers_spec(tmp_path), owner, rule="outliers_table")
    assert second.wait(timeout=120) == 0, second.stderr.read()
    assert "forked from a warm worker" in (tmp_path / "outliers_table.log").read_text()
    assert (tmp_path / "outliers.csv").exists()


def test_workers_off_runs_the_job_in_the_clients_place(tmp_path: Path, owner: int) -> None:
    proc = client(tmp_path, job_spec(tmp_path), owner, FILM_WORKERS="off")
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert np.load(tmp_path / "ood.npy").shape == (40,)
    assert "forked from a warm worker" not in (tmp_path / "ood.log").read_text()
    assert workers(owner) == []


# A worker whose layout jobs ask for a slow warm-up (as importing a checkpoint's model class can be).
SLOW_WARM_WORKER = """
import sys, time
import embedding_film.runtime.worker as worker
from embedding_film.adapters import layout
warm = layout.warm
def slow_warm(job=None):
    if job is not None:
        time.sleep(8)
    warm(job)
layout.warm, layout.warm_key = slow_warm, lambda job: "a slow one"
sys.exit(worker.main(sys.argv[1:]))
"""


def test_a_slow_warm_up_never_blocks_the_workers_other_jobs(tmp_path: Path, owner: int) -> None:
    """A job whose warm-up is slow runs at once, doing its own; a successor does the warm-up for the jobs after
    it while the worker goes on serving every other job, then takes over; the worker ends after its jobs."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "workflow_scripts"),
        "FILM_OWNER_PID": str(owner),
        "FILM_WORKERS": "on",
        "OMP_NUM_THREADS": "1",  # as Snakemake sets it for a one-thread job: this worker imports before it would
    }
    log_path = tmp_path / ".snakemake" / "film-workers" / "analysis-slow.log"
    log_path.parent.mkdir(parents=True)
    with open(log_path, "ab") as log_file:
        subprocess.run(
            [PYTHON, "-c", SLOW_WARM_WORKER, "--serve", "analysis", "--owner", str(owner)],
            check=True,
            cwd=tmp_path,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
    assert wait_until(lambda: "analysis worker ready" in log_path.read_text(), timeout=120), log_path.read_text()
    (first,) = [p for p in workers(owner) if b"analysis" in Path(f"/proc/{p}/cmdline").read_bytes()]
    layout_spec = json.dumps(
        {
            "input": {"embeddings": []},
            "output": {"layout": str(tmp_path / "layout.npz")},
            "params": {"method": "pca"},
            "wildcards": {"run": "t"},
            "threads": 1,
        }
    )
    layout = client(tmp_path, layout_spec, owner, rule="layout")
    assert wait_until(lambda: "warms up for layout (a slow one)" in log_path.read_text(), timeout=30)
    ood = client(tmp_path, job_spec(tmp_path), owner)
    assert ood.wait(timeout=60) == 0, ood.stderr.read()
    layout.wait(timeout=60)  # (it fails: no embeddings; what matters is when)
    assert "forked from a warm worker" in (tmp_path / "ood.log").read_text()
    assert "forked from a warm worker" in (tmp_path / "layout.log").read_text()
    assert "serves from now on" not in log_path.read_text()  # both served while the successor still warmed up
    assert wait_until(lambda: "serves from now on" in log_path.read_text(), timeout=30)
    assert wait_until(lambda: first not in workers(owner), timeout=10)  # it ended, its jobs done
    again = client(tmp_path, layout_spec, owner, rule="layout")
    again.wait(timeout=60)
    assert "forked from a warm worker" in (tmp_path / "layout.log").read_text()  # by the successor
    assert log_path.read_text().count("warms up for layout") == 1, log_path.read_text()


def environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def test_jobs_whose_import_time_variables_differ_get_a_worker_each(tmp_path: Path, owner: int) -> None:
    """Libraries read HF_HOME, CUDA_VISIBLE_DEVICES, ... once, when the worker imports them: a job whose values
    differ is served by a worker started with its environment, one whose values agree shares it."""
    homes = [str(tmp_path / "hf-a"), str(tmp_path / "hf-b"), str(tmp_path / "hf-a")]
    for home in homes:
        proc = client(tmp_path, job_spec(tmp_path), owner, HF_HOME=home)
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        assert "forked from a warm worker" in (tmp_path / "ood.log").read_text()
    analysis = [p for p in workers(owner) if b"analysis" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert sorted(environ(p)["HF_HOME"] for p in analysis) == sorted(set(homes))
    assert worker_log(tmp_path, "analysis").count("analysis worker ready") == 2


UNSUPPORTED = {
    "macOS": ("import sys; sys.platform = 'darwin'\n", "they need Linux", "this is darwin"),
    "a kernel without pidfds": (
        "import os\ndef no_pidfds(pid, flags=0): raise OSError(38, 'Function not implemented')\nos.pidfd_open = no_pidfds\n",
        "this kernel has no pidfds",
        "Function not implemented",
    ),
}


@pytest.mark.parametrize("platform", sorted(UNSUPPORTED))
def test_where_workers_cannot_run_every_job_runs_at_once_in_its_own_process(
    tmp_path: Path, owner: int, platform: str
) -> None:
    """On a platform without what workers use, a job that would wait for a worker (ood) runs in its own process
    at once: no worker is started, no claim is probed, and one line in the whole run says so, and why."""
    prelude, *why = UNSUPPORTED[platform]
    started = time.monotonic()
    first = client(tmp_path, job_spec(tmp_path), owner, prelude=prelude)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert time.monotonic() - started < START_TIMEOUT / 3  # never waits for a worker
    assert np.load(tmp_path / "ood.npy").shape == (40,)
    assert "forked from a warm worker" not in (tmp_path / "ood.log").read_text()
    said = [line for line in first.stderr.read().splitlines() if "warm workers are off" in line]
    assert len(said) == 1 and all(part in said[0] for part in why), said
    second = client(tmp_path, job_spec(tmp_path), owner, prelude=prelude)
    assert second.wait(timeout=120) == 0
    assert "warm workers are off" not in second.stderr.read()  # said once per run
    folder = tmp_path / ".snakemake" / "film-workers"
    assert [p.name for p in folder.iterdir()] == [f"off-{owner}.log"]  # no worker's log: none was started
    assert (folder / f"off-{owner}.log").read_text() == said[0] + "\n"
    assert workers(owner) == []


def test_a_job_whose_client_is_killed_is_killed_and_writes_nothing(tmp_path: Path, owner: int) -> None:
    fifo = tmp_path / "never-written.npy"
    os.mkfifo(fifo)  # the job blocks reading it, like a long job
    proc = client(tmp_path, job_spec(tmp_path, embeddings=fifo), owner)
    assert wait_until(lambda: running_job(tmp_path, owner), timeout=120), proc.stderr.read()
    _worker, job = running_job(tmp_path, owner)
    assert not set(workers(owner)) & set(children(proc.pid))  # detached: the job's benchmark does not count them
    proc.send_signal(signal.SIGKILL)  # what Ctrl-C or Snakemake cancelling the job does to the client
    proc.wait()
    assert wait_until(
        lambda: not Path(f"/proc/{job}").exists() or "Z" in Path(f"/proc/{job}/stat").read_text().split()[2]
    )
    assert not (tmp_path / "ood.npy").exists()


def gone(pid: int) -> bool:
    """Whether process `pid` has ended (gone, or a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_job_dies_with_its_worker_and_writes_nothing(tmp_path: Path, owner: int) -> None:
    """A worker killed mid-job (the OOM killer: SIGKILL, no clean-up of its own) takes its job along at once;
    the client reports it, and no output appears afterwards."""
    fifo = tmp_path / "never-written.npy"
    os.mkfifo(fifo)  # the job blocks reading it, like a long job
    proc = client(tmp_path, job_spec(tmp_path, embeddings=fifo), owner)
    assert wait_until(lambda: running_job(tmp_path, owner), timeout=120), proc.stderr.read()
    worker, job = running_job(tmp_path, owner)
    os.kill(worker, signal.SIGKILL)
    assert wait_until(lambda: gone(job), timeout=10), "the job outlived its worker"
    assert proc.wait(timeout=30) == 1
    assert "the warm worker stopped before the job finished" in proc.stderr.read()
    with pytest.raises(OSError):  # nobody reads the fifo any more: a job still waiting would take the data
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    time.sleep(0.5)
    assert sorted(p.name for p in tmp_path.glob("ood*.npy")) + sorted(p.name for p in tmp_path.glob(".ood*")) == []


def test_an_output_is_not_moved_into_place_once_the_client_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forked job checks its client's connection right before it renames an output into place: between the
    client's end and the worker's kill, nothing that looks complete appears."""
    import socket

    from embedding_film.film.common import save_npy
    from embedding_film.runtime import job

    ours, theirs = socket.socketpair()
    monkeypatch.setattr(job, "_CLIENT_FD", None)  # restored after the test
    job.watch_client(ours.fileno())  # as a forked job does: the library checks the client before publishing
    save_npy(tmp_path / "kept.npy", np.zeros(3))
    theirs.close()  # the client ends
    with pytest.raises(job.ClientGone):
        save_npy(tmp_path / "late.npy", np.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["kept.npy"]  # neither the output nor its temporary file
    ours.close()


def test_a_worker_leaves_when_idle(tmp_path: Path, owner: int) -> None:
    proc = client(tmp_path, job_spec(tmp_path), owner, FILM_WORKER_IDLE="1")
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert wait_until(lambda: not workers(owner), timeout=30)
    assert "exits: idle for 1 s" in worker_log(tmp_path, "analysis")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_another_user_cannot_use_the_worker(tmp_path: Path, owner: int) -> None:
    assert client(tmp_path, job_spec(tmp_path), owner).wait(timeout=120) == 0  # the worker is running
    (tmp_path / "ood.npy").unlink()
    tmp_path.chmod(0o777)
    environment = dict(
        os.environ, PYTHONPATH=str(REPO / "workflow_scripts"), FILM_OWNER_PID=str(owner), FILM_WORKERS="on"
    )
    code = f"""
import marshal, os
from embedding_film.runtime import client
address = client.address("analysis", {PYTHON!r})  # the worker's name, as its user computes it
os.setuid(65534)  # then become nobody
sock = client.connect(address)
assert sock is not None, "the worker's socket is reachable"
client.send_request(sock, marshal.dumps({{"rule": "ood"}}))
print(client.await_reply(sock))
"""
    out = subprocess.run(
        [PYTHON, "-c", code], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    assert "may not use this worker" in out.stdout, out.stdout + out.stderr
    assert not (tmp_path / "ood.npy").exists()


def test_a_conda_environment_is_recognised_by_what_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under per-rule conda environments (any --conda-prefix) a client starts only its own kind's worker: the
    others may need another Python. A venv, or a folder that only looks like Snakemake's, starts them all."""
    from embedding_film.runtime import client as c

    env = tmp_path / "my-conda-prefix" / "0123abcd_"  # a custom --conda-prefix: no ".snakemake/conda" in it
    (env / "conda-meta").mkdir(parents=True)
    monkeypatch.setenv("CONDA_PREFIX", str(env))
    monkeypatch.setattr(sys, "prefix", str(env))  # this Python is the environment's
    assert c.kinds_to_start("train") == ["train"]
    monkeypatch.setattr(sys, "prefix", str(tmp_path / ".venv"))  # a venv's Python, a conda env activated around it
    assert c.kinds_to_start("train") == ["train", "analysis", "render"]
    fake = tmp_path / ".snakemake" / "conda" / "0123abcd_"  # the path of one, but no conda environment
    fake.mkdir(parents=True)
    monkeypatch.setenv("CONDA_PREFIX", str(fake))
    monkeypatch.setattr(sys, "prefix", str(fake))
    assert c.kinds_to_start("analysis") == ["analysis", "render"]
    monkeypatch.delenv("CONDA_PREFIX")
    assert c.kinds_to_start("render") == ["render"]


@pytest.fixture
def runs() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Stand-ins for Snakemake runs (a process each), for workers that outlive them; killed at the end, and so
    are the workers they started that still linger."""
    started: list[subprocess.Popen[bytes]] = []

    def run() -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen(["sleep", "600"]))
        return started[-1]

    yield run
    for proc in started:
        proc.kill()
        proc.wait()
        for pid in workers(proc.pid):
            os.kill(pid, signal.SIGKILL)


def ended(run: subprocess.Popen[bytes]) -> None:
    run.kill()
    run.wait()


def test_a_worker_lingers_for_the_next_run_then_ends(
    tmp_path: Path, runs: Callable[[], subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Once its run has ended a worker waits FILM_WORKER_LINGER seconds: the next run in the same folder gets it
    (no import), and when no run comes in time after that one's end (its own setting holds) it ends."""
    from embedding_film.cli.workers import main as list_workers

    first_run = runs()
    first = client(tmp_path, job_spec(tmp_path), first_run.pid, FILM_WORKER_LINGER="60")
    assert first.wait(timeout=120) == 0, first.stderr.read()
    (pid,) = [p for p in workers(first_run.pid) if b"analysis" in Path(f"/proc/{p}/cmdline").read_bytes()]
    ended(first_run)
    time.sleep(1.5)  # three of its checks
    assert not gone(pid)
    assert list_workers(["--directory", str(tmp_path)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("analysis")]
    assert len(listed) == 1 and f"pid {pid} " in listed[0] and "waits for a next run; ends in" in listed[0], listed

    second_run = runs()
    second = client(tmp_path, job_spec(tmp_path), second_run.pid, FILM_WORKER_LINGER="1")
    assert second.wait(timeout=60) == 0, second.stderr.read()
    assert "forked from a warm worker" in (tmp_path / "ood.log").read_text()
    assert worker_log(tmp_path, "analysis").count("analysis worker ready") == 1  # the first run's import
    assert not gone(pid)
    ended(second_run)
    assert wait_until(lambda: gone(pid), timeout=10)
    assert "exits: no run used it for 1 s after its last one ended" in worker_log(tmp_path, "analysis")


def test_a_run_that_ends_mid_job_has_its_job_killed_and_workers_stop_on_request(
    tmp_path: Path, runs: Callable[[], subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Snakemake killed (no Ctrl-C: its job's client lives on) while a job runs: the worker kills the job, writes
    nothing, and lingers; `embedding-film workers --stop` ends it."""
    from embedding_film.cli.workers import main as list_workers

    fifo = tmp_path / "never-written.npy"
    os.mkfifo(fifo)  # the job blocks reading it, like a long job
    run = runs()
    proc = client(tmp_path, job_spec(tmp_path, embeddings=fifo), run.pid, FILM_WORKER_LINGER="60")
    assert wait_until(lambda: running_job(tmp_path, run.pid), timeout=120), proc.stderr.read()
    worker, job = running_job(tmp_path, run.pid)
    ended(run)
    assert wait_until(lambda: gone(job), timeout=10), "the job outlived its run"
    assert proc.wait(timeout=30) != 0
    assert not (tmp_path / "ood.npy").exists()
    assert not gone(worker) and "killing the job" in worker_log(tmp_path, "analysis")
    capsys.readouterr()
    assert list_workers(["--stop", "--directory", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"analysis  pid {worker} " in out and "stopped" in out, out
    assert wait_until(lambda: gone(worker), timeout=10)
    assert "retires: asked to stop" in worker_log(tmp_path, "analysis")


def test_a_worker_whose_libraries_changed_serves_no_new_job(tmp_path: Path, owner: int) -> None:
    """A library installed or upgraded since the worker imported (a folder on sys.path changed): the next job is
    served by a fresh worker, with what is on disk now."""
    libraries = tmp_path / "site-packages"
    libraries.mkdir()
    path = f"{REPO / 'workflow_scripts'}{os.pathsep}{libraries}"
    first = client(tmp_path, job_spec(tmp_path), owner, PYTHONPATH=path)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    (old,) = [p for p in workers(owner) if b"analysis" in Path(f"/proc/{p}/cmdline").read_bytes()]
    (libraries / "new_library.py").write_text("")  # what pip install does to its folder
    second = client(tmp_path, job_spec(tmp_path), owner, PYTHONPATH=path)
    assert second.wait(timeout=120) == 0, second.stderr.read()
    assert "forked from a warm worker" in (tmp_path / "ood.log").read_text()
    log = worker_log(tmp_path, "analysis")
    assert f"retires: {libraries} changed since it imported it" in log and log.count("analysis worker ready") == 2
    assert wait_until(lambda: gone(old), timeout=10)


def test_a_job_at_another_priority_gets_a_worker_of_its_own(tmp_path: Path, owner: int) -> None:
    """A forked job inherits its worker's priority: a film at idle priority (nice 19, as FilmCallback's) never
    lends its workers to a normal run, nor borrows theirs."""
    for prelude in ("", "import os; os.nice(19)\n"):
        proc = client(tmp_path, job_spec(tmp_path), owner, prelude=prelude)
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    analysis = [p for p in workers(owner) if b"analysis" in Path(f"/proc/{p}/cmdline").read_bytes()]
    nice = sorted(int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[16]) for p in analysis)
    assert nice == [0, 19]


def test_a_worker_whose_folder_was_cleaned_ends(tmp_path: Path, runs: Callable[[], subprocess.Popen[bytes]]) -> None:
    """`make clean` (.snakemake/ removed, the worker's log with it) while a worker waits for the next run: it
    ends, and the next run's jobs get a fresh one."""
    import shutil

    run = runs()
    first = client(tmp_path, job_spec(tmp_path), run.pid, FILM_WORKER_LINGER="60")
    assert first.wait(timeout=120) == 0, first.stderr.read()
    (pid,) = [p for p in workers(run.pid) if b"analysis" in Path(f"/proc/{p}/cmdline").read_bytes()]
    ended(run)
    shutil.rmtree(tmp_path / ".snakemake")
    assert wait_until(lambda: gone(pid), timeout=10), "the worker outlived its folder's clean-up"
    again = client(tmp_path, job_spec(tmp_path), runs().pid)
    assert again.wait(timeout=120) == 0, again.stderr.read()
    assert worker_log(tmp_path, "analysis").count("analysis worker ready") == 1  # a fresh worker, a fresh log


def test_a_worker_started_by_a_job_of_several_threads_works_on_one(tmp_path: Path, owner: int) -> None:
    """Snakemake sets OMP_NUM_THREADS & co. to a job's `threads:`, and the job that starts the workers may be a
    layout job (every core): the worker still imports, and its successor warms up (the learned map's first
    steps: a kNN), on one thread. A worker that ran an OpenMP region on more keeps a thread pool that a forked
    job inherits without its threads: the next job to use several threads would wait for them for ever. The map
    is warmed up ahead of the layout job once the run's first job started, not while the worker imports."""
    several = {name: "2" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    proc = client(tmp_path, job_spec(tmp_path), owner, FILM_WARM_LEARNED_MAP="1", **several)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert "forked from a warm worker" in (tmp_path / "ood.log").read_text()  # no thread stopped it forking
    assert wait_until(lambda: "exits: its successor serves" in worker_log(tmp_path, "analysis"), timeout=60)
    text = worker_log(tmp_path, "analysis")
    ready, ahead, warm = (
        text.index(s) for s in ("worker ready", "warms up for layout (learned map)", "warm for layout")
    )
    assert ready < ahead < warm, text
    (pid,) = [p for p in workers(owner) if b"analysis" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert "torch" in Path(f"/proc/{pid}/maps").read_text()  # the successor, warm: it serves
    threads = [Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip() for tid in os.listdir(f"/proc/{pid}/task")]
    assert [t for t in threads if t != "jemalloc_bg_thd"] == ["python"], threads  # the main thread alone


def test_a_worker_with_a_native_thread_pool_forks_nothing() -> None:
    """fork_hazard sees the threads a library starts natively (an OpenMP pool), not only Python's."""
    code = """
import numpy as np, threadpoolctl
from sklearn.metrics import pairwise_distances_argmin_min
from embedding_film.runtime.worker import fork_hazard
assert fork_hazard() is None, fork_hazard()
with threadpoolctl.threadpool_limits(2):
    pairwise_distances_argmin_min(np.random.rand(4000, 16).astype(np.float32), np.random.rand(300, 16).astype(np.float32))
print(fork_hazard())
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "native thread(s) a library started" in out.stdout, out.stdout


def test_a_connection_that_arrives_as_the_successor_takes_over_is_left_to_it(tmp_path: Path) -> None:
    """A worker whose successor says it is warm in the same wake-up as a client connects hands over and stops
    accepting: the connection waits on the shared socket for the successor, and the worker's loop, which has
    just closed its own copy of that socket, does not try to accept it (that would end the worker, and kill the
    jobs it still runs, with an error)."""
    code = """
import os, selectors, socket
from embedding_film.runtime.worker import Worker
worker = Worker("render", os.getpid(), idle=60.0, linger=0.0)
assert worker.claim_name()
worker.listen()
ready, done = os.pipe()
os.write(done, b"R")  # the successor is warm ...
worker.successor = (os.getpid(), ready, ("frame", "a model class"))
worker.selector.register(ready, selectors.EVENT_READ, "successor")
pending = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
pending.connect(worker.address)  # ... and a client connects: both are ready when the loop next wakes
worker.serve()
print("served:", worker.why_not_serving)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts")}
    out = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "served: its successor serves" in out.stdout, out.stdout + out.stderr
    assert "hands over to pid" in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize("end", ["retire", "stop"])
def test_a_client_waiting_as_its_worker_ends_is_told_to_go_elsewhere(tmp_path: Path, end: str) -> None:
    """A client whose connection waits, not yet accepted, while its worker retires (code changed) or stops (idle,
    lingered out) is answered that the worker retired (the client then starts a fresh worker or runs the job
    itself) rather than reset; the next client's connection is refused, and it starts a worker of its own."""
    code = f"""
import os, socket
from embedding_film.runtime import client
from embedding_film.runtime.worker import Worker
worker = Worker("render", os.getpid(), idle=60.0, linger=0.0)
assert worker.claim_name()
worker.listen()
waiting = client.connect(worker.address)
worker.{end}("a test")
print("answer:", client.await_reply(waiting))
print("next:", client.connect(worker.address), client.claimed("render"))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts")}
    out = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "answer: {'status': None, 'retired': 'a test'}" in out.stdout, out.stdout + out.stderr
    assert "next: None False" in out.stdout, out.stdout
