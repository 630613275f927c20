"""FilmCallback: film a Hugging Face Trainer's checkpoints while it trains, from the training script.

    from embedding_film import FilmCallback
    trainer = Trainer(..., callbacks=[FilmCallback(run="my-run", model="google/vit-base-patch16-224-in21k",
                                                   dataset={"name": "cifar10", "image_column": "img"})])

Its keyword arguments are the workflow's config keys (schemas/config.schema.yaml; `embedding-film --help` lists
them), checked when the callback is created, so a typo fails before training starts. `checkpoints` is the
Trainer's output_dir. When training begins the callback saves the model as it is (checkpoint-0, the film's
first frame) and starts the live watcher (cli/watch.py) in a background process at the lowest CPU priority,
on the cores training leaves free: it films each checkpoint the Trainer completes (a half-written one is left
for a later round), with the live mode's guarantees (an appended checkpoint films only its own jobs; no old
frame is redrawn unless the film says why). Training never waits for it. Where training keeps every core
busy (a CPU run with as many torch threads as cores) the film waits for training to end: filming beside it,
even at the lowest priority, slowed the embedded default's training several times over
(benchmarks/RESULTS.md). When training ends the callback saves the last step if the Trainer did not, gives the watcher every core, tells it
to film what is left, waits for the film and prints where it is. If the training process dies (an exception,
Ctrl-C, a kill) the watcher sees its standard input close and stops Snakemake as Ctrl-C would: nothing
half-written is left, and the next run of the callback or `embedding-film film` carries on.

Results land in `results/{run}/` under `workdir` (default: the directory the script runs in), beside the
config the film ran with (`film_config.yaml`); the watcher's output goes to `results/{run}/logs/film_callback.log`.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

import embedding_film
from embedding_film.api.settings import film_settings, write_settings
from embedding_film.film.common import UserError
from embedding_film.film.models import check_model_source

NICE = 19  # where SCHED_IDLE is missing (not Linux): the lowest priority nice gives
PLACEHOLDER = "<the Trainer's output_dir>"
_WATCHERS: dict[Path, subprocess.Popen[str]] = {}  # results folder -> the watcher filming it, one per folder


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The film's config from the callback's keyword arguments, checked as the workflow checks it when it is
    parsed, as far as that is possible before the Trainer has written anything. Raises UserError."""
    if settings.get("runs"):
        raise UserError("FilmCallback films one run; drop runs= (compare runs with `embedding-film film` afterwards).")
    cfg = film_settings({**settings, "checkpoints": settings.get("checkpoints") or PLACEHOLDER})
    if (cfg["dataset"].get("label_noise") or {}).get("fraction", 0) > 0:
        raise UserError(
            "dataset.label_noise changes the labels the workflow trains on, but your script trains the model; "
            "set label_noise.fraction to 0 (add noise to your own training set instead)."
        )
    check_model_source(cfg["model"], cfg["allow_pickle_checkpoints"])
    return cfg


def run_name(output_dir: Path) -> str:
    """A run name from the Trainer's output folder (letters, digits, '_', '-', '.')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", output_dir.name).lstrip(".") or "film"


def save_checkpoint(folder: Path, model: Any, processor: Any = None, state: Any = None) -> None:
    """Save `model` (with its processor and trainer state, when given) as a complete checkpoint folder: into
    tmp-<name> first, then renamed, so the watcher never sees half of it (it leaves tmp-checkpoint-* alone). A
    folder of that name from an earlier run is replaced whole."""
    tmp, old = folder.with_name(f"tmp-{folder.name}"), folder.with_name(f"tmp-old-{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)  # what a crash left of an earlier save
    model.save_pretrained(tmp, safe_serialization=True)
    if processor is not None and hasattr(processor, "save_pretrained"):
        processor.save_pretrained(tmp)
    if state is not None:
        state.save_to_json(str(tmp / "trainer_state.json"))
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def training_cores(args: Any) -> int:
    """The cores a Trainer keeps busy: its torch threads on a CPU (one process on an accelerator), plus its
    data-loading workers."""
    import torch

    device = getattr(args, "device", None)
    busy = torch.get_num_threads() if device is None or device.type == "cpu" else 1
    return busy + int(getattr(args, "dataloader_num_workers", 0) or 0)


class FilmCallback(TrainerCallback):
    """Film the Trainer's checkpoints in the background while it trains (see the module's docstring).

    settings: the workflow's config keys (run, model, dataset, ood, projection, ...), as in config.yaml.
    workdir: where results/{run}/ goes (default: the current directory). cores: the cores the film may use
    while training runs (default: those training leaves free; none leaves the film to when training ends);
    when training ends it uses every core."""

    def __init__(self, *, workdir: str | os.PathLike[str] | None = None, cores: int | None = None, **settings: Any):
        self.settings = settings
        check_settings(settings)
        if cores is not None and (not isinstance(cores, int) or cores < 0):
            raise UserError(f"cores={cores!r}: give a number of cores (0: film when training ends) or leave it out.")
        self.workdir = Path(workdir or os.getcwd()).resolve()
        self.cores = cores
        self.watcher: subprocess.Popen[str] | None = None
        self.config: Path | None = None
        self.results: Path | None = None
        self.log: Path | None = None
        self.warned = False

    # --- the Trainer's events ------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        output_dir = Path(args.output_dir).resolve()
        settings = {"run": run_name(output_dir), **self.settings, "checkpoints": str(output_dir)}
        cfg = check_settings(settings)
        self.results = self.workdir / "results" / cfg["run"]
        self.log = self.results / "logs" / "film_callback.log"
        self.config = write_settings(cfg, self.results / "film_config.yaml")
        output_dir.mkdir(parents=True, exist_ok=True)
        if state.global_step == 0 and model is not None:  # the film starts before fine-tuning, from this model
            save_checkpoint(output_dir / "checkpoint-0", model, kwargs.get("processing_class"))
        free = self.cores if self.cores is not None else max(0, available_cores() - training_cores(args))
        if free:
            self.start(free)
            print(f"embedding-film: filming {output_dir} into {self.results} on {free} core(s) while training runs")
        else:
            print(
                f"embedding-film: training keeps every core busy; {output_dir} is filmed into {self.results} "
                "when training ends (give FilmCallback cores=N to film on N cores meanwhile)"
            )

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.watcher is not None and self.watcher.poll() is not None and not self.warned:
            self.warned = True
            print(f"embedding-film: the film stopped early (exit {self.watcher.returncode}); see {self.log}")

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self.config is None:
            return
        last = Path(args.output_dir).resolve() / f"checkpoint-{state.global_step}"
        if model is not None and not last.exists():  # the film ends where training ended
            save_checkpoint(last, model, kwargs.get("processing_class"), state)
        ended = time.time()
        if self.watcher is None:
            self.start(available_cores())
        code = self.finish()
        film = self.results / "film.html"
        if code == 0 and film.is_file():
            print(f"embedding-film: the film is complete ({time.time() - ended:.0f} s after training): {film}")
        else:
            print(f"embedding-film: the film could not be finished (exit {code}); see {self.log}")

    # --- the watcher -----------------------------------------------------------------------------------------
    def start(self, cores: int) -> None:
        """Start the watcher on the film's config with `cores`, stopping one that films the same folder (an
        earlier callback's)."""
        earlier = _WATCHERS.pop(self.results, None)
        if earlier is not None:
            stop(earlier)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        source = str(Path(embedding_film.__file__).resolve().parents[1])  # the folder that holds the package
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p))
        env.pop("FILM_OWNER_PID", None)  # the watcher's warm workers serve the watcher
        env.setdefault("FILM_WORKER_LINGER", "0")  # and end with it: a training script's memory is its own again
        with open(self.log, "a") as log:
            self.watcher = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "embedding_film.cli.watch",
                    "--configfile",
                    str(self.config),
                    "--cores",
                    str(cores),
                    "--quiet",
                    "inf",
                    "--follow-stdin",
                    "--",
                    "--replace-workflow-config",
                ],
                cwd=self.workdir,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                preexec_fn=lower_priority,
            )
        _WATCHERS[self.results] = self.watcher

    def finish(self) -> int:
        """Give the watcher every core, tell it training has ended and wait until it has filmed every
        checkpoint."""
        watcher, self.watcher = self.watcher, None
        try:
            watcher.stdin.write(f"cores {available_cores()}\nend\n")
            watcher.stdin.close()
        except (BrokenPipeError, ValueError):  # it has already stopped (it films up to the Trainer's max_steps)
            pass
        try:
            return watcher.wait()
        finally:
            _WATCHERS.pop(self.results, None)


def lower_priority() -> None:
    """In the watcher's process, before it runs: the lowest CPU priority there is (SCHED_IDLE on Linux: it runs
    only on a core nothing else wants; elsewhere nice 19). Its Snakemake and jobs inherit it."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    elif hasattr(os, "nice"):
        os.nice(NICE)


def stop(watcher: subprocess.Popen[str]) -> None:
    """End a watcher as a dying training process would: close its input, and wait for it to stop cleanly."""
    if watcher.poll() is None:
        try:
            watcher.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        watcher.wait()


@atexit.register
def _stop_all() -> None:
    """When the training process exits without on_train_end (an exception, Ctrl-C), stop its watchers."""
    for watcher in list(_WATCHERS.values()):
        stop(watcher)
