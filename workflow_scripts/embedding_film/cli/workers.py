"""`embedding-film workers`: the warm workers of a folder, what they do and when they end; --stop ends them.

    embedding-film workers [--stop] [--all] [--directory DIR]

Warm workers (docs/runtime.md) stay FILM_WORKER_LINGER seconds (default 300) after the last run that used them,
so that the next run in the same folder (a checkpoint appended, a setting changed) pays no imports. This lists
them: kind, process id, folder, memory, and whether they serve a run or wait for one (and for how long). With
--stop each ends: at once when it runs no job, else after its running jobs (a run still going starts fresh
workers for its later jobs). Without --all, only the workers of the working folder (or --directory).
"""

from __future__ import annotations

import argparse
import marshal
import os
import sys
from pathlib import Path
from typing import Any

from embedding_film.runtime import client

PROG = "embedding-film workers"


def addresses(uid: int) -> list[bytes]:
    """The serving names of this user's workers (the abstract Unix sockets listed in /proc/net/unix)."""
    prefix = f"@embedding-film/{uid}/"
    found = set()
    with open("/proc/net/unix") as table:
        for line in table:
            path = line.split()[-1]
            if path.startswith(prefix) and not path.endswith(client.CLAIM.decode()):
                found.add(b"\0" + path[1:].encode())
    return sorted(found)


def ask(address: bytes, command: str) -> dict[str, Any] | None:
    """A worker's answer to a control request ("info" or "stop"); None when it is gone."""
    sock = client.connect(address)
    if sock is None:
        return None
    try:
        client.send_request(sock, marshal.dumps({"control": command}))
        answer = client.await_reply(sock)
    finally:
        sock.close()
    return answer if "pid" in answer else None


def found(folder: Path | None) -> list[tuple[bytes, dict[str, Any]]]:
    """This user's workers (address, info) that serve `folder`, or every folder's (None)."""
    infos = ((address, ask(address, "info")) for address in addresses(os.getuid()))
    return [(a, i) for a, i in infos if i is not None and (folder is None or Path(i["folder"]) == folder.resolve())]


def stop(folder: Path | None) -> list[dict[str, Any]]:
    """Stop the workers that serve `folder` (every folder's: None): each serves no new job, and ends at once or
    after its running jobs. Returns what each said when asked."""
    if client.workers_supported() is not None:
        return []
    return [ask(address, "stop") or dict(info, serving=False, jobs=0) for address, info in found(folder)]


def describe(info: dict[str, Any]) -> str:
    if not info["serving"]:
        state = f"ending after its {info['jobs']} running job(s)"
    elif info["runs"]:
        state = f"serves {len(info['runs'])} run(s) (pid {', '.join(map(str, info['runs']))}), {info['jobs']} job(s) running"
    else:
        state = f"waits for a next run; ends in {info['ends_in_s']:.0f} s"
    return f"{info['kind']:<9} pid {info['pid']:<8} {info['rss_mb']:>6.0f} MB  {info['folder']}  {state}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--stop", action="store_true", help="end the workers (after their running jobs)")
    parser.add_argument("--all", action="store_true", help="every folder's workers of this user, not only one's")
    parser.add_argument("--directory", "-d", default=".", help="the working folder whose workers (default: here)")
    args = parser.parse_args(argv)
    why = client.workers_supported()
    if why is not None:
        print(f"{PROG}: no warm workers run here: {why}.")
        return 0
    folder = None if args.all else Path(args.directory).resolve()
    infos = stop(folder) if args.stop else [info for _address, info in found(folder)]
    if not infos:
        print(f"{PROG}: no warm worker {'of this user' if folder is None else f'serves {folder}'}.")
        return 0
    for info in sorted(infos, key=lambda info: (info["folder"], info["kind"])):
        print(describe(info))
    if args.stop:
        print(f"{PROG}: stopped {len(infos)} worker(s); each ends once its running jobs have.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
