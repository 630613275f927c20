"""The Snakemake report of a finished run (docs/report.md): built as HTML and as a zip, then read in headless
Chromium through its menus, as a person would: the film plays, the loss curve and the metrics table are
there, and the frames are browsable by checkpoint. Screenshots go to tests/artifacts/ (git-ignored).

Chromium (Debian package `chromium`) is needed for the browser test only: where it is missing the test is
skipped with the reason; with CI=true it must run (.ci/run installs it).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, snakemake

pytestmark = pytest.mark.workflow

STEPS = [0, 5, 10, 15, 20]  # tiny.yaml
ARTIFACTS = REPO / "tests" / "artifacts"
DRIVER = REPO / "tests" / "report" / "driver.js"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXTRAS = ("report_extras",)  # report-only targets (rules/report.smk: the loss curve and the film player)


def checkpoint_label(step: int) -> str:
    return str(step).zfill(len(str(max(STEPS))))  # rules/frames.smk: labels sort as text


@pytest.fixture(scope="module")
def report_run(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the finished tiny run with the report extras made and report.html built."""
    workdir = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True, copy_function=shutil.copy2)
    # targets first: --configfile takes every word after it
    snakemake(workdir, *EXTRAS, "--configfile", "test.yaml")
    snakemake(workdir, "all", *EXTRAS, "--report", "results/tiny/report.html", "--configfile", "test.yaml")
    return workdir


def test_report_holds_the_film_loss_curve_metrics_and_every_frame(report_run: Path, tmp_path: Path) -> None:
    page = (report_run / "results" / "tiny" / "report.html").read_text(encoding="utf-8")
    for name in ("animation.gif", "report/film.html", "loss_curve.png", "metrics.csv"):
        assert f"results/tiny/{name}" in page, name
    for step in STEPS:
        assert f"results/tiny/frames/{step}.png" in page
    # The zip flavour: report.html plus the result files themselves, for very large runs.
    snakemake(report_run, "all", *EXTRAS, "--report", str(tmp_path / "report.zip"), "--configfile", "test.yaml")
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        names = z.namelist()
    assert any(n.endswith("report.html") for n in names)
    for name in ("animation.gif", "film.html", "loss_curve.png", "metrics.csv", *(f"/{s}.png" for s in STEPS)):
        assert any(n.endswith(name) for n in names), (name, names)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def _browse(browser: str, page: Path, profile: Path, url_tail: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=20000",
        "--window-size=1400,900",
        *args,
        page.as_uri() + url_tail,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-3000:]}"
    return proc


def test_report_in_headless_chromium_plays_the_film_and_shows_a_frame(report_run: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        reason = "Chromium is not installed (Debian: apt-get install chromium; .ci/run does this with CI=true)"
        if CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    # A copy of the report with the reading script (tests/report/driver.js) appended.
    report = (report_run / "results" / "tiny" / "report.html").read_text(encoding="utf-8")
    cut = report.rindex("</body>")
    page = tmp_path / "report_driven.html"
    page.write_text(f"{report[:cut]}<script>{DRIVER.read_text()}</script>{report[cut:]}", encoding="utf-8")
    checkpoint = checkpoint_label(10)

    dom = _browse(browser, page, tmp_path / "profile-check", f"?checkpoint={checkpoint}#check", "--dump-dom").stdout
    found = re.search(r'<body[^>]*\sdata-film-check="([^"]*)"', dom)
    assert found, f"the reading script left no record; DOM starts:\n{dom[:2000]}"
    seen = json.loads(html.unescape(found.group(1)))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report_check.json").write_text(json.dumps(seen, indent=1))

    assert seen["done"] and seen["errors"] == [], seen
    assert set(seen["categories"]) >= {"Film", "Frames"}
    assert set(seen["film_subcategories"]) >= {"Animation", "Explorable film", "Metrics", "Training"}
    # The film: the GIF as a download, and the player page that embeds and plays it.
    assert seen["gif_download"] == {"href": "data:image/gif;charset", "download": "animation.gif"}
    assert seen["player"]["type"] == "text/html" and seen["player"]["embeds"] in ("image/gif", "video/mp4")
    assert seen["loss_curve"] == {"type": "image/png", "width": 800, "height": 450}
    assert any("metrics.csv" in row for row in seen["metrics"])
    # The frames, one row per checkpoint in film order, each opening the 640x360 frame.
    assert seen["frame_header"][0] == "checkpoint"
    assert seen["frame_checkpoints"] == [checkpoint_label(s) for s in STEPS]
    assert seen["frame"] == {"type": "image/png", "width": 640, "height": 360}

    for view, tail in (("film", "#film"), ("frame", f"?checkpoint={checkpoint}#frame")):
        shot = ARTIFACTS / f"report_{view}.png"
        shot.unlink(missing_ok=True)
        _browse(browser, page, tmp_path / f"profile-{view}", tail, f"--screenshot={shot}")
        assert shot.is_file() and shot.stat().st_size > 10_000, shot  # a rendered page, not a blank one
