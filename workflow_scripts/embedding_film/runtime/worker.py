"""Warm workers: one job per checkpoint and stage, without paying the imports once per job.

A fresh Python pays seconds of imports (torch and transformers, cleanlab, scikit-learn, matplotlib; measured
in benchmarks/RESULTS.md, Per-job start-up) against a fraction of a second of work per checkpoint and stage. A warm worker of a kind (client.KINDS:
train, analysis, render, the conda environments of the rules) imports what its rules need once (an adapter's
`warm()`; the rules that run once per film, prepare_data, preprocess and train, have none: their imports would
only delay the first embedding), then forks one child per job. The child takes the job's stdin/stdout/stderr
(passed by the client over the socket), working folder and environment, runs embedding_film.runtime.job.run (the
rule's adapter, logging to the rule's log) and exits; the worker sends the client the exit status and the
child's resource use. So each job is still its own process (crash and memory isolation, its own log and
status), and a rule's `conda:` environment still applies: workers are keyed by the Python they run.

    python -m embedding_film.runtime.worker --serve KIND --owner SNAKEMAKE_PID   (started by the first client)

Lifetime and safety (docs/runtime.md is the user's guide):
- Only on Linux (client.workers_supported: abstract sockets, SO_PEERCRED, epoll, pidfds, fork); elsewhere
  every job runs in its own process.
- A worker listens on an abstract Unix socket named after the user, its kind and a digest of the Python, the
  working folder, the variables libraries read when imported (client.IMPORT_TIME_ENV: a job whose
  CUDA_VISIBLE_DEVICES, HF_HOME, ... differ gets a worker of its own) and what a forked job inherits from it
  (client.inherited: priority, CPUs, umask, control group), once it has imported; from its start it holds a second name (the
  claim), so no second such worker starts. Only processes of the same user may use it (SO_PEERCRED).
- It imports before it forks, on one thread whatever job started it, and never starts threads or touches a
  GPU itself; if it finds another thread (Python's or a library's native pool) or an initialised CUDA after
  importing, it forks nothing and its clients run their jobs themselves.
- It never runs anything slow between two connections: a warm-up that a job asks for (the model class of
  its checkpoint), or that a job's run will need (the learned map of its film's layout, asked for when the
  run's first job of this kind starts, not while the worker imports, which would slow the run's first jobs),
  is done by a successor forked for it, which then serves in its place (Worker.hand_over).
- It serves the runs that use it (each job's FILM_OWNER_PID: a Snakemake process, or a live mode's process that
  runs Snakemake round after round). When a run ends (checked twice a second; even by kill -9) its running
  jobs are killed. Once every run it served has ended it lingers FILM_WORKER_LINGER seconds (default 300; 0:
  it ends with them), so that the next run in the same folder (a checkpoint appended, a setting changed)
  pays no imports; while a run lasts it exits after FILM_WORKER_IDLE seconds without a job (default 300).
- It serves no new job once a file it imported from has changed on disk (a module of this package, a folder
  on sys.path: a library installed or upgraded), or its log or working folder was deleted: it gives up its
  names, so the next client starts a fresh worker, and ends after its running jobs (retire). A client that
  connected as a worker retired or stopped is told so and goes elsewhere (close_listener).
  `embedding-film workers` lists and stops workers.
- A job dies with the worker that forked it (PR_SET_PDEATHSIG), even when the worker is SIGKILLed. When a
  client goes away (Ctrl-C, Snakemake cancelling the job) the worker kills that job's process group at once,
  and the job moves no output into place once its client is gone (job.check_client); outputs are written to
  a temporary file and renamed, so a killed job leaves nothing that looks complete.
"""

import ctypes
import errno
import gc
import marshal
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from embedding_film.runtime.client import CLAIM, HEADER, KIND_OF, KINDS, LINGER, address, owner_pid, workers_supported

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # workflow_scripts/embedding_film

WarmUp = tuple[Callable[[], None], tuple[str, str]]  # what to call, and (rule, warm key): see Worker.hand_over


class Worker:
    """Serves the jobs of one kind: imports once, forks a child per job, reports each child's exit. A warm-up
    that a job asks for (its adapter's warm_key or warm_ahead_key) is done by a successor, never while serving:
    see next_warm_up and hand_over."""

    def __init__(self, kind: str, owner: int, idle: float, linger: float) -> None:
        self.kind, self.idle, self.linger = kind, idle, linger
        self.owners = {owner}  # the runs (Snakemake, a live mode's process) whose jobs it has served and that live
        self.address = address(kind)  # of this environment, before any import can change it
        self.claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.selector = selectors.EpollSelector()
        self.jobs: dict[int, tuple[socket.socket, int, float, int]] = {}  # pidfd -> (client, pid, start, owner)
        self.can_fork = True
        self.last_job = time.monotonic()  # when a job or a successor's warm-up last ran
        self.last_active = self.last_job  # ... or when an owner was last alive (FILM_WORKER_LINGER counts from it)
        self.why_not_serving = ""
        self.files: dict[str, tuple[int, int, int]] = {}  # what it imported from, as it was then (code_changed)
        self.warmed: set[tuple[str, str]] = set()  # (rule, warm key) done or tried by this worker or a predecessor
        self.successor: tuple[int, int, tuple[str, str]] | None = None  # (pid, ready pipe, key) while it warms up
        self.serving = True  # until a successor takes over: then it ends after its running jobs

    def claim_name(self) -> bool:
        """Hold the kind's claim name for the worker's whole life (client.claimed); False if another holds it."""
        try:
            self.claim.bind(self.address + CLAIM)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
            return False  # another client's worker of this kind is starting or serving
        return True

    def listen(self) -> None:
        """Take the serving address, after the imports: clients that find it get a warm worker."""
        self.listener.bind(self.address)
        self.listener.listen(64)
        self.listener.setblocking(False)  # while a successor takes over, both may wake for one connection

    def preload(self) -> None:
        """Import every adapter of this kind and call its warm() (heavy imports, no threads, no GPU)."""
        from embedding_film.runtime.job import THREAD_VARIABLES, adapter, limit_threads

        # One thread in the worker itself, whatever job started it (Snakemake sets OMP_NUM_THREADS & co. to that
        # job's `threads:`): a worker that ran an OpenMP region on more threads keeps a thread pool that its
        # forked jobs inherit without its threads, and the first job to use several threads waits for them
        # for ever. Set before the libraries load, which read these once.
        for name in THREAD_VARIABLES:
            os.environ[name] = "1"
        started = time.monotonic()
        try:
            import tqdm

            tqdm.tqdm.monitor_interval = 0  # tqdm's monitor thread would make forking unsafe (jobs' bars still work)
        except ImportError:
            pass
        for rule in KINDS[self.kind]:
            module = adapter(rule)
            if hasattr(module, "warm"):
                module.warm()
        limit_threads(1)  # finds the BLAS/OpenMP libraries once, for every job (job.limit_threads)
        self.note_files()
        hazard = fork_hazard()
        if hazard:
            self.can_fork = False
            log(f"{hazard} while importing: forking is unsafe, each job will run in a fresh process instead")
        log(f"{self.kind} worker ready in {time.monotonic() - started:.1f} s (pid {os.getpid()})")

    def serve(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        next_check = 0.0
        while self.serving or self.jobs:
            # Clients that went away first: their jobs are killed before anything else is done.
            for key, _ in sorted(self.selector.select(timeout=0.5), key=lambda event: event[0].data != "client"):
                if key.data == "accept":
                    # (Not once an earlier event of this wake-up closed the listener: a successor took over, or
                    # the worker retired. A connection waiting there is the successor's, or finds no worker.)
                    if self.serving:
                        self.accept()
                elif key.data == "client":
                    self.client_gone(key.fileobj)
                elif key.data == "successor":
                    self.successor_done()
                else:
                    self.reap(key.fileobj)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.5
                self.check_owners()
                changed = self.code_changed() if self.serving else None
                if changed:
                    self.retire(changed)
            if self.jobs or self.successor:
                self.last_job = self.last_active = now
            elif not self.serving:
                break
            elif self.owners:
                self.last_active = now
                if now - self.last_job >= self.idle:
                    return self.stop(f"idle for {self.idle:.0f} s")
            elif now - self.last_active >= self.linger:
                return self.stop(self.ended_why())
        self.stop(self.why_not_serving)

    def ended_why(self) -> str:
        if self.linger <= 0:
            return "its Snakemake run ended"
        return f"no run used it for {self.linger:.0f} s after its last one ended (FILM_WORKER_LINGER)"

    def check_owners(self) -> None:
        """Forget the owners that have ended, and kill their running jobs (Snakemake was killed: nobody waits)."""
        for owner in [o for o in self.owners if not alive(o)]:
            self.owners.discard(owner)
            for pidfd, (_conn, pid, _start, job_owner) in self.jobs.items():
                if job_owner == owner:
                    log(f"the run of job {pid} (pid {owner}) ended: killing the job")
                    kill_job(pidfd, pid)

    def note_files(self) -> None:
        """Remember the files of the package's modules imported so far, and the folders on sys.path (a library
        installed, upgraded or removed changes its site-packages folder), as they are now: code_changed()
        compares. Called after each import; what it has noted already keeps its first state."""
        here = os.getcwd()
        modules = [os.path.abspath(m.__file__) for m in list(sys.modules.values()) if getattr(m, "__file__", None)]
        paths = [os.path.abspath(p) for p in sys.path if p and os.path.abspath(p) != here]  # not a config's edit
        paths += [m for m in modules if m.startswith(PACKAGE_ROOT + os.sep)]
        for path in paths:
            if path in self.files:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            self.files[path] = (st.st_mtime_ns, st.st_size, st.st_ino)

    def code_changed(self) -> str | None:
        """What changed on disk of what this worker imported (None: nothing). Its jobs are forked with that code
        in memory, so a worker whose code or libraries changed must serve no new job. A worker whose log or
        working folder was deleted (`make clean`, the folder removed) serves none either: it belongs to a run
        folder that is gone."""
        try:
            if os.fstat(sys.stderr.fileno()).st_nlink == 0:
                return "its log was deleted"
            if os.stat(".").st_nlink == 0:
                return "its working folder was deleted"
        except OSError:
            return "its working folder was deleted"
        for path, state in self.files.items():
            try:
                st = os.stat(path)
                now = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                now = None
            if now != state:
                name = os.path.relpath(path, os.path.dirname(PACKAGE_ROOT)) if path.endswith(".py") else path
                return f"{name} changed since it imported it"
        return None

    def retire(self, why: str) -> None:
        """Serve no new job: give up the names (the next client starts a fresh worker), end after the running
        jobs; a successor still warming up ends now."""
        if not self.serving:
            return
        if self.successor is not None:
            os.kill(self.successor[0], signal.SIGKILL)
        self.close_listener(why)
        self.why_not_serving = f"retired ({why})"
        log(f"{self.kind} worker (pid {os.getpid()}) retires: {why}; it ends after its {len(self.jobs)} running job(s)")

    def close_listener(self, why: str) -> None:
        """Give up the names for good: refuse new connections, tell each client already waiting in the
        listener's backlog (closing the listener would reset its connection) that this worker retired, so that
        it starts a fresh worker or runs its job itself (client.client), then close. (A hand-over closes only
        this process's copy of the listener, which its successor goes on serving: successor_done.)"""
        self.serving = False
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError):
            pass  # not serving yet (still importing), or the selector is closed
        try:
            self.listener.shutdown(socket.SHUT_RD)  # new connections are refused from here on
            while True:
                conn, _ = self.listener.accept()
                reply(conn, {"status": None, "retired": why})
                conn.close()
        except OSError:
            pass  # no client left waiting (BlockingIOError), or the listener never listened
        self.listener.close()
        self.claim.close()

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return  # the other worker took it, while a successor takes over
        fds: list[int] = []
        warm_up = None
        try:
            conn.settimeout(10.0)
            _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if uid != os.getuid():
                raise PermissionError(f"a process of uid {uid} may not use this worker")
            header, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, 3)
            size = HEADER.unpack(header + recv_exact(conn, HEADER.size - len(header)))[0]
            request = marshal.loads(recv_exact(conn, size))  # from a process of this user (checked above)
            if "control" in request:
                self.control(conn, request["control"])
                return
            if KIND_OF.get(request["rule"]) != self.kind:
                raise ValueError(f"rule {request['rule']!r} is not served by the {self.kind} worker")
            changed = self.code_changed()
            if changed:
                self.retire(changed)
            if changed or not self.can_fork:
                why = changed or "this worker cannot fork safely"
                reply(conn, {"status": None, "retired" if changed else "fallback": why})
                conn.close()
                return
            self.join(request)
            warm_up = self.start(conn, request, fds)
        except Exception as err:  # noqa: BLE001 - a bad request never stops the worker
            log(f"refused a request: {err}")
            reply(conn, {"status": 1, "error": str(err)})
            conn.close()
        finally:
            for fd in fds:
                os.close(fd)
        if warm_up is not None:
            self.hand_over(*warm_up)

    def join(self, request: dict[str, Any]) -> None:
        """Serve the request's run from now on (its owner), lingering after it as long as its FILM_WORKER_LINGER
        says (the latest run's setting holds)."""
        if request["owner"] > 0 and alive(request["owner"]):
            self.owners.add(request["owner"])
        value = request["env"].get("FILM_WORKER_LINGER", str(LINGER))
        try:
            self.linger = float(value)
        except ValueError:
            log(f"ignored FILM_WORKER_LINGER={value!r} of a job (not a number): it lingers {self.linger:.0f} s")

    def control(self, conn: socket.socket, command: str) -> None:
        """A request of `embedding-film workers`: "info" (what this worker is and does) or "stop" (retire)."""
        if command == "stop":
            self.retire("asked to stop (embedding-film workers --stop)")
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        now = time.monotonic()
        info = {
            "pid": os.getpid(),
            "kind": self.kind,
            "folder": os.getcwd(),
            "python": sys.executable,
            "serving": self.serving,
            "jobs": len(self.jobs),
            "runs": sorted(self.owners),
            "idle_s": 0.0 if self.jobs else now - self.last_job,
            "linger_s": self.linger,
            "ends_in_s": None if self.owners or self.jobs else max(0.0, self.linger - (now - self.last_active)),
            "rss_mb": rss,
        }
        reply(conn, info)
        conn.close()

    def start(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> WarmUp | None:
        """Fork the job's process. Returns what to warm up after it (see next_warm_up)."""
        from embedding_film.adapters import Job
        from embedding_film.runtime.job import adapter

        job = Job.from_json(request["rule"], request["spec"], request["log"])
        module = adapter(job.rule)
        sys.stdout.flush()
        sys.stderr.flush()
        worker_fds = [self.claim.fileno(), self.listener.fileno(), self.selector.fileno()]
        worker_fds += [fd for pidfd, (other, *_) in self.jobs.items() for fd in (pidfd, other.fileno())]
        worker_fds += [self.successor[1]] if self.successor else []
        gc.freeze()  # the worker's objects leave the collector's lists: a child's collections do not copy their pages
        worker = os.getpid()
        pid = os.fork()
        if pid == 0:  # the job's process
            os._exit(child(job, request, fds, worker_fds, worker, conn.fileno()))
        conn.setblocking(False)
        pidfd = os.pidfd_open(pid)
        self.jobs[pidfd] = (conn, pid, time.monotonic(), request["owner"])
        self.selector.register(pidfd, selectors.EVENT_READ, "child")
        self.selector.register(conn, selectors.EVENT_READ, "client")
        return self.next_warm_up(module, job, request["env"])

    def next_warm_up(self, module: Any, job: Any, env: dict[str, str]) -> WarmUp | None:
        """What to warm up after starting `job` (its adapter `module`, its environment `env`): the warm-up its
        adapter names (warm_key: for this job's own needs, e.g. its checkpoint's model class), else one that an
        adapter of this kind names ahead of its own jobs for the job's run (warm_ahead_key: the learned map,
        which the run's layout job will need). Asked when a job starts rather than while the worker imports, so
        that on a few cores it does not slow the first jobs of the run. None when this worker or a predecessor
        has done or tried it, or a warm-up is under way."""
        from embedding_film.runtime.job import adapter

        if self.successor is not None:
            return None
        key = warm_key(module, job)
        if key is not None and (job.rule, key) not in self.warmed:
            return (lambda: module.warm(job)), (job.rule, key)
        for rule in KINDS[self.kind]:
            other = adapter(rule)
            ahead = warm_key(other, env, "warm_ahead_key")
            if ahead is not None and (rule, ahead) not in self.warmed:
                return other.warm_ahead, (rule, ahead)
        return None

    def hand_over(self, warm: Callable[[], None], key: tuple[str, str]) -> None:
        """Fork a successor that does the warm-up `key` (e.g. importing a checkpoint's model class: seconds)
        while this worker goes on serving; a job that needs it already runs, doing its own. Once warm,
        the successor serves on the same socket and this worker hands it the name: it stops accepting and
        ends after its running jobs. A successor whose warm-up fails, or leaves a thread or CUDA behind (it
        could not fork safely), ends instead, and this worker serves on without that warm-up. So the worker
        never runs anything slow between two connections, never starts a thread, and forks only when
        fork_hazard() finds nothing. One successor at a time; each warm-up is tried once."""
        self.warmed.add(key)
        ready, done = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(ready)
            os._exit(self.succeed(warm, key, done))
        os.close(done)
        self.successor = (pid, ready, key)
        self.selector.register(ready, selectors.EVENT_READ, "successor")
        log(f"pid {pid} warms up for {key[0]} ({key[1]}) while pid {os.getpid()} serves")

    def succeed(self, warm: Callable[[], None], key: tuple[str, str], done: int) -> int:
        """The successor's life: leave its predecessor's jobs to it, warm up, say so through `done`, serve."""
        try:
            for pidfd, (conn, _pid, _start, _owner) in self.jobs.items():
                os.close(pidfd)
                conn.close()  # this process's copies: the predecessor keeps serving them
            self.jobs = {}
            self.selector.close()  # this process's epoll descriptor (the predecessor's registrations stay)
            self.selector = selectors.EpollSelector()
            started = time.monotonic()
            warm()
            self.note_files()
            hazard = fork_hazard()
            if hazard:
                log(f"{hazard} while warming up for {key[0]} ({key[1]}): jobs go on without this warm-up")
                return 1
            took = time.monotonic() - started
            log(f"warm for {key[0]} ({key[1]}) in {took:.1f} s: pid {os.getpid()} serves from now on")
            try:
                os.write(done, b"R")
            except OSError:
                pass  # the predecessor is gone: this worker serves all the same
            os.close(done)
            self.last_job = self.last_active = time.monotonic()
            self.serve()
        except SystemExit:
            self.stop("terminated")
        except BaseException:  # noqa: BLE001 - never return into the predecessor's loop
            import traceback

            traceback.print_exc()
            return 1
        finally:
            sys.stderr.flush()
        return 0

    def successor_done(self) -> None:
        """The successor is warm (it serves: stop accepting, end after the running jobs) or gone (serve on)."""
        assert self.successor is not None
        pid, ready, key = self.successor
        warm = os.read(ready, 1) == b"R"
        self.selector.unregister(ready)
        os.close(ready)
        self.successor = None
        if not warm or not self.serving:  # (not serving: it retired, and killed the successor)
            os.waitpid(pid, 0)
            if self.serving:
                log(f"no warm-up for {key[0]} ({key[1]}): pid {os.getpid()} serves on, its jobs do their own")
            return
        self.selector.unregister(self.listener)
        self.listener.close()  # the names live on in the successor: a client never connects to a closing worker
        self.claim.close()
        self.serving = False
        self.why_not_serving = "its successor serves, and its last job has ended"
        log(f"pid {os.getpid()} hands over to pid {pid}; it ends after its {len(self.jobs)} running job(s)")

    def client_gone(self, conn: Any) -> None:
        """A client's socket became readable while its job runs: the client went away; kill its job (which,
        should it get there first, does not move an output into place either: job.check_client)."""
        for pidfd, (client_conn, pid, _start, _owner) in self.jobs.items():
            if client_conn is conn:
                log(f"client of job {pid} went away: killing the job")
                kill_job(pidfd, pid)
                self.selector.unregister(conn)
                return

    def reap(self, pidfd: Any) -> None:
        conn, pid, start, _owner = self.jobs.pop(pidfd)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, status, usage = os.wait4(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        result = {
            "status": code if code >= 0 else 128 - code,
            "usage": {
                "wall_s": time.monotonic() - start,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "max_rss_mb": usage.ru_maxrss / 1024,
            },
        }
        try:
            self.selector.unregister(conn)
        except KeyError:
            pass
        conn.setblocking(True)
        reply(conn, result)
        conn.close()

    def stop(self, why: str) -> None:
        if self.serving:  # idle, lingered out or terminated: nobody serves its names any more
            self.close_listener(why)
        for pidfd, (_conn, pid, _start, _owner) in self.jobs.items():
            kill_job(pidfd, pid)
        if self.successor is not None:  # still warming up, for a worker that no longer serves
            os.kill(self.successor[0], signal.SIGKILL)
        log(f"{self.kind} worker (pid {os.getpid()}) exits: {why}")


def child(job: Any, request: dict[str, Any], fds: list[int], close: list[int], worker: int, client: int) -> int:
    """The forked job process: die with the worker, take over the client's stdio, folder and environment, watch
    the client's connection (job.check_client), run the job."""
    try:
        die_with(worker)
        os.setsid()  # its own process group, so the worker can kill everything it starts
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        for fd in close:
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if "tempfile" in sys.modules:
            sys.modules["tempfile"].tempdir = None  # found again from the job's TMPDIR (Snakemake sets it per job)
        from embedding_film.runtime.job import run, watch_client

        watch_client(client)
        status = run(job)
    except BaseException:  # noqa: BLE001 - never return into the worker's loop
        import traceback

        traceback.print_exc()
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return status


def warm_key(module: Any, about: Any, name: str = "warm_key") -> str | None:
    """What an adapter would warm up in the worker beyond its start (None: nothing): for a job
    (adapter.warm_key(job)), or ahead of its jobs, for a run's environment (adapter.warm_ahead_key(env))."""
    try:
        return getattr(module, name)(about) if hasattr(module, name) else None
    except Exception:  # noqa: BLE001 - only a head start: the job reports any problem itself
        return None


def fork_hazard() -> str | None:
    """Why forking this process would be unsafe (another thread, an initialised CUDA), or None."""
    extra = other_threads()
    if extra:
        return f"threads {extra} started"
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
        return "CUDA was initialised"
    return None


FORK_SAFE_THREADS = ("jemalloc_bg_thd",)  # pyarrow's allocator's background thread: its fork handlers reset it


def other_threads() -> list[str]:
    """This process's threads besides the main one (a worker with any may not fork): Python's by name, and those
    a library started natively (an OpenMP or BLAS pool, which a forked child inherits without its threads),
    but for FORK_SAFE_THREADS."""
    names = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    try:
        tasks = [tid for tid in os.listdir("/proc/self/task") if int(tid) != threading.get_native_id()]
        comms = [open(f"/proc/self/task/{tid}/comm").read().strip() for tid in tasks]
    except OSError:
        return names
    native = sum(comm not in FORK_SAFE_THREADS for comm in comms) - len(names)  # (Python's are native too)
    return names + [f"{native} native thread(s) a library started"] if native > 0 else names


def recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection mid-request")
        data += chunk
    return data


def reply(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        data = marshal.dumps(message)
        conn.sendall(HEADER.pack(len(data)) + data)
    except OSError:
        pass  # the client is gone


PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent ends


def die_with(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent (the worker) ends, whatever ends it (the OOM
    killer): a job never runs on unsupervised. Exits at once when the parent ended before it was set."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(1)


def kill_job(pidfd: int, pid: int) -> None:
    """SIGKILL a job and its process group: the job itself through its pidfd (also before it has made its
    group, right after the fork), then whatever it started."""
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def seconds(name: str, default: float) -> float:
    """A number of seconds from the environment: FILM_WORKER_IDLE (a worker's wait for a job while its run lasts,
    default 300) or FILM_WORKER_LINGER (its wait for a next run once its runs have ended; 0: it ends with them)."""
    value = os.environ.get(name, str(default))
    try:
        return float(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r} is not a number of seconds; set it to one, e.g. {default:.0f}.") from None


def serve(kind: str, owner: int) -> int:
    worker = Worker(kind, owner, seconds("FILM_WORKER_IDLE", 300), seconds("FILM_WORKER_LINGER", LINGER))
    try:
        if not worker.claim_name():
            return 0
    except OSError as err:
        log(f"no {kind} worker: its socket name cannot be taken ({err.strerror}); each job runs in its own process")
        return 1
    if os.fork() != 0:
        # The process the client started returns at once, its claim taken: the worker goes on as a grandchild,
        # no child of the job that started it (whose benchmark would count the worker's memory and CPU).
        os._exit(0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        worker.preload()
        worker.listen()
        worker.serve()
    except SystemExit:
        worker.stop("terminated")
    sys.stderr.flush()
    os._exit(0)  # skip the interpreter's teardown of torch & co. (seconds, and nothing left to save)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m embedding_film.runtime.worker", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--serve", metavar="KIND", choices=sorted(KINDS), required=True, help="the kind of jobs to serve"
    )
    parser.add_argument("--owner", type=int, help="the Snakemake process to serve (default: FILM_OWNER_PID)")
    args = parser.parse_args(argv)
    why = workers_supported()
    if why is not None:
        parser.exit(1, f"warm workers cannot run here: {why}\n")
    return serve(args.serve, args.owner or owner_pid())


if __name__ == "__main__":
    sys.exit(main())
