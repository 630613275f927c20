#!/usr/bin/env python
"""FilmCallback on the embedded default: what filming while training costs the training, and how soon after
training the film is complete.

    python benchmarks/callback.py [--repeats 2] [--threads 2 1] [--steps 500] [--live-beside-busy idle nice]

The embedded default's training (config.yaml: the tiny ViT on the digits' training split, 500 steps, a
checkpoint every 25, batch 64) with the plain Hugging Face Trainer in this process, as a user's script runs
it, at each --threads (torch threads of training), alternating: without a callback, and with FilmCallback as
a user creates it (the film's settings: the embedded default's, model builtin:tiny-vit, dataset
builtin:digits at 32 px; cores left to its default: with 2 threads on 2 cores training leaves none, so the
film waits for training to end; with 1 thread it films on the other core while training runs). Once per
--live-beside-busy policy, the choice the default avoids: filming on both cores beside 2 training threads,
at SCHED_IDLE (idle) or nice 19 (nice). Training time is on_train_begin to on_train_end (a timing callback
that runs before FilmCallback's); "film complete after training" is on_train_end to trainer.train()
returning (FilmCallback waits there for the film). Targets: training with the callback <= 1.3x without it,
the film complete <= 60 s after training. Work goes to benchmarks/work/callback/ (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "workflow_scripts")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from make_checkpoints import DEMO  # noqa: E402

FILM = {"model": "builtin:tiny-vit", "dataset": {"name": "builtin:digits", "image_size": DEMO["image_size"]}}


def training_run(out: Path, work: Path, steps: int, threads: int, film: str | None) -> dict[str, float]:
    """One training of the embedded default into `out` on `threads` torch threads; with FilmCallback unless
    `film` is None ("default": as a user creates it; "idle"/"nice": on every core beside training, at that
    priority)."""
    import torch
    from datasets import load_dataset
    from transformers import Trainer, TrainerCallback, TrainingArguments, ViTForImageClassification

    from embedding_film.api import callback
    from embedding_film.film import data
    from embedding_film.film.models import tiny_vit_config, tiny_vit_processor

    class Clock(TrainerCallback):
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            self.begin = time.perf_counter()

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            self.end = time.perf_counter()

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        splits = data.builtin_digits(DEMO["image_size"], 0)
        data.write_parquet(splits["train"], f"{tmp}/train.parquet")
        ds = load_dataset("parquet", data_files={"train": f"{tmp}/train.parquet"}, split="train", cache_dir=tmp)
        names = ds.features["label"].names
        processor = tiny_vit_processor(DEMO["image_size"])

        def transform(batch: dict[str, Any]) -> dict[str, Any]:
            images = [im.convert("RGB") for im in batch["image"]]
            return {"pixel_values": processor(images, return_tensors="pt")["pixel_values"], "labels": batch["label"]}

        ds.set_transform(transform)
        torch.manual_seed(0)
        config = tiny_vit_config(len(names), dict(enumerate(names)), image_size=DEMO["image_size"], **DEMO["tiny_vit"])
        t = DEMO["training"]
        args = TrainingArguments(
            output_dir=str(out),
            max_steps=steps,
            save_steps=25,
            logging_steps=5,
            learning_rate=t["learning_rate"],
            per_device_train_batch_size=t["batch_size"],
            weight_decay=t["weight_decay"],
            warmup_steps=t["warmup_steps"],
            seed=0,
            report_to="none",
            remove_unused_columns=False,
            disable_tqdm=True,
        )
        clock = Clock()
        callbacks: list[Any] = [clock]
        priority = callback.lower_priority
        if film is not None:
            cores = None if film == "default" else callback.available_cores()
            if film == "nice":
                callback.lower_priority = lambda: os.nice(callback.NICE)
            callbacks.append(callback.FilmCallback(run="callback", workdir=work, cores=cores, **FILM))
        trainer = Trainer(
            model=ViTForImageClassification(config),
            args=args,
            train_dataset=ds,
            processing_class=processor,
            callbacks=callbacks,
        )
        try:
            trainer.train()
        finally:
            callback.lower_priority = priority
        returned = time.perf_counter()
    row = {"train_s": clock.end - clock.begin}
    if film is not None:
        row["film_after_s"] = returned - clock.end
        row["complete"] = float((work / "results" / "callback" / "film.html").is_file())
    return row


NAMES = {
    None: "without a callback",
    "default": "with FilmCallback (default cores)",
    "idle": "with FilmCallback on every core beside training, SCHED_IDLE",
    "nice": "with FilmCallback on every core beside training, nice 19",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="torch threads of training")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--live-beside-busy", nargs="*", default=["idle", "nice"], choices=["idle", "nice"])
    args = parser.parse_args()
    root = HERE / "work" / "callback"
    plan = [(threads, film) for threads in args.threads for film in (None, "default")]
    runs = [*(plan * args.repeats), *((max(args.threads), film) for film in args.live_beside_busy)]
    rows: dict[tuple[int, str | None], list[dict[str, float]]] = {}
    for threads, film in runs:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        load = os.getloadavg()[0]
        row = training_run(root / "trainer_output", root / "work", args.steps, threads, film)
        rows.setdefault((threads, film), []).append(row)
        print(f"{threads} thread(s), {NAMES[film]}: {row} (load {load:.2f})", flush=True)
    print(
        "\n| torch threads | training of the embedded default | training s (each run) | vs without | film complete after training, s |"
    )
    print("|---:|---|---:|---:|---:|")
    for (threads, film), found in rows.items():
        base = statistics.mean(r["train_s"] for r in rows[(threads, None)])
        train = [r["train_s"] for r in found]
        after = ", ".join(f"{r['film_after_s']:.1f}" for r in found) if film is not None else "-"
        ratio = statistics.mean(train) / base
        print(f"| {threads} | {NAMES[film]} | {', '.join(f'{s:.1f}' for s in train)} | {ratio:.2f}x | {after} |")


if __name__ == "__main__":
    main()
