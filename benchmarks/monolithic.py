#!/usr/bin/env python
"""The baseline: the article's approach. One Python process imports everything once, then loops over the
checkpoints: load the model, embed the eval images, cleanlab scores, PCA + Procrustes, metrics, render the
frame; then it writes the film, the tables and the review. No caching: every run recomputes everything.

It produces the same files as the workflow (results/{run}/..., the layout of the Snakefile) by calling each
rule's own adapter (workflow_scripts/embedding_film/adapters/<rule>.py, main(job)) on the job the workflow would give it, one
checkpoint at a time, so the work per checkpoint is identical; consecutive stages hand over through those
same small files (milliseconds). What differs from the workflow is one process instead of a DAG of jobs.
tests/benchmarks/test_bench.py checks that both produce the same files.

    python benchmarks/monolithic.py RESOLVED_CONFIG.yaml [--timings T.json] [--threads N]

Run it in the folder whose results/{run}/ it should write. The config must be complete (every schema
default filled in; benchmarks/run.py writes one) and have `checkpoints:` set: training is out of the
comparison. --threads sets torch's threads (default: torch's own choice, all cores, as in a notebook).
"""

import time

_START = time.perf_counter()

# The article's imports, paid once (the notebook's first cell).
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow_scripts"))

import cleanlab.filter  # noqa: E402,F401
import cleanlab.outlier  # noqa: E402,F401
import datasets  # noqa: E402,F401
import matplotlib.backends.backend_agg  # noqa: E402,F401
import matplotlib.figure  # noqa: E402,F401
import scipy.linalg  # noqa: E402,F401
import scipy.stats  # noqa: E402,F401
import sklearn.decomposition  # noqa: E402,F401
import sklearn.manifold  # noqa: E402,F401
import sklearn.metrics  # noqa: E402,F401
import sklearn.neighbors  # noqa: E402,F401
import torch  # noqa: E402
import transformers  # noqa: E402,F401
import yaml  # noqa: E402
from PIL import Image  # noqa: E402,F401
from transformers import AutoImageProcessor, AutoModel, AutoModelForImageClassification  # noqa: E402,F401

from embedding_film.adapters import Job, Named  # noqa: E402
from embedding_film.film.checkpoints import checkpoint_folder_steps  # noqa: E402
from embedding_film.film.common import UserError  # noqa: E402
from embedding_film.film.layout_plan import FIRST_FIT, fingerprint  # noqa: E402
from embedding_film.runtime.job import adapter, setup_logging  # noqa: E402

# Every rule's adapter, imported up front like the rest.
RULES = (
    "prepare_data",
    "preprocess",
    "import_train_log",
    "embed",
    "ood",
    "label_issues",
    "layout",
    "project",
    "frame_limits",
    "camera",
    "metrics",
    "frame",
    "tween",
    "metrics_table",
    "outliers_table",
    "animate",
    "film_html",
    "review",
)
ADAPTERS = {rule: adapter(rule) for rule in RULES}

IMPORTS_S = time.perf_counter() - _START

TIMES: dict[str, list[float]] = defaultdict(list)
# The threads a stage may use where it takes any (the GIF's frame decoding): every core, as torch does here,
# or --threads.
THREADS = os.cpu_count() or 1


@contextmanager
def timed(stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    TIMES[stage].append(time.perf_counter() - start)


def call(rule: str, inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any], **wildcards: Any) -> None:
    """Run one rule's adapter in this process, on the job the workflow would give it, and time it."""
    job = Job(
        rule,
        Named(**inputs),
        Named(**outputs),
        Named(**params),
        Named(**{k: str(v) for k, v in wildcards.items()}),
        threads=THREADS,
    )
    with timed(rule):
        try:
            ADAPTERS[rule].main(job)
        except UserError as err:
            raise SystemExit(f"{rule}: {err}") from err


def film(cfg: dict[str, Any]) -> None:
    res = Path("results") / cfg["run"]
    folder = cfg["checkpoints"]
    if not folder:
        raise SystemExit("the baseline films an existing checkpoints folder: set checkpoints: in the config.")
    steps = checkpoint_folder_steps(folder)
    dirs = {s: str(Path(folder) / f"checkpoint-{s}") for s in steps}
    first, last = steps[0], steps[-1]

    def f(stage: str, step: int, ext: str = "npy") -> str:
        return str(res / stage / f"{step}.{ext}")

    d = {
        name: str(res / "data" / file)
        for name, file in (
            ("train", "train.parquet"),
            ("eval", "eval.parquet"),
            ("labels", "labels.npy"),
            ("thumbnails", "thumbnails.npy"),
            ("classes", "classes.json"),
            ("label_noise", "label_noise.csv"),
            ("pixels", "pixels.npy"),
            ("spec", "pixels.json"),
        )
    }
    train_log, limits, layout = (
        str(res / "train_log.csv"),
        str(res / "projection" / "limits.json"),
        str(res / "projection" / "layout.npz"),
    )
    emb_cfg, frames_cfg, anim_cfg, proj_cfg = cfg["embedding"], cfg["frames"], cfg["animation"], cfg["projection"]
    align, method, tween = proj_cfg["align"], proj_cfg["method"], anim_cfg["tween"]
    state = Path(dirs[last]) / "trainer_state.json"
    planned = max(int(json.loads(state.read_text()).get("max_steps") or 0) if state.is_file() else 0, last)
    look = dict(
        max_step=planned,
        title=Path(folder).name,
        leaderboard=frames_cfg["leaderboard"],
        top_k=frames_cfg["top_k"],
        style={k: frames_cfg[k] for k in ("width", "height", "point_size")},
        align=align,
    )
    ref_step = {"last": last, "first": first}.get(proj_cfg["reference_step"], proj_cfg["reference_step"])
    if method == "pca":
        layout_steps = {"reference": [int(ref_step)], "global": steps[:: proj_cfg["global_every"]], "gpa": steps}.get(
            align
        )
    else:
        # a loop keeps nothing between runs: it fits the layout on every checkpoint (as fit: auto's first run)
        layout_steps = steps if proj_cfg["fit"] in ("all", "auto") else sorted(proj_cfg["reference_steps"])
    limit_steps = {"first": [first], "previous": [first], "reference": [int(ref_step)]}.get(align, steps)
    camera = cfg["camera"]["mode"]
    if camera == "auto":
        # as rules/inputs.smk's camera_mode: the baseline films an external checkpoint folder
        grows = method != "pca" and proj_cfg["fit"] != "all"
        camera = (
            "fixed" if method == "pca" and align in ("first", "previous", "gpa") else "causal" if grows else "lookahead"
        )

    def view(step: int) -> str:
        return {"fixed": limits, "lookahead": str(res / "projection" / "camera.json")}.get(
            camera, f("frames", step, "json")
        )

    camera_params = dict(settings=cfg["camera"], margin=frames_cfg["margin"])

    def frame_camera(j: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A frame's view inputs and its camera param: a causal frame replays its camera from the previous
        frame's state (the workflow's from every tenth checkpoint's: the same camera, bit for bit)."""
        if camera != "causal":
            return {"view": view(steps[j])}, None
        window = steps[max(0, j - cfg["camera"]["window"] + 1) : j + 1]
        inputs = {
            "projections": [f("projection", s) for s in window],
            **({"previous": view(steps[j - 1])} if j else {}),
        }
        return inputs, dict(replay=1, **camera_params)

    # Data, once.
    call(
        "prepare_data",
        {},
        {k: d[k] for k in ("train", "eval", "labels", "thumbnails", "classes", "label_noise")},
        dict(dataset=cfg["dataset"], seed=cfg["seed"], need_train=False, want_train=False),
    )
    call(
        "preprocess",
        {"eval": d["eval"]},
        {"pixels": d["pixels"], "spec": d["spec"]},
        dict(model=cfg["model"], image_size=cfg["dataset"]["image_size"], checkpoint_dir=dirs[first]),
    )
    call("import_train_log", {"state": [str(state)] if state.is_file() else []}, {"train_log": train_log}, {})

    def embed_and_score(step: int) -> None:
        call(
            "embed",
            {"pixels": d["pixels"], "spec": d["spec"]},
            {"embeddings": f("embeddings", step), "probs": f("probs", step)},
            dict(
                checkpoint_dir=dirs[step],
                pooling=emb_cfg["pooling"],
                batch_size=emb_cfg["batch_size"],
                device=emb_cfg["device"],
                precision=emb_cfg["precision"],
                allow_pickle=cfg["allow_pickle_checkpoints"],
                failure_record=str(res / "skipped" / f"{step}.json"),
            ),
        )
        call("ood", {"embeddings": f("embeddings", step)}, {"scores": f("ood", step)}, dict(k=cfg["ood"]["k"]))
        call(
            "label_issues", {"probs": f("probs", step), "labels": d["labels"]}, {"issues": f("label_issues", step)}, {}
        )

    def project(j: int) -> None:
        step = steps[j]
        inputs = {"embeddings": f("embeddings", step)}
        if layout_steps is not None:
            inputs["layout"] = layout
        elif j:
            inputs["anchor"] = f("projection", first if align == "first" else steps[j - 1])
        call("project", inputs, {"projection": f("projection", step)}, dict(method=method, align=align, step=step))

    def frame_inputs(j: int) -> dict[str, Any]:
        step = steps[j]
        inputs = {
            "projection": f("projection", step),
            "scores": f("ood", step),
            "issues": f("label_issues", step),
            "metrics": f("metrics", step, "json"),
            "labels": d["labels"],
            "thumbnails": d["thumbnails"],
            "classes": d["classes"],
            "layout": [layout] if layout_steps is not None else [],
        }
        if j:
            inputs.update(previous_scores=f("ood", steps[j - 1]), previous_issues=f("label_issues", steps[j - 1]))
        own_state = Path(dirs[step]) / "trainer_state.json"
        if own_state.is_file():
            inputs["loss_log"] = str(own_state)
        return inputs

    def measure_and_draw(j: int) -> None:
        step = steps[j]
        inputs = {
            "embeddings": f("embeddings", step),
            "projection": f("projection", step),
            "probs": f("probs", step),
            "labels": d["labels"],
        }
        if j:
            inputs["previous"] = f("projection", steps[j - 1])
        call(
            "metrics",
            inputs,
            {"metrics": f("metrics", step, "json")},
            dict(k=cfg["metrics"]["k"], max_points=cfg["metrics"]["max_points"]),
            step=step,
        )
        views, camera_param = frame_camera(j)
        call(
            "frame",
            {**frame_inputs(j), **views},
            {"frame": f("frames", step, "png"), "view": f("frames", step, "json")},
            dict(step=step, camera=camera_param, **look),
        )

    def tweens(j: int) -> None:
        step = steps[j]
        for i in range(1, tween + 1):
            call(
                "tween",
                {
                    **frame_inputs(j),
                    "view": view(step),
                    "next_projection": f("projection", steps[j + 1]),
                    "next_view": view(steps[j + 1]),
                },
                {"frame": str(res / "frames" / "tween" / f"{step}-{i}.png")},
                dict(step=step, next_step=steps[j + 1], j=i, tween=tween, **look),
            )

    def write_limits() -> None:
        if camera == "fixed":
            call(
                "frame_limits",
                {"projections": [f("projection", s) for s in limit_steps]},
                {"limits": limits},
                dict(margin=frames_cfg["margin"]),
            )
        elif camera == "lookahead":
            call(
                "camera",
                {"projections": [f("projection", s) for s in steps]},
                {"camera": view(first)},
                dict(steps=steps, mode="lookahead", **camera_params),
            )

    if layout_steps is None:
        # The article's loop: everything for one checkpoint, then the next.
        for j, step in enumerate(steps):
            embed_and_score(step)
            project(j)
            if j == 0:
                write_limits()
            measure_and_draw(j)
            if tween and j:
                tweens(j - 1)  # an interpolated frame needs the next checkpoint's projection
    else:
        # A shared basis or GPA needs every embedding before the first projection: two loops.
        for step in steps:
            embed_and_score(step)
        call(
            "layout",
            {"embeddings": [f("embeddings", s) for s in layout_steps]},
            {"layout": layout},
            dict(
                method=method,
                align=align,
                steps=layout_steps,
                seed=cfg["seed"],
                settings={k: proj_cfg[k] for k in ("tsne", "param", "umap", "auto")},
                k=cfg["metrics"]["k"],
                max_points=cfg["metrics"]["max_points"],
                fingerprint=fingerprint(cfg),
                refit_reason=FIRST_FIT,
            ),
        )
        for j in range(len(steps)):
            project(j)
        write_limits()
        for j in range(len(steps)):
            measure_and_draw(j)
            if tween and j + 1 < len(steps):
                tweens(j)

    every = {stage: [f(stage, s) for s in steps] for stage in ("embeddings", "projection", "ood")}
    call(
        "metrics_table",
        {
            "steps": [f("metrics", s, "json") for s in steps],
            "embeddings": every["embeddings"],
            "projections": every["projection"],
            "layout": [layout] if layout_steps is not None else [],
        },
        {"csv": str(res / "metrics.csv"), "film": str(res / "film_metrics.json")},
        dict(
            align=align, skipped=[], view_files=[view(s) for s in steps], fit=proj_cfg["fit"], targets=proj_cfg["auto"]
        ),
    )
    call(
        "outliers_table",
        {"scores": every["ood"], "classes": d["classes"]},
        {"csv": str(res / "outliers.csv")},
        dict(steps=steps, top_k=frames_cfg["top_k"]),
    )
    frames = [
        p
        for s in steps
        for p in [
            f("frames", s, "png"),
            *(str(res / "frames" / "tween" / f"{s}-{i}.png") for i in range(1, tween + 1) if s != last),
        ]
    ]
    for fmt in anim_cfg["formats"]:
        call(
            "animate",
            {"frames": frames},
            {"film": str(res / f"animation.{fmt}")},
            dict(fps=anim_cfg["fps"], hold_last=anim_cfg["hold_last"], loop=anim_cfg["loop"]),
            format=fmt,
        )
    call(
        "film_html",
        {},
        {"html": str(res / "film.html")},
        dict(
            run_dir=str(res),
            steps=steps,
            top_k=frames_cfg["top_k"],
            max_points=cfg["html"]["max_points"],
            title=f"{cfg['run']}: {Path(folder).name}",
            view_files=[view(s) for s in steps],
        ),
    )
    ends = {
        f"{key}_{end}": f(stage, step)
        for end, step in (("first", first), ("last", last))
        for key, stage in (("emb", "embeddings"), ("probs", "probs"), ("proj", "projection"), ("ood", "ood"))
    }
    call("review", {"eval": d["eval"], "classes": d["classes"], **ends}, {"review": str(res / "review.parquet")}, {})


def main() -> None:
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a complete config (YAML) with checkpoints: set")
    parser.add_argument("--timings", help="write per-stage seconds (imports, each call) here as JSON")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--log", default=None, help="log file (default: stderr only)")
    args = parser.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    setup_logging(args.log)
    if args.threads:
        THREADS = args.threads
        torch.set_num_threads(args.threads)
    film(cfg)
    total = time.perf_counter() - _START
    if args.timings:
        status = Path("/proc/self/status")
        hwm = (
            [int(line.split()[1]) / 1024 for line in status.read_text().splitlines() if line.startswith("VmHWM:")]
            if status.exists()
            else []
        )
        Path(args.timings).write_text(
            json.dumps(
                {
                    "imports_s": IMPORTS_S,
                    "total_s": total,
                    "peak_rss_mb": hwm[0] if hwm else None,
                    "stages": dict(TIMES),
                },
                indent=1,
            )
        )
    print(f"baseline: {total:.1f} s ({IMPORTS_S:.1f} s imports)", file=sys.stderr)


if __name__ == "__main__":
    main()
