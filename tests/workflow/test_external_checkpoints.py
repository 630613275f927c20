"""Your own checkpoints: a separate Hugging Face Trainer run writes checkpoint-* folders; the workflow films
them without training, never writes into that folder, and when one more checkpoint appears it plans only
that checkpoint's jobs (and what the film assembles from them). Bad folders fail at parse time."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hashlib
import json
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_workdir, planned, planned_jobs, set_config, snakemake
from PIL import Image

pytestmark = pytest.mark.workflow

IMAGE = 16


def trainer_run(output_dir: Path, max_steps: int = 6, save_steps: int = 2, callbacks: list[Any] | None = None) -> Path:
    """A tiny ViT fine-tuned on 64 digits by the plain Trainer (not the workflow), saving checkpoint-2/4/6."""
    import torch
    from PIL import Image
    from sklearn.datasets import load_digits
    from transformers import Trainer, TrainingArguments, ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    digits = load_digits()
    processor = ViTImageProcessorPil(size={"height": IMAGE, "width": IMAGE}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    images = [Image.fromarray(np.uint8(im * 15)).convert("RGB") for im in digits.images[:64]]
    pixels = processor(images, return_tensors="pt")["pixel_values"]

    class Digits(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(pixels)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"pixel_values": pixels[i], "labels": int(digits.target[i])}

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=IMAGE,
        patch_size=4,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=10,
    )
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        save_steps=save_steps,
        save_only_model=True,
        logging_steps=1,
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    Trainer(
        model=ViTForImageClassification(config),
        args=args,
        train_dataset=Digits(),
        processing_class=processor,
        callbacks=callbacks,
    ).train()
    return output_dir


def tree_state(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under `root` with its content hash and mtime: proof that nothing was written there."""
    return {
        str(p.relative_to(root)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
            p.stat().st_mtime_ns,
        )
        for p in sorted(root.rglob("*"))
    }


def set_read_only(root: Path, read_only: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) if read_only else mode | stat.S_IWUSR)


@pytest.fixture(scope="module")
def trainer_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trainer_run(tmp_path_factory.mktemp("external") / "trainer_output")


def external_config(folder: Path) -> dict[str, Any]:
    return {
        "run": "external",
        "checkpoints": str(folder),
        "dataset": {"name": "builtin:digits", "eval_size": 40, "image_size": IMAGE},
        "projection": {"align": "first"},  # old frames stay valid when a checkpoint is added
        "ood": {"k": 5},
    }


def test_external_checkpoints_are_filmed_read_only_and_a_new_one_plans_only_its_jobs(
    trainer_output: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "trainer_output"
    shutil.copytree(trainer_output, folder)
    later = tmp_path / "later"
    shutil.move(str(folder / "checkpoint-6"), later)  # appears after the first run
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("checkpoint-")) == [
        "checkpoint-2",
        "checkpoint-4",
    ]
    assert (folder / "checkpoint-2" / "training_args.bin").is_file()  # a pickle, never loaded

    workdir = make_workdir(tmp_path / "work", external_config(folder))
    jobs = planned(workdir)  # the steps are discovered at DAG-build time: a dry run lists them
    assert "train" not in jobs and jobs["import_train_log"] == [""]
    assert jobs["embed"] == ["2", "4"]

    before = tree_state(folder)
    set_read_only(folder, True)
    try:
        snakemake(workdir, "--configfile", "test.yaml")
        res = workdir / "results" / "external"
        for step in (2, 4):
            emb = np.load(res / "embeddings" / f"{step}.npy")
            assert emb.shape == (40, 16) and np.isfinite(emb).all()
            assert np.load(res / "probs" / f"{step}.npy").shape == (40, 10)
        log = (res / "train_log.csv").read_text().splitlines()
        assert log[0].startswith("step,epoch,loss") and len(log) == 1 + 4  # logging_steps 1, newest = checkpoint-4
        assert tree_state(folder) == before

        # one more checkpoint: only its own per-checkpoint jobs, and the film around them
        set_read_only(folder, False)
        shutil.move(str(later), folder / "checkpoint-6")
        before = tree_state(folder)
        set_read_only(folder, True)
        # only its own jobs: no old frame is redrawn (a frame's loss curve is its own checkpoint's
        # trainer_state.json, its axis the Trainer's planned max_steps), and align: first keeps the anchor
        assert planned(workdir) == {
            "embed": ["6"],
            "ood": ["6"],
            "label_issues": ["6"],
            "project": ["6"],
            "metrics": ["6"],
            "frame": ["6"],
            "import_train_log": [""],  # the loss curve now ends at step 6
            "metrics_table": [""],
            "outliers_table": [""],
            "review": [""],
            "animate": ["gif"],
            "film_html": [""],
        }
        snakemake(workdir, "--configfile", "test.yaml")
        assert np.load(res / "embeddings" / "6.npy").shape == (40, 16)
        assert len((res / "train_log.csv").read_text().splitlines()) == 1 + 6
        assert tree_state(folder) == before
        assert planned_jobs(workdir) == {}
    finally:
        set_read_only(folder, False)


# --- bad folders fail when the workflow is parsed, in one sentence ----------------------------------------


def _dry_run_error(workdir: Path) -> str:
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_folder_without_checkpoints_is_named(tmp_path: Path) -> None:
    (tmp_path / "out" / "runs").mkdir(parents=True)
    workdir = make_workdir(tmp_path / "work", external_config(tmp_path / "out"))
    assert "has no checkpoint-<step> sub-folders; point checkpoints: at the Trainer's output_dir" in _dry_run_error(
        workdir
    )


def test_pickle_only_checkpoint_fails_at_parse_time_unless_opted_in(trainer_output: Path, tmp_path: Path) -> None:
    # truncated safetensors and mixed architectures go through the same parse-time check (test_models.py)
    from test_models import _pickle_only

    folder = tmp_path / "out"
    shutil.copytree(trainer_output / "checkpoint-2", folder / "checkpoint-2")
    _pickle_only(shutil.copytree(trainer_output / "checkpoint-4", folder / "checkpoint-4"))
    workdir = make_workdir(tmp_path / "work", external_config(folder))
    out = _dry_run_error(workdir)
    assert (
        "checkpoint-4' only has pickled weights (pytorch_model.bin), which can run code when loaded; convert it to safetensors or set allow_pickle_checkpoints: true if you trust it."
        in out
    )
    set_config(workdir, {"allow_pickle_checkpoints": True})
    assert "embed" in planned_jobs(workdir)  # opted in


def test_incomplete_checkpoints_are_left_out_with_one_warning_each_or_refused_when_strict(
    trainer_output: Path, tmp_path: Path
) -> None:
    """A checkpoint still being written (truncated safetensors, no trainer_state.json yet, a Trainer temporary
    folder) is not part of this run's film: one warning line names it; strict: true refuses instead."""
    folder = tmp_path / "out"
    shutil.copytree(trainer_output, folder)
    weights = folder / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # half-written
    (folder / "checkpoint-6" / "trainer_state.json").unlink()  # the Trainer writes it last
    (folder / "tmp-checkpoint-8").mkdir()
    workdir = make_workdir(tmp_path / "work", external_config(folder))
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml")
    out = proc.stdout + proc.stderr
    assert re.search(
        r"checkpoint-4' has a model.safetensors that is \d+ bytes but its header needs \d+ \(truncated\): left out of this film",
        out,
    )
    assert "checkpoint-6' has no trainer_state.json yet (the Trainer writes it last): left out of this film" in out
    assert "tmp-checkpoint-8' is a checkpoint the Trainer is still writing; it joins the film once complete." in out
    assert planned(workdir)["embed"] == ["2"]
    set_config(workdir, {"strict": True})
    assert "checkpoint-4' has a model.safetensors that is" in _dry_run_error(workdir)


def test_trainer_state_log_history_is_read_by_key(tmp_path: Path) -> None:
    from embedding_film.film.checkpoints import import_log
    from embedding_film.film.common import UserError

    state = tmp_path / "trainer_state.json"
    state.write_text(
        json.dumps(
            {
                "log_history": [
                    {"loss": 2.0, "step": 1, "epoch": 0.1, "learning_rate": 0.001, "grad_norm": 1.5},
                    {"eval_loss": 1.0, "step": 1},
                    {"step": 2, "loss": 1.5, "epoch": 0.2},
                ]
            }
        )
    )
    assert import_log([str(state)], str(tmp_path / "log.csv")) == 2
    assert (tmp_path / "log.csv").read_text().splitlines()[2] == "2,0.2,1.5,,"
    assert import_log([], str(tmp_path / "none.csv")) == 0  # no trainer_state.json anywhere: no curve
    state.write_text("{not json")
    with pytest.raises(UserError, match=r"trainer_state.json' is not readable JSON \(JSONDecodeError\); fix or delete"):
        import_log([str(state)], str(tmp_path / "log.csv"))


def test_keep_going_films_every_other_checkpoint_when_one_diverged(trainer_output: Path, tmp_path: Path) -> None:
    """A checkpoint whose weights are NaN (a diverged run) fails only its own jobs under --keep-going, and the
    next checkpoint's frame and metrics, which compare against it (rank change, displacement); the film is
    not made, and the message names the steps without a frame."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "trainer_output"
    shutil.copytree(trainer_output, folder)
    steps = sorted(int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*"))
    bad = steps[1]
    weights = folder / f"checkpoint-{bad}" / "model.safetensors"
    tensors = {name: t * float("nan") for name, t in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    workdir = make_workdir(tmp_path / "work", external_config(folder))
    proc = snakemake(workdir, "--configfile", "test.yaml", "--keep-going", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"checkpoint-{bad}' gives NaN/inf embeddings" in out
    res = workdir / "results" / "external"
    after = steps[steps.index(bad) + 1]
    assert [s for s in steps if (res / "frames" / f"{s}.png").is_file()] == [s for s in steps if s not in (bad, after)]
    assert (res / "embeddings" / f"{after}.npy").is_file() and (res / "projection" / f"{after}.npy").is_file()
    assert not (res / "animation.gif").exists()
    assert f"the film of run external was not made: no frame for steps {bad}, {after}" in out
    assert f"Checkpoints {bad} failed for reasons of their own: run again to make the film without them" in out
    # The next run leaves the diverged checkpoint out (one warning) and makes the film from the others.
    proc = snakemake(workdir, "--configfile", "test.yaml")
    assert f"checkpoint-{bad}' failed before: checkpoint" in proc.stdout + proc.stderr
    rest = [s for s in steps if s != bad]
    assert [s for s in steps if (res / "frames" / f"{s}.png").is_file()] == rest
    with Image.open(res / "animation.gif") as gif:
        assert gif.n_frames == len(rest)
    skipped = json.loads((res / "film_metrics.json").read_text())["skipped"]
    assert [entry["step"] for entry in skipped] == [bad] and "NaN/inf embeddings" in skipped[0]["reason"]


def test_the_default_layout_places_an_appended_checkpoint_and_refits_when_the_film_says_why(
    trainer_output: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """projection.fit auto (the default) on a growing folder: the layout is fitted on the first checkpoints; an
    appended one is placed on it by its own jobs (no layout job, no old frame redrawn, the causal camera), in
    the warm workers the first run left (FILM_WORKER_LINGER, as users have it: no import paid again); when the
    film says a refit is due, the next run refits on every checkpoint and the film says why."""
    from embedding_film.cli.workers import main as workers

    monkeypatch.setenv("FILM_WORKER_LINGER", "300")  # the default (the other tests' runs end their workers)
    folder = tmp_path / "trainer_output"
    shutil.copytree(trainer_output, folder)
    later = tmp_path / "later"
    shutil.move(str(folder / "checkpoint-6"), later)
    config = {
        **external_config(folder),
        "projection": {"method": "auto", "align": "global", "param": {"iterations": 150, "perplexity": 5.0}},
    }
    workdir = make_workdir(tmp_path / "work", config)
    monkeypatch.chdir(workdir)  # (workers --stop below: this folder's)
    proc = snakemake(workdir, "--configfile", "test.yaml")
    assert "Warm workers (train, analysis, render) wait 300 s for the next run in this folder" in proc.stderr
    embeds = re.findall(r"rule embed:\n(.*?)\nShell command", proc.stdout + proc.stderr, re.S)
    assert len(embeds) == 2 and not any("threads:" in e for e in embeds)  # one thread each, side by side
    res = workdir / "results" / "external"
    layout = json.loads((res / "film_metrics.json").read_text())["layout"]
    assert layout["fit_steps"] == [2, 4] and layout["placed_steps"] == [] and layout["refit_due"] is None
    frames = {p.name: p.read_bytes() for p in (res / "frames").iterdir() if p.is_file()}  # and their views
    assert {"2.png", "2.json", "4.png", "4.json"} <= set(frames)

    shutil.move(str(later), folder / "checkpoint-6")
    plan = planned(workdir)
    # its frame replays its camera from the first checkpoint's camera state, made with the film
    assert "layout" not in plan and plan["project"] == ["6"] and plan["frame"] == ["6"] and "camera_step" not in plan
    proc = snakemake(workdir, "--configfile", "test.yaml")
    (embed,) = re.findall(r"rule embed:\n(.*?)\nShell command", proc.stdout + proc.stderr, re.S)
    assert "threads: 2" in embed  # the one embedding to make takes every core
    layout = json.loads((res / "film_metrics.json").read_text())["layout"]
    assert layout["fit_steps"] == [2, 4] and layout["placed_steps"] == [6]
    assert "forked from a warm worker" in (res / "logs" / "embed" / "6.log").read_text()
    for kind in ("train", "analysis", "render"):  # each imported once, by the first run
        logs = "".join(p.read_text() for p in (workdir / ".snakemake" / "film-workers").glob(f"{kind}-*.log"))
        assert logs.count(f"{kind} worker ready") == 1, logs
    assert {name: (res / "frames" / name).read_bytes() for name in frames} == frames, "an old frame was redrawn"
    kept = np.load(res / "projection" / "layout.npz", allow_pickle=False)
    assert 6 not in kept["steps"] and np.isfinite(np.load(res / "projection" / "6.npy")).all()

    # the film found a placed checkpoint below a target (written here as the metrics job writes it)
    film = json.loads((res / "film_metrics.json").read_text())
    film["layout"]["refit_due"] = "checkpoint 6, placed on the layout, has trustworthiness 0.800 < 0.85 (worst frame)"
    (res / "film_metrics.json").write_text(json.dumps(film))
    plan = planned(workdir)
    assert plan["layout"] == [""] and plan["project"] == ["2", "4", "6"] and plan["frame"] == ["2", "4", "6"]
    proc = snakemake(workdir, "--configfile", "test.yaml")
    assert "the layout is refitted on all 3 checkpoints: checkpoint 6, placed" in proc.stdout + proc.stderr
    layout = json.loads((res / "film_metrics.json").read_text())["layout"]
    assert layout["fit_steps"] == [2, 4, 6] and layout["placed_steps"] == [] and layout["refit_due"] is None
    assert layout["refit_reason"].startswith("checkpoint 6, placed on the layout")
    assert "refitted on every checkpoint" in (res / "film.html").read_text()
    assert planned_jobs(workdir) == {}
    assert workers(["--stop"]) == 0


# --- training dynamics of external checkpoints ----------------------------------------------------------


def test_training_dynamics_of_external_checkpoints_grow_by_one_job_per_new_checkpoint(
    trainer_output: Path, tmp_path: Path
) -> None:
    """dynamics.enabled: true scores the dataset's training split at every checkpoint (a stratified subset above
    max_images); a new checkpoint adds its own train_probs job and reruns the film-level dynamics, nothing old."""
    import pandas as pd

    folder = tmp_path / "trainer_output"
    shutil.copytree(trainer_output, folder)
    later = tmp_path / "later"
    shutil.move(str(folder / "checkpoint-6"), later)
    cfg = {**external_config(folder), "dynamics": {"enabled": True, "max_images": 100}}
    workdir = make_workdir(tmp_path / "work", cfg)
    assert planned(workdir)["train_probs"] == ["2", "4"]
    snakemake(workdir, "--configfile", "test.yaml")
    res = workdir / "results" / "external"
    table = pd.read_parquet(res / "dynamics.parquet")
    assert len(table) == 100 and table["label"].value_counts().min() >= 9  # stratified over the 10 digits
    assert table["id"].str.startswith("digits/").all() and sorted(table["label_error_rank"]) == list(range(1, 101))
    assert np.load(res / "train_probs" / "4.npy").shape == (100, 10)
    assert np.load(res / "dynamics_trace.npz")["steps"].tolist() == [2, 4]
    review = pd.read_parquet(res / "train_review.parquet")
    assert review["label_error_rank"].tolist() == list(range(1, 101)) and review["image"].map(len).min() > 0
    assert len(pd.read_csv(res / "label_errors.csv")) == 24

    shutil.move(str(later), folder / "checkpoint-6")
    plan = planned(workdir)
    assert plan["train_probs"] == ["6"]
    assert {k: v for k, v in plan.items() if k in ("dynamics", "data_map", "train_review", "train_images")} == {
        "dynamics": [""],
        "data_map": [""],
        "train_review": [""],
    }
    snakemake(workdir, "--configfile", "test.yaml")
    assert np.load(res / "dynamics_trace.npz")["steps"].tolist() == [2, 4, 6]
    assert planned_jobs(workdir) == {}


def test_without_a_training_split_dynamics_are_off_in_one_line(trainer_output: Path, tmp_path: Path) -> None:
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage

    data = tmp_path / "only_test"
    data.mkdir()
    features = Features({"image": Image(), "label": ClassLabel(names=[str(i) for i in range(10)])})
    images = [PILImage.new("RGB", (IMAGE, IMAGE), (20 * (i % 10), 0, 0)) for i in range(40)]
    Dataset.from_dict({"image": images, "label": [i % 10 for i in range(40)]}, features=features).to_parquet(
        str(data / "test.parquet")
    )
    cfg = external_config(trainer_output)
    cfg["dataset"] = {"name": str(data), "eval_size": None, "image_size": IMAGE}
    workdir = make_workdir(tmp_path / "work", {**cfg, "dynamics": {"enabled": True}})
    snakemake(workdir, "results/external/dynamics.parquet", "--configfile", "test.yaml")
    log = (workdir / "results" / "external" / "logs" / "prepare_data.log").read_text()
    assert "training dynamics are off" in log and "no split 'train'" in log
    assert "training dynamics are off" in (workdir / "results" / "external" / "logs" / "dynamics.log").read_text()
    # the next run knows: one line, and no dynamics jobs
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml")
    out = proc.stdout + proc.stderr
    assert out.count("training dynamics are off") == 1 and "train_probs" not in out
