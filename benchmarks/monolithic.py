#!/usr/bin/env python
"""The baseline: the article's approach. One Python process imports everything once, then loops over the
checkpoints: load the model, embed the eval images, cleanlab scores, PCA + Procrustes, metrics, render the
frame; then it writes the film, the tables and the review. No caching: every run recomputes everything.

It produces the same files as the workflow (results/{run}/..., the layout of the Snakefile) by calling the
workflow's own per-stage functions with one checkpoint at a time, so the work per checkpoint is identical;
consecutive stages hand over through those same small files (milliseconds). What differs from the workflow
is one process instead of a DAG of jobs. tests/test_bench.py checks that both produce the same files.

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
import sys  # noqa: E402
from collections import defaultdict  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any, Iterator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cleanlab.filter  # noqa: E402,F401
import cleanlab.outlier  # noqa: E402,F401
import datasets  # noqa: E402,F401
import matplotlib.backends.backend_agg  # noqa: E402,F401
import matplotlib.figure  # noqa: E402,F401
import numpy as np  # noqa: E402
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

from workflow_scripts import animate, data, embed, metrics, ood, outliers, preprocess, project, render, review, trainer_state  # noqa: E402
from workflow_scripts.common import load_json, load_npy, save_json, setup_logging  # noqa: E402

IMPORTS_S = time.perf_counter() - _START

TIMES: dict[str, list[float]] = defaultdict(list)


@contextmanager
def timed(stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    TIMES[stage].append(time.perf_counter() - start)


def discover_steps(folder: str) -> list[int]:
    from workflow_scripts.common import checkpoint_folder_steps

    return checkpoint_folder_steps(folder)


def film(cfg: dict[str, Any], threads: int) -> None:
    res = Path("results") / cfg["run"]
    folder = cfg["checkpoints"]
    if not folder:
        raise SystemExit("the baseline films an existing checkpoints folder: set checkpoints: in the config.")
    steps = discover_steps(folder)
    dirs = [str(Path(folder) / f"checkpoint-{s}") for s in steps]
    first, last = steps[0], steps[-1]

    def f(stage: str, step: int, ext: str = "npy") -> str:
        return str(res / stage / f"{step}.{ext}")

    d = {name: str(res / "data" / file) for name, file in (
        ("train", "train.parquet"), ("eval", "eval.parquet"), ("labels", "labels.npy"),
        ("thumbnails", "thumbnails.npy"), ("classes", "classes.json"), ("pixels", "pixels.npy"), ("spec", "pixels.json"))}
    train_log, limits = str(res / "train_log.csv"), str(res / "projection" / "limits.json")
    basis = str(res / "projection" / "basis.npz")
    emb_cfg, frames_cfg, anim_cfg, proj_cfg = cfg["embedding"], cfg["frames"], cfg["animation"], cfg["projection"]
    align, tween = proj_cfg["align"], anim_cfg["tween"]
    style = {k: frames_cfg[k] for k in ("width", "height", "point_size")}

    def tweens(step: int) -> list[str]:
        return [str(res / "frames" / "tween" / f"{step}-{j}.png") for j in range(1, tween + 1)] if step != last else []

    # Data, once.
    with timed("prepare_data"):
        data.prepare(dict(cfg["dataset"]), cfg["seed"], False,
                     {k: d[k] for k in ("train", "eval", "labels", "thumbnails", "classes")})
    with timed("preprocess"):
        processor = preprocess.processor_for(cfg["model"], cfg["dataset"]["image_size"], dirs[0])
        preprocess.preprocess(d["eval"], processor, d["pixels"], d["spec"])
    with timed("import_train_log"):
        trainer_state.import_log(str(Path(dirs[-1]) / "trainer_state.json"), train_log)

    ref_step = {"last": last, "first": first}.get(proj_cfg["reference_step"], proj_cfg["reference_step"])
    ref_step = int(ref_step)
    limit_steps = {"first": [first], "previous": [first], "reference": [ref_step]}.get(align, steps)
    ctx: Any = None

    def write_limits() -> Any:
        with timed("frame_limits"):
            save_json(limits, project.axis_limits([load_npy(f("projection", s)) for s in limit_steps], frames_cfg["margin"]))
            state = Path(dirs[-1]) / "trainer_state.json"
            planned = max(int(json.loads(state.read_text()).get("max_steps") or 0) if state.is_file() else 0, last)
            return render.load_context(
                SimpleNamespace(train_log=train_log, labels=d["labels"], classes=d["classes"], thumbnails=d["thumbnails"], limits=limits),
                planned, Path(folder).name,
            )

    def embed_and_score(step: int, ckpt: str) -> None:
        with timed("embed"):
            embed.embed_checkpoints(
                checkpoints=[ckpt], pixels_path=d["pixels"], spec_path=d["spec"], out_embeddings=[f("embeddings", step)],
                out_probs=[f("probs", step)], pooling=emb_cfg["pooling"], batch_size=emb_cfg["batch_size"],
                device=emb_cfg["device"], precision=emb_cfg["precision"], allow_pickle=cfg["allow_pickle_checkpoints"],
                threads=threads,
            )
        with timed("ood"):
            ood.score_checkpoints(
                embeddings=[f("embeddings", step)], probs=[f("probs", step)], labels_path=d["labels"],
                out_scores=[f("ood", step)], out_issues=[f("label_issues", step)], k=cfg["ood"]["k"],
            )

    def measure(j: int) -> None:
        step = steps[j]
        with timed("metrics"):
            metrics.metrics_chunk(
                steps=[step], embeddings=[f("embeddings", step)], projections=[f("projection", step)],
                probs=[f("probs", step)], labels_path=d["labels"], outputs=[f("metrics", step, "json")],
                previous_projection=f("projection", steps[j - 1]) if j else None, k=cfg["metrics"]["k"],
                max_points=cfg["metrics"]["max_points"],
            )

    def draw(j: int) -> None:
        step = steps[j]
        nxt = steps[j + 1] if tween and j + 1 < len(steps) else None
        with timed("frames"):
            render.render_chunk(
                steps=[step], projections=[f("projection", step)], scores=[f("ood", step)],
                issues=[f("label_issues", step)], metrics=[f("metrics", step, "json")], frames=[f("frames", step, "png")],
                ctx=ctx, kind=frames_cfg["leaderboard"], top_k=frames_cfg["top_k"],
                previous=(f("ood", steps[j - 1]), f("label_issues", steps[j - 1])) if j else None,
                tween=tween, tween_frames=tweens(step), next_step=nxt,
                next_projection=f("projection", nxt) if nxt is not None else None,
                loss_curves=render.loss_curves(None, [str(Path(dirs[j]) / "trainer_state.json")]
                                               if (Path(dirs[j]) / "trainer_state.json").is_file() else [], [dirs[j]]),
                **style,
            )

    if align in ("first", "previous"):
        # The article's loop: everything for one checkpoint, then the next.
        for j, (step, ckpt) in enumerate(zip(steps, dirs)):
            embed_and_score(step, ckpt)
            with timed("project"):
                anchor = None if j == 0 else f("projection", first if align == "first" else steps[j - 1])
                project.project_chunk(align, [f("embeddings", step)], [f("projection", step)], anchor=anchor)
            if j == 0:
                ctx = write_limits()
            measure(j)
            if tween and j:
                draw(j - 1)  # an interpolated frame needs the next checkpoint's projection
            if not tween or j == len(steps) - 1:
                draw(j)
    else:
        # A shared basis or GPA needs every embedding before the first projection: two loops.
        for step, ckpt in zip(steps, dirs):
            embed_and_score(step, ckpt)
        if align == "gpa":
            with timed("project_gpa"):
                project.project_gpa([f("embeddings", s) for s in steps], [f("projection", s) for s in steps])
        else:
            with timed("pca_basis"):
                basis_steps = [ref_step] if align == "reference" else steps[:: proj_cfg["global_every"]]
                project.write_basis([f("embeddings", s) for s in basis_steps], basis, cfg["seed"])
            for step in steps:
                with timed("project"):
                    project.project_chunk(align, [f("embeddings", step)], [f("projection", step)], basis=basis)
        ctx = write_limits()
        for j in range(len(steps)):
            measure(j)
            draw(j)

    with timed("metrics_table"):
        metrics.write_metrics_table([f("metrics", s, "json") for s in steps], [f("embeddings", s) for s in steps],
                                    [f("projection", s) for s in steps], str(res / "metrics.csv"),
                                    str(res / "film_metrics.json"), align)
    with timed("outliers_table"):
        outliers.write_outliers(steps, [f("ood", s) for s in steps], load_json(d["classes"])["ids"],
                                frames_cfg["top_k"], str(res / "outliers.csv"))
    with timed("animate"):
        frames = [p for s in steps for p in [f("frames", s, "png"), *tweens(s)]]
        for fmt in anim_cfg["formats"]:
            out = str(res / f"animation.{fmt}")
            if fmt == "gif":
                animate.write_gif(frames, out, anim_cfg["fps"], anim_cfg["hold_last"], anim_cfg["loop"])
            else:
                animate.write_mp4(frames, out, anim_cfg["fps"], anim_cfg["hold_last"])
    with timed("review"):
        files = {s: {"embeddings": f("embeddings", s), "projection": f("projection", s), "scores": f("ood", s),
                     "probs": f("probs", s)} for s in (first, last)}
        review.write_review(review.build_review(d["eval"], d["classes"], files[first], files[last]), str(res / "review.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a complete config (YAML) with checkpoints: set")
    parser.add_argument("--timings", help="write per-stage seconds (imports, each call) here as JSON")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--log", default=None, help="log file (default: stderr only)")
    args = parser.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    setup_logging(args.log)
    film(cfg, args.threads or torch.get_num_threads())
    total = time.perf_counter() - _START
    if args.timings:
        status = Path("/proc/self/status")
        hwm = [int(line.split()[1]) / 1024 for line in status.read_text().splitlines() if line.startswith("VmHWM:")] if status.exists() else []
        Path(args.timings).write_text(json.dumps(
            {"imports_s": IMPORTS_S, "total_s": total, "peak_rss_mb": hwm[0] if hwm else None, "stages": dict(TIMES)}, indent=1))
    print(f"baseline: {total:.1f} s ({IMPORTS_S:.1f} s imports)", file=sys.stderr)


if __name__ == "__main__":
    main()
