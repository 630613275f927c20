"""The review table on tiny inputs, and the Spotlight launcher started headless on a loopback port."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from embedding_film.cli import spotlight_launch
from embedding_film.film.common import save_json, save_npy
from embedding_film.film.review import build_review, spotlight_dtypes, write_review

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "workflow_scripts" / "embedding_film" / "cli" / "spotlight_launch.py"
NAMES = ["cat", "dog", "7", "unused"]  # a digit-like name and a class no eval image has
LABELS = np.array([0, 1, 2, 1, 0])
DIM = 6


def png(value: int) -> bytes:
    buf = BytesIO()
    Image.new("RGB", (8, 8), (value, 255 - value, 0)).save(buf, format="PNG")
    return buf.getvalue()


def tiny_inputs(tmp_path: Path, head: bool = True) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """eval.parquet (as data.py writes it: image is a struct of bytes and path), classes.json and, for two
    checkpoints, the .npy files build_review reads; `head=False` gives the last one no classifier head."""
    n = len(LABELS)
    images = pa.StructArray.from_arrays(
        [pa.array([png(40 * i) for i in range(n)], pa.binary()), pa.array([None] * n, pa.string())], ["bytes", "path"]
    )
    eval_parquet = tmp_path / "eval.parquet"
    pq.write_table(pa.table({"id": [f"img/{i}" for i in range(n)], "image": images, "label": LABELS}), eval_parquet)
    save_json(tmp_path / "classes.json", {"names": NAMES, "ids": [f"img/{i}" for i in range(n)]})
    rng = np.random.default_rng(0)
    files = {}
    for tag in ("first", "last"):
        paths = {kind: str(tmp_path / f"{kind}_{tag}.npy") for kind in ("embeddings", "projection", "scores", "probs")}
        save_npy(paths["embeddings"], rng.normal(size=(n, DIM)).astype(np.float64))  # float32 in the table
        save_npy(paths["projection"], rng.normal(size=(n, 2)).astype(np.float32))
        save_npy(paths["scores"], rng.uniform(size=n).astype(np.float32))
        probs = rng.dirichlet(np.ones(len(NAMES)), size=n) if head or tag == "first" else np.zeros((n, 0))
        save_npy(paths["probs"], probs)
        files[tag] = paths
    return str(eval_parquet), str(tmp_path / "classes.json"), files["first"], files["last"]


def write_tiny_review(tmp_path: Path, head: bool = True) -> Path:
    out = tmp_path / "results" / "review.parquet"
    write_review(build_review(*tiny_inputs(tmp_path, head)), str(out))
    return out


def test_review_table_columns_types_and_values(tmp_path: Path) -> None:
    eval_parquet, classes, first, last = tiny_inputs(tmp_path)
    table = build_review(eval_parquet, classes, first, last)
    per_tag = ["embedding", "x", "y", "ood", "pred", "pred_name"]
    assert table.column_names == ["id", "image", "label", "class_name"] + [
        f"{col}_{tag}" for tag in ("first", "last") for col in per_tag
    ]
    schema = table.schema
    assert schema.field("image").type == pa.binary() and schema.field("label").type == pa.int64()
    assert schema.field("class_name").type == pa.dictionary(pa.int32(), pa.string())
    for tag, _files in (("first", first), ("last", last)):
        assert schema.field(f"embedding_{tag}").type == pa.list_(pa.float32(), DIM)
        for col in ("x", "y", "ood"):
            assert schema.field(f"{col}_{tag}").type == pa.float64()
        assert schema.field(f"pred_{tag}").type == pa.int64()

    out = tmp_path / "review.parquet"
    write_review(table, str(out))
    df = pd.read_parquet(out)
    assert df["id"].tolist() == [f"img/{i}" for i in range(len(LABELS))]
    assert df["image"].tolist() == [png(40 * i) for i in range(len(LABELS))]
    assert df["label"].tolist() == LABELS.tolist()
    # A Categorical over every class name in label order: codes are the labels, unused classes kept.
    assert df["class_name"].cat.categories.tolist() == NAMES
    assert df["class_name"].cat.codes.tolist() == LABELS.tolist()
    assert df["class_name"].astype(str).tolist() == [NAMES[i] for i in LABELS]
    for tag, files in (("first", first), ("last", last)):
        emb = np.load(files["embeddings"], allow_pickle=False)
        cell = df[f"embedding_{tag}"].iloc[0]
        assert cell.dtype == np.float32 and cell.shape == (DIM,)
        np.testing.assert_allclose(np.stack(df[f"embedding_{tag}"].to_numpy()), emb, rtol=1e-6)
        xy = np.load(files["projection"], allow_pickle=False)
        np.testing.assert_allclose(df[f"x_{tag}"], xy[:, 0], rtol=1e-6)
        np.testing.assert_allclose(df[f"y_{tag}"], xy[:, 1], rtol=1e-6)
        np.testing.assert_allclose(df[f"ood_{tag}"], np.load(files["scores"], allow_pickle=False), rtol=1e-6)
        pred = np.load(files["probs"], allow_pickle=False).argmax(axis=1)
        assert df[f"pred_{tag}"].tolist() == pred.tolist()
        assert df[f"pred_name_{tag}"].astype(str).tolist() == [NAMES[i] for i in pred]


def test_review_without_a_head_has_no_prediction(tmp_path: Path) -> None:
    df = pd.read_parquet(write_tiny_review(tmp_path, head=False))
    assert (df["pred_last"] == -1).all() and df["pred_name_last"].isna().all()
    assert (df["pred_first"] >= 0).all() and df["pred_name_first"].notna().all()


def test_spotlight_dtypes_name_image_and_embedding_columns(tmp_path: Path) -> None:
    columns = pq.read_schema(write_tiny_review(tmp_path)).names
    dtypes = spotlight_dtypes()
    assert dtypes == {"image": "Image", "embedding_first": "Embedding", "embedding_last": "Embedding"}
    assert set(dtypes) <= set(columns)
    dtypes.clear()
    assert spotlight_dtypes(), "callers get a copy"


def test_launcher_without_spotlight_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = write_tiny_review(tmp_path)
    monkeypatch.setitem(sys.modules, "renumics", None)  # as if renumics-spotlight were not installed
    for var in ("LOGURU_LEVEL", "TRANSFORMERS_VERBOSITY", "SPOTLIGHT_VERBOSE"):  # the launcher sets defaults
        monkeypatch.setenv(var, os.environ.get(var, "unchanged"))
    with pytest.raises(SystemExit) as exc:
        spotlight_launch.main([str(table)])
    message = str(exc.value)
    assert "renumics-spotlight is not installed" in message
    assert "make review" in message and "pip install -r requirements-review.txt" in message


def test_launcher_names_a_missing_table(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        spotlight_launch.main([str(tmp_path / "nope.parquet")])
    assert "not found" in str(exc.value) and "make run" in str(exc.value)


def spotlight_python() -> str | None:
    """A Python with renumics-spotlight: $SPOTLIGHT_PYTHON, .venv-review (`make review` makes it), or this one."""
    if os.environ.get("SPOTLIGHT_PYTHON"):
        return os.environ["SPOTLIGHT_PYTHON"]
    review_venv = REPO / ".venv-review" / "bin" / "python"
    if review_venv.exists():
        return str(review_venv)
    import importlib.util

    return sys.executable if importlib.util.find_spec("renumics") else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200
        return response.read()


def wait_for_page(url: str, proc: subprocess.Popen, log: Path, limit: float = 180) -> bytes:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the launcher exited ({proc.returncode}) before serving:\n{log.read_text()[-4000:]}")
        try:
            return get(url, timeout=5)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"no page at {url} after {limit:.0f} s:\n{log.read_text()[-4000:]}")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_launcher_serves_the_table_headless_and_stops(tmp_path: Path) -> None:
    python = spotlight_python()
    if python is None:
        pytest.skip(
            "renumics-spotlight is not installed: `make .venv-review/bin/.installed` (about 1 min, 1.4 GB) makes "
            ".venv-review, which this test then uses (or set SPOTLIGHT_PYTHON)"
        )
    table = write_tiny_review(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "launcher.log"
    env = dict(os.environ, SPOTLIGHT_OPT_OUT="true", BROWSER="false")  # no analytics, and never a browser
    with open(log, "w") as out:
        # Its own session, so that the test can send Ctrl-C to it and its server as a terminal would.
        proc = subprocess.Popen(
            [python, str(LAUNCHER), str(table), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        page = wait_for_page(url, proc, log)
        assert b"<html" in page.lower() and b"spotlight" in page.lower()
        # the server can answer before the launcher has printed where it serves: wait for the line
        deadline = time.monotonic() + 30
        while f"at {url}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"at {url}" in log.read_text()

        # What Spotlight made of the table: images, embeddings and categories, without a dtype guess.
        served: dict[str, Any] = json.loads(get(url + "api/table/"))
        columns = {col["name"]: col for col in served["columns"]}
        assert columns["image"]["dtype"]["name"] == "Image"
        assert columns["embedding_first"]["dtype"]["name"] == columns["embedding_last"]["dtype"]["name"] == "Embedding"
        assert columns["class_name"]["dtype"] == {"name": "Category", "categories": {n: i for i, n in enumerate(NAMES)}}
        assert columns["class_name"]["values"] == LABELS.tolist()
        generation = served["generation_id"]
        image = get(f"{url}api/table/image/1?generation_id={generation}")
        with Image.open(BytesIO(image)) as img:
            assert img.size == (8, 8)
        embedding = json.loads(get(f"{url}api/table/embedding_last/1?generation_id={generation}"))
        assert len(embedding) == DIM

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=60) == 0, log.read_text()[-4000:]
        assert "Spotlight stopped." in log.read_text()
        with pytest.raises(urllib.error.URLError):
            get(url, timeout=5)
        deadline = time.monotonic() + 15
        while group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not group_alive(proc.pid), "the Spotlight server outlived the launcher"
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
