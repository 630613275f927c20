"""A camera for the film: per-frame square axis limits that keep every frame readable and move smoothly.

With one layout and film-wide axes, the early checkpoints of a run are a dot (before the model has learned,
its embeddings barely differ). The camera zooms with the cloud instead:
  readable  on every frame, the central 90 % of the points (the 5th to 95th percentile on each axis) span at
            least `min_spread` of the plot's width or height, and fit inside it (at most `max_spread`);
  smooth    from one frame to the next the half-size changes by at most `max_zoom_change` (relative) and the
            centre moves by at most `max_shift` times the half-size, wherever the readability bounds allow it
            (they win where the cloud jumps faster than the camera may follow);
  framed    within those bounds the camera follows the size that shows (nearly) all points, the 0.5th to
            99.5th percentile times `margin`, as axis_limits below does for the fixed film-wide axes.
Two modes: "lookahead" plans the whole film at once (the camera starts zooming before a jump, so the zoom is
spread over more frames); "causal" decides frame i from frames 0..i only, so appending checkpoints never
changes an earlier frame's camera (a live-growing film).

A camera is an array [S, 4]: x centre, y centre, half-size, zoom. `zoom` is the widest frame's half-size
(so far, in causal mode) over this frame's: 1 = the widest view, 4 = magnified four times, for an honest
"zoom x N" cue or a scale bar. The movement metrics keep using data coordinates, never the camera.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedding_film.film.common import UserError

MODES = ("lookahead", "causal")
CENTRAL = (5.0, 95.0)  # the "central 90 %" of the points, per axis
ALMOST_ALL = (0.5, 99.5)  # what the camera tries to show (as project.axis_limits)


def _extents(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-axis 5th/95th and 0.5th/99.5th percentiles of one frame's points [N, 2]."""
    p = np.percentile(
        np.asarray(points, dtype=np.float64), [CENTRAL[0], CENTRAL[1], ALMOST_ALL[0], ALMOST_ALL[1]], axis=0
    )
    return p[0], p[1], p[2], p[3]


def _needed_rates(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per transition i -> i+1, the least change per frame that a sequence inside the corridor
    [low_j, high_j] must be allowed there: the largest average rate, over every window a <= i < b, needed to
    go from one side of the corridor at a to the other at b. With these rates (or more) a sequence exists."""
    n = len(low)
    need = np.zeros(max(n - 1, 0))
    for a in range(n - 1):
        gap = np.arange(1, n - a)
        worst = np.maximum(low[a + 1 :] - high[a], low[a] - high[a + 1 :]) / gap  # window a..b, b > a
        need[a:] = np.maximum(need[a:], np.maximum.accumulate(worst[::-1])[::-1])  # max over b > i
    return need


def _track(target: np.ndarray, low: np.ndarray, high: np.ndarray, rate: np.ndarray, lookahead: bool) -> np.ndarray:
    """A sequence x inside [low_i, high_i] that follows `target` as closely as it can while changing by at
    most rate_i between frames i and i+1.

    Look-ahead: where the corridor forces faster changes than `rate` allows, the allowed rate is raised to the
    least that any sequence inside the corridor needs there (`_needed_rates`), so the change is spread
    over as many frames as the corridor permits. The bounds are then narrowed to what the rate can reach
    (forward and backward), and the sequence follows the target greedily inside them.
    Causal: frame i depends on frames <= i only; where the corridor moves faster than the rate, the corridor
    wins (the nearest value inside it).
    """
    n = len(target)
    lo, hi = low.astype(np.float64).copy(), high.astype(np.float64).copy()
    rate = rate.astype(np.float64).copy()
    if lookahead and n > 1:
        rate[:-1] = np.maximum(rate[:-1], _needed_rates(lo, hi) * (1 + 1e-9) + 1e-12)
        for i in range(1, n):
            hi[i] = min(hi[i], max(lo[i], hi[i - 1] + rate[i - 1]))
            lo[i] = max(lo[i], min(hi[i], lo[i - 1] - rate[i - 1]))
        for i in range(n - 2, -1, -1):
            hi[i] = min(hi[i], max(lo[i], hi[i + 1] + rate[i]))
            lo[i] = max(lo[i], min(hi[i], lo[i + 1] - rate[i]))
    x = np.empty(n)
    x[0] = np.clip(target[0], lo[0], hi[0])
    for i in range(1, n):
        a, b = max(lo[i], x[i - 1] - rate[i - 1]), min(hi[i], x[i - 1] + rate[i - 1])
        x[i] = np.clip(target[i], a, b) if a <= b else np.clip(x[i - 1], lo[i], hi[i])
    return x


def _smooth(values: np.ndarray, window: int, lookahead: bool) -> np.ndarray:
    """Mean over `window` frames: centred with look-ahead, trailing (frames <= i only) in causal mode."""
    if window <= 1:
        return values.copy()
    out = np.empty_like(values)
    half = window // 2
    for i in range(len(values)):
        lo, hi = (max(0, i - half), i + half + 1) if lookahead else (max(0, i - window + 1), i + 1)
        out[i] = values[lo:hi].mean()
    return out


def plan_camera(
    frames: Sequence[np.ndarray],
    mode: str = "lookahead",
    min_spread: float = 0.30,
    max_spread: float = 0.90,
    max_zoom_change: float = 0.15,
    max_shift: float = 0.10,
    margin: float = 1.15,
    window: int = 3,
) -> np.ndarray:
    """Per-frame camera [S, 4] (x centre, y centre, half-size, zoom) for frames [N, 2] in film order.

    In: the frames' data coordinates; `mode` lookahead or causal; the readability band (`min_spread`,
    `max_spread`: share of the plot's width the central 90 % may span), the smoothness limits per frame
    (`max_zoom_change` relative half-size change, `max_shift` centre shift in half-sizes), `margin` around
    the 0.5-99.5 % extent that the camera tries to show, `window` frames of smoothing of that wish.
    """
    if mode not in MODES:
        raise UserError(f"camera mode '{mode}' is unknown; use one of {MODES}.")
    if not 0 < min_spread < max_spread <= 1:
        raise UserError(
            f"camera spreads must satisfy 0 < min_spread ({min_spread}) < max_spread ({max_spread}) <= 1; fix them."
        )
    if not frames:
        return np.zeros((0, 4))
    lookahead = mode == "lookahead"
    ext = [_extents(f) for f in frames]
    q05 = np.array([e[0] for e in ext])
    q95 = np.array([e[1] for e in ext])
    q005 = np.array([e[2] for e in ext])
    q995 = np.array([e[3] for e in ext])
    central = np.maximum((q95 - q05).max(axis=1), 1e-12)  # the central 90 %'s larger side
    wish = np.maximum((q995 - q005).max(axis=1), central) * margin / 2
    # half-size band: spread = central / (2 h) must stay within [min_spread, max_spread]
    low, high = np.log(central / (2 * max_spread)), np.log(central / (2 * min_spread))
    rate = np.full(len(frames), math.log1p(max_zoom_change))
    target = np.clip(_smooth(np.log(wish), window, lookahead), low, high)
    half = np.exp(_track(target, low, high, rate, lookahead))
    centre = np.empty((len(frames), 2))
    for axis in range(2):
        mid = (q05[:, axis] + q95[:, axis]) / 2
        # keep the central 90 % inside the frame: q95 - h <= c <= q05 + h (with a 2 % edge)
        lo_c, hi_c = q95[:, axis] - 0.98 * half, q05[:, axis] + 0.98 * half
        lo_c, hi_c = np.minimum(lo_c, mid), np.maximum(hi_c, mid)
        shift = max_shift * np.minimum(half, np.append(half[1:], half[-1]))
        centre[:, axis] = _track(_smooth(mid, window, lookahead), lo_c, hi_c, shift, lookahead)
    widest = np.maximum.accumulate(half) if not lookahead else np.full(len(half), half.max())
    return np.column_stack([centre, half, widest / half])


def causal_next(
    frames: Sequence[np.ndarray],
    state: dict[str, Any] | None,
    min_spread: float = 0.30,
    max_spread: float = 0.90,
    max_zoom_change: float = 0.15,
    max_shift: float = 0.10,
    margin: float = 1.15,
    window: int = 3,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The causal camera row of the last of `frames`, one step of plan_camera(..., "causal"), and its state.

    In: the last `window` frames up to this one (fewer at the film's start), `state` the previous frame's
    (None for the film's first) and plan_camera's settings. Out: the camera row [x centre, y centre,
    half-size, zoom], identical to plan_camera's for the whole film so far, and the state the next frame
    needs. So a frame's camera reads the few frames before it and one small state, not every frame.
    """
    ext = [_extents(f) for f in frames[-window:]]
    q05, q95, q005, q995 = (np.array([e[k] for e in ext]) for k in range(4))
    central = np.maximum((q95 - q05).max(axis=1), 1e-12)
    wish = np.maximum((q995 - q005).max(axis=1), central) * margin / 2
    low, high = math.log(central[-1] / (2 * max_spread)), math.log(central[-1] / (2 * min_spread))
    target = min(max(float(np.log(wish).mean()), low), high)  # np.clip of the trailing mean, as _smooth
    if state is None:
        log_half = min(max(target, low), high)
    else:
        rate = math.log1p(max_zoom_change)
        a, b = max(low, state["log_half"] - rate), min(high, state["log_half"] + rate)
        log_half = min(max(target, a), b) if a <= b else min(max(state["log_half"], low), high)
    half = float(np.exp(np.array([log_half]))[0])
    centre = []
    for axis in range(2):
        mid = (q05[:, axis] + q95[:, axis]) / 2
        lo_c, hi_c = q95[-1, axis] - 0.98 * half, q05[-1, axis] + 0.98 * half
        lo_c, hi_c = min(lo_c, mid[-1]), max(hi_c, mid[-1])
        wanted = float(mid.mean())
        if state is None:
            centre.append(min(max(wanted, lo_c), hi_c))
        else:
            shift = max_shift * min(state["half"], half)
            a, b = max(lo_c, state["centre"][axis] - shift), min(hi_c, state["centre"][axis] + shift)
            centre.append(min(max(wanted, a), b) if a <= b else min(max(state["centre"][axis], lo_c), hi_c))
    widest = half if state is None else max(state["widest"], half)
    row = np.array([centre[0], centre[1], half, widest / half])
    return row, {"log_half": log_half, "half": half, "centre": centre, "widest": widest}


def causal_replay(
    frames: Sequence[np.ndarray], state: dict[str, Any] | None, count: int, **settings: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    """The causal camera row of the last of `frames` and its state, replaying the last `count` frames one
    causal_next at a time from `state`, the camera state of the frame before them (None: they start the film).
    `frames` also holds the window - 1 frames before those (fewer at the film's start). So a frame's camera
    can start from the state of any frame before it, not only the previous one: the same row, bit for bit."""
    if not 1 <= count <= len(frames):
        raise ValueError(f"count {count} is not between 1 and the {len(frames)} frames given")
    row = np.empty(0)
    for k in range(len(frames) - count, len(frames)):
        row, state = causal_next(frames[: k + 1], state, **settings)
    assert state is not None
    return row, state


def causal_view(
    frames: Sequence[np.ndarray],
    state: dict[str, Any] | None,
    count: int,
    step: int,
    settings: dict[str, Any],
    margin: float,
) -> dict[str, Any]:
    """A causal camera file's contents for the last of `frames` (causal_replay's arguments, `settings` the
    config's camera section): {"<step>": its view (the format of camera.json), "state": its camera state,
    where the cameras after it can start from}."""
    row, new_state = causal_replay(
        frames,
        state,
        count,
        min_spread=settings["min_spread"],
        max_spread=settings["max_spread"],
        max_zoom_change=settings["max_zoom_change"],
        max_shift=settings["max_shift"],
        margin=margin,
        window=settings["window"],
    )
    return {**views(frames[-1:], row[None, :], [step]), "state": new_state}


def limits(camera: np.ndarray) -> dict[str, list[float]]:
    """One camera row as axis limits in the format of projection/limits.json: {"x": [x0, x1], "y": [y0, y1]}."""
    cx, cy, h = (float(v) for v in camera[:3])
    return {"x": [cx - h, cx + h], "y": [cy - h, cy + h]}


def interpolate(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """The camera of a tween frame a fraction `alpha` of the way from camera row `a` to row `b`: centre
    linear, half-size and zoom geometric (a steady zoom rate)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    centre = (1 - alpha) * a[:2] + alpha * b[:2]
    half = math.exp((1 - alpha) * math.log(a[2]) + alpha * math.log(b[2]))
    zoom = math.exp((1 - alpha) * math.log(a[3]) + alpha * math.log(b[3]))
    return np.array([centre[0], centre[1], half, zoom])


def spread(points: np.ndarray, camera: np.ndarray) -> float:
    """Share of the plot's width or height (the larger) that the central 90 % of `points` spans under `camera`."""
    q05, q95, _, _ = _extents(points)
    return float((q95 - q05).max() / (2 * float(camera[2])))


def camera_metrics(frames: Sequence[np.ndarray], cameras: np.ndarray) -> list[dict[str, float]]:
    """Per frame: spread (see `spread`) and zoom, the two columns metrics.csv gets."""
    return [{"spread": spread(f, c), "zoom": float(c[3])} for f, c in zip(frames, cameras)]


def smoothness(cameras: np.ndarray) -> dict[str, float]:
    """The largest frame-to-frame change of a camera sequence: relative half-size change and centre shift
    (in half-sizes of the smaller of the two frames)."""
    if len(cameras) < 2:
        return {"max_zoom_change": 0.0, "max_shift": 0.0}
    h = cameras[:, 2]
    ratio = np.maximum(h[1:] / h[:-1], h[:-1] / h[1:]) - 1
    shift = np.abs(np.diff(cameras[:, :2], axis=0)).max(axis=1) / np.minimum(h[1:], h[:-1])
    return {"max_zoom_change": float(ratio.max()), "max_shift": float(shift.max())}


# ------------------------------------------------------------------------------------------- the rules


def views(frames: Sequence[np.ndarray], cameras: np.ndarray, steps: Sequence[int]) -> dict[str, dict[str, object]]:
    """{step: {"x", "y", "zoom", "spread"}}: what each frame shows (the format of camera.json)."""
    return {
        str(step): {**limits(cam), "zoom": float(cam[3]), "spread": spread(frame, cam)}
        for step, frame, cam in zip(steps, frames, cameras)
    }


def view_row(view: dict[str, object]) -> np.ndarray:
    """A view ({"x", "y", "zoom"}) as a camera row [x centre, y centre, half-size, zoom]."""
    (x0, x1), (y0, y1) = view["x"], view["y"]  # type: ignore[misc]
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2, float(view.get("zoom", 1.0))])  # type: ignore[arg-type]


def between_views(a: dict[str, object], b: dict[str, object], alpha: float) -> dict[str, object]:
    """The view of a tween frame a fraction `alpha` from view `a` to view `b` (see interpolate)."""
    row = interpolate(view_row(a), view_row(b), alpha)
    return {**limits(row), "zoom": float(row[3])}


def read_view(path: str, step: int) -> dict[str, object]:
    """A frame's view from a camera file (camera.json, camera/{step}.json, a frame's frames/{step}.json) or the
    fixed limits.json (zoom 1)."""
    from embedding_film.film.common import load_json

    data = load_json(path)
    return {**data, "zoom": 1.0} if "x" in data else data[str(step)]


# ---------------------------------------------------------------- from rule frame_limits


def axis_limits(projections: Sequence[np.ndarray], margin: float) -> dict[str, list[float]]:
    """Square, fixed axis limits around the anchor projection(s): the largest extent times `margin`."""
    points = np.concatenate([np.asarray(p, dtype=np.float64) for p in projections])
    low, high = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    centre = (low + high) / 2
    half = float(max(high - low) / 2 * margin) or 1.0
    return {"x": [centre[0] - half, centre[0] + half], "y": [centre[1] - half, centre[1] + half]}
