# Validate the config, derive each run's checkpoint steps, and define every input function and the shell
# command that runs a rule's job (job()).
import functools
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

sys.path.insert(0, workflow.basedir)
from workflow_scripts.client import RUN_CLIENT
from workflow_scripts.checkpoints import (
    check_existing_checkpoints,
    checkpoint_folder_steps,
    checkpoint_steps,
    training_fingerprint,
)
from workflow_scripts.common import UserError
from workflow_scripts.film_html.compare import fraction_clock, same_step_clock
from workflow_scripts.layout_plan import fingerprint, kept_fit_steps
from workflow_scripts.local_scheduling import drop_default_rate_limit
from workflow_scripts.models import check_checkpoint_folders, check_model_source, failed_before, incomplete_checkpoints


if "chunk_size" in config:
    raise WorkflowError(
        "chunk_size was removed: every stage now runs one job per checkpoint, warm workers pay the imports once "
        "(workflow_scripts/worker.py); delete chunk_size from your config."
    )
validate(config, schema="../schemas/config.schema.yaml", set_default=True)

# Jobs import the workflow_scripts package from this folder (PYTHONPATH is *set*, so local, cluster and conda
# jobs inherit it), and find their warm workers through the id of the process the workers serve and end
# with: this Snakemake, or the `make watch` process that runs Snakemake round after round (client.py).
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


os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p),
    FILM_OWNER_PID=_workers_owner(),
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
        if s not in skipped and (why := failed_before(f"results/{run_name}/skipped/{s}.json", f"{root}/checkpoint-{s}")):
            skipped[s] = f"failed before: {why}"
    for s, why in sorted(skipped.items()):
        message = f"checkpoint '{root}/checkpoint-{s}' {why}"
        if strict:
            raise WorkflowError(f"{message}; fix or remove it (strict: true refuses to film without it).")
        logger.warning(f"{message}: left out of this film (it joins once complete or replaced).")
    shown = [s for s in steps if s not in skipped]
    if not shown:
        raise WorkflowError(f"no checkpoint of run {run_name} can be filmed (see the warnings above); fix them or wait for the Trainer.")
    return shown


def plan_run(name, cfg):
    """A Run from its settings: the checkpoint steps, and the checks that need no download."""
    training = cfg["training"]
    results = f"results/{name}"
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
        steps = leave_out(name, root, checkpoint_steps(training["max_steps"], training["save_steps"]), skipped, cfg["strict"])
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
    return run


def with_layout_fit(run):
    """The run with the checkpoints its tsne/param/umap/auto layout is fitted on: all (fit: all); the
    projection.reference_steps (fit: reference), which must all be checkpoints of the run; or (fit: auto) those
    of the layout there is, appended checkpoints being placed on it, unless a refit is due (layout_plan.py)."""
    projection = run.cfg["projection"]
    if projection["fit"] == "all":
        return replace(run, layout_fit=tuple(run.steps))
    if projection["fit"] == "auto":
        results = f"results/{run.name}"
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
            raise WorkflowError("runs: two checkpoint folders have the same name; give the runs names (runs: {name: {checkpoints: folder}}).")
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


def uses_learned_map(cfg):
    """Whether a run's layout may be the learned map (its jobs then import torch in the analysis worker)."""
    proj = cfg["projection"]
    return proj["method"] == "param" or (proj["method"] == "auto" and "param" in proj["auto"]["candidates"])


# The analysis worker imports torch while it starts, beside the embeddings, when a film may need the learned
# map: its layout job, which every later stage waits for, then does not pay it (layout.warm).
# (Set through update(): Snakemake's linter takes an os.environ[...] for a variable the user must provide.)
os.environ.update(FILM_WARM_LEARNED_MAP="1" if any(uses_learned_map(r.cfg) for r in RUNS.values()) else "0")


def names_regex(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


COMPARE = config["compare"]


wildcard_constraints:
    run=names_regex(RUNS),
    step=r"\d+",
    name=re.escape(COMPARE["name"]),
    tick=r"\d+",


# --- the job command --------------------------------------------------------------------------------------
# Every rule's shell command runs workflow_scripts/<script>.py's main(job) through the warm-worker client,
# with the job's JSON (params.job, see job_params) on stdin. See workflow_scripts/worker.py and job.py.


# The Python that runs a job: the rule's conda environment's (`--sdm conda` puts it first on PATH), else the
# one running this Snakemake (its virtual environment), whatever PATH says.
PYTHON = "python" if any("conda" in str(m).lower() for m in workflow.deployment_settings.deployment_method) else sys.executable


def job(script):
    """The shell command of a job run by workflow_scripts/<script>.py (named after its rule)."""
    return f"exec {PYTHON} -S -c '{RUN_CLIENT}' {script} --log {{log:q}} <<< {{params.job:q}}"


def job_params(**settings):
    """A rule's params: `settings`, the job's settings as one dict (each a value, or a function of the
    wildcards, strings with wildcards filled in), and `job`, the JSON its adapter receives (named input and
    output, the settings, wildcards, threads, resources). Snakemake records `settings`, so a changed setting
    reruns exactly the jobs that use it; `job` is derived from the input, output and threads, so it is not
    recorded, nor is a setting whose function takes `input` or `output` (it lives in `job` only). Two params
    functions per rule, not one per setting: Snakemake inspects and calls every params function of every job
    when it plans, which a dry run of 1,000 checkpoints paid 30,000 times."""
    takes = {
        name: [p for p in inspect.signature(value).parameters if p in ("input", "output")] if callable(value) else []
        for name, value in settings.items()
    }

    def values(wildcards, files=None):
        """Each setting's value for this job; those that take input/output only when `files` gives them."""
        out = {}
        for name, value in settings.items():
            if not callable(value):
                out[name] = apply_wildcards(value, wildcards) if isinstance(value, str) else value
            elif not takes[name]:
                out[name] = value(wildcards)
            elif files is not None:
                out[name] = value(wildcards, **{p: files[p] for p in takes[name]})
        return out

    def named(files):
        return {name: list(value) if isinstance(value, list) else str(value) for name, value in files.items()}

    def job(wildcards, input, output, threads, resources):
        return json.dumps(
            {
                "input": named(input),
                "output": named(output),
                "params": values(wildcards, {"input": input, "output": output}),
                "wildcards": dict(wildcards.items()),
                "threads": threads,
                "resources": {k: v for k, v in resources.items() if not k.startswith("_") and k != "tmpdir"},
            }
        )

    return {"settings": lambda wildcards: values(wildcards), "job": job}


def code_files(rule):
    """The workflow_scripts modules a rule's outputs depend on: its adapter and everything it imports from the
    package, found by reading the imports (so a change to models.py's pooling reruns embed)."""
    return sorted(_module_files(rule, set()))


def _module_files(module, seen):
    """{files of workflow_scripts modules}: `module` (a .py file, or every file of a package such as film_html,
    its page template and vendored JavaScript too) and, recursively, the modules it imports."""
    folder = Path(workflow.basedir, "workflow_scripts")
    single = folder / f"{module}.py"
    package = [p for p in sorted((folder / module).rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    files = [single] if single.is_file() else package
    if module in ("job", "client", "worker") or not files or str(files[0]) in seen:
        return seen
    seen.update(str(f) for f in files)
    for source in (f for f in files if f.suffix == ".py"):
        for name in re.findall(r"^\s*(?:from|import)\s+workflow_scripts\.(\w+)", source.read_text(), re.M):
            _module_files(name, seen)
    return seen


# --- settings and steps -----------------------------------------------------------------------------------


def setting(*keys):
    """A function of the wildcards giving the run's value of a config key (setting("ood", "k"))."""

    def value(wildcards):
        node = RUNS[wildcards.run].cfg
        for key in keys:
            node = node[key]
        return node

    return value


def run_of(wildcards):
    return RUNS[wildcards.run]


def step_of(wildcards):
    """The checkpoint step of a job, which must be one of its run's checkpoints."""
    run, step = run_of(wildcards), int(wildcards.step)
    if step not in run.steps:
        raise WorkflowError(f"step {step} is not a checkpoint of run {run.name}; its steps are {run.steps[:5]}...")
    return step


def neighbour(wildcards, offset):
    """The step `offset` checkpoints away from the job's (None beyond the film's ends)."""
    run = run_of(wildcards)
    i = run.steps.index(step_of(wildcards)) + offset
    return run.steps[i] if 0 <= i < len(run.steps) else None


def per_step(run, stage, steps=None, ext="npy"):
    return [f"results/{run.name}/{stage}/{s}.{ext}" for s in (run.steps if steps is None else steps)]


def end_file(stage, end):
    """Input function: the file of `stage` for the run's first or last checkpoint (end: "first" or "last")."""
    return lambda wildcards: f"results/{wildcards.run}/{stage}/{getattr(run_of(wildcards), end)}.npy"


def all_steps(stage, ext="npy"):
    """Input function: the files of `stage` for every checkpoint of the job's run."""
    return lambda wildcards: per_step(run_of(wildcards), stage, ext=ext)


def previous_step(name, stage, ext="npy"):
    """Input function: {name: the previous checkpoint's file of `stage`} (nothing for the film's first)."""

    def inputs(wildcards):
        before = neighbour(wildcards, -1)
        return {} if before is None else {name: f"results/{wildcards.run}/{stage}/{before}.{ext}"}

    return inputs


def planned_last_step(wildcards):
    """The step the frames' loss axis and titles run to: training.max_steps, or for external checkpoints the
    max_steps their Trainer planned (so appending a checkpoint of a running training redraws no old frame)."""
    run = run_of(wildcards)
    if not run.external:
        return run.cfg["training"]["max_steps"]
    return max(_trainer_max_steps(f"{run.checkpoint_dir(run.last)}/trainer_state.json"), run.last)


@functools.lru_cache(maxsize=None)
def _trainer_max_steps(state):
    """max_steps of a trainer_state.json (0 without one): read once per Snakemake call, not once per frame job
    (a dry run of 1,000 checkpoints read it 2,000 times)."""
    try:
        return int(json.loads(Path(state).read_text()).get("max_steps") or 0)
    except (OSError, ValueError, AttributeError):
        return 0


# --- checkpoints ------------------------------------------------------------------------------------------


def checkpoint_weights(wildcards):
    """What a checkpoint's embedding depends on: the weight file of an external checkpoint; for a trained run
    the checkpoints folder, which the one training job writes as a whole."""
    run, step = run_of(wildcards), step_of(wildcards)
    if not run.external:
        return f"results/{run.name}/checkpoints"
    folder = Path(run.checkpoint_dir(step))
    weights = [folder / n for n in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")]
    return str(next((w for w in weights if w.exists()), weights[0]))


def loss_log(wildcards):
    """The loss curve a frame draws: the training's log, or (external checkpoints) the checkpoint's own
    trainer_state.json, so a frame never depends on checkpoints after it."""
    run = run_of(wildcards)
    if not run.external:
        return {"loss_log": f"results/{run.name}/train_log.csv"}
    state = f"{run.checkpoint_dir(step_of(wildcards))}/trainer_state.json"
    return {"loss_log": state} if os.path.isfile(state) else {}


def newest_trainer_state(wildcards):
    """The newest checkpoint's trainer_state.json of an external run (none: an empty loss curve)."""
    run = run_of(wildcards)
    states = (f"{run.checkpoint_dir(s)}/trainer_state.json" for s in reversed(run.steps))
    return [f for f in states if os.path.isfile(f)][:1]


# --- projection -------------------------------------------------------------------------------------------


def layout_steps(wildcards):
    """The checkpoints the film-wide layout is fitted on: for method pca the reference step (align reference),
    every global_every-th checkpoint (global), all (gpa); for tsne/umap/auto all, or reference_steps (fit:
    reference)."""
    run = run_of(wildcards)
    projection = run.cfg["projection"]
    if projection["method"] != "pca":
        return list(run.layout_fit)
    align = projection["align"]
    if align == "reference":
        return [reference_step(run)]
    if align == "global":
        return run.steps[:: run.cfg["projection"]["global_every"]]
    if align == "gpa":
        return run.steps
    raise WorkflowError(f"projection.align {align} of run {run.name} has no film-wide layout")


def layout_embeddings(wildcards):
    return per_step(run_of(wildcards), "embeddings", layout_steps(wildcards))


def projection_inputs(wildcards):
    """What a checkpoint's projection depends on besides its embeddings: the film-wide layout (method tsne,
    umap, auto; align reference, global, gpa), or the aligned frame it is aligned onto (first: the film's first
    frame, previous: the previous checkpoint's; nothing for the film's first checkpoint)."""
    run, step = run_of(wildcards), step_of(wildcards)
    align = run.cfg["projection"]["align"]
    if run.cfg["projection"]["method"] != "pca" or align in ("reference", "global", "gpa"):
        return {"layout": f"results/{run.name}/projection/layout.npz"}
    if step == run.first:
        return {}
    anchor = run.first if align == "first" else neighbour(wildcards, -1)
    return {"anchor": f"results/{run.name}/projection/{anchor}.npy"}


def film_layout(wildcards):
    """[the run's film-wide layout file] when it has one (method tsne/umap/auto, align reference/global/gpa)."""
    run = run_of(wildcards)
    projection = run.cfg["projection"]
    if projection["method"] != "pca" or projection["align"] in ("reference", "global", "gpa"):
        return [f"results/{run.name}/projection/layout.npz"]
    return []




def camera_mode(run):
    """The run's camera: fixed (projection/limits.json), lookahead or causal (workflow_scripts/camera.py);
    auto = fixed for the Procrustes modes, whose frames all have the reference's size; causal for a folder of
    external checkpoints, which can grow, under a layout that places appended checkpoints (fit auto or
    reference: an appended checkpoint then changes no old frame, its camera included); else lookahead."""
    mode = run.cfg["camera"]["mode"]
    if mode != "auto":
        return mode
    projection = run.cfg["projection"]
    if projection["method"] == "pca" and projection["align"] in ("first", "previous", "gpa"):
        return "fixed"
    grows = run.external and projection["method"] != "pca" and projection["fit"] != "all"
    return "causal" if grows else "lookahead"


def view_file(wildcards, step=None):
    """What a frame shows of the layout: the film's fixed limits, the planned camera of every frame, or
    (causal) this checkpoint's own camera file."""
    run = run_of(wildcards)
    mode = camera_mode(run)
    if mode == "fixed":
        return f"results/{run.name}/projection/limits.json"
    if mode == "lookahead":
        return f"results/{run.name}/projection/camera.json"
    return f"results/{run.name}/projection/camera/{step_of(wildcards) if step is None else step}.json"


def frame_views(wildcards):
    """{view: this checkpoint's view file} for a frame, and {next_view} for a tween frame."""
    return {"view": view_file(wildcards)}


def tween_views(wildcards):
    return {"view": view_file(wildcards), "next_view": view_file(wildcards, neighbour(wildcards, 1))}


def all_views(wildcards):
    """Every checkpoint's view file (one file for fixed and lookahead cameras)."""
    run = run_of(wildcards)
    return sorted({view_file(wildcards, s) for s in run.steps})


def camera_window(wildcards):
    """The projections a causal camera reads: this checkpoint's and those of the camera.window - 1 before it."""
    run, step = run_of(wildcards), step_of(wildcards)
    i = run.steps.index(step)
    window = run.cfg["camera"]["window"]
    return per_step(run, "projection", run.steps[max(0, i - window + 1): i + 1])


def limits_projections(wildcards):
    """The projections the film's fixed axis limits come from (see workflow_scripts/frame_limits.py)."""
    run = run_of(wildcards)
    align = run.cfg["projection"]["align"]
    if align in ("first", "previous"):
        return per_step(run, "projection", [run.first])
    if align == "reference":
        return per_step(run, "projection", [reference_step(run)])
    return per_step(run, "projection")


# --- frames and the film ----------------------------------------------------------------------------------


def next_projection(wildcards):
    """The next checkpoint's projection, which a tween frame moves towards."""
    after = neighbour(wildcards, 1)
    if after is None:
        raise WorkflowError(f"checkpoint {wildcards.step} is the last of run {wildcards.run}: no frame follows it")
    return f"results/{wildcards.run}/projection/{after}.npy"


def film_frames(wildcards):
    """Every frame of the film in order: each checkpoint followed by its interpolated frames."""
    run = run_of(wildcards)
    tween = run.cfg["animation"]["tween"]
    return [
        f
        for s in run.steps
        for f in [
            f"results/{run.name}/frames/{s}.png",
            *(f"results/{run.name}/frames/tween/{s}-{j}.png" for j in range(1, tween + 1) if s != run.last),
        ]
    ]


def report_labels(**labels):
    """Report labels (functions of the wildcards giving strings, or strings with wildcards), with the run's
    name first when the workflow films several runs."""

    def expand(wildcards):
        values = {k: v(wildcards) if callable(v) else apply_wildcards(v, wildcards) for k, v in labels.items()}
        return {"run": wildcards.run, **values} if len(RUNS) > 1 else values

    return expand


def padded_step(wildcards):
    """A checkpoint's step, zero-padded (the report sorts labels as text)."""
    return str(wildcards.step).zfill(len(str(run_of(wildcards).last)))


def model_title(wildcards):
    run = run_of(wildcards)
    return Path(run.cfg["checkpoints"]).name if run.external else Path(run.cfg["model"]).name


@functools.cache
def compare_clock():
    """The comparison's common clock: (which clock, [(tick label, {run: step shown, or None before its first
    checkpoint})], [T, R] index of the checkpoint each run shows). `step`: every panel at the same training
    step; `fraction`: at the same share of each run's training (runs of different lengths); `auto`: step when
    every run ends at the same step. Ticks that would show the same checkpoints as the one before are merged."""
    runs = list(RUNS.values())
    steps = [r.steps for r in runs]
    clock = COMPARE["clock"]
    if clock == "auto":
        clock = "step" if len({r.last for r in runs}) == 1 else "fraction"
    labels, shown = same_step_clock(steps) if clock == "step" else fraction_clock(steps)
    keep = [t for t in range(len(labels)) if t == 0 or list(shown[t]) != list(shown[t - 1])]
    rows = [(labels[t], {r.name: r.steps[i] if i >= 0 else None for r, i in zip(runs, shown[t])}) for t in keep]
    return clock, rows, shown[keep].tolist()


def compare_targets():
    """The comparison film's outputs, when the workflow films several runs."""
    if len(RUNS) < 2:
        return []
    folder = f"results/compare/{COMPARE['name']}"
    formats = sorted({fmt for r in RUNS.values() for fmt in r.cfg["animation"]["formats"]})
    return [*(f"{folder}/animation.{fmt}" for fmt in formats), f"{folder}/film.html", f"{folder}/metrics.csv"]


def all_runs(stage, ext="npy"):
    """Input function: the files of `stage` for every checkpoint of every run."""
    return lambda wildcards: [f for r in RUNS.values() for f in per_step(r, stage, ext=ext)]


def shown_steps(wildcards):
    """{run: the step its panel shows at this tick (None: not started)} of a comparison frame."""
    return compare_clock()[1][int(wildcards.tick)][1]


def shown_files(stage, ext="npy"):
    """Input function: the files of `stage` that a comparison frame's panels show."""
    return lambda wildcards: [f"results/{r}/{stage}/{s}.{ext}" for r, s in shown_steps(wildcards).items() if s is not None]


def compare_frames(wildcards):
    return [f"results/compare/{wildcards.name}/frames/{i}.png" for i in range(len(compare_clock()[1]))]


def final_targets():
    return compare_targets() + [
        target
        for run in RUNS.values()
        for target in (
            *(f"results/{run.name}/animation.{fmt}" for fmt in run.cfg["animation"]["formats"]),
            f"results/{run.name}/film.html",
            f"results/{run.name}/review.parquet",
            f"results/{run.name}/metrics.csv",
            f"results/{run.name}/outliers.csv",
            f"results/{run.name}/train_log.csv",
        )
    ]


def explain_missing_frames():
    """After a failure (e.g. with --keep-going): name each run's checkpoints that have no frame, so the film
    that was not made says which steps held it back."""
    for run in RUNS.values():
        frames = {s: os.path.exists(f"results/{run.name}/frames/{s}.png") for s in run.steps}
        missing = [str(s) for s, made in frames.items() if not made]
        failed = [s for s in run.steps if os.path.exists(f"results/{run.name}/skipped/{s}.json")]
        if missing and any(frames.values()):
            print(
                f"the film of run {run.name} was not made: no frame for steps {', '.join(missing)} (their jobs, or the "
                f"jobs they read from, failed: see results/{run.name}/logs/)."
                + (
                    f" Checkpoints {', '.join(map(str, failed))} failed for reasons of their own: run again to make the film "
                    f"without them (results/{run.name}/skipped/ says why)."
                    if failed
                    else " Fix or remove those checkpoints, then run again."
                ),
                file=sys.stderr,
            )


def runs_by_kind(external):
    """Wildcard constraint of the run names that train (external=False) or film external checkpoints."""
    return names_regex([r.name for r in RUNS.values() if r.external == external])
