"""The client every rule's job runs: hands the job to a warm worker, or runs it in this process's place.

A rule's shell command (rules/setup.smk, job("RULE")) is

    exec python -S -c "$RUN_CLIENT" RULE --log LOG --spec JOB_JSON_FILE      (RUN_CLIENT: the code below)

Started without site-packages (and without runpy, which `-m` would import) and importing only built-in modules
(marshal, not json; _socket, not socket), the client costs a few hundredths of a second of CPU, most of it Python's own start:
it runs once per job, hundreds of times per film.

Locally (FILM_WORKERS=auto or on) it connects to the warm worker of its rule's kind (and of its Python, working
folder and IMPORT_TIME_ENV values: address), starting it when there is none (workflow_scripts/embedding_film/runtime/worker.py), sends the
job with its stdin/stdout/stderr, working folder and environment, and exits with the job's status; the worker's
record of the job's own process (wall and CPU seconds, peak memory) is appended to the job's log. Only the rules
with a job per checkpoint, and those that import the worker's own heavy libraries, wait for a worker that is still
importing (WAIT_FOR_WORKER); a rule that runs once per film with light imports (prepare_data, layout, animate, ...)
runs in its own process at once instead, and starts the workers for the jobs after it. With FILM_WORKERS=off,
inside a SLURM job (auto), on a platform without what workers use (workers_supported: Linux only), or when no
worker can be had, it replaces itself with a Python that runs the job itself (embedding_film.runtime.job.run).
docs/runtime.md is the user's guide.
"""

from __future__ import annotations

import _socket
import errno
import marshal
import os
import struct
import sys
import time
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing itself is not imported at run time: this module's start-up is every job's)
    from typing import Any

# Rules by worker kind, in pipeline order: a kind's worker preloads what its rules' adapters import (their
# `warm()`). A kind is the conda environment its rules run in (envs/<kind>.yaml; tests/adapters/test_envs.py).
KINDS: dict[str, tuple[str, ...]] = {
    "train": ("prepare_data", "preprocess", "train", "embed", "train_images", "train_probs"),
    "analysis": (
        "import_train_log",
        "ood",
        "label_issues",
        "layout",
        "project",
        "frame_limits",
        "camera",
        "camera_step",
        "metrics",
        "metrics_table",
        "review",
        "dynamics",
        "train_review",
        "compare_alignment",
        "compare_layout",
        "compare_metrics",
    ),
    "render": (
        "frame",
        "tween",
        "outliers_table",
        "animate",
        "film_html",
        "loss_curve",
        "film_page",
        "data_map",
        "compare_frame",
        "compare_animate",
        "compare_html",
    ),
}
KIND_OF = {rule: kind for kind, rules in KINDS.items() for rule in rules}
# Rules that wait for their kind's worker while it imports: those with one job per checkpoint (or per frame), each
# of which would otherwise pay the imports, and preprocess and train, which import the train worker's own
# libraries (torch, transformers) and would pay them a second time. The others run once per film with lighter
# imports of their own: when no worker serves yet, they run in their own process at once.
WAIT_FOR_WORKER = frozenset(
    {
        "embed",
        "train_probs",
        "ood",
        "label_issues",
        "project",
        "camera_step",
        "metrics",
        "frame",
        "tween",
        "compare_frame",
        "preprocess",
        "train_images",
        "train",
    }
)
# Environment variables that libraries (or Python itself) read once, when a worker imports them: a forked job
# would see its worker's values, whatever its own environment says. So they are part of a worker's address: a
# job whose values differ gets a worker of its own, started with its environment. Not the thread counts
# (OMP_NUM_THREADS, ...), which job.limit_threads applies to each forked job.
IMPORT_TIME_ENV = (
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "HIP_VISIBLE_DEVICES",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "HF_ENDPOINT",
    "HF_DATASETS_CACHE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_CACHE",
    "TRANSFORMERS_OFFLINE",
    "TORCH_HOME",
    "XDG_CACHE_HOME",
    "HOME",
    "MPLBACKEND",
    "MPLCONFIGDIR",
    "NUMBA_CACHE_DIR",
    "NUMBA_DISABLE_JIT",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
)
START_TIMEOUT = 300.0  # seconds a client waits for a starting worker (its imports) before running in-process
LINGER = 300.0  # FILM_WORKER_LINGER's default: seconds a worker waits for a next run once its runs have ended
HEADER = struct.Struct("!Q")
CLAIM = b"/claim"  # a worker's claim name: its address and this
# What a rule's `python -S -c` runs: this module's main() on the command line's arguments.
RUN_CLIENT = "import sys, embedding_film.runtime.client as c; sys.exit(c.main(sys.argv[1:]))"


def mode() -> str:
    """'on' (warm workers) or 'off' (one fresh process per job), from FILM_WORKERS (auto: off in SLURM jobs)."""
    value = os.environ.get("FILM_WORKERS", "auto").lower()
    if value in ("0", "off", "false", "no"):
        return "off"
    if value in ("1", "on", "true", "yes"):
        return "on"
    return "off" if "SLURM_JOB_ID" in os.environ else "on"


def workers_supported() -> str | None:
    """None where warm workers can run, else why they cannot. They use what only Linux has together: abstract
    Unix socket names, SO_PEERCRED (only their user may connect), epoll, pidfds (a job's exit without polling)
    and fork. Anywhere else (macOS, Windows, a kernel older than pidfds) every job runs in its own process."""
    if not sys.platform.startswith("linux"):
        return f"they need Linux (abstract Unix sockets, epoll, pidfds), and this is {sys.platform}"
    needed = {
        "os.fork": hasattr(os, "fork"),
        "os.pidfd_open": hasattr(os, "pidfd_open"),
        "socket.AF_UNIX": hasattr(_socket, "AF_UNIX"),
        "socket.SO_PEERCRED": hasattr(_socket, "SO_PEERCRED"),
    }
    missing = [name for name, there in needed.items() if not there]
    if missing:
        return f"this Python has no {', '.join(missing)}"
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as err:
        return f"this kernel has no pidfds ({err.strerror}; Linux 5.3 and later have them)"
    return None


def announce_off(why: str, owner: int) -> None:
    """Say once per Snakemake run (the first client to find workers unsupported says it) that every job runs in
    its own process, and why: on the job's stderr, which Snakemake shows, and in the workers' log folder."""
    path = os.path.join(".snakemake", "film-workers", f"off-{owner}.log")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        return  # said already (or the folder is not writable: the jobs run all the same)
    line = f"embedding_film.runtime.client: warm workers are off, every job runs in its own process: {why}\n"
    os.write(fd, line.encode())
    os.close(fd)
    print(line, end="", file=sys.stderr, flush=True)


def owner_pid() -> int:
    """The process the job's run belongs to: Snakemake, or the live mode's process that runs Snakemake round after
    round (FILM_OWNER_PID, set in rules/setup.smk; the client's parent when not run by Snakemake). A worker kills the
    jobs of an owner that has ended, and lingers for FILM_WORKER_LINGER seconds once all its owners have ended."""
    try:
        return int(os.environ["FILM_OWNER_PID"])
    except (KeyError, ValueError):
        return os.getppid()


def inherited() -> str:
    """What a forked job inherits from its worker rather than from its client, as a string: the scheduling policy
    and nice value (a film started at idle priority by FilmCallback must not lend its workers to a normal run), the
    CPUs it may run on, the umask its outputs are created with, and the control group whose limits it runs under
    (a run started in a memory-limited scope must not use a worker started outside it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    try:
        with open("/proc/self/cgroup") as handle:
            group = handle.read()
    except OSError:
        group = ""
    return f"{os.sched_getscheduler(0)}/{os.getpriority(os.PRIO_PROCESS, 0)}/{cpus}/{mask:o}/{group}"


def address(kind: str, python: str = sys.executable) -> bytes:
    """The abstract socket name of a worker: per user, kind, and a digest of the Python, the working folder, the
    values of IMPORT_TIME_ENV and what a job inherits from its worker (inherited()), all of this process. Not per
    Snakemake run: a later run in the same folder with the same settings finds the workers an earlier one left
    (they linger: worker.py)."""
    env = "\0".join(f"{name}={os.environ[name]}" for name in IMPORT_TIME_ENV if name in os.environ)
    key = f"{os.path.abspath(python)}{os.sep}{os.getcwd()}{os.sep}{env}{os.sep}{inherited()}"
    return f"\0embedding-film/{os.getuid()}/{kind}/{zlib.crc32(key.encode()):08x}".encode()


def claim_address(kind: str) -> bytes:
    """The name a worker holds from its start (address() only once it has imported and serves)."""
    return address(kind) + CLAIM


def claimed(kind: str) -> bool:
    """Whether a worker of `kind` is starting or serving (it holds the claim name: binding it fails as taken).
    Any other failure is no worker's: one started would fail the same way, and the client then runs the job."""
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        probe.bind(claim_address(kind))
    except OSError as err:
        return err.errno == errno.EADDRINUSE
    finally:
        probe.close()
    return False


def worker_log(kind: str) -> str:
    """The log of the workers of `kind` that serve this folder with this process's settings (named after the
    digest in their address: a lingering worker that a later run uses goes on writing to it)."""
    digest = address(kind).rsplit(b"/", 1)[1].decode()
    return os.path.join(".snakemake", "film-workers", f"{kind}-{digest}.log")


def serving(kind: str) -> bool:
    """Whether a worker of `kind` serves (or is starting) for this folder and this process's settings."""
    return workers_supported() is None and claimed(kind)


def connect(addr: bytes) -> _socket.socket | None:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(addr)
    except OSError:
        sock.close()
        return None
    return sock


def in_conda_env() -> bool:
    """Whether this Python is the one of the activated conda environment (CONDA_PREFIX, a folder with
    conda-meta/), as under Snakemake's per-rule environments (`--sdm conda`, wherever `--conda-prefix` puts
    them): each kind's rules may then run under a Python of their own."""
    prefix = os.environ.get("CONDA_PREFIX", "")
    if not prefix or not os.path.isdir(os.path.join(prefix, "conda-meta")):
        return False
    return os.path.realpath(prefix) == os.path.realpath(sys.prefix)


def kinds_to_start(kind: str) -> list[str]:
    """`kind` and, so that their imports overlap with this kind's jobs, the kinds after it in the pipeline
    (KINDS' order: a run that starts by embedding will score and draw, one that starts by drawing will not
    embed); only `kind` in a conda environment (in_conda_env), where the others may need another Python."""
    kinds = list(KINDS)
    return [kind] if in_conda_env() else kinds[kinds.index(kind) :]


def start_workers(kind: str, owner: int) -> Any:
    """Start the workers of kinds_to_start(kind), unless one is starting or serving already (a worker that
    loses a start race exits at once). Returns the process started for `kind` (None when a worker was
    there); it exits once its worker, detached from this client, holds the claim."""
    import subprocess

    procs = {}
    for other in kinds_to_start(kind):
        if claimed(other):
            continue
        log_path = worker_log(other)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, "ab") as log_file:
            procs[other] = subprocess.Popen(
                [sys.executable, "-m", "embedding_film.runtime.worker", "--serve", other, "--owner", str(owner)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this client (and lingers after its Snakemake run: worker.py)
                close_fds=True,
            )
    return procs.get(kind)


def connect_or_start(kind: str, wait: bool = True) -> _socket.socket | None:
    """A connection to the serving worker of `kind`; without one, start the workers and wait for it (None
    when it cannot start, or at once when `wait` is false)."""
    addr = address(kind)
    sock = connect(addr)
    if sock is not None:
        return sock
    proc = start_workers(kind, owner_pid())
    deadline = time.monotonic() + START_TIMEOUT
    while wait and time.monotonic() < deadline:
        sock = connect(addr)
        if sock is not None:
            return sock
        if proc is not None and proc.poll() is not None:
            if proc.returncode != 0:
                return None  # the worker this client started failed
            proc = None  # it exits 0 once a worker holds the claim (its own, detached, or a rival's)
        if proc is None and not claimed(kind):
            return None  # the worker it waited for is gone
        time.sleep(0.02)
    return None


def send_request(sock: _socket.socket, payload: bytes) -> None:
    """Send the request (length-prefixed, marshal) with this process's stdin/stdout/stderr. A worker that refuses
    it (another user) closes the connection after its reply, which await_reply then reads."""
    try:
        fds = struct.pack("3i", 0, 1, 2)
        sock.sendmsg([HEADER.pack(len(payload))], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        sock.sendall(payload)
    except BrokenPipeError:
        pass


def await_reply(sock: _socket.socket) -> dict[str, Any]:
    """The worker's reply (length-prefixed, marshal); stops waiting (and so kills the job) when this client is
    orphaned."""
    parent = os.getppid()
    sock.settimeout(1.0)
    data = b""
    while len(data) < HEADER.size or len(data) < HEADER.size + HEADER.unpack(data[: HEADER.size])[0]:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if os.getppid() != parent:
                return {"status": 1, "error": "the job's shell is gone"}
            continue
        except OSError:  # (reset: the worker ended with this connection unanswered)
            chunk = b""
        if not chunk:
            return {"status": 1, "error": "the warm worker stopped before the job finished"}
        data += chunk
    return marshal.loads(data[HEADER.size :])


def describe(usage: dict[str, float]) -> str:
    return (
        f"job resources (forked from a warm worker): wall {usage['wall_s']:.2f} s, cpu {usage['cpu_s']:.2f} s, "
        f"max RSS {usage['max_rss_mb']:.0f} MB"
    )


def client(rule: str, log_file: str | None) -> int:
    """Run one job: in a warm worker, or in this process's place when workers are off or unavailable."""
    kind = KIND_OF.get(rule)
    if kind is None:
        print(f"embedding_film.runtime.client: no rule {rule!r} (known: {', '.join(sorted(KIND_OF))})", file=sys.stderr)
        return 2
    sock = None
    if mode() == "on":
        why = workers_supported()
        if why is None:
            sock = connect_or_start(kind, wait=rule in WAIT_FOR_WORKER)
        else:
            announce_off(why, owner_pid())
    if sock is None:
        run_in_place(rule, log_file)  # does not return
    spec = sys.stdin.read()
    env, cwd = dict(os.environ), os.getcwd()
    payload = marshal.dumps({"rule": rule, "log": log_file, "spec": spec, "cwd": cwd, "env": env, "owner": owner_pid()})
    for attempt in range(2):
        try:
            send_request(sock, payload)
            reply = await_reply(sock)
        finally:
            sock.close()
        if not reply.get("retired") or attempt:
            break
        # The worker found its code or libraries changed on disk since it imported them, and gave up its name:
        # this job gets a fresh worker (or runs in its own process).
        sock = connect_or_start(kind, wait=rule in WAIT_FOR_WORKER)
        if sock is None:
            run_in_place(rule, log_file, spec)  # does not return
    if reply.get("fallback") or reply.get("retired"):
        run_in_place(rule, log_file, spec)  # does not return
    if "error" in reply:
        print(f"embedding_film.runtime.client: {reply['error']} (see {worker_log(kind)})", file=sys.stderr)
    elif log_file and "usage" in reply:
        with open(log_file, "a") as handle:
            print(describe(reply["usage"]), file=handle)
    return int(reply["status"])


def run_in_place(rule: str, log_file: str | None, spec: str | None = None) -> None:
    """Replace this client by a normal Python (site-packages on) that runs the job itself, reading the job's
    JSON from stdin (or from `spec`, when this client has read stdin already)."""
    if spec is not None:
        import tempfile

        with tempfile.TemporaryFile() as handle:
            handle.write(spec.encode())
            handle.seek(0)
            os.dup2(handle.fileno(), 0)
    args = [sys.executable, "-m", "embedding_film.runtime.client", rule, "--in-process"]
    if log_file:
        args += ["--log", log_file]
    if os.name != "posix":  # Windows' execv starts a new process and ends this one, whose status Snakemake would read
        import subprocess

        sys.exit(subprocess.call(args))
    os.execv(sys.executable, args)


def in_process(rule: str, log_file: str | None) -> int:
    """Run the job (JSON on stdin) in this process."""
    from embedding_film.adapters import Job
    from embedding_film.runtime.job import run

    return run(Job.from_json(rule, sys.stdin.read(), log_file))


def main(argv: list[str]) -> int:
    """python -S -m embedding_film.runtime.client RULE [--log LOG] [--spec FILE] [--in-process] (the job's JSON in
    FILE, else on stdin; rules run it through `-c`, see the module's docstring)."""
    args = list(argv)
    if "--spec" in args:  # the job's JSON in a file (the rules' form): it becomes this process's stdin
        i = args.index("--spec")
        fd = os.open(args[i + 1], os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
        del args[i : i + 2]
    log_file = None
    if "--log" in args:
        i = args.index("--log")
        log_file = args[i + 1]
        del args[i : i + 2]
    inside = "--in-process" in args
    rules = [a for a in args if a != "--in-process"]
    if len(rules) != 1 or rules[0].startswith("-"):
        print(main.__doc__, file=sys.stderr)
        return 2
    return in_process(rules[0], log_file) if inside else client(rules[0], log_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
