#!/usr/bin/env python
"""Peak memory of each stage at CIFAR-10 scale (10,000 eval images, ViT-B/16: 768-d embeddings, 224 px),
on synthetic inputs (nothing is downloaded): each stage's own function runs in a fresh process, as a job
would, and the table gives that process's peak RSS (VmHWM; like Snakemake's max_rss it counts the file
pages a job maps and touches, e.g. memory-mapped pixels or embeddings, which the kernel can reclaim).

    python benchmarks/memory_probe.py [--images 10000] [--dim 768] [--checkpoints 80] [--embed-images 256]

The embedding stage runs one forward pass of a randomly initialised ViT-B/16 (no download) over
--embed-images images (the default, 256, is one batch: peak activations do not grow with more batches;
0 skips it); its pixels file holds only those images, so reading all 10,000 would add up to their size
(1.5 GB of reclaimable page cache) to the RSS figure, as the row says.
Work files go to benchmarks/work/memory_probe/ (a few GB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow_scripts"))


def paths(d: Path, stage: str, n: int, ext: str = "npy") -> list[str]:
    return [str(d / stage / f"{s}.{ext}") for s in range(n)]


def make_inputs(d: Path, images: int, dim: int, checkpoints: int, classes: int = 10) -> None:
    """Synthetic embeddings (a drifting Gaussian mixture), probs, labels, thumbnails, classes, train log."""
    import numpy as np

    from embedding_film.film.common import save_json, save_npy

    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, images)
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    base = centres[labels] + rng.normal(size=(images, dim)).astype(np.float32)
    save_npy(d / "labels.npy", labels.astype(np.int64))
    save_npy(d / "thumbnails.npy", rng.integers(0, 255, (images, 64, 64, 3), dtype=np.uint8))
    save_json(
        d / "classes.json", {"names": [f"c{i}" for i in range(classes)], "ids": [f"img/{i}" for i in range(images)]}
    )
    (d / "train_log.csv").write_text(
        "step,epoch,loss,learning_rate,grad_norm\n"
        + "".join(f"{s},0,{2 / (1 + s)},0.001,1\n" for s in range(checkpoints))
    )
    from datasets import ClassLabel, Dataset, Features, Image, Value
    from PIL import Image as PILImage

    pics = [PILImage.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(images)]
    features = Features(
        {"id": Value("string"), "image": Image(), "label": ClassLabel(names=[str(i) for i in range(classes)])}
    )
    Dataset.from_dict(
        {"id": [str(i) for i in range(images)], "image": pics, "label": labels.tolist()}, features=features
    ).to_parquet(str(d / "eval.parquet"))
    for s in range(checkpoints):
        emb = base * (1 + s / checkpoints) + rng.normal(scale=0.1, size=base.shape).astype(np.float32)
        save_npy(d / "embeddings" / f"{s}.npy", emb.astype(np.float32))
        logits = rng.normal(size=(images, classes)).astype(np.float32)
        logits[np.arange(images), labels] += 3
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        save_npy(d / "probs" / f"{s}.npy", probs.astype(np.float32))


def run(rule: str, inputs: dict, outputs: dict, params: dict, **wildcards: object) -> None:
    """One job of `rule`, as the workflow runs it: its adapter's main(job) (workflow_scripts/embedding_film/adapters/<rule>.py)."""
    from embedding_film.adapters import Job, Named
    from embedding_film.runtime.job import adapter

    job = Job(
        rule, Named(**inputs), Named(**outputs), Named(**params), Named(**{k: str(v) for k, v in wildcards.items()})
    )
    adapter(rule).main(job)


def stage(name: str, d: Path, args: argparse.Namespace) -> str:
    """Run one job of a stage (one checkpoint, as the workflow does); returns what was run."""
    step = 1
    emb, probs = paths(d, "embeddings", 2), paths(d, "probs", 2)
    if name == "ood":
        run("ood", {"embeddings": emb[step]}, {"scores": paths(d, "ood", 2)[step]}, {"k": 10})
        return "cleanlab OOD (k=10), one checkpoint"
    if name == "label_issues":
        run(
            "label_issues",
            {"probs": probs[step], "labels": str(d / "labels.npy")},
            {"issues": paths(d, "label_issues", 2)[step]},
            {},
        )
        return "cleanlab find_label_issues, one checkpoint"
    if name == "project_previous":
        run(
            "project",
            {"embeddings": emb[0]},
            {"projection": paths(d, "projection", 2)[0]},
            {"method": "pca", "align": "previous", "step": 0},
        )
        run(
            "project",
            {"embeddings": emb[1], "anchor": paths(d, "projection", 2)[0]},
            {"projection": paths(d, "projection", 2)[1]},
            {"method": "pca", "align": "previous", "step": 1},
        )
        return "PCA + Procrustes onto the previous frame, one checkpoint (after the first)"
    if name == "layout_global":
        k = min(args.checkpoints, 20)
        run(
            "layout",
            {"embeddings": paths(d, "embeddings", k)},
            {"layout": str(d / "layout.npz")},
            {"method": "pca", "align": "global", "steps": list(range(k)), "seed": 0},
        )
        return f"align: global basis over {k} checkpoints ({k * args.images} rows, cap 200,000)"
    if name == "metrics":
        run(
            "metrics",
            {
                "embeddings": emb[step],
                "projection": paths(d, "projection", 2)[step],
                "probs": probs[step],
                "labels": str(d / "labels.npy"),
                "previous": paths(d, "projection", 2)[0],
            },
            {"metrics": paths(d, "metrics", 2, "json")[step]},
            {"k": 10, "max_points": 2000},
            step=step,
        )
        return "per-checkpoint metrics (subsample 2,000), one checkpoint"
    if name == "metrics_table":
        c = args.checkpoints
        run(
            "metrics_table",
            {
                "steps": [paths(d, "metrics", 2, "json")[step]] * c,
                "embeddings": paths(d, "embeddings", c),
                "projections": [paths(d, "projection", 2)[step]] * c,
                "layout": [],
            },
            {"csv": str(d / "metrics.csv"), "film": str(d / "film_metrics.json")},
            {"align": "previous", "skipped": [], "view_files": [str(d / "limits.json")] * c},
        )
        return f"whole-film stability over {c} checkpoints (embeddings memory-mapped)"
    if name == "frame":
        from embedding_film.film.camera import axis_limits
        from embedding_film.film.common import load_npy, save_json

        save_json(d / "limits.json", axis_limits([load_npy(paths(d, "projection", 2)[0])], 1.15))
        inputs = {
            "projection": paths(d, "projection", 2)[step],
            "scores": paths(d, "ood", 2)[step],
            "issues": paths(d, "label_issues", 2)[step],
            "metrics": paths(d, "metrics", 2, "json")[step],
            "view": str(d / "limits.json"),
            "labels": str(d / "labels.npy"),
            "thumbnails": str(d / "thumbnails.npy"),
            "classes": str(d / "classes.json"),
            "loss_log": str(d / "train_log.csv"),
        }
        style = {"width": 1280, "height": 720, "point_size": 12}
        run(
            "frame",
            inputs,
            {"frame": paths(d, "frames", 2, "png")[step]},
            {
                "step": step,
                "max_step": args.checkpoints - 1,
                "title": "probe",
                "leaderboard": "ood",
                "top_k": 8,
                "style": style,
            },
        )
        return f"one 1280x720 frame of {args.images} points"
    if name == "animate":
        frames = paths(d, "frames", 2, "png")[1:] * args.checkpoints
        run(
            "animate",
            {"frames": frames},
            {"film": str(d / "animation.gif")},
            {"fps": 2.5, "hold_last": 2.0, "loop": 0},
            format="gif",
        )
        return f"GIF of {len(frames)} 1280x720 frames"
    if name == "preprocess":
        from transformers import ViTImageProcessor

        from embedding_film.film import preprocess

        start = time.perf_counter()
        preprocess.preprocess(
            str(d / "eval.parquet"), ViTImageProcessor(), str(d / "pixels.npy"), str(d / "pixels.json")
        )
        return f"{args.images} 32x32 images -> uint8 224x224 ({args.images * 3 * 224 * 224 / 1e9:.1f} GB memory-mapped output), {time.perf_counter() - start:.0f} s"
    if name == "embed":
        import numpy as np
        from transformers import ViTConfig, ViTForImageClassification

        from embedding_film.film.common import save_json, save_npy

        folder = d / "vit-b16" / "checkpoint-0"
        ViTForImageClassification(ViTConfig(num_labels=10)).save_pretrained(folder)
        m = args.embed_images
        save_npy(d / "pixels_embed.npy", np.random.default_rng(0).integers(0, 255, (m, 3, 224, 224), dtype=np.uint8))
        save_json(d / "pixels_embed.json", {"rescale": 1 / 255, "mean": [0.5] * 3, "std": [0.5] * 3})
        start = time.perf_counter()
        run(
            "embed",
            {"pixels": str(d / "pixels_embed.npy"), "spec": str(d / "pixels_embed.json")},
            {"embeddings": str(d / "emb_vitb.npy"), "probs": str(d / "probs_vitb.npy")},
            {
                "checkpoint_dir": str(folder),
                "pooling": "auto",
                "batch_size": args.batch_size,
                "device": "cpu",
                "precision": "fp32",
                "allow_pickle": False,
                "failure_record": str(d / "skipped.json"),
            },
        )
        return (
            f"ViT-B/16 (86M parameters), {m} images in batches of {args.batch_size}, {time.perf_counter() - start:.0f} s; "
            f"+ up to {args.images * 3 * 224 * 224 / 1e9:.1f} GB of reclaimable pixel pages when all {args.images} are read"
        )
    raise SystemExit(f"unknown stage {name}")


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: anonymous and file pages; unlike getrusage of a child, not
    inflated by the parent's size at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


STAGES = [
    "preprocess",
    "embed",
    "ood",
    "label_issues",
    "project_previous",
    "layout_global",
    "metrics",
    "frame",
    "metrics_table",
    "animate",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--checkpoints", type=int, default=80)
    parser.add_argument("--embed-images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256, help="embedding.batch_size of the embedding stage")
    parser.add_argument("--stages", nargs="*", default=STAGES)
    parser.add_argument("--work", type=Path, default=HERE / "work" / "memory_probe")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "inputs":
        make_inputs(args.work, args.images, args.dim, args.checkpoints)
        return
    if args.child:
        what = stage(args.child, args.work, args)
        print(json.dumps({"what": what, "peak_mb": peak_rss_mb()}))
        return
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    if set(args.stages) - {"embed"}:  # the embedding stage makes its own inputs
        print(f"synthetic inputs: {args.images} x {args.dim}, {args.checkpoints} checkpoints ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "inputs",
                "--images",
                str(args.images),
                "--dim",
                str(args.dim),
                "--checkpoints",
                str(args.checkpoints),
                "--work",
                str(args.work),
            ],
            check=True,
        )
    rows = ["| stage | peak RSS MB | seconds | what |", "|---|---:|---:|---|"]
    stages = [s for s in STAGES if s in args.stages and not (s == "embed" and args.embed_images == 0)]
    for name in stages:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            name,
            "--images",
            str(args.images),
            "--dim",
            str(args.dim),
            "--checkpoints",
            str(args.checkpoints),
            "--embed-images",
            str(args.embed_images),
            "--batch-size",
            str(args.batch_size),
            "--work",
            str(args.work),
        ]
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1"),
        )
        out = proc.stdout.read()
        status = proc.wait()
        seconds = time.perf_counter() - start
        report = (
            json.loads(out.strip().splitlines()[-1])
            if status == 0
            else {"what": f"FAILED ({status})", "peak_mb": float("nan")}
        )
        rows.append(f"| {name} | {report['peak_mb']:.0f} | {seconds:.0f} | {report['what']} |")
        print(rows[-1], flush=True)
    print(
        f"\nCIFAR-10 scale probe: {args.images} images x {args.dim} dims, {args.checkpoints} checkpoints, one thread per job\n"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
