"""The camera: every frame readable (the central 90 % spans 30-90 % of the plot), smooth where the bounds allow,
causal mode independent of later frames, tween cameras, zoom."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedding_film.film.camera import camera_metrics, interpolate, limits, plan_camera, smoothness, spread
from embedding_film.film.common import UserError

MODES = ("lookahead", "causal")
MIN_SPREAD, MAX_SPREAD, STEP, SHIFT = 0.30, 0.90, 0.15, 0.10


@pytest.fixture
def cloud() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 2)) * [2.0, 1.0] + rng.normal(size=(300, 2)) ** 3 * 0.1


def assert_readable(frames: list[np.ndarray], cameras: np.ndarray) -> None:
    """The readability bound on every frame, and the central 90 % inside the frame."""
    for f, cam, m in zip(frames, cameras, camera_metrics(frames, cameras)):
        assert MIN_SPREAD - 1e-9 <= m["spread"] <= MAX_SPREAD + 1e-9
        lim = limits(cam)
        low, high = np.percentile(f, 5, axis=0), np.percentile(f, 95, axis=0)
        assert lim["x"][0] <= low[0] and high[0] <= lim["x"][1]
        assert lim["y"][0] <= low[1] and high[1] <= lim["y"][1]


@pytest.mark.parametrize("mode", MODES)
def test_slow_growth_100x_is_readable_and_smooth(cloud: np.ndarray, mode: str) -> None:
    frames = [cloud * 100 ** (t / 80) for t in range(81)]  # 5.9 % per frame
    cameras = plan_camera(frames, mode)
    assert_readable(frames, cameras)
    s = smoothness(cameras)
    assert s["max_zoom_change"] <= STEP + 1e-9 and s["max_shift"] <= SHIFT + 1e-9


@pytest.mark.parametrize("mode", MODES)
def test_fast_growth_100x_in_20_frames(cloud: np.ndarray, mode: str) -> None:
    # 26 % growth per frame: faster than 15 %. The bound wins; look-ahead spreads the zoom so that no
    # frame-to-frame change exceeds what the 30-90 % band forces (100 / 3 over 20 frames: 19.2 %).
    frames = [cloud * 100 ** (t / 20) for t in range(21)]
    cameras = plan_camera(frames, mode)
    assert_readable(frames, cameras)
    worst = smoothness(cameras)["max_zoom_change"]
    assert worst < 100 ** (1 / 20) - 1 + 1e-6
    if mode == "lookahead":
        assert worst <= (100 * MIN_SPREAD / MAX_SPREAD) ** (1 / 20) - 1 + 1e-6


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("factor", [100.0, 0.01])
def test_sudden_growth_or_shrink_keeps_every_frame_readable(cloud: np.ndarray, mode: str, factor: float) -> None:
    frames = [cloud * (1.0 if t < 10 else factor) for t in range(21)]
    cameras = plan_camera(frames, mode)
    assert_readable(frames, cameras)
    s = smoothness(cameras)
    if mode == "lookahead":  # part of the jump is taken before it: the largest step is 3x smaller than 100x
        assert s["max_zoom_change"] <= 100 * MIN_SPREAD / MAX_SPREAD - 1 + 1e-6
    # away from the jump the camera moves within the smoothness limits
    assert smoothness(cameras[:5])["max_zoom_change"] <= STEP + 1e-9
    assert smoothness(cameras[16:])["max_zoom_change"] <= STEP + 1e-9


@pytest.mark.parametrize("mode", MODES)
def test_a_jump_of_the_cloud_is_followed(cloud: np.ndarray, mode: str) -> None:
    frames = [cloud + (0.0 if t < 10 else 40.0) for t in range(21)]
    assert_readable(frames, plan_camera(frames, mode))


@pytest.mark.parametrize("mode", MODES)
def test_a_steady_cloud_keeps_a_still_camera(cloud: np.ndarray, mode: str) -> None:
    cameras = plan_camera([cloud] * 10, mode)
    assert np.ptp(cameras, axis=0).max() == pytest.approx(0.0, abs=1e-12)
    assert cameras[:, 3] == pytest.approx(1.0)


def test_slight_wobble_stays_within_the_smoothness_limits(cloud: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    frames = [cloud * np.exp(rng.normal() * 0.1) + rng.normal(size=2) * 0.1 for _ in range(60)]
    cameras = plan_camera(frames, "lookahead")
    assert_readable(frames, cameras)
    s = smoothness(cameras)
    assert s["max_zoom_change"] <= STEP + 1e-9 and s["max_shift"] <= SHIFT + 1e-9


def test_causal_cameras_do_not_change_when_frames_are_appended(cloud: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    frames = [cloud * 50 ** (t / 30) + rng.normal(size=2) for t in range(31)]
    full = plan_camera(frames, "causal")
    for k in (1, 5, 17, 30):
        np.testing.assert_array_equal(plan_camera(frames[:k], "causal"), full[:k])


def test_lookahead_starts_zooming_before_a_jump(cloud: np.ndarray) -> None:
    frames = [cloud * (1.0 if t < 10 else 100.0) for t in range(21)]
    look, causal = plan_camera(frames, "lookahead"), plan_camera(frames, "causal")
    assert look[9, 2] > causal[9, 2] * 1.5  # already zooming out on the last frame before the jump


def test_zoom_is_relative_to_the_widest_frame(cloud: np.ndarray) -> None:
    frames = [cloud * 100 ** (t / 40) for t in range(41)]
    look = plan_camera(frames, "lookahead")
    assert look[:, 3].min() == pytest.approx(1.0)
    np.testing.assert_allclose(look[:, 3], look[:, 2].max() / look[:, 2])
    causal = plan_camera(frames[::-1], "causal")  # shrinking: the widest so far is the first frame
    np.testing.assert_allclose(causal[:, 3], causal[0, 2] / causal[:, 2])
    assert causal[-1, 3] > 10


def test_the_demo_dot_at_step_zero_becomes_readable() -> None:
    """Real projections: digits pixels as 'embeddings' that start as a near-dot (untrained: all images alike)
    and spread out, shown with one global PCA basis and film-wide axes as the workflow does today."""
    from sklearn.datasets import load_digits

    from embedding_film.film.camera import axis_limits
    from embedding_film.film.projection import project_all

    x = load_digits().data[:360].astype(np.float64)
    rng = np.random.default_rng(0)
    untrained = x.mean(0) + rng.normal(scale=0.05, size=x.shape)
    embeddings = [(1 - a) * untrained + a * x for a in np.linspace(0, 1, 21) ** 2]
    frames = project_all("global", embeddings)
    fixed = axis_limits(frames, 1.15)
    fixed_cam = np.array(
        [
            (fixed["x"][0] + fixed["x"][1]) / 2,
            (fixed["y"][0] + fixed["y"][1]) / 2,
            (fixed["x"][1] - fixed["x"][0]) / 2,
            1.0,
        ]
    )
    assert spread(frames[0], fixed_cam) < 0.05  # the dot the issue describes
    for mode in MODES:
        assert_readable(frames, plan_camera(frames, mode))


def test_interpolated_cameras_lie_between_their_checkpoints(cloud: np.ndarray) -> None:
    frames = [cloud, cloud * 4 + 3]
    cams = plan_camera(frames, "lookahead")
    np.testing.assert_allclose(interpolate(cams[0], cams[1], 0.0), cams[0])
    np.testing.assert_allclose(interpolate(cams[0], cams[1], 1.0), cams[1])
    mid = interpolate(cams[0], cams[1], 0.5)
    assert mid[2] == pytest.approx(np.sqrt(cams[0, 2] * cams[1, 2]))
    np.testing.assert_allclose(mid[:2], (cams[0, :2] + cams[1, :2]) / 2)
    # a tween frame (points on the straight line) is readable under the tween camera
    between = 0.5 * frames[0] + 0.5 * frames[1]
    assert MIN_SPREAD <= spread(between, mid) <= 1.0


def test_limits_are_square_and_centred(cloud: np.ndarray) -> None:
    cam = plan_camera([cloud], "lookahead")[0]
    lim = limits(cam)
    assert lim["x"][1] - lim["x"][0] == pytest.approx(lim["y"][1] - lim["y"][0])
    assert (lim["x"][0] + lim["x"][1]) / 2 == pytest.approx(cam[0])


def test_bad_settings_are_user_errors(cloud: np.ndarray) -> None:
    with pytest.raises(UserError, match="mode"):
        plan_camera([cloud], "sideways")
    with pytest.raises(UserError, match="min_spread"):
        plan_camera([cloud], "causal", min_spread=0.9, max_spread=0.5)


# The default layout's frames of the three runs in the layout table (docs/layouts.md) (demo, bench80, finetune: the
# learned map, written by benchmarks/layouts.py; 21 / 80 / 21 checkpoints x 360 images), kept as test data.
TABLE_RUNS = np.load(Path(__file__).parents[1] / "data" / "default_layout_frames.npz")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("run", ["demo", "bench80", "finetune"])
def test_the_bound_holds_on_every_frame_of_every_run_in_the_layout_table(run: str, mode: str) -> None:
    frames = list(TABLE_RUNS[run])
    assert len(frames) in (21, 80) and frames[0].shape == (360, 2)
    assert_readable(frames, plan_camera(frames, mode))


@pytest.mark.parametrize("window", [1, 3, 5])
def test_a_causal_camera_step_from_the_previous_state_is_the_whole_plan_s(window: int) -> None:
    """Rule camera_step reads the last `window` frames and the previous checkpoint's state (through JSON),
    not every frame before it: each row equals plan_camera's causal plan of the whole film, bit for bit."""
    from embedding_film.film.camera import causal_next

    frames = list(TABLE_RUNS["demo"])
    planned = plan_camera(frames, "causal", window=window)
    state = None
    for i in range(len(frames)):
        row, state = causal_next(frames[max(0, i - window + 1) : i + 1], state, window=window)
        state = json.loads(json.dumps(state))  # as camera/{step}.json carries it
        np.testing.assert_array_equal(row, planned[i])


@pytest.mark.parametrize("window", [1, 3, 5])
def test_a_causal_camera_replayed_from_an_earlier_state_is_the_whole_plan_s(window: int) -> None:
    """Rule camera_step starts from the state of the last checkpoint of every tenth before it (rules/inputs.smk,
    camera_base) and replays the frames since (camera.causal_replay): the row and the state it hands on equal
    the step-by-step chain's, bit for bit, from any starting frame."""
    from embedding_film.film.camera import causal_next, causal_replay

    frames = list(TABLE_RUNS["demo"])
    planned = plan_camera(frames, "causal", window=window)
    states: list[dict | None] = [None]  # states[k + 1]: the state after frame k, through JSON
    for i in range(len(frames)):
        _, state = causal_next(frames[max(0, i - window + 1) : i + 1], states[-1], window=window)
        states.append(json.loads(json.dumps(state)))
    for i in range(len(frames)):
        for base in (-1, *range(max(0, i - 12), i)):  # -1: from the film's start
            given = frames[max(0, base + 2 - window) : i + 1]
            row, state = causal_replay(given, states[base + 1], i - base, window=window)
            np.testing.assert_array_equal(row, planned[i])
            assert json.loads(json.dumps(state)) == states[i + 1]
    with pytest.raises(ValueError, match="count 0 is not between 1"):
        causal_replay(frames[:2], None, 0, window=window)
