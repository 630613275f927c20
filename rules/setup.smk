# Configuration and run planning, when the workflow is parsed: validate the config, derive each run's
# checkpoint steps and layout fit (Run), and set what the job runtime reads from the environment.
import functools
import hashlib
import inspect
import json
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.io import apply_wildcards
from snakemake.logging import logger
from snakemake.utils import validate

# In a checkout the package lives in workflow_scripts/ beside this workflow; installed (pip install .), it is
# importable already and the workflow's files are its package data.
SOURCE = Path(workflow.basedir) / "workflow_scripts"
if SOURCE.is_dir():
    sys.path.insert(0, str(SOURCE))
import embedding_film
from embedding_film.runtime.client import KINDS, LINGER, RUN_CLIENT, serving
from embedding_film.runtime.code_inputs import code_digest
from embedding_film.film.checkpoints import (
    check_existing_checkpoints,
    checkpoint_folder_steps,
    checkpoint_steps,
    failed_before,
    incomplete_checkpoints,
    training_dataset,
    training_fingerprint,
)
from embedding_film.film.common import UserError
from embedding_film.film.page.compare import common_clock
from embedding_film.film.layout import may_learn
from embedding_film.film.layout_plan import fingerprint, kept_fit_steps
from embedding_film.runtime.local_scheduling import drop_default_rate_limit
from embedding_film.film.models import check_checkpoint_folders, check_model_source

# --- paths: every file of the workflow lives under results/, a run's under results/{run}/ -------------------
RESULTS = "results"


def run_path(path="", run="{run}"):
    """A run's file, results/<run>/<path>: the {run} wildcard, or a run's name."""
    return f"{RESULTS}/{run}/{path}" if path else f"{RESULTS}/{run}"


def run_log(path):
    return run_path(f"logs/{path}")


def run_benchmark(path):
    return run_path(f"benchmarks/{path}")


def compare_path(path, name="{name}"):
    """A comparison's file, results/compare/<name>/<path>."""
    return f"{RESULTS}/compare/{name}/{path}"


def compare_log(path):
    return compare_path(f"logs/{path}")


def compare_benchmark(path):
    return compare_path(f"benchmarks/{path}")


if "chunk_size" in config:
    raise WorkflowError(
        "chunk_size was removed: every stage now runs one job per checkpoint, warm workers pay the imports once "
        "(workflow_scripts/embedding_film/runtime/worker.py); delete chunk_size from your config."
    )
validate(config, schema="../schemas/config.schema.yaml", set_default=True)


# The folder that holds the embedding_film package (code_files lists the code under it). Jobs import the package
# from there (PYTHONPATH is *set*, so local, cluster and conda jobs inherit it), and find their warm workers through the id of the process the workers serve and end
# with: this Snakemake, or the `make watch` process that runs Snakemake round after round (client.py).
CODE_ROOT = str(Path(embedding_film.__file__).resolve().parents[1])


def _workers_owner():
    owner = os.environ.get("FILM_OWNER_PID", "")
    if owner.isdigit() and int(owner) != os.getpid():
        try:
            os.kill(int(owner), 0)  # still running
            return owner
        except ProcessLookupError:
            pass
        except PermissionError:
            return owner
    return str(os.getpid())


WORKERS_OWNER = _workers_owner()
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (CODE_ROOT, os.environ.get("PYTHONPATH")) if p),
    FILM_OWNER_PID=WORKERS_OWNER,
)


def say_workers_linger():
    """After a successful run of its own (not a live mode's round): say that its warm workers wait for the next
    run here, for how long, and how to end them (docs/runtime.md)."""
    try:
        linger = float(os.environ.get("FILM_WORKER_LINGER", LINGER))
    except ValueError:
        return  # the workers say so in their logs, and keep their own value
    if WORKERS_OWNER != str(os.getpid()) or linger <= 0:
        return
    kinds = [kind for kind in KINDS if serving(kind)]
    if kinds:
        print(
            f"Warm workers ({', '.join(kinds)}) wait {linger:.0f} s for the next run in this folder, which then pays "
            "no imports: `embedding-film workers --stop` ends them now, FILM_WORKER_LINGER=0 with each run.",
            file=sys.stderr,
        )


@dataclass(frozen=True)
class Run:
    """One film: its settings and what follows from them when the workflow is parsed."""

    name: str
    cfg: dict
    steps: list
    checkpoint_root: str
    external: bool
    skipped: dict  # {step: why} of the checkpoints left out of this film
    layout_fit: tuple = ()  # the checkpoints a tsne/param/umap/auto layout is fitted on (see with_layout_fit)
    dynamics: tuple = ()  # the checkpoints the training dynamics score (none: dynamics are off; dynamics_steps)
    refit_reason: str = ""  # why the layout is fitted on every checkpoint (fit: auto; layout_plan.py)

    @property
    def first(self):
        return self.steps[0]

    @property
    def last(self):
        return self.steps[-1]

    def checkpoint_dir(self, step):
        return f"{self.checkpoint_root}/checkpoint-{step}"


def discover_steps(folder, cfg):
    """The steps of the checkpoint-<step> folders of an external Trainer output folder, and {step: why} of
    those that cannot be filmed yet (still being written, truncated; see checkpoints.incomplete_checkpoint).
    Every checkpoint that can is checked (config, safetensors header, pickle policy, one architecture)
    before any job runs."""
    root = Path(folder)
    if not root.is_dir():
        raise WorkflowError(
            f"checkpoints folder '{folder}' does not exist; set checkpoints: to a Trainer output folder or null."
        )
    steps = checkpoint_folder_steps(root)
    for temporary in sorted(root.glob("tmp-checkpoint-*")):
        logger.warning(f"'{temporary}' is a checkpoint the Trainer is still writing; it joins the film once complete.")
    if not steps:
        raise WorkflowError(
            f"checkpoints folder '{folder}' has no checkpoint-<step> sub-folders; point checkpoints: at the Trainer's output_dir."
        )
    skipped = incomplete_checkpoints(root, steps)
    ready = [s for s in steps if s not in skipped]
    if ready:
        check_checkpoint_folders(
            [root / f"checkpoint-{s}" for s in ready], cfg["allow_pickle_checkpoints"], cfg["embedding"]["pooling"]
        )
    return steps, skipped


def leave_out(run_name, root, steps, skipped, strict):
    """The steps this film shows: `steps` without the incomplete ones (`skipped`) and those whose checkpoint
    failed before for a reason of its own (results/{run}/skipped/{step}.json, while the checkpoint is
    unchanged). One warning line names each; strict: true refuses instead."""
    for s in steps:
        if s not in skipped and (
            why := failed_before(run_path(f"skipped/{s}.json", run_name), f"{root}/checkpoint-{s}")
        ):
            skipped[s] = f"failed before: {why}"
    for s, why in sorted(skipped.items()):
        message = f"checkpoint '{root}/checkpoint-{s}' {why}"
        if strict:
            raise WorkflowError(f"{message}; fix or remove it (strict: true refuses to film without it).")
        logger.warning(f"{message}: left out of this film (it joins once complete or replaced).")
    shown = [s for s in steps if s not in skipped]
    if not shown:
        raise WorkflowError(
            f"no checkpoint of run {run_name} can be filmed (see the warnings above); fix them or wait for the Trainer."
        )
    return shown


def plan_run(name, cfg):
    """A Run from its settings: the checkpoint steps, and the checks that need no download."""
    training = cfg["training"]
    results = run_path(run=name)
    check_model_source(cfg["model"], cfg["allow_pickle_checkpoints"])
    if cfg["checkpoints"]:
        root = str(cfg["checkpoints"])
        steps, skipped = discover_steps(root, cfg)
        run = Run(name, cfg, leave_out(name, root, steps, skipped, cfg["strict"]), root, True, skipped)
    else:
        if training["save_steps"] > training["max_steps"]:
            raise WorkflowError(
                f"training.save_steps ({training['save_steps']}) is larger than training.max_steps ({training['max_steps']}); lower save_steps."
            )
        root = f"{results}/checkpoints"
        fingerprint = training_fingerprint(cfg["model"], training, cfg["tiny_vit"], cfg["dataset"], cfg["seed"])
        check_existing_checkpoints(root, fingerprint)
        skipped = {}
        steps = leave_out(
            name, root, checkpoint_steps(training["max_steps"], training["save_steps"]), skipped, cfg["strict"]
        )
        run = Run(name, cfg, steps, root, False, skipped)
    classes = Path(results) / "data" / "classes.json"
    if classes.is_file():  # the eval set's size is known from an earlier data preparation (the jobs check again)
        n = len(json.loads(classes.read_text())["ids"])
        for key, value in (("ood.k", cfg["ood"]["k"]), ("frames.top_k", cfg["frames"]["top_k"])):
            if value >= n:
                raise WorkflowError(
                    f"{key} ({value}) must be smaller than the number of eval images ({n}); lower it or raise dataset.eval_size."
                )
    if cfg["projection"]["method"] == "pca" and cfg["projection"]["align"] == "reference":
        reference_step(run)
    if cfg["projection"]["method"] != "pca":
        run = with_layout_fit(run)
    return replace(run, dynamics=dynamics_steps(run))


def dynamics_steps(run):
    """The checkpoints whose predictions on the training images enter the training dynamics: those from
    dynamics.from_step to until_step; none when dynamics are off, or an earlier data preparation found no
    training split (one line says so)."""
    settings = run.cfg["dynamics"]
    if settings["enabled"] is False or settings["enabled"] == "auto" and run.external:
        return ()
    classes = Path(run_path("data/classes.json", run.name))
    if classes.is_file() and json.loads(classes.read_text()).get("train_size") == 0:
        logger.info(
            f"run {run.name}: training dynamics are off: its dataset has no training split "
            f"'{run.cfg['dataset']['train_split']}' (dataset.train_split)."
        )
        return ()
    until = settings["until_step"]
    steps = tuple(s for s in run.steps if s >= settings["from_step"] and (until is None or s <= until))
    if not steps:
        logger.warning(
            f"run {run.name}: training dynamics are off: no checkpoint between dynamics.from_step and until_step."
        )
    return steps


def with_layout_fit(run):
    """The run with the checkpoints its tsne/param/umap/auto layout is fitted on: all (fit: all); the
    projection.reference_steps (fit: reference), which must all be checkpoints of the run; or (fit: auto) those
    of the layout there is, appended checkpoints being placed on it, unless a refit is due (layout_plan.py)."""
    projection = run.cfg["projection"]
    if projection["fit"] == "all":
        return replace(run, layout_fit=tuple(run.steps))
    if projection["fit"] == "auto":
        results = run_path(run=run.name)
        kept, why = kept_fit_steps(
            f"{results}/projection/layout.npz", f"{results}/film_metrics.json", run.steps, fingerprint(run.cfg)
        )
        if kept is not None:
            return replace(run, layout_fit=tuple(kept))
        if Path(f"{results}/projection/layout.npz").exists():
            logger.info(f"run {run.name}: the layout is refitted on all {len(run.steps)} checkpoints: {why}.")
        return replace(run, layout_fit=tuple(run.steps), refit_reason=why)
    chosen = projection["reference_steps"] or []
    missing = [s for s in chosen if s not in run.steps]
    if not chosen or missing:
        raise WorkflowError(
            f"projection.reference_steps {missing or chosen} of run {run.name} are not checkpoint steps (it has "
            f"{run.steps[:5]}...); list steps that exist, or set projection.fit: all."
        )
    return replace(run, layout_fit=tuple(sorted(chosen)))


def reference_step(run):
    ref = run.cfg["projection"]["reference_step"]
    if ref == "last":
        return run.last
    if ref == "first":
        return run.first
    if isinstance(ref, str) and not ref.isdigit() or int(ref) not in run.steps:
        raise WorkflowError(
            f"projection.reference_step ({ref}) is not a checkpoint step; use last, first or one of {run.steps[:5]}..."
        )
    return int(ref)


def merged(base, overrides):
    """`base` with `overrides` merged in, nested sections key by key (as Snakemake merges config files)."""
    out = dict(base)
    for key, value in (overrides or {}).items():
        out[key] = merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def run_settings(config):
    """{run name: its whole config}: `run` alone, or every entry of `runs` (overrides of the rest of the config,
    or Trainer output folders), each validated as a config of its own."""
    entries = config.get("runs")
    if not entries:
        return {config["run"]: config}
    if isinstance(entries, list):
        entries = {Path(folder).name: {"checkpoints": folder} for folder in entries}
        if len(entries) != len(config["runs"]):
            raise WorkflowError(
                "runs: two checkpoint folders have the same name; give the runs names (runs: {name: {checkpoints: folder}})."
            )
    base = {k: v for k, v in config.items() if k not in ("runs", "run")}
    settings = {}
    for name, overrides in entries.items():
        cfg = merged(base, {**(overrides or {}), "run": name})
        try:
            validate(cfg, schema="../schemas/config.schema.yaml", set_default=True)
        except WorkflowError as err:
            raise WorkflowError(f"runs: {name}: {err}")
        settings[name] = cfg
    return settings


try:
    RUNS = {name: plan_run(name, cfg) for name, cfg in run_settings(config).items()}
except UserError as err:
    raise WorkflowError(str(err))


# When a film may need the learned map, the analysis worker warms it up (torch and its first training steps)
# once the run's first analysis job starts: the layout job, which every later stage waits for, then does not
# pay it (adapters/layout.py, warm_ahead_key).
os.environ.update(
    FILM_WARM_LEARNED_MAP=(
        "1"
        if any(
            may_learn(r.cfg["projection"]["method"], r.cfg["projection"]["auto"]["candidates"]) for r in RUNS.values()
        )
        else "0"
    )
)


def names_regex(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


COMPARE = config["compare"]


wildcard_constraints:
    run=names_regex(RUNS),
    step=r"\d+",
    name=re.escape(COMPARE["name"]),
    tick=r"\d+",
