"""Film a fine-tuning while it runs: `make watch CONFIG=path/to/config.yaml`.

    python -m embedding_film.cli.watch --configfile CONFIG [--cores N] [--quiet 600] [--poll 1]

CONFIG's `checkpoints:` is a Trainer's output folder that may still be growing. Each round runs the workflow
with Snakemake's own command line (so Snakemake decides what is stale: only the new checkpoints' jobs and the
film-level rules run), then waits until a new checkpoint is complete and runs again, until the checkpoint of
the Trainer's planned max_steps has been filmed, no checkpoint has appeared for --quiet seconds, or Ctrl-C.
configs/live.yaml comes first (it sets nothing now: the default layout places appended checkpoints and
keeps old frames, refitting only when the film says why); CONFIG overrides it. Each round prints one line: the new steps, what ran, and the seconds from the newest
checkpoint being complete to the updated film. A checkpoint still being written is left out of a round
with one warning and joins a later one (rules/setup.smk). The warm workers outlive the rounds (this process
is the run they serve), so a round pays no imports. Ctrl-C stops Snakemake cleanly (no lock, no half-written file;
the next `make watch` carries on: its first round, at once, reruns what Ctrl-C stopped).

With --follow-stdin the watcher serves a training process (FilmCallback, api/callback.py) through its standard
input: a line `cores N` sets the cores of the next rounds (training has ended and left them), a line `end` says
training has ended (film what is left, then stop); the end of input without it says
the training process is gone (crashed, killed): the round under way is stopped cleanly and the watcher stops.
Arguments after `--` go to Snakemake in every round.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from embedding_film.api.settings import merged, workflow_folder
from embedding_film.film.checkpoints import checkpoint_folder_steps, incomplete_checkpoints

WORKFLOW = workflow_folder()
LIVE = WORKFLOW / "configs" / "live.yaml"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def settings(configfiles: list[str], workflow_config: bool = True) -> dict[str, Any]:
    """config.yaml updated with each config file in turn (nested keys merged), as Snakemake reads them
    (`workflow_config` False: without config.yaml, as Snakemake's --replace-workflow-config reads them)."""
    cfg: dict[str, Any] = {}
    base = Path("config.yaml") if Path("config.yaml").is_file() else WORKFLOW / "config.yaml"
    for path in [*([base] if workflow_config else []), *map(Path, configfiles)]:
        cfg = merged(cfg, yaml.safe_load(path.read_text()) or {})
    return cfg


def complete_checkpoints(folder: Path) -> dict[int, float]:
    """{step: when it became complete (its newest file's time)} of the checkpoints that can be filmed now."""
    steps = checkpoint_folder_steps(folder) if folder.is_dir() else []
    incomplete = incomplete_checkpoints(folder, steps)
    done = {}
    for step in (s for s in steps if s not in incomplete):
        path = folder / f"checkpoint-{step}"
        done[step] = max(p.stat().st_mtime for p in path.iterdir() if p.is_file())
    return done


def planned_last_step(folder: Path, steps: list[int]) -> int | None:
    """The step the Trainer will end at (its trainer_state.json's max_steps), once a checkpoint says so."""
    for step in reversed(steps):
        state = folder / f"checkpoint-{step}" / "trainer_state.json"
        if state.is_file():
            try:
                return int(yaml.safe_load(state.read_text()).get("max_steps") or 0) or None
            except (ValueError, AttributeError):
                return None
    return None


def job_counts(output: str) -> dict[str, int]:
    """{rule: jobs} from Snakemake's 'Job stats' table (empty when nothing ran)."""
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^\s*(\w+)\s+(\d+)\s*$", table, re.M)
        if m.group(1) not in ("job", "all")
    }


class Watcher:
    def __init__(
        self,
        configfiles: list[str],
        cores: str,
        quiet: float,
        poll: float,
        log_dir: Path,
        snakemake_args: list[str] | None = None,
    ) -> None:
        self.configfiles = [str(LIVE), *configfiles]
        self.snakemake_args = list(snakemake_args or [])
        cfg = settings(self.configfiles, "--replace-workflow-config" not in self.snakemake_args)
        if not cfg.get("checkpoints"):
            raise SystemExit(
                "make watch films a Trainer output folder while it grows: set checkpoints: to its output_dir in CONFIG."
            )
        self.folder = Path(cfg["checkpoints"])
        self.run = cfg.get("run", "demo")
        self.formats = (cfg.get("animation") or {}).get("formats", ["gif"])
        self.cores, self.quiet, self.poll, self.log_dir = cores, quiet, poll, log_dir
        self.filmed: set[int] = set()
        self.proc: subprocess.Popen[str] | None = None
        self.ended = threading.Event()  # the training process said it has ended (--follow-stdin)
        self.orphaned = threading.Event()  # the training process is gone without saying so

    def follow(self, stream: Any) -> None:
        """Read the training process's lines (`end`) until its end of input; a thread of --follow-stdin."""
        for line in stream:
            words = line.split()
            if words == ["end"]:
                self.ended.set()
            elif len(words) == 2 and words[0] == "cores":  # the cores the next rounds may use
                self.cores = words[1]
        if not self.ended.is_set():
            self.orphaned.set()
            if self.proc is not None:  # stop the round under way as Ctrl-C would: Snakemake cleans up
                self.proc.send_signal(signal.SIGINT)

    def film(self) -> Path:
        return Path("results") / self.run / f"animation.{self.formats[0]}"

    def round(self, number: int, ready: dict[int, float]) -> bool:
        """Run the workflow once; print the round's line. Returns whether Snakemake succeeded."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"round-{number}.log"
        cmd = [
            SNAKEMAKE,
            "--snakefile",
            str(WORKFLOW / "Snakefile"),
            "--cores",
            self.cores,
            "--keep-going",
            *self.snakemake_args,
            "--configfile",
            *self.configfiles,
        ]
        env = dict(os.environ, FILM_OWNER_PID=str(os.getpid()))  # the warm workers serve every round
        started = time.time()
        with open(log, "w") as handle:
            self.proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, text=True, env=env)
            code = self.proc.wait()
        self.proc = None
        output = log.read_text()
        new = sorted(set(ready) - self.filmed)
        ran = ", ".join(f"{rule} {n}" for rule, n in job_counts(output).items()) or "nothing"
        film = self.film()
        if code == 0 and film.is_file():
            self.filmed |= set(ready)
            latency = film.stat().st_mtime - max((ready[s] for s in new), default=started)
            print(
                f"round {number}: checkpoints {', '.join(map(str, new)) or 'none new'}; ran {ran}; "
                f"the film was updated {latency:.1f} s after the newest was complete ({time.time() - started:.1f} s round)",
                flush=True,
            )
        else:
            print(f"round {number}: Snakemake failed ({code}); see {log}; ran {ran}", flush=True)
        for line in output.splitlines():  # the workflow's warnings: checkpoints left out, films not made
            if "left out of this film" in line or "still writing" in line or "was not made" in line:
                print(f"  {line.strip()}", flush=True)
        return code == 0

    def watch(self) -> int:
        # Round logs are numbered on from an earlier watch's, so the log of a round that Ctrl-C stopped is kept.
        earlier = [
            int(m.group(1))
            for p in self.log_dir.glob("round-*.log")
            if (m := re.fullmatch(r"round-(\d+)\.log", p.name))
        ]
        number, last_news = max(earlier, default=0), time.time()
        frames = Path("results") / self.run / "frames"
        self.filmed = {int(p.stem) for p in frames.glob("*.png") if p.stem.isdigit()}  # an earlier watch's frames
        # The first round runs at once: it finishes what an interrupted watch left (a job Ctrl-C stopped, however
        # far it got, is rerun: Snakemake marked it incomplete) before waiting for new checkpoints.
        retry = bool(self.filmed)
        failures, failed_on = 0, set()  # rounds failed in a row, and the checkpoints the last one saw
        while True:
            if self.orphaned.is_set():
                print(
                    "stopped: the training process ended without saying so; nothing half-written is left.", flush=True
                )
                return 130
            ended = self.ended.is_set()  # read before looking: a checkpoint saved before `end` is seen below
            ready = complete_checkpoints(self.folder)
            # after two failed rounds in a row, the next waits for a checkpoint they did not see
            if (set(ready) - self.filmed and (failures < 2 or set(ready) != failed_on)) or retry:
                number += 1
                ok = self.round(number, ready)
                failures, failed_on = (0, set()) if ok else (failures + 1, set(ready))
                # a checkpoint that failed for a reason of its own is left out by the next round: run it at once
                retry = not ok and failures < 2
                last_news = time.time()
                final = planned_last_step(self.folder, sorted(ready))
                if ok and final is not None and final in self.filmed:
                    print(f"done: the Trainer's last checkpoint ({final}) is filmed: {self.film()}", flush=True)
                    return 0
                continue
            if ended and failures:
                print(f"stopped: the last rounds failed (see {self.log_dir}); the film is not complete.", flush=True)
                return 1
            if ended:
                print(f"done: training has ended and every checkpoint is filmed: {self.film()}", flush=True)
                return 0
            if time.time() - last_news > self.quiet:
                print(f"done: no new checkpoint for {self.quiet:.0f} s; the film is {self.film()}", flush=True)
                return 0
            time.sleep(self.poll)

    def stop(self) -> None:
        """Ctrl-C: Snakemake got the same SIGINT (same process group) and stops cleanly (it kills its jobs and
        removes its lock); wait for it, and only if it has not stopped after a minute, ask once more."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embedding_film.cli.watch", description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", nargs="+", default=[], help="the config file(s), as for snakemake")
    parser.add_argument("--cores", default="all")
    parser.add_argument(
        "--quiet", type=float, default=600.0, help="stop after this many seconds without a new checkpoint"
    )
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the checkpoints folder")
    parser.add_argument(
        "--follow-stdin",
        action="store_true",
        help="serve a training process: `end` on standard input ends the watch, the end of input stops it",
    )
    parser.add_argument("snakemake_args", nargs="*", help="after --: options for Snakemake in every round")
    args = parser.parse_args(argv)
    watcher = Watcher(
        args.configfile, args.cores, args.quiet, args.poll, Path(".snakemake") / "watch", args.snakemake_args
    )
    if args.follow_stdin:
        threading.Thread(target=watcher.follow, args=(sys.stdin,), daemon=True).start()
    print(f"watching {watcher.folder} for run {watcher.run} (Ctrl-C stops; `make watch` again carries on)", flush=True)
    try:
        return watcher.watch()
    except KeyboardInterrupt:
        watcher.stop()
        print("stopped: nothing half-written is left; watch again to carry on.", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
