"""The film in a notebook (workflow_scripts/embedding_film/api/notebook.py, api/pages.py).

Two synthetic run folders on the same images (test_film_html.py's `write_run`, no Snakemake): the view is one
iframe whose srcdoc is the page; the run's film.html when up to date, else a page built from what is filmed so
far; the one-sentence errors; the comparison page (the workflow's when it shows exactly these runs, else built);
a notebook executed by a real kernel keeps the view as text/html; and in headless Chromium (test_film_html.py's
`browser` fixture) a host page holding three views, whose pages load and move independently.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_film_html import browser, write_run  # noqa: F401  (browser: the shared fixture)

from embedding_film.api.notebook import DEFAULT_HEIGHT, FilmView, show_film
from embedding_film.film.common import UserError
from embedding_film.film.page import build_film_html, film_data_from_run, read_page
from embedding_film.film.page.compare import build_compare_html, compare_data_from_runs
from embedding_film.film.page.synthetic import synthetic_comparison

REPO = Path(__file__).resolve().parents[2]
N_IMAGES = 60
LENGTHS = {"a": 4, "b": 6}  # checkpoints per run, every 5 steps: a ends at 15, b at 25


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results/a and results/b: finished runs on the same images, no film.html yet."""
    data = synthetic_comparison(N_IMAGES, list(LENGTHS.values()), thumb=8, seed=5)
    results = tmp_path_factory.mktemp("made") / "results"
    for name, film in zip(LENGTHS, data.films):
        write_run(results / name, film)
    return results


@pytest.fixture
def results(made: Path, tmp_path: Path) -> Path:
    """A private copy of the two runs."""
    return Path(shutil.copytree(made, tmp_path / "results"))


def frames(markup: str) -> list[str]:
    """The srcdoc of every iframe in `markup`, unescaped."""
    assert markup.count("<iframe") == len(found := re.findall(r'<iframe srcdoc="([^"]*)"', markup))
    return [html.unescape(doc) for doc in found]


def page_of(view: FilmView, tmp_path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], bytes]:
    """read_page of the page the view's one iframe holds."""
    [doc] = frames(view._repr_html_())
    path = tmp_path / "shown.html"
    path.write_text(doc, encoding="utf-8")
    return read_page(str(path))


def build_page(run: Path) -> Path:
    """The run's film.html, as the workflow leaves it: newer than every projection."""
    steps = sorted(int(p.stem) for p in (run / "projection").glob("*.npy"))
    out = run / "film.html"
    build_film_html(film_data_from_run(str(run), steps), str(out), title=f"workflow page of {run.name}")
    newest = max(p.stat().st_mtime_ns for p in (run / "projection").glob("*.npy"))
    os.utime(out, ns=(newest + 10**9, newest + 10**9))
    return out


def age(path: Path, seconds: float) -> None:
    """Set the file's mtime `seconds` before now."""
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


# --- the view and which page, no browser -----------------------------------------------------------------------


def test_the_view_is_one_borderless_iframe_holding_the_runs_film_html(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = build_page(results / "a")
    view = show_film(str(results / "a"))
    markup = view._repr_html_()
    assert frames(markup) == [page.read_text(encoding="utf-8")] and view.source == page
    assert f"height:{DEFAULT_HEIGHT}px" in markup and "width:100%" in markup and "border:0" in markup
    # a Path, a relative path, another height: the same page
    monkeypatch.chdir(results)
    for run in (Path("a"), "a", results / "a"):
        again = show_film(run, height=400)
        assert again.page == view.page and "height:400px" in again._repr_html_()


def test_a_missing_or_stale_film_html_is_built_from_what_is_filmed(results: Path, tmp_path: Path) -> None:
    run = results / "b"
    meta = page_of(built := show_film(run), tmp_path)[0]
    assert built.source is None and meta["steps"] == [0, 5, 10, 15, 20, 25] and meta["title"] == "Embedding film: b"
    # a stale page (older than the newest projection) is not shown; the page built now is
    (run / "film.html").write_text("<p>the page of an older film</p>", encoding="utf-8")
    age(run / "film.html", 60)
    assert show_film(run).page == built.page
    # while training runs: the checkpoints with both a projection and an OOD score, a fresh page not yet made
    (run / "ood" / "25.npy").unlink()
    np.save(run / "projection" / "30.npy", np.zeros((N_IMAGES, 2), np.float32))
    assert page_of(show_film(run), tmp_path)[0]["steps"] == [0, 5, 10, 15, 20]
    # once the workflow writes film.html after the last projection, that file is shown
    (run / "film.html").write_text("<p>the page of the newest film</p>", encoding="utf-8")
    assert show_film(run).page == "<p>the page of the newest film</p>"


def test_errors_are_one_sentence_naming_the_folder_and_the_fix(results: Path) -> None:
    def message(*args: Any, **kwargs: Any) -> str:
        with pytest.raises(UserError) as err:
            show_film(*args, **kwargs)
        text = str(err.value)
        assert text.endswith(".") and ". " not in text.replace("e.g. ", ""), text  # one sentence
        return text

    assert re.search(r"nothing[/\\]here does not exist; give a folder", message(results / "nothing" / "here"))
    (results / "empty" / "projection").mkdir(parents=True)
    assert "empty holds no filmed checkpoint yet" in message(results / "empty")
    assert "no filmed checkpoint" in message(results / "a", compare=[results / "empty"])
    assert "given twice" in message(results / "a", compare=[results / "b", results / "a"])
    assert "height=0 is not a frame height" in message(results / "a", height=0)
    other = synthetic_comparison(N_IMAGES, [3], thumb=8, seed=9).films[0]  # other images
    write_run(results / "other", other)
    assert "other images" in message(results / "a", compare=[results / "other"])


def test_compare_builds_the_comparison_of_the_run_folders(results: Path, tmp_path: Path) -> None:
    a, b = results / "a", results / "b"
    view = show_film(a, compare=[b])
    meta = page_of(view, tmp_path)[0]
    assert view.source is None and meta["runs"] == ["a", "b"]
    # the runs end at different steps: the clock is the same fraction of each run's training, each run in its layout
    assert meta["clock"] == "the same fraction of each run's training" and not meta["shared_layout"]
    assert [len(f["steps"]) for f in meta["films"]] == [4, 6] and meta["shown"][-1] == [3, 5]
    assert show_film(a, compare=str(b)).page == view.page  # one run folder need not be a list
    assert show_film(a, compare=[]).page == show_film(a).page  # nothing to compare: the film


def test_compare_shows_the_workflows_comparison_page_of_exactly_these_runs(results: Path, tmp_path: Path) -> None:
    a, b = results / "a", results / "b"
    steps = [[0, 5, 10, 15], [0, 5, 10, 15, 20, 25]]
    data = compare_data_from_runs([str(a), str(b)], ["a", "b"], steps, [[0, 0], [3, 5]], ["0 %", "100 %"], "c", "n")
    page = results / "compare" / "demo" / "film.html"
    build_compare_html(data, str(page), title="the workflow's comparison")
    view = show_film(a, compare=[b])
    assert view.source == page and frames(view._repr_html_()) == [page.read_text(encoding="utf-8")]
    # other runs or another order: built
    assert show_film(b, compare=[a]).source is None
    # older than a projection: built
    age(page, 60)
    assert show_film(a, compare=[b]).source is None


def test_a_notebook_keeps_the_views_as_html(results: Path, tmp_path: Path) -> None:
    """A real kernel runs show_film, once as a cell's last expression and once before other code: each shows
    its film where it is called (a display, as plotly's show), saved as text/html, one iframe of the right page."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = [
        f"import sys; sys.path.insert(0, {str(REPO / 'workflow_scripts')!r})",
        "from embedding_film import show_film",
        'show_film("a")',
        'show_film("b", height=500)\nshown = True',
    ]
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(results)}}
    ).execute()
    path = tmp_path / "film.ipynb"
    nbformat.write(book, path)
    saved = nbformat.read(path, as_version=4)
    outputs = [cell.outputs for cell in saved.cells[2:]]
    assert [[o.output_type for o in out] for out in outputs] == [["display_data"], ["display_data"]]
    shown = [out[0].data["text/html"] for out in outputs]
    assert [frames(markup)[0] == show_film(results / run).page for markup, run in zip(shown, "ab")] == [True, True]
    assert "height:500px" in shown[1]


# --- several views in one page, in headless Chromium ------------------------------------------------------------------


def test_several_views_in_one_page_work_independently(browser: Any, results: Path, tmp_path: Path) -> None:  # noqa: F811
    """A host page (the notebook) holding the films of a and b and their comparison: each page loads in its
    frame without an error or a request, and moving one's slider moves no other."""
    views = [
        show_film(results / "a"),
        show_film(results / "b", height=500),
        show_film(results / "a", compare=[results / "b"]),
    ]
    host = tmp_path / "notebook.html"
    cells = "".join(f'<div class="cell"><p>Out[{i}]:</p>{v._repr_html_()}</div>' for i, v in enumerate(views))
    host.write_text(f'<!DOCTYPE html><html><body><div id="slider">the notebook</div>{cells}</body></html>')
    tab = browser.new_page(viewport={"width": 1100, "height": 2200}, bypass_csp=True)
    errors: list[str] = []
    requests: list[str] = []
    tab.on("console", lambda m: m.type == "error" and errors.append(m.text))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("request", lambda r: requests.append(r.url))
    try:
        tab.goto(host.as_uri())
        boxes = tab.locator("iframe")
        assert boxes.count() == 3
        assert [round(boxes.nth(i).bounding_box()["height"]) for i in range(3)] == [DEFAULT_HEIGHT, 500, DEFAULT_HEIGHT]
        film_a, film_b, compared = (boxes.nth(i).element_handle().content_frame() for i in range(3))
        hooks = {film_a: "filmDebug", film_b: "filmDebug", compared: "compareDebug"}
        for frame, hook in hooks.items():
            frame.wait_for_function(f"window.{hook} && {hook}.ready", timeout=60_000)
            assert frame.evaluate(f"{hook}.errors") == []
            assert frame.locator("canvas").count() >= 1
        assert film_a.evaluate("filmDebug.info().steps") == [0, 5, 10, 15]
        assert film_b.evaluate("filmDebug.info().steps") == [0, 5, 10, 15, 20, 25]
        # one page's slider moves that page only (the host's own #slider is another element)
        film_b.locator("#slider").fill("5")
        film_b.wait_for_function("filmDebug.settled", timeout=10_000)
        assert [film_a.evaluate("filmDebug.step"), film_b.evaluate("filmDebug.step")] == [0, 5]
        film_a.locator("#slider").fill("2")
        film_a.wait_for_function("filmDebug.settled", timeout=10_000)
        assert [film_a.evaluate("filmDebug.step"), film_b.evaluate("filmDebug.step")] == [2, 5]
        assert compared.evaluate("compareDebug.tick") == 0
        assert tab.locator("#slider").inner_text() == "the notebook"
    finally:
        tab.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("data:", "blob:", "about:")) and u != host.as_uri()] == []


def test_the_view_needs_no_ipython(monkeypatch: pytest.MonkeyPatch, results: Path) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)  # importing IPython now fails
    view = show_film(results / "a")
    assert isinstance(view, FilmView) and view._repr_html_().startswith('<div class="embedding-film"')
    assert "built from the run folder" in repr(view)
