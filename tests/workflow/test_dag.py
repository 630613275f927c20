"""Dry-run inspection (docs/dag.md): the whole plan is known when the workflow is parsed, `make dag` draws
it, and the rows of "What reruns when you change X" that tests/workflow/test_workflow.py does not already back."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, make_workdir, planned, planned_jobs, set_config, snakemake

pytestmark = pytest.mark.workflow

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TINY_STEPS = 5  # tiny.yaml: checkpoints 0, 5, 10, 15, 20


def test_dry_run_lists_every_checkpoint_of_the_cifar10_config_offline(tmp_path: Path) -> None:
    # configs/cifar10-vit.yaml saves a checkpoint every save_steps, plus step 0 and the last step; with one
    # checkpoint per job every one of them is a planned job although nothing is downloaded or trained yet:
    # the steps come from the config, at parse time.
    workdir = make_workdir(tmp_path)
    shutil.copy(REPO / "configs" / "cifar10-vit.yaml", workdir / "test.yaml")
    training = yaml.safe_load((workdir / "test.yaml").read_text())["training"]
    n_checkpoints = len(
        {0, *range(training["save_steps"], training["max_steps"] + 1, training["save_steps"]), training["max_steps"]}
    )
    env_before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        jobs = planned_jobs(workdir)
    finally:
        if env_before is None:
            os.environ.pop("HF_HUB_OFFLINE")
        else:
            os.environ["HF_HUB_OFFLINE"] = env_before
    assert jobs["train"] == 1
    assert n_checkpoints > 40
    for stage in ("embed", "ood", "frame"):
        assert jobs[stage] == n_checkpoints, (stage, jobs)
    assert not (workdir / "results").exists()


def test_causal_cameras_wait_on_every_tenth_checkpoints_camera_not_on_each_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """camera.mode causal over the CIFAR-10 config's checkpoints: checkpoint i's frame replays its camera from
    the state of checkpoint 10 * ((i - 1) // 10) and the projections since it (and camera.window - 1 before);
    those states are the only camera jobs, a chain of about n / 10, and no frame reads another frame's file."""
    workdir = make_workdir(tmp_path)
    shutil.copy(REPO / "configs" / "cifar10-vit.yaml", workdir / "test.yaml")
    set_config(workdir, {"camera": {"mode": "causal", "window": 3}})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = snakemake(workdir, "-n", "--configfile", "test.yaml").stdout

    def jobs(rule: str) -> dict[int, tuple[list[int], list[str], list[str]]]:
        """{step: (camera states read, projections read, other frames' files read)} of the rule's jobs."""
        found = {}
        for block in re.findall(rf"rule {rule}:\n(.*?)\n\n", out + "\n\n", re.S):
            step = int(re.search(r"step=(\d+)", block).group(1))
            inputs = re.search(r"input: (.*)", block).group(1).split(", ")
            found[step] = (
                [int(m.group(1)) for f in inputs if (m := re.search(r"projection/camera/(\d+)\.json$", f))],
                [f for f in inputs if re.search(r"projection/\d+\.npy$", f)],
                [f for f in inputs if "/frames/" in f],
            )
        return found

    frames, cameras = jobs("frame"), jobs("camera_step")
    steps = sorted(frames)
    assert len(steps) > 40
    base = {step: steps[(i - 1) // 10 * 10] for i, step in enumerate(steps) if i}
    assert sorted(cameras) == sorted(set(base.values()))  # every tenth checkpoint's state, once
    for i, step in enumerate(steps):
        previous, projections, other_frames = frames[step]
        assert previous == ([base[step]] if i else []), (step, previous)
        assert len(set(projections)) <= 10 + 3 - 1 and not other_frames  # (its own named twice)
    depth = {}
    for step in sorted(cameras):
        previous = cameras[step][0]
        assert previous == ([base[step]] if step in base else [])
        depth[step] = 1 + (depth[previous[0]] if previous else 0)
    assert max(depth.values()) == (len(steps) - 2) // 10 + 1  # the first camera state, then one per ten


def test_make_dag_draws_the_rule_graph_and_a_3_checkpoint_dag(tmp_path: Path) -> None:
    if not shutil.which("dot"):
        reason = "Graphviz's dot is not installed (Debian: apt-get install graphviz; .ci/run does this with CI=true)"
        if CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    out = tmp_path / "dag"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    # -o: take .venv as installed (the test runs in it); DAG_DIR: write here, not into the checkout's dag/.
    proc = subprocess.run(
        ["make", "-o", ".venv/bin/.installed", "dag", f"DAG_DIR={out}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rulegraph = (out / "rulegraph.svg").read_text()
    dag = (out / "dag-3-checkpoints.svg").read_text()
    assert rulegraph.lstrip().startswith(("<?xml", "<svg")) and dag.lstrip().startswith(("<?xml", "<svg"))
    for rule in (
        "prepare_data",
        "train",
        "embed",
        "ood",
        "label_issues",
        "project",
        "metrics",
        "frame",
        "animate",
        "review",
    ):
        assert f">{rule}<" in rulegraph, rule
    # the DAG: one job per checkpoint and stage (steps 0, 5, 10), nothing for a fourth
    for stage in ("embed", "ood", "label_issues", "project", "metrics", "frame"):
        assert dag.count(f">{stage}<") == 3, stage
    for stage in ("train", "layout", "animate"):
        assert dag.count(f">{stage}<") <= 1, stage
    plan = (out / "dry-run-3-checkpoints.txt").read_text()
    assert re.search(r"^embed\s+3$", plan, re.M) and re.search(r"^frame\s+3$", plan, re.M)


# ------------------------------------------------------- "What reruns when you change X" (docs/dag.md)


def test_alignment_mode_change_reruns_projections_and_what_is_drawn_from_them(tiny_copy: Path) -> None:
    # tiny.yaml aligns each checkpoint onto step 0's projection (first); reference fits one PCA basis instead.
    set_config(tiny_copy, {"projection": {"align": "reference"}})
    jobs = planned_jobs(tiny_copy)
    assert jobs.pop("layout") == 1 and jobs.pop("camera") == 1  # one basis for the film: the camera follows it
    for stage in ("project", "frame"):
        assert jobs.pop(stage) == TINY_STEPS, stage
    assert jobs.pop("animate") == 1 and jobs.pop("review") == 1 and jobs.pop("film_html") == 1
    # metrics of the projection (trustworthiness, displacement) follow it
    assert jobs.pop("metrics") == TINY_STEPS and jobs.pop("metrics_table") == 1
    assert jobs == {}, f"also planned: {jobs}"  # no training, embedding or outlier job


def test_model_change_is_refused_over_the_runs_checkpoints_and_a_new_run_plans_everything(tiny_copy: Path) -> None:
    set_config(tiny_copy, {"model": "google/vit-base-patch16-224-in21k"})
    proc = snakemake(tiny_copy, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    # one sentence naming the folder and what changed (tiny_vit, the builtin model's shape, goes with it)
    assert re.search(
        r"already holds 5 checkpoints trained with other settings \(model\b.* changed\)", proc.stdout + proc.stderr
    )
    # Under a new run: name every stage of the new film is planned, in its own results folder.
    set_config(tiny_copy, {"run": "tiny-vit-b"})
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub id is only looked up by the jobs themselves
    jobs = planned_jobs(tiny_copy)
    for stage in ("prepare_data", "preprocess", "train", "animate", "review"):
        assert jobs[stage] == 1, stage
    for stage in ("embed", "ood", "project", "frame"):
        assert jobs[stage] == TINY_STEPS, stage
    assert not (tiny_copy / "results" / "tiny-vit-b").exists()


def test_global_alignment_ties_every_frame_to_each_embedding(tiny_copy: Path) -> None:
    # One PCA basis fitted on all checkpoints: one changed embedding moves the basis, so every projection,
    # metric and frame is redone (docs/dag.md's "what reruns" table), but no other checkpoint's embedding or score.
    set_config(tiny_copy, {"projection": {"align": "global"}})
    snakemake(tiny_copy, "--configfile", "test.yaml")
    # One basis for the whole film: the camera (lookahead) keeps every frame readable, and says how much it zooms.
    table = pd.read_csv(tiny_copy / "results" / "tiny" / "metrics.csv")
    assert (table["spread"] >= 0.30 - 1e-9).all() and (table["spread"] <= 0.90 + 1e-9).all(), table[["step", "spread"]]
    assert (table["zoom"] >= 1).all() and table["zoom"].max() > 1  # the early, smaller clouds are magnified
    target = tiny_copy / "results" / "tiny" / "embeddings" / "10.npy"
    np.save(target, np.load(target) * 1.01)
    later = time.time() + 5
    os.utime(target, (later, later))
    every = ["0", "5", "10", "15", "20"]
    assert planned(tiny_copy) == {
        "ood": ["10"],
        "layout": [""],
        "project": every,
        "metrics": every,
        "frame": every,
        "camera": [""],
        "review": [""],
        "metrics_table": [""],
        "outliers_table": [""],
        "animate": ["gif"],
        "film_html": [""],
    }


def test_a_reference_fitted_map_with_a_causal_camera_keeps_old_frames_when_one_is_appended(tiny_copy: Path) -> None:
    """method tsne, fit: reference, camera causal (what a growing film needs): a change to a checkpoint that
    the map was not fitted on replaces that checkpoint's frame (and the next one's, which compares against
    it) and the film, nothing before it."""
    set_config(
        tiny_copy,
        {
            "projection": {
                "method": "tsne",
                "fit": "reference",
                "reference_steps": [0, 10],
                "tsne": {"perplexity": 20},
            },
            "camera": {"mode": "causal"},
        },
    )
    snakemake(tiny_copy, "--configfile", "test.yaml")
    film = json.loads((tiny_copy / "results" / "tiny" / "film_metrics.json").read_text())
    assert film["layout"]["method"] == "tsne" and film["min_spread"] >= 0.30 - 1e-9
    target = tiny_copy / "results" / "tiny" / "embeddings" / "15.npy"
    np.save(target, np.load(target) * 1.01)
    later = time.time() + 5
    os.utime(target, (later, later))
    plan = planned(tiny_copy)
    # the frames (their cameras) from 15 on; the camera state they start from (checkpoint 0's) is unchanged
    assert plan["project"] == ["15"] and plan["frame"] == ["15", "20"] and "camera_step" not in plan
    assert "layout" not in plan


def test_the_default_layout_auto_keeps_the_learned_map_or_pca_and_says_which(tiny_copy: Path) -> None:
    """method auto (config.yaml's default): the layout job measures global PCA and, where PCA misses a target,
    fits the learned map; it keeps one, and film_metrics.json and the page say which and why; every frame
    is drawn from the kept layout."""
    set_config(tiny_copy, {"projection": {"method": "auto", "param": {"iterations": 150, "perplexity": 10}}})
    snakemake(tiny_copy, "--configfile", "test.yaml")
    res = tiny_copy / "results" / "tiny"
    layout = json.loads((res / "film_metrics.json").read_text())["layout"]
    choice = layout["choice"]
    assert "pca" in choice["candidates"]  # measured first, always
    assert (
        set(choice["candidates"]) | set(choice["not_fitted"]) == {"pca", "param"}
        and layout["method"] == choice["method"]
    )
    assert choice["not_fitted"] == ([] if "param" in choice["candidates"] else ["param"])
    assert choice["reason"].startswith((choice["method"], "no candidate"))
    kept = np.load(res / "projection" / "layout.npz", allow_pickle=False)
    for i, step in enumerate(kept["steps"]):
        np.testing.assert_array_equal(np.load(res / "projection" / f"{step}.npy"), kept["coords"][i])
    assert "auto: " in (res / "film.html").read_text()


def test_a_jobs_command_is_a_short_line_naming_its_adapter_log_and_spec(tmp_path: Path) -> None:
    """snakemake -n -p prints each job's command as one short line: the client, the rule's adapter, its log and
    the file that holds the job's JSON (named by its content, written when the job is planned), not the JSON
    itself; the real run names the same file."""
    workdir = make_workdir(tmp_path)
    proc = snakemake(workdir, "-n", "-p", "--configfile", "test.yaml")
    commands = [line for line in proc.stdout.splitlines() if "embedding_film.runtime.client" in line]
    assert commands and all('{"input"' not in c and len(c) < 400 for c in commands), commands[:2]
    assert any(" ood --log results/" in c and "--spec .snakemake/film-jobs/" in c for c in commands)
    spec = re.search(r"prepare_data --log \S+ --spec (\S+)", proc.stdout).group(1)
    assert json.loads((workdir / spec).read_text())["output"]["labels"].endswith("data/labels.npy")
    ran = snakemake(workdir, "-p", "--configfile", "test.yaml", "--until", "prepare_data")
    assert f"--spec {spec}" in ran.stdout + ran.stderr
