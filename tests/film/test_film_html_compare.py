"""The comparison page: runs side by side on a common clock (workflow_scripts/embedding_film/film/page/compare.py).

Unit tests of the builder, the clocks and the run-folder loader, then the page from disk in headless
Chromium with test_film_html.py's driver (its `browser` fixture and `Page`): no console error, no network
request, the last tick holds each run's last projection, hovering an image in one panel highlights it in
every panel with one card of every run's prediction, a pin draws a trajectory in every panel with a vertex
per checkpoint of that run, the run table shows each run's values at its shown checkpoint. Three synthetic
runs of different lengths, one of which starts later (not started at the first ticks). Same skip/CI rules
as test_film_html.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_film_html import Page, browser, isolated, play_every_colouring, write_run  # noqa: F401  (browser: the shared fixture)

from embedding_film.film.page import dequantised_positions, read_page
from embedding_film.film.page.compare import (
    CompareData,
    build_compare_html,
    clock_position,
    common_clock,
    compare_data_from_runs,
    fraction_clock,
    run_view,
    same_step_clock,
)
from embedding_film.film.page.synthetic import synthetic_comparison

N_IMAGES = 200
LENGTHS = [6, 12, 9]  # checkpoints per run
LATE = 15  # run2's first checkpoint step: not started at steps 0, 5 and 10


def three_runs(shared_layout: bool = False) -> CompareData:
    """run0 every 10 steps (0..50), run1 every 5 (0..55), run2 every 5 from step 15 (15..55); clock: the same step."""
    data = synthetic_comparison(N_IMAGES, LENGTHS, step_every=[10, 5, 5], seed=4, shared_layout=shared_layout)
    late = data.films[2]
    late.steps = late.steps + LATE
    late.loss_steps = late.loss_steps + LATE
    data.ticks, data.shown = same_step_clock([f.steps.tolist() for f in data.films])
    data.clock = "the same training step"
    return data


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[CompareData, Path, dict[str, Any]]:
    data = three_runs()
    out = tmp_path_factory.mktemp("compare") / "film.html"
    return data, out, build_compare_html(data, str(out), title="three runs")


# --- the builder, the clocks and the loader, no browser --------------------------------------------------------


def test_clocks() -> None:
    ticks, shown = same_step_clock([[0, 10, 20], [5, 20, 40]])
    assert ticks == ["step 0", "step 5", "step 10", "step 20", "step 40"]
    assert shown.tolist() == [[0, -1], [0, 0], [1, 0], [2, 1], [2, 2]]
    ticks, shown = fraction_clock([[0, 10, 20], [0, 10, 20, 30, 40]])
    assert ticks == ["0 % of training", "25 % of training", "50 % of training", "75 % of training", "100 % of training"]
    assert shown.tolist() == [[0, 0], [0, 1], [1, 2], [1, 3], [2, 4]]
    # a run's steps on the clock: exact for the same-step clock, NaN outside its shown checkpoints
    at = clock_position(
        np.array([5, 20, 40]),
        shown_col := same_step_clock([[0, 10, 20], [5, 20, 40]])[1][:, 1],
        np.array([0, 5, 12.5, 20, 30, 40, 41]),
    )
    assert shown_col.tolist() == [-1, 0, 0, 1, 2]
    np.testing.assert_allclose(at, [np.nan, 1, 2, 3, 3.5, 4, np.nan])


def test_the_common_clock_of_auto_and_its_merged_ticks() -> None:
    """auto: the same step when every run ends at the same step, else the same fraction; a tick that would show
    the checkpoints of the one before is dropped (the workflow's compare rules and show_film both use it)."""
    which, ticks, shown = common_clock([[0, 10, 20], [0, 5, 20]])
    assert which == "step" and ticks == ["step 0", "step 5", "step 10", "step 20"]
    assert shown.tolist() == [[0, 0], [0, 1], [1, 1], [2, 2]]
    # 4 fractions (0, 1/3, 2/3, 1); at 1/3 and 2/3 both runs show the same checkpoints: one tick
    which, ticks, shown = common_clock([[0, 200], [0, 1, 2, 100]])
    assert which == "fraction" and ticks == ["0 % of training", "33 % of training", "100 % of training"]
    assert shown.tolist() == [[0, 0], [0, 2], [1, 3]]
    assert common_clock([[0, 10, 20], [0, 5, 20]], "fraction")[0] == "fraction"


def test_validation_names_the_run(tmp_path: Path) -> None:
    out = tmp_path / "bad.html"
    cases = {
        "ids": (
            lambda d: d.films[1].ids.__setitem__(3, "other/3"),
            r"run 'run1' was evaluated on other images .*image ids",
        ),
        "thumbnails": (lambda d: d.films[2].thumbnails.__setitem__((0, 0, 0, 0), 7), r"run 'run2' .*thumbnails differ"),
        "labels": (lambda d: setattr(d.films[1], "labels", (d.films[1].labels + 1) % 10), r"run 'run1' .*labels"),
        "nan": (
            lambda d: d.films[1].projections.__setitem__((2, 0, 0), np.nan),
            r"run 'run1': FilmData.projections holds NaN",
        ),
        "shape": (lambda d: setattr(d, "shown", d.shown[:, :2]), r"shown has shape \(12, 2\)"),
        "range": (lambda d: d.shown.__setitem__((11, 0), 6), r"run 'run0': CompareData.shown runs outside -1 .. 5"),
        "back": (lambda d: d.shown.__setitem__((11, 1), 3), r"run 'run1': CompareData.shown must not go back"),
        "gap": (lambda d: d.shown.__setitem__((11, 2), -1), r"run 'run2': CompareData.shown must not go back"),
        "never": (lambda d: d.shown.__setitem__((slice(None), 2), -1), r"run 'run2' shows no checkpoint"),
        "names": (lambda d: d.runs.__setitem__(2, "run0"), r"distinct"),
        "float": (lambda d: setattr(d, "shown", d.shown.astype(float)), r"integers"),
    }
    for name, (spoil, message) in cases.items():
        data = three_runs()
        spoil(data)
        with pytest.raises(ValueError, match=message):
            build_compare_html(data, str(out))
        assert not out.exists(), name


def test_page_holds_every_run_once_within_quantisation(
    compared: tuple[CompareData, Path, dict[str, Any]], tmp_path: Path
) -> None:
    from embedding_film.film.page import build_film_html

    data, out, summary = compared
    page = out.read_text(encoding="utf-8")
    assert not re.search(r"https?://", page), re.search(r".{40}https?://.{40}", page).group(0)  # type: ignore[union-attr]
    assert summary["bytes"] == out.stat().st_size and summary["panels"] == 3 and summary["ticks"] == 12
    assert summary["steps"] == LENGTHS and summary["points_shown"] == N_IMAGES and not summary["subsampled"]
    meta, arrays, sprite = read_page(str(out))
    assert meta["runs"] == ["run0", "run1", "run2"] and meta["clock"] == "the same training step"
    assert meta["shown"][:4] == [[0, 0, -1], [0, 1, -1], [1, 2, -1], [1, 3, 0]]
    assert page.count('id="film-sprite"') == 1 and sprite[:4] == b"RIFF"
    for r, film in enumerate(data.films):
        run_meta, run_arrays = run_view(meta, arrays, r)
        held = dequantised_positions(run_meta, run_arrays)
        bound = np.asarray(run_meta["dequant"])[:, None, :, 1] / 2
        assert held.shape == film.projections.shape
        assert np.all(np.abs(held - film.projections) <= bound * 1.0001 + 1e-9)
        assert run_meta["steps"] == film.steps.tolist()
    # one shared sprite sheet and label array: smaller than the three single-run pages together
    singles = sum(build_film_html(f, str(tmp_path / f"{r}.html"))["bytes"] for r, f in enumerate(data.films))
    assert summary["bytes"] < singles
    # curves on the clock: run2's loss starts at its first checkpoint's tick (3), run1's covers ticks 0..11
    curves = [f["clock_curves"] for f in meta["films"]]
    assert curves[2]["loss"][0][0] == 3 and curves[1]["loss"][0][0] == 0 and curves[1]["loss"][0][-1] == 11
    assert curves[0]["metrics"]["head_accuracy"][0] == [0, 2, 4, 6, 8, 10]


def test_subsample_is_the_same_in_every_panel_and_keeps_every_runs_outliers(tmp_path: Path) -> None:
    data = synthetic_comparison(900, [5, 8], seed=2)
    summary = build_compare_html(data, str(tmp_path / "sub.html"), max_points=300, seed=3)
    assert summary["subsampled"] and summary["points_shown"] == 300 and summary["points_total"] == 900
    meta, arrays, _ = read_page(str(tmp_path / "sub.html"))
    assert len(meta["ids"]) == 300 and meta["note"].startswith("Showing 300 of 900 images in every panel")
    shown = np.array([int(i.split("/")[1]) for i in meta["ids"]])
    for r, film in enumerate(data.films):
        for s in range(film.n_steps):  # every checkpoint's top-k of every run is among the shown images
            top = np.lexsort((np.arange(900), film.ood[s]))[: film.top_k]
            assert set(top) <= set(shown.tolist())
            assert shown[arrays[f"r{r}.top"][s]].tolist() == top.tolist()
        assert arrays[f"r{r}.xy"].shape == (film.n_steps, 300, 2)


def test_loader_reads_runs_and_shared_projections(tmp_path: Path) -> None:
    data = synthetic_comparison(40, [3, 4], thumb=8, seed=5)
    dirs = []
    for name, film in zip(data.runs, data.films):
        write_run(tmp_path / name, film)
        (tmp_path / name / "projection" / "limits.json").write_text(json.dumps({"x": [-9, 9], "y": [-8, 10]}))
        dirs.append(str(tmp_path / name))
    steps = [f.steps.tolist() for f in data.films]
    own = compare_data_from_runs(dirs, data.runs, steps, data.shown, data.ticks, data.clock, "each run its own layout")
    assert own.films[0].limits.tolist() == [[-9, 9, -8, 10]] * 3  # the run's own frame limits
    assert own.films[1].thumbnails is own.films[0].thumbnails  # validated identical: kept once
    np.testing.assert_array_equal(own.films[1].projections, data.films[1].projections)
    # a shared layout's projections, written elsewhere, replace the runs' own; their limits.json no longer applies
    shared = tmp_path / "compare" / "projection"
    files = []
    for name, film in zip(data.runs, data.films):
        (shared / name).mkdir(parents=True)
        files.append([str(shared / name / f"{s}.npy") for s in film.steps])
        for k, path in enumerate(files[-1]):
            np.save(path, film.projections[k] * 2 + 1)
    read = compare_data_from_runs(
        dirs,
        data.runs,
        steps,
        data.shown,
        data.ticks,
        data.clock,
        "one shared PCA layout",
        projections=files,
        shared_layout=True,
        top_k=3,
    )
    assert read.films[0].limits is None and read.shared_layout and read.films[1].top_k == 3
    np.testing.assert_allclose(read.films[1].projections, data.films[1].projections * 2 + 1, rtol=1e-6)
    summary = build_compare_html(read, str(tmp_path / "shared.html"))
    meta, _, _ = read_page(str(tmp_path / "shared.html"))
    assert meta["films"][0]["limits"][0] == meta["films"][1]["limits"][-1] and summary["panels"] == 2  # one camera
    # other eval images: refused, naming the run
    np.save(tmp_path / "run1" / "data" / "labels.npy", (data.films[1].labels + 1) % 10)
    with pytest.raises(ValueError, match="run 'run1' was evaluated on other images"):
        compare_data_from_runs(dirs, data.runs, steps, data.shown, data.ticks, data.clock, "")


# --- the page in headless Chromium ---------------------------------------------------------------------------


@pytest.fixture
def page(browser: Any, compared: tuple[CompareData, Path, dict[str, Any]]) -> Iterator[Page]:  # noqa: F811
    p = Page(browser, compared[1], hook="compareDebug")
    yield p
    p.close()
    assert p.errors == [], p.errors
    assert p.foreign_requests(compared[1]) == []


def go(page: Page, tick: int) -> None:
    page.js(f"compareDebug.jump({tick})")
    page.settle()


def _isolated(page: Page, r: int) -> int:
    """An image at least 15 px from every other in panel r, inside it."""
    pts = np.array(page.js(f"Array.from({{length: {N_IMAGES}}}, (_, i) => compareDebug.screen({r}, i))"))
    return isolated(pts, page.js(f"compareDebug.mapping({r})"))


def test_page_loads_without_errors_or_requests(page: Page, compared: tuple[CompareData, Path, dict[str, Any]]) -> None:
    panels = page.js("compareDebug.panels()")
    assert [p["run"] for p in panels] == ["run0", "run1", "run2"] and {p["renderer"] for p in panels} == {"webgl"}
    assert [p["title"] for p in panels] == ["step 0", "step 0", "not started"] and panels[2]["checkpoint"] == -1
    assert page.page.locator("#clock").inner_text() == "Clock: the same training step."
    assert page.page.locator("#layout-note").inner_text() == compared[0].layout_note
    assert page.page.locator(".panel.idle").count() == 1
    play_every_colouring(page)
    # the rest (no console error, no request but the page itself) is checked by the fixture's teardown


def test_last_tick_shows_each_runs_last_projection(
    page: Page, compared: tuple[CompareData, Path, dict[str, Any]]
) -> None:
    data, out, _ = compared
    page.page.locator("#slider").fill("11")
    page.settle()
    assert page.js("compareDebug.tick") == 11
    meta, arrays, _ = read_page(str(out))
    panels = page.js("compareDebug.panels()")
    for r, film in enumerate(data.films):
        last = film.n_steps - 1
        assert panels[r]["checkpoint"] == last and panels[r]["title"].startswith(f"step {film.steps[-1]}")
        held = page.js(f"compareDebug.positions({r})")
        got = np.column_stack([held["x"], held["y"]])
        bound = np.asarray(run_view(meta, arrays, r)[0]["dequant"][last])[:, 1] / 2
        assert np.all(np.abs(got - film.projections[last]) <= bound + 1e-5 * np.abs(film.projections[last]).max())
        m = page.js(f"compareDebug.mapping({r})")
        for i in (0, N_IMAGES - 1):  # drawn where the panel's mapping puts the held position
            sx, sy = page.js(f"compareDebug.screen({r}, {i})")
            assert sx == pytest.approx(m["left"] + m["W"] / 2 + (got[i, 0] - m["cx"]) * m["scale"], abs=0.01)
            assert sy == pytest.approx(m["top"] + m["H"] / 2 - (got[i, 1] - m["cy"]) * m["scale"], abs=0.01)
    assert "(its last)" in panels[0]["title"]  # run0 ended at step 50, the clock goes on to 55
    page.page.keyboard.press("ArrowLeft")
    page.settle()
    assert page.js("compareDebug.tick") == 10


def test_hover_in_one_panel_highlights_the_image_in_every_panel(
    page: Page, compared: tuple[CompareData, Path, dict[str, Any]]
) -> None:
    data, _, _ = compared
    tick = 6  # step 30: run0 at checkpoint 3, run1 at 6, run2 at 3
    go(page, tick)
    i = _isolated(page, 0)
    page.page.mouse.move(*page.js(f"compareDebug.screen(0, {i})"))
    page.page.wait_for_function(f"compareDebug.hover === {i}")
    assert [p["highlighted"] for p in page.js("compareDebug.panels()")] == [i, i, i]
    assert page.page.locator("#tooltip").is_visible()
    assert page.js("document.getElementById('tip-thumb').dataset.index") == str(i)
    text = page.page.locator("#tip-text").inner_text()
    assert data.films[0].ids[i] in text and f"label: {data.films[0].class_names[data.films[0].labels[i]]}" in text
    for r, film in enumerate(data.films):
        c = int(data.shown[tick, r])
        p = int(film.probs[c, i].argmax())
        row = page.page.locator(f'#tip-text tr[data-run="{r}"]')
        assert row.locator('td[data-name="checkpoint"]').inner_text() == f"step {film.steps[c]}"
        assert (
            row.locator('td[data-name="predicted"]')
            .inner_text()
            .startswith(f"{film.class_names[p]} ({film.probs[c, i, p]:.2f})")
        )
        rank = int(np.where(np.lexsort((np.arange(N_IMAGES), film.ood[c])) == i)[0][0]) + 1
        assert row.locator('td[data-name="OOD rank"]').inner_text() == f"{rank} of {N_IMAGES}"
    # at a tick where run2 has not started: highlighted in the two others, "not started" in the card
    page.page.mouse.move(0, 0)
    go(page, 1)
    i = _isolated(page, 1)
    page.page.mouse.move(*page.js(f"compareDebug.screen(1, {i})"))
    page.page.wait_for_function(f"compareDebug.hover === {i}")
    assert [p["highlighted"] for p in page.js("compareDebug.panels()")] == [i, i, -1]
    assert page.page.locator('#tip-text tr[data-run="2"] td[data-name="checkpoint"]').inner_text() == "not started"


def test_pin_draws_a_trajectory_in_every_panel(page: Page, compared: tuple[CompareData, Path, dict[str, Any]]) -> None:
    data, _, _ = compared
    go(page, 8)
    i = _isolated(page, 1)
    page.page.mouse.click(*page.js(f"compareDebug.screen(1, {i})"))
    page.page.wait_for_function(f"compareDebug.pins.includes({i})")
    panels = page.js("compareDebug.panels()")
    assert [p["trajectories"] for p in panels] == [{data.films[0].ids[i]: n} for n in LENGTHS]
    for r, film in enumerate(data.films):
        vertices = np.array(page.js(f"compareDebug.trajectory({r}, {i})"))
        m = page.js(f"compareDebug.mapping({r})")
        for k in (0, film.n_steps - 1):
            held = page.js(f"compareDebug.positions({r}, {k})")
            assert vertices[k, 0] == pytest.approx(
                m["left"] + m["W"] / 2 + (held["x"][i] - m["cx"]) * m["scale"], abs=0.01
            )
            assert vertices[k, 1] == pytest.approx(
                m["top"] + m["H"] / 2 - (held["y"][i] - m["cy"]) * m["scale"], abs=0.01
            )
        # drawn: the panel's overlay is opaque at the current checkpoint's vertex
        x, y = vertices[int(data.shown[8, r])] - [m["left"], m["top"]]
        alpha = page.js(f"""() => {{ const c = document.querySelectorAll('.overlay')[{r}], d = window.devicePixelRatio || 1;
            return c.getContext('2d').getImageData(Math.round({x} * d), Math.round({y} * d), 1, 1).data[3]; }}""")
        assert alpha > 0
    other = (i + 1) % N_IMAGES
    page.page.locator("#search").fill(data.films[0].ids[other])
    page.page.locator("#search").press("Enter")
    assert page.js("compareDebug.pins") == [i, other]
    assert [len(page.js(f"compareDebug.trajectory({r}, {other})")) for r in range(3)] == LENGTHS
    go(page, 0)  # run2 not started: nothing drawn in its panel
    assert page.js("compareDebug.panels()")[2]["trajectories"] == {data.films[0].ids[i]: 0, data.films[0].ids[other]: 0}
    page.page.locator("#clear-pins").click()
    assert page.js("compareDebug.pins") == []


def test_run_table_shows_each_runs_shown_checkpoint(
    page: Page, compared: tuple[CompareData, Path, dict[str, Any]]
) -> None:
    data, _, _ = compared
    for tick in (1, 7):
        go(page, tick)
        rows = page.page.locator("#run-table tr[data-run]")
        assert rows.count() == 3
        for r, film in enumerate(data.films):

            def cell(name: str, r: int = r) -> str:
                return page.page.locator(f'#run-table tr[data-run="{r}"] td[data-name="{name}"]').inner_text()

            c = int(data.shown[tick, r])
            assert cell("run") == data.runs[r]
            if c < 0:
                assert cell("checkpoint") == "not started" and cell("loss") == "–" and cell("head_accuracy") == "–"
                continue
            step = film.steps[c]
            assert cell("checkpoint") == f"step {step}"
            loss = film.loss_values[np.searchsorted(film.loss_steps, step, side="right") - 1]
            assert cell("loss") == f"{loss:.4f}"
            for name in ("head_accuracy", "knn_accuracy", "trustworthiness", "silhouette"):
                assert cell(name) == f"{film.metrics[name][c]:.3f}", (tick, r, name)


def test_legend_hides_a_class_in_every_panel_and_curves_jump(
    page: Page, compared: tuple[CompareData, Path, dict[str, Any]]
) -> None:
    data, _, _ = compared
    go(page, 5)
    member = int(np.where(data.films[0].labels == 2)[0][0])
    page.page.locator('#legend .item[data-class="2"]').click()
    page.page.wait_for_timeout(100)
    assert [page.js(f"compareDebug.colour({r}, {member})")[3] for r in range(3)] == [0, 0, 0]
    page.page.locator('#legend .item[data-class="2"]').click()
    page.page.wait_for_timeout(100)
    assert all(page.js(f"compareDebug.colour({r}, {member})")[3] > 0 for r in range(3))
    box = page.page.locator("#loss-curve .u-over").bounding_box()
    page.page.mouse.click(box["x"] + box["width"] * 9 / 11, box["y"] + box["height"] / 2)
    page.settle()
    assert page.js("compareDebug.tick") == 9
    assert page.page.locator("#step-readout").inner_text() == "step 45 · tick 10 of 12"
    page.page.select_option("#metric-select", "silhouette")
    assert page.page.locator("#metric-curve .u-title").inner_text() == "silhouette"


def test_shared_layout_gives_every_panel_one_camera(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    data = synthetic_comparison(60, [4, 7], thumb=8, shared_layout=True)
    out = tmp_path / "shared.html"
    build_compare_html(data, str(out))
    p = Page(browser, out, hook="compareDebug")
    try:
        for tick in (0, 3, 6):
            p.js(f"compareDebug.jump({tick})")
            p.settle()
            a, b = p.js("compareDebug.mapping(0)"), p.js("compareDebug.mapping(1)")
            assert (a["cx"], a["cy"], a["scale"]) == pytest.approx((b["cx"], b["cy"], b["scale"]))
        assert p.errors == [] and p.foreign_requests(out) == []
    finally:
        p.close()
