"""FilmCallback (embedding_film/api/callback.py): a real tiny Trainer run filmed in the background, its errors at
creation, and a training process that dies mid-run (nothing half-written; the next film carries on)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, snakemake
from test_film_html import browser  # noqa: F401  (the shared Chromium fixture)

from embedding_film.film.common import UserError

pytestmark = pytest.mark.workflow

# The film of the tiny Trainer run (tests/workflow/test_external_checkpoints.py's trainer_run: a 1-layer ViT on
# 64 digits, 16 px, checkpoints every 2 steps).
FILM = {
    "dataset": {"name": "builtin:digits", "eval_size": 40, "image_size": 16},
    "ood": {"k": 5},
    "projection": {"method": "pca", "align": "first"},
    "frames": {"width": 640, "height": 360, "top_k": 4},
    "metrics": {"k": 5},
    "animation": {"fps": 10, "hold_last": 0},
}


@pytest.mark.parametrize(
    "settings, names",
    [
        ({"oodd": {"k": 5}}, "'oodd'"),
        ({"ood": {"k": "five"}}, "ood.k"),
        ({"dataset": {"label_noise": {"fraction": 0.1}}}, "label_noise"),
        ({"model": "./no/such/model"}, "./no/such/model"),
        ({"runs": {"a": {}, "b": {}}}, "runs"),
        ({"cores": -1}, "cores=-1"),
    ],
)
def test_settings_are_checked_when_the_callback_is_created(settings: dict[str, Any], names: str) -> None:
    from embedding_film import FilmCallback

    with pytest.raises(UserError) as err:
        FilmCallback(**settings)
    message = str(err.value)
    assert names in message and message.count("\n") == 0 and message.rstrip().endswith((".", ")")), message


@pytest.mark.parametrize("cores", [2, 0])
def test_a_trainer_run_is_filmed_while_it_trains_and_finished_when_it_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cores: int
) -> None:
    """cores=2: filmed while training runs; cores=0 (what the default picks where training keeps every core
    busy): filmed when training ends, all checkpoints in the first round."""
    from test_external_checkpoints import trainer_run

    from embedding_film import FilmCallback

    output = tmp_path / "trainer_output"
    (output / "checkpoint-0").mkdir(parents=True)  # an earlier run's step 0: replaced by this model's
    (output / "checkpoint-0" / "earlier-run.txt").write_text("not this run's")
    callback = FilmCallback(run="tiny-trainer", workdir=tmp_path / "work", cores=cores, **FILM)
    trainer_run(output, max_steps=7, save_steps=2, callbacks=[callback])
    said = capsys.readouterr().out
    assert ("while training runs" in said) == bool(cores) and ("when training ends" in said) == (not cores)
    results = tmp_path / "work" / "results" / "tiny-trainer"
    # step 0 saved before training, 2/4/6 by the Trainer, 7 (the end, off the save schedule) by the callback
    assert sorted(p.name for p in output.glob("checkpoint-*")) == [f"checkpoint-{s}" for s in (0, 2, 4, 6, 7)]
    assert not (output / "checkpoint-0" / "earlier-run.txt").exists()
    assert (output / "checkpoint-0" / "preprocessor_config.json").is_file()  # the processor goes with it
    assert sorted(int(p.stem) for p in (results / "frames").glob("*.png")) == [0, 2, 4, 6, 7]
    assert (results / "film.html").is_file() and (results / "animation.gif").is_file()
    assert "the film is complete" in said and str(results / "film.html") in said
    config = yaml.safe_load((results / "film_config.yaml").read_text())
    assert config["checkpoints"] == str(output) and config["run"] == "tiny-trainer" and config["ood"]["k"] == 5
    log = (results / "logs" / "film_callback.log").read_text()
    assert "round 1:" in log and "done:" in log
    if not cores:
        assert "round 1: checkpoints 0, 2, 4, 6, 7;" in log and "round 2:" not in log
    assert not list(results.rglob("*.tmp")) and not list(output.glob("tmp-*"))
    assert not (tmp_path / "work" / ".snakemake" / "locks").exists() or not any(
        (tmp_path / "work" / ".snakemake" / "locks").iterdir()
    )


CRASHING = textwrap.dedent(
    """
    import os, sys, time
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path[:0] = [sys.argv[3], sys.argv[3] + "/tests", sys.argv[3] + "/tests/workflow"]
    from pathlib import Path
    from transformers import TrainerCallback
    import test_external_checkpoints as t
    from embedding_film import FilmCallback
    FILM = eval(sys.argv[4])

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 4:  # the watcher is filming the first checkpoints by now
                time.sleep(4)
                if sys.argv[2] == "raise":
                    raise RuntimeError("the training script crashed")
                if sys.argv[2] == "interrupt":  # Ctrl-C in the terminal: SIGINT to the whole foreground group
                    os.killpg(os.getpgid(0), 2)
                    time.sleep(60)
                os.kill(os.getpid(), 9)  # killed: no atexit, no exception handler

    film = FilmCallback(run="crash", workdir=Path(sys.argv[1]) / "work", cores=2, **FILM)
    t.trainer_run(Path(sys.argv[1]) / "out", max_steps=20, save_steps=2, callbacks=[film, Crash()])
    """
)


def watchers_of(workdir: Path) -> list[int]:
    """Pids of live watcher processes working in `workdir`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes()
            cwd = os.readlink(proc / "cwd")
        except (OSError, ValueError):
            continue
        if b"embedding_film.cli.watch" in cmd and cwd == str(workdir):
            pids.append(int(proc.name))
    return pids


@pytest.mark.parametrize("how", ["raise", "interrupt", "kill"])
def test_a_crash_mid_training_stops_the_film_cleanly_and_the_next_film_carries_on(tmp_path: Path, how: str) -> None:
    script = tmp_path / "train.py"
    script.write_text(CRASHING)
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow_scripts"))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), how, str(REPO), repr(FILM)],
        env=env,
        capture_output=True,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
    )
    expected = {"raise": [1], "interrupt": [1, -signal.SIGINT], "kill": [-signal.SIGKILL]}[how]
    assert proc.returncode in expected, proc.stderr[-3000:]
    work = tmp_path / "work"
    deadline = time.time() + 120
    while watchers_of(work) and time.time() < deadline:  # the watcher stops the round under way, then itself
        time.sleep(0.5)
    assert not watchers_of(work)
    results = work / "results" / "crash"
    log = (results / "logs" / "film_callback.log").read_text()
    said = "stopped: nothing half-written" if how == "interrupt" else "stopped: the training process ended without"
    assert said in log, log
    assert not list(results.rglob("*.tmp"))
    locks = work / ".snakemake" / "locks"
    assert not locks.exists() or not any(locks.iterdir()), "Snakemake's lock was left behind"
    # the next film of the same folder carries on: no incomplete output to clean, every checkpoint saved filmed
    proc = snakemake(work, "--replace-workflow-config", "--configfile", str(results / "film_config.yaml"), timeout=600)
    saved = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "out").glob("checkpoint-*"))
    assert saved[:3] == [0, 2, 4]
    assert sorted(int(p.stem) for p in (results / "frames").glob("*.png")) == saved
    assert "IncompleteFilesException" not in proc.stderr


def test_a_notebook_trains_with_the_callback_and_shows_the_film(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    """A real kernel (nbclient) runs a notebook that trains with FilmCallback and calls show_film; the saved
    notebook's output, opened in Chromium, is the finished film's page, and it plays."""
    import nbclient
    import nbformat

    cells = [
        f"import sys; sys.path[:0] = [{str(REPO / 'workflow_scripts')!r}, {str(REPO / 'tests')!r}, "
        f"{str(REPO / 'tests' / 'workflow')!r}]",
        f"from embedding_film import FilmCallback, show_film\nfrom test_external_checkpoints import trainer_run\nFILM = {FILM!r}",
        'trainer_run("out", max_steps=6, save_steps=2, callbacks=[FilmCallback(run="nb", cores=2, **FILM)])',
        'show_film("results/nb", height=600)',
    ]
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    nbformat.write(book, tmp_path / "train.ipynb")
    saved = nbformat.read(tmp_path / "train.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for o in saved.cells[2].outputs if o.output_type == "stream")
    assert "the film is complete" in printed, printed
    [shown] = [o.data["text/html"] for o in saved.cells[3].outputs if o.output_type == "display_data"]
    host = tmp_path / "output.html"
    host.write_text(f"<!DOCTYPE html><html><body>{shown}</body></html>", encoding="utf-8")
    tab = browser.new_page(viewport={"width": 1100, "height": 800}, bypass_csp=True)  # the page forbids eval
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    try:
        tab.goto(host.as_uri())
        frame = tab.locator("iframe").element_handle().content_frame()
        frame.wait_for_function("window.filmDebug && filmDebug.ready", timeout=60_000)
        assert frame.evaluate("filmDebug.info().steps") == [0, 2, 4, 6]
        frame.locator("#slider").fill("3")
        frame.wait_for_function("filmDebug.settled", timeout=10_000)
        assert frame.evaluate("filmDebug.step") == 3 and frame.evaluate("filmDebug.errors") == []
    finally:
        tab.close()
    assert errors == []
