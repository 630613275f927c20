"""Open a review table in Renumics Spotlight and serve it until Ctrl-C: `make review RUN=demo`.

    .venv-review/bin/python workflow_scripts/embedding_film/cli/spotlight_launch.py results/demo/review.parquet [--port 8765]

Spotlight (renumics-spotlight) is an optional extra with its own environment, .venv-review, made from
requirements-review.txt by `make review` (it needs pandas 2, the workflow pins pandas 3). The table is
read with pandas and shown with `spotlight.show(df, dtype=SPOTLIGHT_DTYPES)`, on 127.0.0.1 only; no
browser opens unless --browser is given, the address is printed instead. Ctrl-C or SIGTERM stops the
server. See docs/review.md.
"""

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parents[2]  # the folder that holds the embedding_film package

INSTALL_HINT = (
    "renumics-spotlight is not installed in this Python ({python}): run `make review RUN=<run>`, which installs "
    "it into .venv-review from requirements-review.txt, or `pip install -r requirements-review.txt` in a "
    "separate environment (it needs pandas 2)."
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve a review table in Renumics Spotlight until Ctrl-C.")
    parser.add_argument("table", type=Path, help="review.parquet, e.g. results/demo/review.parquet")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: 0, any free port)")
    parser.add_argument("--browser", action="store_true", help="also open the page in a web browser")
    parser.add_argument("--verbose", action="store_true", help="keep Spotlight's and transformers' log messages")
    return parser.parse_args(argv)


def import_spotlight(verbose: bool = False) -> Any:
    """`renumics.spotlight`, or exit with one sentence that names the install command."""
    if verbose:  # also the server process's own output
        os.environ.setdefault("SPOTLIGHT_VERBOSE", "true")
    else:  # Spotlight warns at import about analyzers and torch it does not need here
        os.environ.setdefault("LOGURU_LEVEL", "ERROR")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from renumics import spotlight
    except ModuleNotFoundError as err:
        if err.name not in ("renumics", "renumics.spotlight"):
            raise
        sys.exit(INSTALL_HINT.format(python=sys.executable))
    return spotlight


def _server_alive(viewer: Any) -> bool:
    """False once Spotlight's server process has died (True where that cannot be told)."""
    process = getattr(getattr(viewer, "_server", None), "process", None)
    return process is None or process.poll() is None


class ServerProcesses:
    """Every process Spotlight starts from here: its server, and the worker pool that computes the similarity
    map, which a plain stop of the server leaves idling on, orphaned. Seen while they run (a worker whose
    server ended first is no longer our descendant), ended together by `stop`. Without psutil (a dependency
    of the Spotlight environment) this does nothing and Spotlight's own stop of the server must do."""

    def __init__(self) -> None:
        try:
            import psutil
        except ImportError:
            psutil = None
        self._psutil = psutil
        self._seen: dict[int, Any] = {}

    def look(self) -> None:
        if self._psutil is None:
            return
        with contextlib.suppress(self._psutil.Error):
            for proc in self._psutil.Process().children(recursive=True):
                # multiprocessing's resource trackers ignore SIGTERM and leave once their owner is gone
                if proc.pid not in self._seen and "resource_tracker" not in " ".join(_cmdline(proc)):
                    self._seen[proc.pid] = proc

    def stop(self, grace: float = 5.0) -> None:
        if self._psutil is None:
            return
        self.look()
        procs = [proc for proc in self._seen.values() if proc.is_running()]  # is_running: not a reused pid
        for proc in procs:
            with contextlib.suppress(self._psutil.Error):
                proc.terminate()
        _, alive = self._psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            with contextlib.suppress(self._psutil.Error):
                proc.kill()


def _cmdline(proc: Any) -> list[str]:
    try:
        return proc.cmdline()
    except Exception:  # gone already, or not ours to read
        return []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.table.is_file():
        sys.exit(f"review table '{args.table}' not found: run the workflow first (`make run` makes results/demo).")
    spotlight = import_spotlight(args.verbose)
    import pandas as pd

    sys.path.insert(0, str(SOURCE))
    from embedding_film.film.review import spotlight_dtypes

    df = pd.read_parquet(args.table)
    dtype = {column: kind for column, kind in spotlight_dtypes().items() if column in df.columns}
    try:
        viewer = spotlight.show(
            df, dtype=dtype, host=args.host, port=args.port or "auto", no_browser=not args.browser, wait=False
        )
    except KeyboardInterrupt:
        return 130
    processes = ServerProcesses()
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # Ctrl-C, kill, a closed terminal: stop cleanly
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: stop.set())
    print(f"Spotlight shows {args.table} ({len(df)} rows) at {viewer.url} - press Ctrl-C to stop.", flush=True)
    while not stop.wait(0.5):
        processes.look()
        # Ctrl-C reaches the server process too, and it may end first: give the signal a moment to land here.
        if not _server_alive(viewer) and not stop.wait(2.0):
            print("Spotlight's server stopped unexpectedly; run again with --verbose to see why.", file=sys.stderr)
            processes.stop()
            return 1
    # Not viewer.close(): it first asks the server for its DataFrame and hangs if Ctrl-C already ended the
    # server; Spotlight's own exit handler then finds the server process gone.
    processes.stop()
    print("Spotlight stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
