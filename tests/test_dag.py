"""Dry-run inspection (docs/dag.md): the whole plan is known when the workflow is parsed, `make dag` draws
it, and the rows of "What reruns when you change X" that tests/test_workflow.py does not already back."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_workdir, planned_jobs, set_config, snakemake

pytestmark = pytest.mark.workflow

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TINY_CHUNKS = 3  # tiny.yaml: 5 checkpoints, chunk_size 2 -> [0, 5], [10, 15], [20]


def stages(jobs: dict[str, int]) -> dict[str, int]:
    """{stage: job count}, chunk rules folded into their stage (embed_chunk0, embed_chunk1 -> embed: 2)."""
    out: dict[str, int] = {}
    for name, count in jobs.items():
        stage = re.sub(r"_chunk\d+$", "", name)
        out[stage] = out.get(stage, 0) + count
    return out


def test_dry_run_lists_every_checkpoint_of_the_cifar10_config_offline(tmp_path: Path) -> None:
    # configs/cifar10-vit.yaml saves a checkpoint every save_steps, plus step 0 and the last step; with one
    # checkpoint per job every one of them is a planned job although nothing is downloaded or trained yet:
    # the steps come from the config, at parse time.
    workdir = make_workdir(tmp_path)
    shutil.copy(REPO / "configs" / "cifar10-vit.yaml", workdir / "test.yaml")
    training = yaml.safe_load((workdir / "test.yaml").read_text())["training"]
    n_checkpoints = len({0, *range(training["save_steps"], training["max_steps"] + 1, training["save_steps"]), training["max_steps"]})
    env_before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        jobs = stages(planned_jobs(workdir, "--config", "chunk_size=1"))
    finally:
        if env_before is None:
            os.environ.pop("HF_HUB_OFFLINE")
        else:
            os.environ["HF_HUB_OFFLINE"] = env_before
    assert jobs["train"] == 1
    assert n_checkpoints > 40
    for stage in ("embed", "ood", "frames"):
        assert jobs[stage] == n_checkpoints, (stage, jobs)
    assert not (workdir / "results").exists()


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
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rulegraph = (out / "rulegraph.svg").read_text()
    dag = (out / "dag-3-checkpoints.svg").read_text()
    assert rulegraph.lstrip().startswith(("<?xml", "<svg")) and dag.lstrip().startswith(("<?xml", "<svg"))
    for rule in ("prepare_data", "train", "embed_chunk0", "ood_chunk0", "frames_chunk0", "animate", "review"):
        assert f">{rule}<" in rulegraph, rule
    # the DAG: one job per checkpoint and stage (steps 0, 5, 10), nothing for a fourth
    for stage in ("embed", "ood", "project", "frames"):
        assert {int(i) for i in re.findall(rf">{stage}_chunk(\d+)<", dag)} == {0, 1, 2}, stage
    plan = (out / "dry-run-3-checkpoints.txt").read_text()
    assert re.search(r"^embed_chunk2\s+1$", plan, re.M) and not re.search(r"^embed_chunk3\s", plan, re.M)


# ------------------------------------------------------- "What reruns when you change X" (docs/dag.md)


def test_alignment_mode_change_reruns_projections_and_what_is_drawn_from_them(tiny_copy: Path) -> None:
    # tiny.yaml aligns each chunk onto step 0's projection (first); reference fits one PCA basis instead.
    set_config(tiny_copy, {"projection": {"align": "reference"}})
    jobs = stages(planned_jobs(tiny_copy))
    assert jobs.pop("pca_basis") == 1 and jobs.pop("frame_limits") == 1
    for stage in ("project", "frames"):
        assert jobs.pop(stage) == TINY_CHUNKS, stage
    assert jobs.pop("animate") == 1 and jobs.pop("review") == 1
    # metrics of the projection (trustworthiness, displacement) follow it
    assert jobs.pop("metrics") == TINY_CHUNKS and jobs.pop("metrics_table") == 1
    assert jobs == {}, f"also planned: {jobs}"  # no training, embedding or outlier job


def test_model_change_is_refused_over_the_runs_checkpoints_and_a_new_run_plans_everything(tiny_copy: Path) -> None:
    set_config(tiny_copy, {"model": "google/vit-base-patch16-224-in21k"})
    proc = snakemake(tiny_copy, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    # one sentence naming the folder and what changed (tiny_vit, the builtin model's shape, goes with it)
    assert re.search(r"already holds 5 checkpoints trained with other settings \(model\b.* changed\)", proc.stdout + proc.stderr)
    # Under a new run: name every stage of the new film is planned, in its own results folder.
    set_config(tiny_copy, {"run": "tiny-vit-b"})
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub id is only looked up by the jobs themselves
    jobs = stages(planned_jobs(tiny_copy))
    for stage in ("prepare_data", "preprocess", "train", "animate", "review"):
        assert jobs[stage] == 1, stage
    for stage in ("embed", "ood", "project", "frames"):
        assert jobs[stage] == TINY_CHUNKS, stage
    assert not (tiny_copy / "results" / "tiny-vit-b").exists()


def test_chunk_size_change_reruns_the_chunks_whose_checkpoints_changed(tiny_copy: Path) -> None:
    # A chunk job's inputs and params are its checkpoints, so regrouping them (the cluster profile sets
    # chunk_size: 1) reruns every embedding job whose group changed, and all that is drawn from them.
    # Training and data preparation do not rerun. tiny: [0, 5], [10, 15], [20] -> [0], [5], ..., [20].
    set_config(tiny_copy, {"chunk_size": 1})
    jobs = planned_jobs(tiny_copy)
    assert {name for name in jobs if name.startswith("embed_")} == {f"embed_chunk{i}" for i in range(4)}
    assert not {"prepare_data", "preprocess", "train"} & set(jobs)
    assert "animate" in jobs
