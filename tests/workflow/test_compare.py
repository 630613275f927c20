"""Runs side by side: several runs in one config, filmed in one DAG, and compared on a common clock."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import copy_run, make_workdir, planned, set_config, snakemake
from PIL import Image
from test_film_html import browser  # noqa: F401 - the headless Chromium fixture

pytestmark = pytest.mark.workflow

STEPS = ["0", "5", "10", "15", "20"]  # tiny.yaml
TWO = {"runs": {"a": {}, "b": {"training": {"learning_rate": 0.01}}}}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny runs that differ in their learning rate, trained and filmed in one Snakemake call."""
    workdir = make_workdir(tmp_path_factory.mktemp("compare"), TWO)
    snakemake(workdir, "--configfile", "test.yaml")
    return workdir


def test_two_runs_are_trained_filmed_and_compared_in_one_call(two_runs: Path) -> None:
    res = two_runs / "results"
    for run in ("a", "b"):
        assert sorted(p.stem for p in (res / run / "frames").glob("*.png")) == sorted(STEPS)
        assert (res / run / "checkpoints" / "checkpoint-20" / "model.safetensors").is_file()
    a, b = (np.load(res / run / "embeddings" / "20.npy") for run in ("a", "b"))
    assert not np.array_equal(a, b)  # two trainings, not one film twice
    compare = res / "compare" / "runs"
    frames = sorted(compare.glob("frames/*.png"))
    assert len(frames) == len(STEPS)  # the same steps: one tick per step
    with Image.open(compare / "animation.gif") as gif:
        assert gif.n_frames == len(STEPS)
    with np.load(compare / "layout.npz") as layout:
        assert bool(layout["shared"])  # same model and seed: the same starting weights, one layout
        assert layout["coords_0"].shape == (len(STEPS), 100, 2) and layout["limits"].shape == (2, 4)
        assert np.array_equal(layout["limits"][0], layout["limits"][1])  # the same axes in both panels
    rows = list(csv.DictReader(open(compare / "metrics.csv")))
    assert [(r["run"], r["step"]) for r in rows] == [(run, s) for run in ("a", "b") for s in STEPS]
    assert {"head_accuracy", "knn_accuracy", "silhouette", "stability_spearman"} <= set(rows[0])


def test_the_comparison_alone_reruns_when_only_its_settings_change(two_runs: Path, tmp_path: Path) -> None:
    workdir = copy_run(two_runs, tmp_path)
    set_config(workdir, {"compare": {"clock": "fraction"}})
    plan = planned(workdir)
    assert set(plan) == {"compare_frame", "compare_animate", "compare_html"}, plan  # nothing of a run


def test_a_third_run_films_only_its_own_checkpoints_and_the_comparison(two_runs: Path, tmp_path: Path) -> None:
    workdir = copy_run(two_runs, tmp_path)
    config = yaml.safe_load((workdir / "test.yaml").read_text())
    config["runs"]["c"] = {"training": {"learning_rate": 0.003}}
    (workdir / "test.yaml").write_text(yaml.safe_dump(config))
    plan = planned(workdir)
    assert plan["embed"] == STEPS and plan["train"] == [""]  # only run c's
    assert {"compare_layout", "compare_frame", "compare_animate", "compare_metrics", "compare_html"} <= set(plan)
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml")
    for line in proc.stdout.splitlines():
        if line.strip().startswith("output:"):
            assert "results/a/" not in line and "results/b/" not in line, line


def test_runs_of_different_lengths_share_a_clock_of_fractions(tmp_path: Path) -> None:
    workdir = make_workdir(tmp_path, {"runs": {"long": {}, "short": {"training": {"max_steps": 10}}}})
    proc = snakemake(workdir, "-n", "-p", "--configfile", "test.yaml")
    specs = re.findall(r"compare_frame --log \S+ --spec (\S+)", proc.stdout)
    params = [json.loads((workdir / s).read_text())["params"] for s in specs]  # each job's JSON
    assert len(params) == 5  # fractions 0, .25, .5, .75, 1 of each run's training
    assert {p["clock"] for p in params} == {"fraction"} and "50 % of training" in {p["tick"] for p in params}
    middle = next(p for p in params if p["tick"] == "50 % of training")
    assert middle["shown"] == {"long": 10, "short": 5}  # half-way through each


def test_a_run_with_a_typo_is_refused_naming_the_run(tmp_path: Path) -> None:
    workdir = make_workdir(tmp_path, {"runs": {"a": {}, "b": {"training": {"learning_rat": 0.1}}}})
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    assert "runs: b:" in proc.stdout + proc.stderr and "learning_rat" in proc.stdout + proc.stderr


def test_runs_from_different_weights_keep_their_own_layouts(tmp_path: Path) -> None:
    from embedding_film.film.common import save_json, save_npy
    from embedding_film.film.compare import SEPARATE, SHARED, compare_layout

    rng = np.random.default_rng(0)
    start = rng.normal(size=(30, 6))
    files: dict[str, list[str]] = {}
    for run, first in (("a", start), ("b", start), ("c", rng.normal(size=(30, 6)))):
        for kind in ("embeddings", "projection"):
            for s, value in enumerate([first, first + rng.normal(size=first.shape)]):
                path = tmp_path / run / kind / f"{s}.npy"
                save_npy(path, (value if kind == "embeddings" else value[:, :2]).astype(np.float32))
                files.setdefault(f"{run}/{kind}", []).append(str(path))
        save_json(tmp_path / run / "limits.json", {"x": [-1.0, 1.0], "y": [-2.0, 2.0]})
    same = compare_layout(
        [files["a/embeddings"], files["b/embeddings"]],
        [files["a/projection"], files["b/projection"]],
        [str(tmp_path / r / "limits.json") for r in "ab"],
        1,
        1.1,
    )
    assert bool(same["shared"]) and str(same["note"]) == SHARED
    other = compare_layout(
        [files["a/embeddings"], files["c/embeddings"]],
        [files["a/projection"], files["c/projection"]],
        [str(tmp_path / r / "limits.json") for r in "ac"],
        1,
        1.1,
    )
    assert not bool(other["shared"]) and str(other["note"]) == SEPARATE
    np.testing.assert_array_equal(other["coords_1"][1], np.load(files["c/projection"][1]))  # its own layout
    assert other["limits"].tolist() == [[-1.0, 1.0, -2.0, 2.0]] * 2


def test_the_comparison_page_links_an_image_across_panels_in_a_browser(two_runs: Path, browser: object) -> None:  # noqa: F811
    """The workflow's own comparison page, in headless Chromium: no error, no request; hovering an image in
    one panel highlights it in the other; pinning it draws its trajectory in both, a vertex per checkpoint."""
    from test_film_html import Page

    html = two_runs / "results" / "compare" / "runs" / "film.html"
    page = Page(browser, html, hook="compareDebug")
    try:
        page.js(f"compareDebug.jump({len(STEPS) - 1})")
        page.settle()
        # the tiny runs' points crowd together: hover one and read which image the page took
        page.page.mouse.move(*page.js("compareDebug.screen(1, 0)"))
        page.page.wait_for_function("compareDebug.hover >= 0")
        i = page.js("compareDebug.hover")
        assert [p["highlighted"] for p in page.js("compareDebug.panels()")] == [i, i]
        page.page.mouse.click(*page.js(f"compareDebug.screen(1, {i})"))
        page.page.wait_for_function(f"compareDebug.pins.includes({i})")
        for r in range(2):
            assert len(page.js(f"compareDebug.trajectory({r}, {i})")) == len(STEPS)
        assert page.errors == [] and page.foreign_requests(html) == []
    finally:
        page.close()


def test_a_setting_overridden_in_every_run_reaches_the_comparison(two_runs: Path, tmp_path: Path) -> None:
    """The comparison reads its settings per run, like every other rule: frames.top_k set in both runs (not
    at the top level) reruns the runs' frames and the comparison's; set differently, the first run's value
    is used and a warning names the key."""
    workdir = copy_run(two_runs, tmp_path)
    config = yaml.safe_load((workdir / "test.yaml").read_text())
    for run in ("a", "b"):
        config["runs"][run] = {**(config["runs"][run] or {}), "frames": {"top_k": 3}}
    (workdir / "test.yaml").write_text(yaml.safe_dump(config))
    plan = planned(workdir)
    assert {"compare_frame", "compare_html"} <= set(plan), plan  # the comparison sees the runs' value
    config["runs"]["b"]["frames"]["top_k"] = 4
    (workdir / "test.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml")
    assert "compare: the runs set frames.top_k differently" in proc.stdout + proc.stderr
