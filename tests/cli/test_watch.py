"""make watch: a real Hugging Face Trainer writes checkpoints while the watcher films them, round after round.

One Trainer run in a background process (a tiny ViT on digits, a checkpoint every 2 steps, slowed down by a
callback so that it spans several rounds); the watcher (workflow_scripts/embedding_film/cli/watch.py, what `make watch` runs)
films it. Checked: every checkpoint ends up in the film; frames made in earlier rounds keep their bytes and
times; a checkpoint frozen half-written is left out with a warning and filmed once complete; Ctrl-C in the
middle of a round, then the watcher again, finishes the film with nothing lost; and the watched film's
frames equal a batch run's over the finished folder, byte for byte.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, make_workdir, snakemake
from PIL import Image
from test_external_checkpoints import external_config

pytestmark = pytest.mark.workflow

SAVES = [2, 4, 6, 8, 10]  # the Trainer's checkpoints (max_steps 10, save_steps 2)

TRAINER = textwrap.dedent(
    f"""
    import os, sys, time
    sys.path[:0] = [{str(REPO / "tests")!r}, {str(REPO / "tests" / "workflow")!r}]
    from transformers import TrainerCallback
    import test_external_checkpoints as t

    class Paced(TrainerCallback):
        # A real fine-tuning takes minutes between checkpoints: here the test says when to go on after each
        # save (a file go-<step>). The last checkpoint is left half-written (its weights cut short, as when a
        # save is interrupted); the test completes it later.
        def on_save(self, args, state, control, **kwargs):
            folder = os.path.join(args.output_dir, f"checkpoint-{{state.global_step}}")
            if state.global_step == state.max_steps:
                weights = os.path.join(folder, "model.safetensors")
                whole = open(weights, "rb").read()
                open(weights + ".whole", "wb").write(whole)
                open(weights, "wb").write(whole[: len(whole) // 2])
                return
            go = os.path.join(os.path.dirname(args.output_dir), f"go-{{state.global_step}}")
            for _ in range(6000):
                if os.path.exists(go):
                    return
                time.sleep(0.1)

    t.trainer_run(t.Path(sys.argv[1]), max_steps=10, save_steps=2, callbacks=[Paced()])
    """
)


def watcher(workdir: Path) -> subprocess.Popen[str]:
    """The watcher in its own process group, as a terminal runs `make watch` (Ctrl-C reaches the group)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "embedding_film.cli.watch",
            "--configfile",
            "test.yaml",
            "--cores",
            "2",
            "--quiet",
            "60",
            "--poll",
            "0.3",
        ],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(REPO / "workflow_scripts")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # Ctrl-C reaches it as in a terminal, even when the tests run in the background (where the shell
        # started them with SIGINT ignored, which every child would inherit).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


class Lines(list):
    reader: threading.Thread


def follow(proc: subprocess.Popen[str]) -> Lines:
    """The process's output lines so far, read by a thread while the test goes on."""
    lines = Lines()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)

    lines.reader = threading.Thread(target=read, daemon=True)
    lines.reader.start()
    return lines


def frames(workdir: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (workdir / "results" / "live" / "frames").glob("*.png")
    }


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_growing_training_is_filmed_round_after_round(tmp_path: Path) -> None:
    folder = tmp_path / "trainer_output"
    config = {**external_config(folder), "run": "live", "frames": {"width": 480, "height": 270}}
    workdir = make_workdir(tmp_path / "work", config)
    trainer = subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    watch = watcher(workdir)
    res = workdir / "results" / "live"
    rounds = workdir / ".snakemake" / "watch"

    def go(step: int) -> None:
        (tmp_path / f"go-{step}").touch()

    try:
        wait_for(lambda: (res / "frames" / "2.png").is_file(), 600, "the first round's frame")
        go(2)
        # Ctrl-C in the middle of the round for checkpoint-4, then the watcher again.
        wait_for(lambda: len(list(rounds.glob("round-*.log"))) >= 2, 300, "the second round")
        time.sleep(1.0)
        os.killpg(watch.pid, signal.SIGINT)
        first, _ = watch.communicate(timeout=180)
        assert watch.returncode == 130, first
        assert "stopped: nothing half-written is left" in first
        watch = watcher(workdir)
        lines = follow(watch)
        # The restarted watcher's first round runs at once and finishes what Ctrl-C stopped (a job stopped at
        # any point, even just after its output was written, is rerun); frames are final after it.
        wait_for(lambda: any(line.startswith("round ") for line in lines), 300, "the restarted watcher's first round")
        assert (res / "frames" / "4.png").is_file(), "".join(lines)
        early = frames(workdir)
        for step in (4, 6, 8):
            go(step)
        # The Trainer ends with checkpoint-10 half-written: it is filmed only once it is complete.
        trainer.wait(timeout=300)
        wait_for(lambda: (res / "frames" / "8.png").is_file(), 300, "every complete checkpoint's frame")
        time.sleep(2.0)
        assert not (res / "frames" / "10.png").exists()
        weights = folder / "checkpoint-10" / "model.safetensors"
        shutil.move(str(weights) + ".whole", weights)  # the save completes
        watch.wait(timeout=300)
        lines.reader.join(timeout=10)
        second = "".join(lines)
    finally:
        for proc in (trainer, watch):
            if proc.poll() is None:
                proc.kill()
    assert watch.returncode == 0, first + second
    assert "round 1: checkpoints 2;" in first and "the film was updated" in first
    assert "checkpoint-10' has a model.safetensors that is" in second and "left out of this film" in second
    assert "done: the Trainer's last checkpoint (10) is filmed" in second
    assert sorted(int(p.stem) for p in (res / "frames").glob("*.png")) == SAVES
    with Image.open(res / "animation.gif") as gif:
        assert gif.n_frames == len(SAVES)
    after = frames(workdir)
    assert {name: after[name] for name in early} == early, "a frame of an earlier round was redrawn"
    assert not [p for p in res.rglob(".*") if p.is_file()], "temporary files left behind"

    # The same settings in one batch run over the finished folder give the same frames, byte for byte.
    batch = make_workdir(tmp_path / "batch", config)
    snakemake(batch, "--configfile", str(REPO / "configs" / "live.yaml"), "test.yaml")
    assert {p.name: p.read_bytes() for p in (batch / "results" / "live" / "frames").glob("*.png")} == {
        name: content for name, (content, _) in after.items()
    }


def test_watch_needs_a_checkpoints_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from embedding_film.cli.watch import Watcher

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.yaml").write_text("run: x\n")
    with pytest.raises(SystemExit, match="make watch films a Trainer output folder while it grows: set checkpoints:"):
        Watcher(["my.yaml"], "2", 60.0, 1.0, tmp_path / "rounds")
