"""End to end: the tiny config through the real Snakefile, then what reruns after each kind of change."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, make_workdir, planned, planned_jobs, set_config, snakemake
from PIL import Image

pytestmark = pytest.mark.workflow

STEPS = [0, 5, 10, 15, 20]  # tiny.yaml: max_steps 20, save_steps 5, step 0 included
N_EVAL = 100


def results(workdir: Path) -> Path:
    return workdir / "results" / "tiny"


def test_every_output_is_there_and_sane(tiny_run: Path) -> None:
    res = results(tiny_run)
    for step in STEPS:
        assert (res / "checkpoints" / f"checkpoint-{step}" / "model.safetensors").is_file()
        emb = np.load(res / "embeddings" / f"{step}.npy")
        assert emb.dtype == np.float32 and emb.shape == (N_EVAL, 32)
        scores = np.load(res / "ood" / f"{step}.npy")
        assert scores.shape == (N_EVAL,) and np.all((scores >= 0) & (scores <= 1))
        proj = np.load(res / "projection" / f"{step}.npy")
        assert proj.shape == (N_EVAL, 2) and np.isfinite(proj).all()
        with Image.open(res / "frames" / f"{step}.png") as frame:
            assert frame.size == (640, 360)
    with Image.open(res / "animation.gif") as gif:
        assert gif.n_frames == len(STEPS)
    review = pd.read_parquet(res / "review.parquet")
    assert len(review) == N_EVAL
    assert {"image", "label", "class_name", "embedding_first", "embedding_last", "ood_first", "ood_last"} <= set(
        review.columns
    )
    assert len(review["embedding_last"].iloc[0]) == 32
    log = pd.read_csv(res / "train_log.csv")
    assert list(log.columns[:3]) == ["step", "epoch", "loss"] and log["step"].max() == 20


def test_checkpoints_are_protected(tiny_run: Path) -> None:
    weights = results(tiny_run) / "checkpoints" / "checkpoint-5" / "model.safetensors"
    assert not os.access(weights, os.W_OK) or os.geteuid() == 0 and not weights.stat().st_mode & 0o222


def test_second_run_plans_nothing(tiny_copy: Path) -> None:
    assert planned_jobs(tiny_copy) == {}


def test_eval_data_is_loadable_by_datasets(tiny_run: Path) -> None:
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=str(results(tiny_run) / "data" / "eval.parquet"), split="train")
    assert len(ds) == N_EVAL
    assert ds.features["label"].names[:3] == ["0", "1", "2"]
    assert ds[0]["image"].mode == "RGB"


def _touch(path: Path) -> None:
    later = time.time() + 5
    os.utime(path, (later, later))


def _change(path: Path) -> None:
    """Rewrite an embedding with different values (as a changed checkpoint would), newer than its outputs."""
    np.save(path, np.load(path) * 1.01)
    _touch(path)


def test_touching_without_change_plans_nothing(tiny_copy: Path) -> None:
    # Snakemake compares checksums of small inputs whose mtime moved: same content, nothing to do.
    _touch(results(tiny_copy) / "embeddings" / "15.npy")
    assert planned_jobs(tiny_copy) == {}


FILM = {"metrics_table": [""], "outliers_table": [""], "animate": ["gif"], "film_html": [""]}  # film-level jobs


def test_changing_the_middle_embedding_reruns_exactly_its_jobs_and_the_next_checkpoints(tiny_copy: Path) -> None:
    # align: first. Step 15 reads step 10 as "previous" (rank changes, displacement): its frame and metrics follow.
    _change(results(tiny_copy) / "embeddings" / "10.npy")
    assert planned(tiny_copy) == {
        "ood": ["10"],
        "project": ["10"],
        "metrics": ["10", "15"],
        "frame": ["10", "15"],
        **FILM,
    }


def test_changing_the_last_embedding_reruns_exactly_its_jobs_and_the_review(tiny_copy: Path) -> None:
    _change(results(tiny_copy) / "embeddings" / "20.npy")
    assert planned(tiny_copy) == {
        "ood": ["20"],
        "project": ["20"],
        "metrics": ["20"],
        "frame": ["20"],
        "review": [""],
        **FILM,
    }


def test_deleted_embedding_is_rebuilt_identically_and_nothing_else_moves(tiny_copy: Path) -> None:
    target = results(tiny_copy) / "embeddings" / "20.npy"
    before = target.read_bytes()
    target.unlink()
    # Downstream files are still valid, so the film itself is up to date (Snakemake's rule for missing
    # intermediates); asking for the file plans exactly its embedding job.
    assert planned_jobs(tiny_copy) == {}
    assert planned(tiny_copy, str(target.relative_to(tiny_copy))) == {"embed": ["20"]}
    snakemake(tiny_copy, str(target.relative_to(tiny_copy)), "--configfile", "test.yaml")
    assert target.read_bytes() == before  # deterministic on CPU
    assert planned_jobs(tiny_copy) == {}  # same content: nothing downstream is stale


def test_previous_alignment_chains_later_checkpoints(tiny_copy: Path) -> None:
    set_config(tiny_copy, {"projection": {"align": "previous"}})
    snakemake(tiny_copy, "--configfile", "test.yaml")  # projections/frames/animation for the new mode
    _change(results(tiny_copy) / "embeddings" / "5.npy")
    later = ["5", "10", "15", "20"]
    assert planned(tiny_copy) == {
        "ood": ["5"],
        "project": later,
        "metrics": later,
        "frame": later,
        "review": [""],  # the last checkpoint's projection moves with the chain
        **FILM,
    }


def test_frame_setting_reruns_frames_and_animation_only(tiny_copy: Path) -> None:
    set_config(tiny_copy, {"frames": {"width": 800}})
    assert planned(tiny_copy) == {"frame": [str(s) for s in STEPS], "animate": ["gif"]}


def test_ood_setting_reruns_ood_frames_and_animation_only(tiny_copy: Path) -> None:
    set_config(tiny_copy, {"ood": {"k": 4}})
    every = [str(s) for s in STEPS]
    assert planned(tiny_copy) == {
        "ood": every,
        "frame": every,
        "animate": ["gif"],
        "review": [""],
        "outliers_table": [""],
        "film_html": [""],
    }


# --- one rule per stage: Snakemake's own rule-level options work ------------------------------


def test_forcerun_a_stage_plans_every_checkpoint_of_it_and_what_depends_on_it(tiny_copy: Path) -> None:
    every = [str(s) for s in STEPS]
    assert planned(tiny_copy, "--forcerun", "embed") == {
        "embed": every,
        "ood": every,
        "label_issues": every,
        "project": every,
        "metrics": every,
        "frame": every,
        "frame_limits": [""],
        "review": [""],
        **FILM,
    }


def test_one_frame_can_be_redrawn_through_its_file(tiny_copy: Path) -> None:
    assert planned(tiny_copy, "results/tiny/frames/10.png", "--forcerun", "frame") == {"frame": ["10"]}


def test_until_a_stage_stops_after_it(tmp_path: Path) -> None:
    every = [str(s) for s in STEPS]
    plan = planned(make_workdir(tmp_path), "--until", "ood")
    assert plan == {"prepare_data": [""], "preprocess": [""], "train": [""], "embed": every, "ood": every}


def test_set_resources_and_set_threads_reach_each_job(tiny_copy: Path) -> None:
    proc = snakemake(
        tiny_copy,
        "-p",
        "--forcerun",
        "embed",
        "--until",
        "ood",
        "--set-resources",
        "ood:mem_mb=8000",
        "--set-threads",
        "embed=2",
        "--configfile",
        "test.yaml",
    )
    out = proc.stdout + proc.stderr
    blocks = {
        b.split(":", 1)[0]: b for b in re.split(r"\n(?:local)?rule ", out)[1:] if b.startswith(("ood:", "embed:"))
    }
    assert "mem_mb=8000" in blocks["ood"] and "threads: 2" in blocks["embed"]  # (--cores 2 caps it)
    for rule, key, value in (("ood", "resources", {"mem_mb": 8000}), ("embed", "threads", 2)):
        spec = json.loads((tiny_copy / re.search(r"--spec (\S+)", blocks[rule]).group(1)).read_text())
        assert spec[key] == value or value.items() <= spec[key].items()  # in the job's JSON too


def test_list_of_rules_does_not_depend_on_the_config(tmp_path: Path) -> None:
    """The rules are the stages, whatever the checkpoint count or settings (tiny config against the demo)."""
    tiny = snakemake(make_workdir(tmp_path / "tiny"), "--list-rules", "--configfile", "test.yaml").stdout
    demo_dir = make_workdir(tmp_path / "demo")
    (demo_dir / "test.yaml").write_text("{}\n")
    demo = snakemake(demo_dir, "--list-rules", "--configfile", "test.yaml").stdout
    assert tiny == demo
    assert {"embed", "ood", "label_issues", "project", "metrics", "frame", "tween", "animate"} <= set(tiny.split())


def test_chunk_size_is_refused_with_what_replaced_it(tmp_path: Path) -> None:
    workdir = make_workdir(tmp_path, {"chunk_size": 40})
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    assert "chunk_size was removed: every stage now runs one job per checkpoint" in proc.stdout + proc.stderr


def test_jobs_depend_on_the_library_code_they_import(tiny_copy: Path) -> None:
    """A change to models.py's pooling must rerun embed (its code is an input), and not the frames: each job
    lists one file for its rule's code, which names the rule's modules (relative to the workflow) with their
    hashes."""
    proc = snakemake(tiny_copy, "-n", "--forcerun", "embed", "--configfile", "test.yaml")
    inputs = {
        block.split(":", 1)[0]: re.search(r"^\s+input: (.*)$", block, re.M).group(1).split(", ")
        for block in proc.stdout.split("\nrule ")[1:]
        if block.startswith(("embed:", "frame:", "prepare_data:"))
    }
    assert {rule: [f for f in files if "film-code" in f] for rule, files in inputs.items()} == {
        rule: [f".snakemake/film-code/{rule}.txt"] for rule in inputs
    }
    assert not any("embedding_film" in f for files in inputs.values() for f in files)
    listed = {
        rule: [
            line.split("  ")[1] for line in (tiny_copy / f".snakemake/film-code/{rule}.txt").read_text().splitlines()
        ]
        for rule in inputs
    }
    code = {rule: {Path(f).name for f in files} for rule, files in listed.items()}
    assert {"embed.py", "models.py", "common.py"} <= code["embed"]
    assert "frame.py" in code["frame"] and "models.py" not in code["frame"]
    assert all((REPO / "workflow_scripts" / f).is_file() for files in listed.values() for f in files)


def test_changed_training_config_never_overwrites_checkpoints(tiny_copy: Path) -> None:
    set_config(tiny_copy, {"training": {"learning_rate": 0.01}})
    proc = snakemake(tiny_copy, "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    assert "already holds 5 checkpoints trained with other settings (training changed)" in proc.stdout + proc.stderr
    assert (results(tiny_copy) / "checkpoints" / "checkpoint-20" / "model.safetensors").is_file()


def test_changed_dataset_never_retrains_over_checkpoints(tiny_copy: Path) -> None:
    # The data the checkpoints were trained on is part of what they are: another dataset needs a new run.
    set_config(tiny_copy, {"dataset": {"eval_size": 50}})
    proc = snakemake(tiny_copy, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    assert "already holds 5 checkpoints trained with other settings (dataset changed)" in proc.stdout + proc.stderr


def test_unknown_config_key_is_rejected_in_one_sentence(tmp_path: Path) -> None:
    workdir = make_workdir(tmp_path, {"frames": {"widht": 800}})
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "widht" in out and "Additional properties are not allowed" in out


def test_lint_is_clean(tmp_path: Path) -> None:
    workdir = make_workdir(tmp_path)
    proc = snakemake(workdir, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"training": {"save_steps": 50}},
            "training.save_steps (50) is larger than training.max_steps (20); lower save_steps.",
        ),
        ({"training": {"save_steps": -1}}, "-1 is less than the minimum of 1"),
        ({"projection": {"align": "sideways"}}, "'sideways' is not one of"),
        ({"model": "builtin:huge-vit"}, "builtin:huge-vit"),
    ],
)
def test_bad_settings_stop_the_dry_run_with_the_key(tmp_path: Path, overrides: dict, message: str) -> None:
    workdir = make_workdir(tmp_path, overrides)
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


@pytest.mark.parametrize(("section", "key"), [("ood", "k"), ("frames", "top_k")])
def test_settings_larger_than_the_eval_set_are_refused_before_any_job(tiny_copy: Path, section: str, key: str) -> None:
    set_config(tiny_copy, {section: {key: 100}})
    proc = snakemake(tiny_copy, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    assert f"{section}.{key} (100) must be smaller than the number of eval images (100)" in proc.stdout + proc.stderr
