"""Stage 2: fine-tune with the Hugging Face Trainer and keep a checkpoint every `save_steps` steps.

In:  data/train.parquet, the model (hub id, local folder or builtin:tiny-vit), the `training:` config.
Out: checkpoints/checkpoint-{step}/ (safetensors, config, image processor, trainer_state.json) for step 0
     (before fine-tuning) and every save_steps up to max_steps; train_log.csv (step, epoch, loss,
     learning_rate, grad_norm), read from the Trainer's log history by key name.

The Trainer writes into a staging folder (training/) that Snakemake does not manage, keeping the optimizer,
scheduler and RNG state of the newest checkpoint only. An interrupted training job therefore resumes from
its newest complete checkpoint (exactly: same batches, same random numbers) instead of starting over;
when training finishes, the checkpoints are moved into checkpoints/ and the staging folder is removed.
"""

import json
import logging
import os
from pathlib import Path
from typing import Any

from embedding_film.film.checkpoints import check_existing_checkpoints, training_fingerprint, write_train_log
from embedding_film.film.common import UserError, before_publishing, save_json
from embedding_film.film.models import is_builtin, load_for_training, tiny_vit_config
from embedding_film.film.preprocess import processor_for

log = logging.getLogger(__name__)

RESERVED_ARGS = {"output_dir", "save_strategy", "save_steps", "max_steps", "save_only_model", "seed"}
FILM_FILES = ("config.json", "preprocessor_config.json", "trainer_state.json", "model.safetensors")  # weights last
RESUME_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt")


def _step(folder: Path) -> int:
    return int(folder.name.rsplit("-", 1)[1])


def resumable_checkpoint(staging: str | Path) -> Path | None:
    """The newest staged checkpoint with complete weights and resume state, if any."""
    from safetensors import safe_open

    folders = sorted(Path(staging).glob("checkpoint-*"), key=_step, reverse=True)
    for folder in folders:
        if not all((folder / f).is_file() for f in ("model.safetensors", "trainer_state.json", *RESUME_FILES[:3])):
            continue
        try:
            with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
                handle.keys()
            json.loads((folder / "trainer_state.json").read_text())
        except Exception:  # a checkpoint torn by the interruption: try an older one
            log.warning("skipping incomplete staged checkpoint %s", folder)
            continue
        return folder
    return None


def publish(staging: str | Path, checkpoint_root: str | Path) -> None:
    """Move the film's files of every staged checkpoint into checkpoints/, then drop the staging folder."""
    import shutil

    for folder in sorted(Path(staging).glob("checkpoint-*"), key=_step):
        before_publishing()  # e.g. not once the job's client has gone away
        dest = Path(checkpoint_root) / folder.name
        dest.mkdir(parents=True, exist_ok=True)
        for name in FILM_FILES:
            if (folder / name).is_file():
                os.replace(folder / name, dest / name)
    shutil.rmtree(staging)


def keep_newest_resume_state() -> Any:
    """A Trainer callback: after each save, remove the optimizer/scheduler/RNG state of older checkpoints."""
    from transformers import TrainerCallback

    class KeepNewestResumeState(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            for folder in Path(args.output_dir).glob("checkpoint-*"):
                if _step(folder) != state.global_step:
                    for name in RESUME_FILES:
                        (folder / name).unlink(missing_ok=True)

    return KeepNewestResumeState()


def epoch_seeded_trainer(seed: int) -> Any:
    """A Trainer whose shuffling depends only on (seed, epoch), so a resumed run sees the same batches."""
    import torch
    from transformers import Trainer

    class EpochSeededSampler(torch.utils.data.Sampler):
        def __init__(self, n: int) -> None:
            self.n, self.epoch = n, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __iter__(self) -> Any:
            generator = torch.Generator().manual_seed(seed + self.epoch)
            return iter(torch.randperm(self.n, generator=generator).tolist())

        def __len__(self) -> int:
            return self.n

    class ResumableTrainer(Trainer):
        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            return EpochSeededSampler(len(train_dataset if train_dataset is not None else self.train_dataset))

    return ResumableTrainer


def build_model(
    model: str, class_names: list[str], image_size: int, tiny_vit: dict[str, Any], seed: int, allow_pickle: bool
) -> Any:
    import torch
    from transformers import ViTForImageClassification

    id2label = dict(enumerate(class_names))
    torch.manual_seed(seed)
    if is_builtin(model):
        return ViTForImageClassification(tiny_vit_config(len(class_names), id2label, image_size=image_size, **tiny_vit))
    return load_for_training(model, len(class_names), id2label, allow_pickle)


def train(
    train_parquet: str,
    model: str,
    training: dict[str, Any],
    tiny_vit: dict[str, Any],
    dataset: dict[str, Any],
    seed: int,
    allow_pickle: bool,
    checkpoint_root: str,
    train_log: str,
    threads: int,
    staging: str,
) -> None:
    import torch
    from datasets import load_dataset
    from transformers import TrainingArguments

    torch.set_num_threads(max(1, threads))
    reserved = RESERVED_ARGS & set(training["extra_args"])
    if reserved:
        raise UserError(
            f"training.extra_args sets {sorted(reserved)}, which the workflow controls; use the training: keys instead."
        )
    image_size = dataset["image_size"]
    fingerprint = training_fingerprint(model, training, tiny_vit, dataset, seed)
    check_existing_checkpoints(checkpoint_root, fingerprint)
    staged = Path(staging) / "training.json"
    if staged.is_file() and json.loads(staged.read_text()) != json.loads(json.dumps(fingerprint)):
        raise UserError(
            f"'{staging}' holds an interrupted training run with other settings; revert the training settings "
            "to resume it, or delete that folder to start over."
        )
    save_json(staged, fingerprint)
    ds = load_dataset("parquet", data_files={"train": train_parquet}, split="train")
    class_names = ds.features["label"].names
    processor = processor_for(model, image_size)

    def transform(batch: dict[str, Any]) -> dict[str, Any]:
        images = [im.convert("RGB") for im in batch["image"]]
        return {"pixel_values": processor(images, return_tensors="pt")["pixel_values"], "labels": batch["label"]}

    ds.set_transform(transform)
    net = build_model(model, class_names, image_size, tiny_vit, seed, allow_pickle)
    log.info("model: %s, %.2fM parameters", type(net).__name__, sum(p.numel() for p in net.parameters()) / 1e6)
    args = TrainingArguments(
        output_dir=str(staging),
        max_steps=training["max_steps"],
        save_strategy="steps",
        save_steps=training["save_steps"],
        save_only_model=False,  # the newest checkpoint keeps its resume state (see keep_newest_resume_state)
        logging_steps=training["logging_steps"],
        learning_rate=training["learning_rate"],
        per_device_train_batch_size=training["batch_size"],
        weight_decay=training["weight_decay"],
        warmup_steps=training["warmup_steps"],
        seed=seed,
        data_seed=seed,
        **{
            "report_to": "none",
            "remove_unused_columns": False,
            "dataloader_num_workers": 0,
            "disable_tqdm": False,
            **training["extra_args"],  # may override the four above (e.g. dataloader_num_workers on a GPU)
        },
    )
    resume = resumable_checkpoint(staging)
    if resume is not None:
        # The Trainer's own resume loads the raw state dict non-strictly, which silently skips weights whose
        # names transformers converts on save (every ViT encoder layer in transformers 5): load them properly.
        from transformers import AutoModelForImageClassification

        net = AutoModelForImageClassification.from_pretrained(
            str(resume), trust_remote_code=False, use_safetensors=True
        )
    trainer = epoch_seeded_trainer(seed)(
        model=net, args=args, train_dataset=ds, processing_class=processor, callbacks=[keep_newest_resume_state()]
    )
    if resume is None:
        trainer.save_model(str(Path(staging) / "checkpoint-0"))  # the film starts before fine-tuning
        trainer.train()
    else:
        log.info("resuming the interrupted training from %s", resume)
        trainer.train(resume_from_checkpoint=str(resume))
    final = Path(staging) / f"checkpoint-{trainer.state.global_step}"
    if not (final / "model.safetensors").is_file():
        trainer.save_model(str(final))
        trainer.state.save_to_json(str(final / "trainer_state.json"))
    rows = write_train_log(trainer.state.log_history, train_log)
    save_json(Path(checkpoint_root) / "training.json", fingerprint)
    publish(staging, checkpoint_root)
    log.info("trained %d steps; %d loss rows in %s", trainer.state.global_step, rows, train_log)
