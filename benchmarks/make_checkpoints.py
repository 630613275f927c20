#!/usr/bin/env python
"""Checkpoints for the benchmark, made locally (training is out of the comparison; its time is reported apart).

python benchmarks/make_checkpoints.py train OUT [--steps 80] [--tiny]
    Fine-tune builtin:tiny-vit on builtin:digits with the Hugging Face Trainer (the workflow's data, model
    and processor builders), saving every step with save_only_model=True: OUT/checkpoint-0 ... OUT/checkpoint-<steps>,
    each with config.json, model.safetensors, preprocessor_config.json and (from step 1) trainer_state.json.
    --tiny uses the test suite's 2-layer ViT on 16x16 images (seconds instead of a minute).
    Writes OUT/../<name>.timing.json with the training wall time.

python benchmarks/make_checkpoints.py fake OUT [--steps 1000] [--template CHECKPOINT_FOLDER]
    checkpoint-0 ... checkpoint-<steps-1> folders for the dry-run scenario (a dry run reads no weights):
    hard links to one real checkpoint's files, or a minimal config + header-only safetensors.

python benchmarks/make_checkpoints.py film POOL FOLDER N
    FOLDER/checkpoint-<s> -> POOL/checkpoint-<s> symlinks for the first N steps of POOL: a Trainer output
    folder to film, to which the benchmark appends one checkpoint later.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The demo's model and training settings (config.yaml / schema defaults), saving every step.
DEMO = {
    "image_size": 32,
    "tiny_vit": {
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "patch_size": 4,
    },
    "training": {
        "learning_rate": 0.001,
        "batch_size": 64,
        "weight_decay": 0.01,
        "warmup_steps": 25,
        "logging_steps": 1,
    },
}
# tests/configs/tiny.yaml's model.
TINY = {
    "image_size": 16,
    "tiny_vit": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "patch_size": 4,
    },
    "training": {"learning_rate": 0.001, "batch_size": 32, "weight_decay": 0.01, "warmup_steps": 2, "logging_steps": 1},
}


def pool_steps(folder: str | Path) -> list[int]:
    """The steps of the checkpoint-<step> folders in `folder`, sorted."""
    sys.path.insert(0, str(REPO / "workflow_scripts"))
    from embedding_film.film.checkpoints import checkpoint_folder_steps

    return checkpoint_folder_steps(folder)


def train(out: Path, steps: int, tiny: bool, seed: int = 0, threads: int = 2) -> float:
    """Fine-tune with the HF Trainer, saving every step into `out`; returns the training wall time in seconds
    (data preparation excluded). Uses the workflow's data, model and processor builders, not its training
    stage (which stages and publishes checkpoints for resumption): the benchmark only needs the checkpoints."""
    sys.path.insert(0, str(REPO / "workflow_scripts"))
    import torch
    from datasets import load_dataset
    from transformers import Trainer, TrainingArguments, ViTForImageClassification

    from embedding_film.film import data
    from embedding_film.film.models import tiny_vit_config, tiny_vit_processor

    preset = TINY if tiny else DEMO
    torch.set_num_threads(threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        splits = data.builtin_digits(preset["image_size"], seed)
        train_parquet = str(Path(tmp) / "train.parquet")
        data.write_parquet(splits["train"], train_parquet)
        ds = load_dataset("parquet", data_files={"train": train_parquet}, split="train", cache_dir=tmp)
        names = ds.features["label"].names
        processor = tiny_vit_processor(preset["image_size"])

        def transform(batch: dict) -> dict:
            images = [im.convert("RGB") for im in batch["image"]]
            return {"pixel_values": processor(images, return_tensors="pt")["pixel_values"], "labels": batch["label"]}

        ds.set_transform(transform)
        start = time.perf_counter()
        torch.manual_seed(seed)
        model = ViTForImageClassification(
            tiny_vit_config(len(names), dict(enumerate(names)), image_size=preset["image_size"], **preset["tiny_vit"])
        )
        t = preset["training"]
        args = TrainingArguments(
            output_dir=str(out),
            max_steps=steps,
            save_strategy="steps",
            save_steps=1,
            save_only_model=True,
            logging_steps=t["logging_steps"],
            learning_rate=t["learning_rate"],
            per_device_train_batch_size=t["batch_size"],
            weight_decay=t["weight_decay"],
            warmup_steps=t["warmup_steps"],
            seed=seed,
            data_seed=seed,
            report_to="none",
            remove_unused_columns=False,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=ds, processing_class=processor)
        trainer.save_model(str(out / "checkpoint-0"))  # the film starts before fine-tuning
        trainer.train()
        seconds = time.perf_counter() - start
    (out.parent / f"{out.name}.timing.json").write_text(
        json.dumps(
            {"train_s": round(seconds, 2), "steps": steps, "checkpoints": len(pool_steps(out)), "tiny": tiny}, indent=2
        )
    )
    return seconds


def fake(out: Path, steps: int, template: Path | None = None) -> None:
    """`steps` checkpoint folders for a dry run (which reads no weights): hard links to the files of the
    `template` checkpoint folder (no disk space; they pass the workflow's parse-time checks), or, without a
    template, a minimal config.json, a header-only model.safetensors and a trainer_state.json."""
    if out.exists():
        shutil.rmtree(out)
    files: dict[str, Path] = {}
    if template is not None:
        files = {p.name: p for p in Path(template).iterdir() if p.is_file()}
    else:
        source = out.parent / f".{out.name}.template"
        source.mkdir(parents=True, exist_ok=True)
        (source / "config.json").write_text(
            json.dumps(
                {
                    "architectures": ["ViTForImageClassification"],
                    "model_type": "vit",
                    "hidden_size": 8,
                    "num_hidden_layers": 1,
                    "num_attention_heads": 1,
                    "image_size": 8,
                    "patch_size": 4,
                }
            )
        )
        header = json.dumps({"__metadata__": {"format": "pt"}}).encode()
        header += b" " * (-len(header) % 8)
        (source / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
        (source / "trainer_state.json").write_text(json.dumps({"log_history": []}))
        files = {p.name: p for p in source.iterdir()}
    for s in range(steps):
        folder = out / f"checkpoint-{s}"
        folder.mkdir(parents=True)
        for name, src in files.items():
            try:
                os.link(src, folder / name)
            except OSError:
                shutil.copy(src, folder / name)


def film(pool: Path, folder: Path, n: int, start: int = 0) -> list[int]:
    """A folder of symlinks to `n` checkpoints of `pool` from its `start`-th on (replacing what was there)."""
    steps = pool_steps(pool)[start : start + n]
    if len(steps) < n:
        raise SystemExit(f"{pool} has only {len(steps)} checkpoints; {n} needed (make more with `train --steps`).")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for s in steps:
        add(pool, folder, s)
    return steps


def add(pool: Path, folder: Path, step: int) -> None:
    """Append checkpoint-<step> of `pool` to `folder` (what a still-running training does)."""
    (folder / f"checkpoint-{step}").symlink_to((pool / f"checkpoint-{step}").resolve(), target_is_directory=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("out", type=Path)
    t.add_argument("--steps", type=int, default=80)
    t.add_argument("--tiny", action="store_true")
    t.add_argument("--threads", type=int, default=2)
    f = sub.add_parser("fake")
    f.add_argument("out", type=Path)
    f.add_argument("--steps", type=int, default=1000)
    f.add_argument("--template", type=Path, default=None, help="a real checkpoint folder to hard-link")
    m = sub.add_parser("film")
    m.add_argument("pool", type=Path)
    m.add_argument("folder", type=Path)
    m.add_argument("n", type=int)
    args = parser.parse_args()
    if args.cmd == "train":
        seconds = train(args.out, args.steps, args.tiny, threads=args.threads)
        print(f"trained {args.steps} steps into {args.out} in {seconds:.1f} s")
    elif args.cmd == "fake":
        fake(args.out, args.steps, args.template)
    else:
        film(args.pool, args.folder, args.n)


if __name__ == "__main__":
    main()
