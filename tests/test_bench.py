"""The benchmark harness (benchmarks/), not timed: the baseline does the workflow's work, and the staleness
semantics of chunking that the benchmark's incremental scenarios rely on.

One small film of real Trainer checkpoints (the test suite's 2-layer ViT, a checkpoint every step), filmed
from an external folder with chunk_size 2 and align: first: 6 checkpoints = chunks [0, 1], [2, 3], [4, 5].
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import yaml

from conftest import REPO, copy_run, make_workdir, planned_jobs, set_config, snakemake

pytestmark = pytest.mark.workflow

BENCH = REPO / "benchmarks"
FOLDER = "checkpoints/tiny-vit-digits"  # relative to the workdir, so copies of a run keep their inputs' paths
N = 6


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


harness = _module("run")
checkpoints = _module("make_checkpoints")


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """checkpoint-0 ... checkpoint-8 of a real (tiny) HF Trainer run."""
    out = tmp_path_factory.mktemp("pool") / "tiny-vit-digits"
    subprocess.run([sys.executable, str(BENCH / "make_checkpoints.py"), "train", str(out), "--steps", "8", "--tiny"],
                   check=True, capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def bench_run(pool: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow run on the first N checkpoints of the pool; tests must not modify it (use `bench_copy`)."""
    workdir = make_workdir(
        tmp_path_factory.mktemp("bench_run"), {"checkpoints": FOLDER, "chunk_size": 2, "projection": {"align": "first"}}
    )
    checkpoints.film(pool, workdir / FOLDER, N)
    snakemake(workdir, "--configfile", "test.yaml")
    return workdir


@pytest.fixture
def bench_copy(bench_run: Path, tmp_path: Path) -> Path:
    return copy_run(bench_run, tmp_path)


def _later(path: Path) -> None:
    later = time.time() + 5
    os.utime(path, (later, later))


def test_baseline_writes_the_same_files_as_the_workflow(bench_run: Path, pool: Path, tmp_path: Path) -> None:
    cfg = harness.resolve_config(yaml.safe_load((bench_run / "test.yaml").read_text()))
    cfg["checkpoints"] = str(bench_run / FOLDER)
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(cfg))
    subprocess.run([sys.executable, str(BENCH / "monolithic.py"), "bench.yaml"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=600)
    verdict = harness.compare_outputs(bench_run / "results" / "tiny", tmp_path / "results" / "tiny")
    # identical here; on other machines float32 kernels may differ in the last bits (the baseline's BLAS
    # uses every core, jobs one thread each), so the same files with tiny differences also pass
    assert verdict.startswith(("identical", "same ")), verdict
    if verdict.startswith("same "):
        assert float(verdict.split("<= ")[1].split(";")[0]) < 1e-3, verdict
    assert len(list((tmp_path / "results" / "tiny" / "frames").glob("*.png"))) == N


def test_changing_one_checkpoint_reruns_its_chunk_and_what_reads_its_files(bench_copy: Path) -> None:
    # checkpoint-2 lives in chunk 1 ([2, 3]); its job also rewrites step 3's files, which chunk 2 reads
    # (metrics: displacement since step 3; frames: leaderboard rank changes since step 3).
    folder = bench_copy / FOLDER / "checkpoint-2"
    target = folder.resolve()
    folder.unlink()
    shutil.copytree(target, folder, copy_function=shutil.copy2)
    from safetensors.numpy import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] * 1.01
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    _later(folder / "model.safetensors")
    assert planned_jobs(bench_copy) == {
        "embed_chunk1": 1, "ood_chunk1": 1, "project_chunk1": 1, "metrics_chunk1": 1, "frames_chunk1": 1,
        "metrics_chunk2": 1, "frames_chunk2": 1,
        "metrics_table": 1, "outliers_table": 1, "animate": 1,
    }


def test_appending_a_checkpoint_computes_only_the_new_chunk(bench_copy: Path, pool: Path) -> None:
    # 6 checkpoints = 3 full chunks of 2: checkpoint-6 opens chunk 3; no earlier chunk is embedded, scored,
    # projected, measured or drawn again (a frame's loss curve comes from its own checkpoint's
    # trainer_state.json and its axis from the Trainer's planned max_steps).
    checkpoints.add(pool, bench_copy / FOLDER, N)
    assert planned_jobs(bench_copy) == {
        "import_train_log": 1,
        "embed_chunk3": 1, "ood_chunk3": 1, "project_chunk3": 1, "metrics_chunk3": 1, "frames_chunk3": 1,
        "metrics_table": 1, "outliers_table": 1, "animate": 1, "review": 1,
    }
    # A second checkpoint joins the partial chunk 3: that chunk's jobs rerun (for both of its checkpoints).
    snakemake(bench_copy, "--configfile", "test.yaml")
    before = (bench_copy / "results" / "tiny" / "embeddings" / "6.npy").read_bytes()
    checkpoints.add(pool, bench_copy / FOLDER, N + 1)
    jobs = planned_jobs(bench_copy)
    assert {j for j in jobs if j.startswith(("embed", "ood", "project", "metrics_chunk"))} == {
        "embed_chunk3", "ood_chunk3", "project_chunk3", "metrics_chunk3"
    }
    snakemake(bench_copy, "--configfile", "test.yaml")
    assert (bench_copy / "results" / "tiny" / "embeddings" / "6.npy").read_bytes() == before


def test_frame_setting_reruns_frames_and_film_only(bench_copy: Path) -> None:
    top_k = yaml.safe_load((bench_copy / "test.yaml").read_text())["frames"]["top_k"]
    set_config(bench_copy, {"frames": {"top_k": top_k + 1}})
    assert planned_jobs(bench_copy) == {
        "frames_chunk0": 1, "frames_chunk1": 1, "frames_chunk2": 1, "outliers_table": 1, "animate": 1,
    }


def test_fake_checkpoints_pass_the_parse_time_checks(pool: Path, tmp_path: Path) -> None:
    # The dry-run scenario films hard links to one real checkpoint (a dry run reads no weights).
    checkpoints.fake(tmp_path / "fake" / "tiny-vit-digits", 45, template=pool / "checkpoint-8")
    workdir = make_workdir(tmp_path / "wd", {"checkpoints": str(tmp_path / "fake" / "tiny-vit-digits"), "chunk_size": 40})
    jobs = planned_jobs(workdir)
    assert jobs["embed_chunk0"] == jobs["embed_chunk1"] == 1 and "embed_chunk2" not in jobs
    assert jobs["prepare_data"] == jobs["animate"] == 1


def test_harness_helpers() -> None:
    out = "Job stats:\njob               count\n--------------  -------\nembed_chunk0         1\nframes_chunk1  1\nall 1\ntotal 3\n"
    assert harness.job_counts(out) == {"embed_chunk0": 1, "frames_chunk1": 1}
    assert harness.summarise_jobs({"frames_chunk1": 1, "embed_chunk0": 1, "frames_chunk0": 1}) == "embed 1, frames 2"
    assert np.isclose(harness.Row("x", 2.0, 4.0, "", True).ratio, 0.5)
