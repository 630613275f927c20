# Input functions: what a job reads, per run and checkpoint (settings, steps, checkpoints, projection,
# frames, the comparison).

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


@functools.cache
def embeddings_to_make(run_name):
    """How many of a run's checkpoints have no embeddings yet (looked up once per parse)."""
    return sum(not os.path.exists(run_path(f"embeddings/{step}.npy", run_name)) for step in RUNS[run_name].steps)


def embed_threads(wildcards):
    """Every core of this machine for an embedding made alone (a checkpoint appended to a film: its other jobs wait
    for it), one each for several, which run side by side. One on a cluster, where each is a job of its own,
    workflow.cores is the cluster's allowance, and the job's own Snakemake (remote mode) parses the workflow again
    when other embeddings may have appeared: the count of the files would not be the one its job was sized by."""
    local = workflow.local_exec and not workflow.remote_exec
    return workflow.cores if local and embeddings_to_make(wildcards.run) <= 1 else 1


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
    return [run_path(f"{stage}/{s}.{ext}", run.name) for s in (run.steps if steps is None else steps)]


def end_file(stage, end):
    """Input function: the file of `stage` for the run's first or last checkpoint (end: "first" or "last")."""
    return lambda wildcards: run_path(f"{stage}/{getattr(run_of(wildcards), end)}.npy", wildcards.run)


def all_steps(stage, ext="npy"):
    """Input function: the files of `stage` for every checkpoint of the job's run."""
    return lambda wildcards: per_step(run_of(wildcards), stage, ext=ext)


def previous_step(name, stage, ext="npy"):
    """Input function: {name: the previous checkpoint's file of `stage`} (nothing for the film's first)."""

    def inputs(wildcards):
        before = neighbour(wildcards, -1)
        return {} if before is None else {name: run_path(f"{stage}/{before}.{ext}", wildcards.run)}

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
        return run_path("checkpoints", run.name)
    folder = Path(run.checkpoint_dir(step))
    weights = [folder / n for n in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")]
    return str(next((w for w in weights if w.exists()), weights[0]))


def loss_log(wildcards):
    """The loss curve a frame draws: the training's log, or (external checkpoints) the checkpoint's own
    trainer_state.json, so a frame never depends on checkpoints after it."""
    run = run_of(wildcards)
    if not run.external:
        return {"loss_log": run_path("train_log.csv", run.name)}
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
        return {"layout": run_path("projection/layout.npz", run.name)}
    if step == run.first:
        return {}
    anchor = run.first if align == "first" else neighbour(wildcards, -1)
    return {"anchor": run_path(f"projection/{anchor}.npy", run.name)}


def film_layout(wildcards):
    """[the run's film-wide layout file] when it has one (method tsne/umap/auto, align reference/global/gpa)."""
    run = run_of(wildcards)
    projection = run.cfg["projection"]
    if projection["method"] != "pca" or projection["align"] in ("reference", "global", "gpa"):
        return [run_path("projection/layout.npz", run.name)]
    return []


def camera_mode(run):
    """The run's camera: fixed (projection/limits.json), lookahead or causal (workflow_scripts/embedding_film/film/camera.py);
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
    (causal) the view the checkpoint's frame job replayed and wrote beside its frame."""
    run = run_of(wildcards)
    mode = camera_mode(run)
    if mode == "fixed":
        return run_path("projection/limits.json", run.name)
    if mode == "lookahead":
        return run_path("projection/camera.json", run.name)
    return run_path(f"frames/{step_of(wildcards) if step is None else step}.json", run.name)


def frame_views(wildcards):
    """What a frame's view comes from: {view: the film's view file}, or (causal) the camera state it replays
    its camera from and the projections it replays (camera_state, camera_window)."""
    if camera_mode(run_of(wildcards)) == "causal":
        return {**camera_state(wildcards), "projections": camera_window(wildcards)}
    return {"view": view_file(wildcards)}


def frame_camera(wildcards):
    """How a frame replays its causal camera: {replay, settings, margin} (None for a fixed or lookahead camera,
    whose view it reads)."""
    run = run_of(wildcards)
    if camera_mode(run) != "causal":
        return None
    return {"replay": camera_replay(wildcards), "settings": run.cfg["camera"], "margin": run.cfg["frames"]["margin"]}


def tween_views(wildcards):
    return {"view": view_file(wildcards), "next_view": view_file(wildcards, neighbour(wildcards, 1))}


def all_views(wildcards):
    """Every checkpoint's view file (one file for fixed and lookahead cameras)."""
    run = run_of(wildcards)
    return sorted({view_file(wildcards, s) for s in run.steps})


# The causal cameras' states are chained through every CAMERA_CHAIN-th checkpoint (by position; rule
# camera_step): a checkpoint's camera starts from the state of the last such checkpoint before it and replays
# the few since (camera.causal_replay), in its frame job, so a film's cameras take about n / CAMERA_CHAIN small
# jobs, one after the other, not n (each a few milliseconds of work and a Snakemake job's cost), every camera
# the same as the step-by-step chain's, and no frame waits on another frame.
CAMERA_CHAIN = 10


def camera_base(i):
    """The position of the checkpoint whose camera state the camera of the checkpoint at position `i` starts from
    (-1: none, the film's first)."""
    return (i - 1) // CAMERA_CHAIN * CAMERA_CHAIN if i > 0 else -1


def camera_position(wildcards):
    run = run_of(wildcards)
    return run, run.steps.index(step_of(wildcards))


def camera_state(wildcards):
    """{previous: the camera file whose state this checkpoint's camera starts from} (nothing for the first)."""
    run, i = camera_position(wildcards)
    base = camera_base(i)
    return {} if base < 0 else {"previous": run_path(f"projection/camera/{run.steps[base]}.json", run.name)}


def camera_replay(wildcards):
    """How many cameras a camera_step or causal frame job computes: its own and those since its starting
    state's checkpoint."""
    _run, i = camera_position(wildcards)
    return i - camera_base(i)


def camera_window(wildcards):
    """The projections a causal camera reads: those of the checkpoints it replays (camera_replay), and of the
    camera.window - 1 before the first of them."""
    run, i = camera_position(wildcards)
    window = run.cfg["camera"]["window"]
    return per_step(run, "projection", run.steps[max(0, camera_base(i) + 2 - window) : i + 1])


def limits_projections(wildcards):
    """The projections the film's fixed axis limits come from (see workflow_scripts/embedding_film/adapters/frame_limits.py)."""
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
    return run_path(f"projection/{after}.npy", wildcards.run)


def film_frames(wildcards):
    """Every frame of the film in order: each checkpoint followed by its interpolated frames."""
    run = run_of(wildcards)
    tween = run.cfg["animation"]["tween"]
    return [
        f
        for s in run.steps
        for f in [
            run_path(f"frames/{s}.png", run.name),
            *(run_path(f"frames/tween/{s}-{j}.png", run.name) for j in range(1, tween + 1) if s != run.last),
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
    """The film's title: the model or checkpoints folder, and the label noise when dataset.label_noise is on."""
    run = run_of(wildcards)
    name = Path(run.cfg["checkpoints"]).name if run.external else Path(run.cfg["model"]).name
    noise = run.cfg["dataset"]["label_noise"]
    return f"{name} ({noise['fraction']:.0%} {noise['kind']} label noise)" if noise["fraction"] else name


@functools.cache
def compare_clock():
    """The comparison's common clock: (which clock, [(tick label, {run: step shown, or None before its first
    checkpoint})], [T, R] index of the checkpoint each run shows). `step`: every panel at the same training
    step; `fraction`: at the same share of each run's training (runs of different lengths); `auto`: step when
    every run ends at the same step. Ticks that would show the same checkpoints as the one before are merged."""
    runs = list(RUNS.values())
    clock, ticks, shown = common_clock([r.steps for r in runs], COMPARE["clock"])
    rows = [
        (tick, {r.name: r.steps[i] if i >= 0 else None for r, i in zip(runs, at)}) for tick, at in zip(ticks, shown)
    ]
    return clock, rows, shown.tolist()


def compare_targets():
    """The comparison film's outputs, when the workflow films several runs."""
    if len(RUNS) < 2:
        return []
    folder = compare_path("", COMPARE["name"]).rstrip("/")
    formats = sorted({fmt for r in RUNS.values() for fmt in r.cfg["animation"]["formats"]})
    return [*(f"{folder}/animation.{fmt}" for fmt in formats), f"{folder}/film.html", f"{folder}/metrics.csv"]


def compare_setting(*keys):
    """The value of a config key that the comparison draws every run with: read per run like every other
    setting (a run's override counts), the runs' common value; where they differ, the first run's, with one
    warning naming the key (one figure has one size, frame rate or leaderboard length)."""
    values = {name: functools.reduce(lambda node, key: node[key], keys, run.cfg) for name, run in RUNS.items()}
    first = next(iter(values.values()))
    if any(v != first for v in values.values()):
        logger.warning(
            f"compare: the runs set {'.'.join(keys)} differently ({values}); the comparison uses the first run's "
            f"{first!r}: set it once at the top level of the config to choose."
        )
    return first


def all_runs(stage, ext="npy"):
    """Input function: the files of `stage` for every checkpoint of every run."""
    return lambda wildcards: [f for r in RUNS.values() for f in per_step(r, stage, ext=ext)]


def shown_steps(wildcards):
    """{run: the step its panel shows at this tick (None: not started)} of a comparison frame."""
    return compare_clock()[1][int(wildcards.tick)][1]


def shown_files(stage, ext="npy"):
    """Input function: the files of `stage` that a comparison frame's panels show."""
    return lambda wildcards: [
        run_path(f"{stage}/{s}.{ext}", r) for r, s in shown_steps(wildcards).items() if s is not None
    ]


def compare_frames(wildcards):
    return [compare_path(f"frames/{i}.png", wildcards.name) for i in range(len(compare_clock()[1]))]


def dynamics_probs(wildcards):
    """The training images' probabilities of every checkpoint the training dynamics score."""
    run = run_of(wildcards)
    return per_step(run, "train_probs", steps=run.dynamics)


def film_data_map(wildcards):
    """The film page's data map: the training dynamics' table and trace, the scored training images' thumbnails
    and the label-noise record, by name; nothing when the run's dynamics are off (the page has no data map)."""
    run = run_of(wildcards)
    if not run.dynamics:
        return {}
    return {
        "dynamics": run_path("dynamics.parquet", run.name),
        "trace": run_path("dynamics_trace.npz", run.name),
        "train_thumbnails": run_path("data/train_thumbnails.npy", run.name),
        "label_noise": run_path("data/label_noise.csv", run.name),
    }
