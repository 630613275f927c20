#!/usr/bin/env python
"""`make watch` on the demo's scale: how long from a checkpoint being complete to the updated film.

    python benchmarks/live.py [--start 20] [--appended 5] [--gap 20]

The demo's settings (config.yaml: 360 digits, 1280x720 frames, the default layout) with configs/live.yaml, on the
benchmark's pool of real Trainer checkpoints (benchmarks/work/pool, made by run.py / make_checkpoints.py):
the watcher (workflow_scripts/embedding_film/cli/watch.py, what `make watch` runs) films the first --start checkpoints, then
--appended more arrive one by one, --gap seconds apart, each copied in with fresh file times as a Trainer
writes it. Each round's line says how many seconds passed from the checkpoint being complete to the updated
GIF; the table gives them with the round's jobs. Target: <= 15 s on 2 cores. Work goes to
benchmarks/work/live/ (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
POOL = HERE / "work" / "pool" / "tiny-vit-digits"
sys.path[:0] = [str(HERE), str(REPO / "workflow_scripts")]

from make_checkpoints import pool_steps, train  # noqa: E402


def arrive(step: int, folder: Path) -> None:
    """checkpoint-<step> of the pool appears in `folder` as a Trainer writes it: files written now, the
    weights and the trainer state last (through a temporary name, so the watcher never sees half a file)."""
    source, dest = POOL / f"checkpoint-{step}", folder / f"checkpoint-{step}"
    dest.mkdir()
    last = ("model.safetensors", "trainer_state.json")
    for f in sorted(source.iterdir(), key=lambda p: p.name in last):
        shutil.copyfile(f, dest / f".{f.name}.tmp")
        os.replace(dest / f".{f.name}.tmp", dest / f.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=int, default=20)
    parser.add_argument("--appended", type=int, default=5)
    parser.add_argument("--gap", type=float, default=20.0, help="seconds between arriving checkpoints")
    args = parser.parse_args()
    if not POOL.is_dir() or len(pool_steps(POOL)) < args.start + args.appended:
        train(POOL, 80, tiny=False)
    steps = pool_steps(POOL)[: args.start + args.appended]
    work = HERE / "work" / "live"
    if work.exists():
        shutil.rmtree(work)
    folder = work / "trainer_output"
    folder.mkdir(parents=True)
    for step in steps[: args.start]:
        arrive(step, folder)
    shutil.copy(REPO / "config.yaml", work / "config.yaml")
    (work / "live.yaml").write_text(yaml.safe_dump({"run": "live", "checkpoints": str(folder)}))
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO / "workflow_scripts"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "embedding_film.cli.watch",
            "--configfile",
            "live.yaml",
            "--cores",
            "2",
            "--quiet",
            str(args.gap * 3),
            "--poll",
            "0.5",
        ],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    gif = work / "results" / "live" / "animation.gif"
    deadline = time.time() + 900
    while not gif.exists() and time.time() < deadline:
        time.sleep(0.5)
    for step in steps[args.start :]:
        time.sleep(args.gap)
        arrive(step, folder)
    out, _ = watcher.communicate(timeout=900)
    lines = [line for line in out.splitlines() if line.startswith("round ")]
    rows = ["| round | new checkpoints | seconds to the updated film | round s | jobs |", "|---|---|---:|---:|---|"]
    latencies = []
    for line in lines:
        m = re.match(
            r"round (\d+): checkpoints ([^;]*); ran (.*); the film was updated ([\d.]+) s after .* \(([\d.]+) s round\)",
            line,
        )
        if m:
            rows.append(f"| {m.group(1)} | {m.group(2)} | {m.group(4)} | {m.group(5)} | {m.group(3)} |")
            if m.group(1) != "1":
                latencies.append(float(m.group(4)))
    print("\n".join(rows))
    if latencies:
        print(
            f"\nappended checkpoints: median {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s "
            f"from complete to the updated film (target <= 15 s); load average {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
