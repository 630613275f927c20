# Validate the config, derive the checkpoint steps and chunks, and define every input function.
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml", set_default=True)

# Scripts import the workflow_scripts package from this folder. We *set* PYTHONPATH (prepending the
# workflow folder) so local, cluster and conda jobs inherit it; nothing is required from the user.
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p)
)


# The DAG has no wildcards: every checkpoint step is known at parse time (from the training config or
# the external checkpoints folder), so each stage is expanded into one rule per chunk of steps. These
# constraints guard the few patterns that users may request directly.
wildcard_constraints:
    step=r"\d+",


sys.path.insert(0, workflow.basedir)
from workflow_scripts.common import UserError, checkpoint_folder_steps
from workflow_scripts.train import check_existing_checkpoints, checkpoint_steps, training_fingerprint

RUN = config["run"]
RESULTS = f"results/{RUN}"
EXTERNAL = config["checkpoints"]
TRAIN = config["training"]


def discover_steps(folder):
    """The steps of every checkpoint-<step> folder in an external Trainer output folder; every checkpoint is
    checked (config, safetensors header, pickle policy, one architecture) before any job runs."""
    root = Path(folder)
    if not root.is_dir():
        raise WorkflowError(
            f"checkpoints folder '{folder}' does not exist; set checkpoints: to a Trainer output folder or null."
        )
    steps = checkpoint_folder_steps(root)
    if not steps:
        raise WorkflowError(
            f"checkpoints folder '{folder}' has no checkpoint-<step> sub-folders; point checkpoints: at the Trainer's output_dir."
        )
    from workflow_scripts.models import check_checkpoint_folders

    try:
        check_checkpoint_folders(
            [root / f"checkpoint-{s}" for s in steps], config["allow_pickle_checkpoints"], config["embedding"]["pooling"]
        )
    except UserError as err:
        raise WorkflowError(str(err))
    return steps


if EXTERNAL:
    STEPS = discover_steps(EXTERNAL)
    CHECKPOINT_ROOT = str(EXTERNAL)
else:
    if TRAIN["save_steps"] > TRAIN["max_steps"]:
        raise WorkflowError(
            f"training.save_steps ({TRAIN['save_steps']}) is larger than training.max_steps ({TRAIN['max_steps']}); lower save_steps."
        )
    STEPS = checkpoint_steps(TRAIN["max_steps"], TRAIN["save_steps"])
    CHECKPOINT_ROOT = f"{RESULTS}/checkpoints"
    try:
        check_existing_checkpoints(
            CHECKPOINT_ROOT,
            training_fingerprint(
                config["model"], TRAIN, config["tiny_vit"], config["dataset"]["image_size"], config["seed"]
            ),
        )
    except UserError as err:
        raise WorkflowError(str(err))

def check_settings_against_data():
    """Cheap checks that need no download: the model source, and settings that must fit the eval set once
    its size is known (from an earlier data preparation; the jobs check again)."""
    from workflow_scripts.models import check_model_source

    try:
        check_model_source(config["model"], config["allow_pickle_checkpoints"])
    except UserError as err:
        raise WorkflowError(str(err))
    classes = Path(RESULTS) / "data" / "classes.json"
    if classes.is_file():
        n = len(json.loads(classes.read_text())["ids"])
        for key, value in (("ood.k", config["ood"]["k"]), ("frames.top_k", config["frames"]["top_k"])):
            if value >= n:
                raise WorkflowError(
                    f"{key} ({value}) must be smaller than the number of eval images ({n}); lower it or raise dataset.eval_size."
                )


check_settings_against_data()

CHUNKS = [STEPS[i : i + config["chunk_size"]] for i in range(0, len(STEPS), config["chunk_size"])]
FIRST, LAST = STEPS[0], STEPS[-1]


def planned_last_step():
    """The step the frames' loss axis and titles run to: training.max_steps, or for external checkpoints the
    max_steps their Trainer planned (so appending a checkpoint of a running training redraws no old frame)."""
    if not EXTERNAL:
        return TRAIN["max_steps"]
    state = Path(checkpoint_dir(LAST)) / "trainer_state.json"
    try:
        planned = int(json.loads(state.read_text()).get("max_steps") or 0)
    except (OSError, ValueError, AttributeError):
        planned = 0
    return max(planned, LAST)


def loss_inputs(chunk):
    """The loss curve a chunk's frames draw: the training's log, or (external checkpoints) each
    checkpoint's own trainer_state.json, so a frame never depends on checkpoints after it."""
    if not EXTERNAL:
        return {"train_log": f"{RESULTS}/train_log.csv"}
    states = [f"{checkpoint_dir(s)}/trainer_state.json" for s in chunk]
    return {"loss_states": [f for f in states if os.path.isfile(f)]}
ALIGN = config["projection"]["align"]


def reference_step():
    ref = config["projection"]["reference_step"]
    if ref == "last":
        return LAST
    if ref == "first":
        return FIRST
    if isinstance(ref, str) and not ref.isdigit() or int(ref) not in STEPS:
        raise WorkflowError(
            f"projection.reference_step ({ref}) is not a checkpoint step; use last, first or one of {STEPS[:5]}..."
        )
    return int(ref)


def checkpoint_dir(step):
    return f"{CHECKPOINT_ROOT}/checkpoint-{step}"


def checkpoint_files(steps):
    """The weight file of each checkpoint (what a change to a checkpoint touches)."""
    if not EXTERNAL:
        return [f"{checkpoint_dir(s)}/model.safetensors" for s in steps]
    files = []
    for s in steps:
        folder = Path(checkpoint_dir(s))
        weights = [folder / n for n in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")]
        files.append(str(next((w for w in weights if w.exists()), weights[0])))
    return files


def per_step(stage, steps, ext="npy"):
    return [f"{RESULTS}/{stage}/{s}.{ext}" for s in steps]


def projection_inputs(chunk_index):
    """What a chunk's projections depend on besides its own embeddings: the PCA basis (reference, global),
    or the aligned frame its first projection is aligned onto (first: step 0's, previous: the previous
    chunk's last; nothing for the chunk that starts the film)."""
    if ALIGN in ("reference", "global"):
        return {"basis": f"{RESULTS}/projection/basis.npz"}
    if chunk_index == 0:
        return {}
    anchor = FIRST if ALIGN == "first" else CHUNKS[chunk_index - 1][-1]
    return {"anchor": f"{RESULTS}/projection/{anchor}.npy"}


def previous_step_inputs(chunk_index, name, stage, ext="npy"):
    """{name: the file of `stage` for the step just before this chunk} (nothing for the first chunk)."""
    if chunk_index == 0:
        return {}
    return {name: f"{RESULTS}/{stage}/{CHUNKS[chunk_index - 1][-1]}.{ext}"}


def next_step(chunk_index):
    """The first step of the next chunk (None for the last chunk)."""
    return CHUNKS[chunk_index + 1][0] if chunk_index + 1 < len(CHUNKS) else None


def tween_frames(steps):
    """The interpolated frames after each of `steps` (none after the film's last checkpoint)."""
    k = config["animation"]["tween"]
    return [f"{RESULTS}/frames/tween/{s}-{j}.png" for s in steps if s != LAST for j in range(1, k + 1)]


def film_frames():
    """Every frame of the film in order: each checkpoint followed by its interpolated frames."""
    return [f for s in STEPS for f in [f"{RESULTS}/frames/{s}.png", *tween_frames([s])]]


def animation_outputs():
    return {fmt: f"{RESULTS}/animation.{fmt}" for fmt in config["animation"]["formats"]}


def basis_embeddings():
    if ALIGN == "reference":
        return per_step("embeddings", [reference_step()])
    return per_step("embeddings", STEPS[:: config["projection"]["global_every"]])


def limits_projections():
    """The projections the film's fixed axis limits come from (see workflow_scripts/project.py)."""
    if ALIGN in ("first", "previous"):
        return per_step("projection", [FIRST])
    if ALIGN == "reference":
        return per_step("projection", [reference_step()])
    return per_step("projection", STEPS)


def final_targets():
    return [
        *animation_outputs().values(),
        f"{RESULTS}/review.parquet",
        f"{RESULTS}/metrics.csv",
        f"{RESULTS}/outliers.csv",
        f"{RESULTS}/train_log.csv",
    ]


def stage_resources(stage, **resources):
    """Resources of every chunk of a stage, updated with what set-resources gives for the stage name
    (profile `set-resources: {embed: {gpu_model: a100}}` or `--set-resources embed:gpu_model=a100`).
    Snakemake matches set-resources by exact name and the chunks are named {stage}_chunk{i}; an entry
    for one chunk (embed_chunk3) is still applied on top by Snakemake."""
    overrides = workflow.resource_settings.overwrite_resources.get(stage, {})
    return {**resources, **{name: getattr(res, "raw", res) for name, res in overrides.items()}}
