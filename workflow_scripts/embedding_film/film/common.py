"""Small helpers every stage uses: atomic writes, .npy/JSON files, user-facing errors, progress bars.

Nothing here imports a heavy library, so every job can use it without paying start-up time.
"""

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("embedding_film")

_UMASK = os.umask(0)
os.umask(_UMASK)


class UserError(Exception):
    """An error the user can fix; its message is one sentence naming the thing and the fix."""


class CheckpointError(UserError):
    """A checkpoint that cannot be filmed for a reason of its own (unloadable, NaN embeddings): the other
    checkpoints' film goes on without it (see checkpoints.record_failure)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the same folder as `path`; rename it into place only on success.

    An interrupted or failing writer never leaves a file that looks complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*"):  # left by a writer that was SIGKILLed
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        before_publishing()  # e.g. the job runtime's: a job whose client went away completes no output
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write `array` to a .npy file atomically."""
    with atomic_path(path) as tmp:
        np.save(tmp, array, allow_pickle=False)


def load_npy(path: str | os.PathLike[str], mmap: bool = False) -> np.ndarray:
    """Read a .npy file without ever unpickling."""
    return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)


def save_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))


def load_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


def progress(iterable: Any, desc: str, total: int | None = None) -> Any:
    """A tqdm progress bar on stderr (lands in the rule's log), quiet when not useful."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, mininterval=5.0, disable=False)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one, else every core)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def per_checkpoint(
    function: Callable[[Any], Any], embeddings: Sequence[Any], what: str, threads: int | None = None
) -> list[Any]:
    """[function(e) for e in embeddings], the checkpoints on `threads` threads at once (None: every core this
    process may use; the layout job is a barrier of the film, nothing else runs). Each checkpoint is read in its
    thread when its turn comes, and its result does not depend on the others, so the result is the same
    whatever the threads (function must hold that: one torch thread, BLAS products that split no sum).
    `embeddings` may be any sequence (checkpoint indices, for work on pairs of checkpoints)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads or usable_cores()) as pool:
        results = pool.map(lambda i: function(embeddings[i]), range(len(embeddings)))
        return list(progress(results, desc=f"{what} checkpoints", total=len(embeddings)))


class NpyFiles:
    """A sequence of .npy arrays read on access: each item is a fresh read-only memory map, unmapped once the
    caller drops it, so a pass over many large checkpoints holds one of them in memory, not all (a list of
    memory maps keeps every page it touched resident until the end)."""

    def __init__(self, paths: Any) -> None:
        self.paths = [str(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return NpyFiles(self.paths[index])
        return load_npy(self.paths[index], mmap=True)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (load_npy(p, mmap=True) for p in self.paths)


def seeded_subset(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random subset of k of range(n), or all n when n <= k: the same rows for the
    same arguments in every process (the film's subsamples of images and pooled rows)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


_PUBLISH_CHECKS: list[Callable[[], None]] = []


def check_before_publishing(check: Callable[[], None]) -> None:
    """Call `check` right before any output is moved into place (atomic_path, the trainer's checkpoints); it
    raises to stop that. The job runtime registers one that stops a job whose client has gone away."""
    _PUBLISH_CHECKS.append(check)


def before_publishing() -> None:
    """Run the registered checks (check_before_publishing): an exception leaves the output unpublished."""
    for check in _PUBLISH_CHECKS:
        check()
