"""OOD scores, frames, the film and the review table on tiny inputs."""

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from embedding_film.adapters import Job, Named, camera_step, frame, tween
from embedding_film.film.animation import frame_durations, write_gif, write_mp4
from embedding_film.film.camera import plan_camera, view_row
from embedding_film.film.checkpoints import read_train_log, write_train_log
from embedding_film.film.common import UserError, atomic_path, load_json, load_npy, save_json, save_npy
from embedding_film.film.label_issues import label_issues
from embedding_film.film.ood import ood_scores, top_outliers, write_outliers
from embedding_film.film.render import between, layout_label, leaderboard


def test_atomic_path_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_gives_normal_permissions(tmp_path: Path) -> None:
    save_npy(tmp_path / "x.npy", np.zeros(3))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.npy").stat().st_mode & 0o777 == 0o666 & ~umask


def test_ood_scores_rank_the_far_point_first() -> None:
    # cleanlab compares directions (cosine distance) above 3 dimensions: one image points elsewhere
    x = np.random.default_rng(0).normal(scale=0.3, size=(60, 5)) + [10.0, 0, 0, 0, 0]
    x[17] = [0, 10.0, 0, 0, 0]
    scores = ood_scores(x, k=5)
    assert scores.shape == (60,) and ((scores >= 0) & (scores <= 1)).all()
    assert top_outliers(scores, 1)[0] == 17


def test_ood_k_larger_than_eval_set_is_one_clear_sentence() -> None:
    with pytest.raises(UserError, match=r"ood.k \(10\) must be smaller than the number of eval images \(5\)"):
        ood_scores(np.zeros((5, 3)), k=10)


def test_label_issues_find_a_flipped_label() -> None:
    labels = np.repeat([0, 1], 30)
    probs = np.where(labels[:, None] == np.arange(2), 0.95, 0.05)
    labels = labels.copy()
    labels[3] = 1  # annotated 1, confidently predicted 0
    assert label_issues(labels, probs)[0] == 3
    assert label_issues(labels, np.zeros((60, 0))).size == 0


def test_train_log_is_read_by_key_name(tmp_path: Path) -> None:
    history = [
        {"loss": 2.0, "grad_norm": 1.0, "learning_rate": 1e-3, "epoch": 0.1, "step": 5},
        {"eval_loss": 1.5, "step": 5},  # other keys and other dict shapes do not shift columns
        {"step": 10, "loss": 1.0, "learning_rate": 5e-4, "epoch": 0.2, "new_key_from_a_future_version": 1},
        {"train_runtime": 3.0, "step": 10},
    ]
    assert write_train_log(history, tmp_path / "log.csv") == 2
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [(r["step"], r["loss"], r["learning_rate"]) for r in rows] == [
        ("5", "2.0", "0.001"),
        ("10", "1.0", "0.0005"),
    ]
    series = read_train_log(tmp_path / "log.csv")  # the one reader of train logs, for frames and the report
    assert series["loss"] == [(5.0, 2.0), (10.0, 1.0)] and series["learning_rate"] == [(5.0, 1e-3), (10.0, 5e-4)]


@pytest.fixture
def film(tmp_path: Path) -> dict:
    """The files of a 3-checkpoint film, as the frame and tween jobs read them."""
    rng = np.random.default_rng(0)
    n, steps = 30, [0, 10, 20]
    common = {
        "labels": str(tmp_path / "labels.npy"),
        "thumbnails": str(tmp_path / "thumbnails.npy"),
        "classes": str(tmp_path / "classes.json"),
        "view": str(tmp_path / "limits.json"),
        "loss_log": str(tmp_path / "train_log.csv"),
        "layout": [],
    }
    save_npy(common["labels"], np.repeat(np.arange(3), 10))
    save_npy(common["thumbnails"], rng.integers(0, 255, size=(n, 16, 16, 3), dtype=np.uint8))
    save_json(common["classes"], {"names": ["cat", "dog", "ship"], "ids": [f"img{i}" for i in range(n)]})
    save_json(common["view"], {"x": [-3.0, 3.0], "y": [-3.0, 3.0]})
    write_train_log([{"step": s, "loss": 2.0 / (1 + s)} for s in (2, 4, 8, 16)], common["loss_log"])
    files: dict[str, list[str]] = {k: [] for k in ("projection", "scores", "issues", "metrics")}
    for s in steps:
        for key, value in (
            ("projection", rng.normal(size=(n, 2))),
            ("scores", rng.uniform(size=n)),
            ("issues", rng.permutation(n)[:5]),
        ):
            files[key].append(str(tmp_path / f"{key}{s}.npy"))
            save_npy(files[key][-1], value)
        files["metrics"].append(str(tmp_path / f"m{s}.json"))
        save_json(
            files["metrics"][-1], {"head_accuracy": 0.5, "knn_accuracy": 0.6, "silhouette": 0.1, "trustworthiness": 0.9}
        )
    return {"steps": steps, "files": files, "common": common, "dir": tmp_path}


def frame_job(film: dict, i: int, out: str, kind: str, **params: object) -> Job:
    """The job of checkpoint i's frame (rule frame), or with next_step/j/tween of its tween frame."""
    f = film["files"]
    inputs = {**film["common"], **{key: f[key][i] for key in f}}
    if i > 0:
        inputs.update(previous_scores=f["scores"][i - 1], previous_issues=f["issues"][i - 1])
    if "j" in params:
        inputs.update(next_projection=f["projection"][i + 1], next_view=film["common"]["view"])
    style = {"width": 640, "height": 360, "point_size": 12}
    settings = {
        "step": film["steps"][i],
        "max_step": 20,
        "title": "test",
        "leaderboard": kind,
        "top_k": 4,
        "style": style,
        "align": "first",
        "camera": None,
        **params,
    }
    output = Named(frame=out) if "j" in params else Named(frame=out, view=str(Path(out).with_suffix(".json")))
    return Job("frame", input=Named(**inputs), output=output, params=Named(**settings))


@pytest.mark.parametrize("kind", ["ood", "label_issues"])
def test_frames_render_at_the_requested_size_with_tweens(film: dict, kind: str) -> None:
    d = film["dir"]
    frames = [str(d / f"frame{s}.png") for s in film["steps"]]
    for i, out in enumerate(frames):
        frame.main(frame_job(film, i, out, kind))
    tweens = [str(d / f"t{j}.png") for j in (1, 2)]
    for j, out in enumerate(tweens, start=1):
        tween.main(frame_job(film, 0, out, kind, next_step=10, j=j, tween=2))
    for path in frames + tweens:
        with Image.open(path) as im:
            assert im.size == (640, 360)
    # an interpolated frame lies between its two checkpoints' frames
    a, t, b = (np.asarray(Image.open(p), dtype=float) for p in (frames[0], tweens[0], frames[1]))
    assert 0 < np.abs(t - a).mean() and 0 < np.abs(t - b).mean()


def test_a_frame_writes_the_view_it_shows_and_replays_a_causal_camera_from_a_state(film: dict) -> None:
    """A frame job writes its view beside its frame: the film's limits as they are; under a causal camera the
    camera it replays from the state of an earlier checkpoint's camera and the projections since (rule
    camera_step's file): the whole film's causal plan's view, with the state the cameras after it start from."""
    d = film["dir"]
    settings = {"min_spread": 0.3, "max_spread": 0.9, "max_zoom_change": 0.15, "max_shift": 0.1, "window": 2}
    fixed = frame_job(film, 0, str(d / "fixed.png"), "ood")
    frame.main(fixed)
    assert load_json(fixed.output.view) == {"0": {"x": [-3.0, 3.0], "y": [-3.0, 3.0], "zoom": 1.0}}

    projections = film["files"]["projection"]
    first = Job(
        "camera_step",
        input=Named(projections=projections[:1]),
        output=Named(camera=str(d / "camera0.json")),
        params=Named(step=0, replay=1, settings=settings, margin=1.15),
    )
    camera_step.main(first)
    causal = frame_job(film, 2, str(d / "causal.png"), "ood", camera=dict(replay=2, settings=settings, margin=1.15))
    inputs = {k: v for k, v in causal.input.items() if k != "view"}
    causal.input = Named(**inputs, previous=first.output.camera, projections=projections)
    frame.main(causal)
    planned = plan_camera([load_npy(p) for p in projections], "causal", margin=1.15, **settings)
    written = load_json(causal.output.view)
    assert view_row(written["20"]) == pytest.approx(planned[2], abs=1e-12) and set(written) == {"20", "state"}
    assert Image.open(causal.output.frame).size == (640, 360)


def test_the_scatter_is_titled_with_the_layout_the_film_kept(tmp_path: Path) -> None:
    assert layout_label([], "first") == "PCA, aligned"
    for method, align, label in [
        ("param", "global", "learned map"),
        ("tsne", "global", "pooled t-SNE"),
        ("pca", "global", "PCA, one basis"),
        ("pca", "gpa", "PCA, aligned (GPA)"),
    ]:
        path = tmp_path / f"{method}-{align}.npz"
        np.savez(path, method=np.array(method), coords=np.zeros((1, 2, 2), np.float32))
        assert layout_label([str(path)], align) == label
        assert layout_label(str(path), align) == label  # a single named file arrives as a string


def test_tween_positions_and_titles() -> None:
    alpha, step, title = between(10, 20, 1, 3)
    assert alpha == 0.25 and step == 12.5 and title == "step 10 \u2192 20 (interpolated 1/4)"


def test_frame_with_top_k_beyond_the_eval_set_is_one_clear_sentence(film: dict) -> None:
    job = frame_job(film, 0, str(film["dir"] / "f.png"), "ood")
    job.params.top_k = 30
    with pytest.raises(UserError, match=r"frames.top_k \(30\) must be smaller than the number of eval images \(30\)"):
        frame.main(job)


def test_leaderboard_reports_rank_changes() -> None:
    before = np.array([0.9, 0.1, 0.5, 0.8])  # ranking: 1, 2, 3, 0
    now = np.array([0.05, 0.1, 0.5, 0.8])  # ranking: 0, 1, 2, 3
    board = leaderboard("ood", now, np.array([]), 2, (before, np.array([])))
    assert list(board.indices) == [0, 1]
    assert board.change(0, 1) == " \u25b23" and board.change(1, 2) == " \u25bc1"
    assert leaderboard("ood", now, np.array([]), 2, None).change(0, 1) == ""


def test_outliers_table_lists_top_k_per_step(film: dict, tmp_path: Path) -> None:
    ids = [f"img{i}" for i in range(30)]
    write_outliers(film["steps"], film["files"]["scores"], ids, 3, str(tmp_path / "outliers.csv"))
    table = pd.read_csv(tmp_path / "outliers.csv")
    assert len(table) == 9 and list(table.columns) == ["step", "rank", "id", "index", "score"]
    first = table[table.step == 0].sort_values("rank")
    assert first["score"].is_monotonic_increasing


def test_gif_frames_decoded_on_threads_make_the_same_film(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = []
    for i in range(11):  # more than the threads read ahead (2 per thread), in an order they must keep
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (36, 64, 4), dtype=np.uint8)).save(path)
        frames.append(str(path))
    write_gif(frames, str(tmp_path / "one.gif"), fps=5)
    write_gif(frames, str(tmp_path / "three.gif"), fps=5, threads=3)
    assert (tmp_path / "one.gif").read_bytes() == (tmp_path / "three.gif").read_bytes()
    with Image.open(tmp_path / "three.gif") as gif:
        assert gif.n_frames == 11


def test_film_has_every_frame_and_holds_the_last(tmp_path: Path) -> None:
    frames = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((36, 64, 3), i * 60, np.uint8)).save(path)
        frames.append(str(path))
    write_gif(frames, str(tmp_path / "film.gif"), fps=5, hold_last=1.0)
    with Image.open(tmp_path / "film.gif") as gif:
        assert gif.n_frames == 4
        gif.seek(3)
        assert gif.info["duration"] == 1200
    write_mp4(frames, str(tmp_path / "film.mp4"), fps=5, hold_last=1.0)
    import imageio.v3 as iio

    assert (tmp_path / "film.mp4").stat().st_size > 0
    reader = iio.imiter(tmp_path / "film.mp4", plugin="FFMPEG")
    assert sum(1 for _ in reader) == 4 + 5  # 4 frames + 1 s held at 5 fps
    assert frame_durations(3, 4, 0.5) == [250, 250, 750]
    with pytest.raises(UserError, match="no frames"):
        frame_durations(0, 4, 0)
