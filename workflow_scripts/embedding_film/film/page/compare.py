"""Runs side by side on a common clock: one self-contained comparison page.

In:  a CompareData: one FilmData per run (all evaluated on the same images), the labels of a common clock's
     ticks and, per tick and run, the checkpoint shown (-1 = that run has none yet); `compare_data_from_runs`
     reads it from finished run folders.
Out: a page like film.html (compare.html, compare.js, compare.css beside this file, with film_core.js,
     film.css and uPlot): one panel per run (wrapped to rows of three), one slider over the ticks with
     play/pause, speed and arrow keys (points and cameras interpolated between ticks where both show a
     checkpoint), each panel titled with its run and the step it shows; one colour legend; hovering an image
     rings it in every panel with one card (per run: prediction, OOD score and rank); pins (click or id)
     draw the image's trajectory in every panel, one vertex per checkpoint of that run; a per-run table of
     loss and metrics at the current tick; loss and metric curves, one series per run, on the common clock.

The encoding is the single-run page's, per run (`encode`): one payload holding every run's arrays under
"r{index}.", one thumbnail sprite sheet for the images all runs share, the same subsample in every panel.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedding_film.film.page import (
    FilmData,
    Payload,
    _finite,
    encode,
    film_data_from_run,
    film_limits,
    page_summary,
    sample_points,
    thumbnail_sheet,
    write_page,
)

# What a run shares with the others and the page therefore holds once, not per run.
SHARED_META = ("n", "n_total", "ids", "class_names", "arrays", "layout_note")


@dataclass
class CompareData:
    """Several runs' films on a common clock of T ticks (R runs; run r has S_r checkpoints)."""

    runs: list[str]  # [R] names, as the panels are titled
    films: list[FilmData]  # [R] each run's film; the same eval images (labels, class names, ids, thumbnails)
    ticks: list[str]  # [T] labels of the clock's ticks, e.g. "step 200" or "40 % of training"
    shown: np.ndarray  # [T, R] int: the index into run r's steps shown at tick t; -1 = no checkpoint yet
    clock: str  # which clock, e.g. "the same training step"
    layout_note: str  # shared layout or one per run, and what may be compared
    shared_layout: bool = False  # True: one camera for every panel (film_limits over all runs), so positions compare

    def validate(self) -> None:
        """Raise ValueError naming the run (or field) that does not fit."""
        r_count = len(self.runs)
        if r_count == 0 or len(self.films) != r_count:
            raise ValueError(
                f"CompareData holds {r_count} run names and {len(self.films)} films; give one film per run, at least one"
            )
        if len(set(self.runs)) != r_count or not all(isinstance(name, str) and name for name in self.runs):
            raise ValueError(f"CompareData.runs must be distinct, non-empty names: {self.runs}")
        first, name0 = self.films[0], self.runs[0]
        for name, film in zip(self.runs, self.films):
            try:
                film.validate()
            except ValueError as err:
                raise ValueError(f"run {name!r}: {err}") from None
            same = {
                "labels": np.array_equal(film.labels, first.labels),
                "class names": list(film.class_names) == list(first.class_names),
                "image ids": list(film.ids) == list(first.ids),
                "thumbnails": np.array_equal(film.thumbnails, first.thumbnails),
            }
            if differ := [what for what, ok in same.items() if not ok]:
                raise ValueError(
                    f"run {name!r} was evaluated on other images than run {name0!r} (its {', '.join(differ)} differ); "
                    "a comparison needs the same eval set in every run"
                )
        shown = np.asarray(self.shown)
        if shown.shape != (len(self.ticks), r_count) or len(self.ticks) == 0:
            raise ValueError(
                f"CompareData.shown has shape {shown.shape}; expected ({len(self.ticks)} ticks, {r_count} runs), at least one tick"
            )
        if not np.issubdtype(shown.dtype, np.integer):
            raise ValueError(f"CompareData.shown must hold integers (checkpoint indices, -1 = none), not {shown.dtype}")
        for r, (name, film) in enumerate(zip(self.runs, self.films)):
            column = shown[:, r]
            if column.min() < -1 or column.max() >= film.n_steps:
                raise ValueError(
                    f"run {name!r}: CompareData.shown runs outside -1 .. {film.n_steps - 1} (its checkpoints)"
                )
            started = column[column >= 0]
            if len(started) == 0:
                raise ValueError(f"run {name!r} shows no checkpoint at any tick")
            if np.any(column[np.argmax(column >= 0) :] < 0) or np.any(np.diff(started) < 0):
                raise ValueError(
                    f"run {name!r}: CompareData.shown must not go back in time "
                    "(-1 only before its first checkpoint, then non-decreasing)"
                )


# --- common clocks --------------------------------------------------------------------------------------


def same_step_clock(steps: Sequence[Sequence[int]]) -> tuple[list[str], np.ndarray]:
    """(ticks, shown) of the clock "the same training step": a tick at every step at which any run has a
    checkpoint; each run shows its last checkpoint at or before it (-1 before its first)."""
    union = sorted({int(s) for run in steps for s in run})
    shown = np.stack([np.searchsorted(np.asarray(run), union, side="right") - 1 for run in steps], axis=1)
    return [f"step {s}" for s in union], shown.astype(np.int64)


def fraction_clock(steps: Sequence[Sequence[int]], n_ticks: int | None = None) -> tuple[list[str], np.ndarray]:
    """(ticks, shown) of the clock "the same fraction of each run's training": `n_ticks` (default: the most
    checkpoints of any run) fractions from 0 to 1 of each run's last checkpoint step; each run shows its last
    checkpoint at or before that fraction (-1 before its first)."""
    n_ticks = n_ticks or max(len(run) for run in steps)
    fractions = np.linspace(0.0, 1.0, n_ticks)
    columns = []
    for run in steps:
        at = np.asarray(run, np.float64)
        done = at / at[-1] if at[-1] > 0 else np.zeros_like(at)
        columns.append(np.searchsorted(done, fractions + 1e-9, side="right") - 1)
    return [f"{100 * f:.0f} % of training" for f in fractions], np.stack(columns, axis=1).astype(np.int64)


def common_clock(steps: Sequence[Sequence[int]], clock: str = "auto") -> tuple[str, list[str], np.ndarray]:
    """(which clock, ticks, [T, R] checkpoint index each run shows) of a comparison: `step` (same_step_clock),
    `fraction` (fraction_clock), or `auto`: step when every run ends at the same step, else fraction. Ticks
    that would show the same checkpoints as the one before are merged."""
    if clock == "auto":
        clock = "step" if len({run[-1] for run in steps}) == 1 else "fraction"
    ticks, shown = same_step_clock(steps) if clock == "step" else fraction_clock(steps)
    keep = [t for t in range(len(ticks)) if t == 0 or list(shown[t]) != list(shown[t - 1])]
    return clock, [ticks[t] for t in keep], shown[keep]


# --- reading run folders ---------------------------------------------------------------------------------


def compare_data_from_runs(
    run_dirs: Sequence[str],
    names: Sequence[str],
    steps: Sequence[Sequence[int]],
    shown: Any,
    ticks: Sequence[str],
    clock: str,
    layout_note: str,
    projections: Sequence[Sequence[str]] | None = None,
    top_k: int = 8,
    shared_layout: bool = False,
) -> CompareData:
    """Read finished run folders into a CompareData (film_data_from_run per run, then validated).

    `projections[r][i]`, when given, replaces run r's projection/{steps[r][i]}.npy (a shared layout written
    elsewhere, e.g. results/compare/{name}/projection/{run}/{step}.npy); the runs' own projection/limits.json
    are then not read. `shown` is [ticks, runs] as in CompareData. The runs' thumbnails, identical once
    validated, are kept once in memory.
    """
    if not len(run_dirs) == len(names) == len(steps):
        raise ValueError(
            f"{len(run_dirs)} run folders, {len(names)} names and {len(steps)} step lists; give one of each per run"
        )
    if projections is not None and len(projections) != len(run_dirs):
        raise ValueError(f"{len(projections)} projection lists for {len(run_dirs)} runs")
    films = [
        film_data_from_run(
            run_dir,
            run_steps,
            top_k=top_k,
            layout_note="",
            projection_files=None if projections is None else projections[r],
        )
        for r, (run_dir, run_steps) in enumerate(zip(run_dirs, steps))
    ]
    data = CompareData(
        runs=[str(n) for n in names],
        films=films,
        ticks=[str(t) for t in ticks],
        shown=np.asarray(shown, dtype=np.int64),
        clock=clock,
        layout_note=layout_note,
        shared_layout=shared_layout,
    )
    data.validate()
    for film in films[1:]:
        film.thumbnails = films[0].thumbnails
    return data


# --- encoding --------------------------------------------------------------------------------------------


def clock_position(steps: np.ndarray, column: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Where training steps `at` of one run fall on the common clock, in ticks (NaN outside its checkpoints).

    Each checkpoint sits at the first tick that shows it (`column`: that run's column of `shown`); steps
    between two checkpoints are placed linearly between their ticks. Exact for a clock of the same steps;
    within a tick of the truth for a clock of fractions of training.
    """
    first: dict[int, int] = {}
    for tick, c in enumerate(np.asarray(column).tolist()):
        if c >= 0:
            first.setdefault(c, tick)
    order = sorted(first)
    xs = np.asarray(steps, np.float64)[order]
    return np.interp(
        np.asarray(at, np.float64), xs, np.array([first[c] for c in order], np.float64), left=math.nan, right=math.nan
    )


def clock_curves(film: FilmData, column: np.ndarray) -> dict[str, Any]:
    """The run's loss and metric curves with x on the common clock: {"loss": [x, y], "metrics": {name: [x, y]}},
    points outside the run's shown checkpoints left out (x ascending, as uPlot.join wants)."""

    def table(at: np.ndarray, values: np.ndarray) -> list[list[float | None]]:
        x = clock_position(film.steps, column, at)
        keep = np.isfinite(x)
        return [_finite(x[keep]), _finite(np.asarray(values, np.float64)[keep])]

    return {
        "loss": table(film.loss_steps, film.loss_values),
        "metrics": {name: table(film.steps, values) for name, values in film.metrics.items()},
    }


def build_compare_html(
    data: CompareData,
    out_path: str,
    *,
    max_points: int = 10_000,
    title: str = "Runs compared",
    seed: int = 0,
    thumbnail_budget: int = 8_000_000,
) -> dict[str, Any]:
    """Write the comparison page to `out_path` (atomically) and return a summary.

    Above `max_points` images one seeded sample is shown in every panel (every run's every checkpoint's
    top-k outliers kept), and the page says how many. With `data.shared_layout` every panel gets one camera
    (film_limits over all runs' projections; the films' own limits and zoom are not used), else each panel
    its film's (per-checkpoint limits when given, else film_limits of its own projections).
    Returns {"bytes", "points_shown", "points_total", "subsampled", "steps" (checkpoints per run), "thumbnail",
    "panels", "ticks"}.
    """
    data.validate()
    films = data.films
    first = films[0]
    ood_rows = np.concatenate([np.asarray(f.ood) for f in films])
    points = sample_points(first.n_images, max(f.top_k for f in films), ood_rows, max_points, seed)
    if data.shared_layout:
        limits = film_limits(np.concatenate([np.asarray(f.projections) for f in films]))
        films = [dataclasses.replace(f, limits=np.tile(limits, (f.n_steps, 1)), zoom=None) for f in films]
    payload = Payload()
    run_meta = []
    for r, film in enumerate(films):
        run_payload, meta = encode(film, points)
        payload.extend(run_payload, f"r{r}.", skip=frozenset({"labels"}) if r else frozenset())
        for key in SHARED_META:
            meta.pop(key)
        meta["clock_curves"] = clock_curves(film, np.asarray(data.shown)[:, r])
        run_meta.append(meta)
    sheet, sheet_meta = thumbnail_sheet(np.asarray(first.thumbnails)[points], thumbnail_budget)
    page_meta = {
        "title": title,
        "runs": list(data.runs),
        "ticks": list(data.ticks),
        "shown": np.asarray(data.shown).tolist(),
        "clock": data.clock,
        "layout_note": data.layout_note,
        "shared_layout": bool(data.shared_layout),
        "n": len(points),
        "n_total": first.n_images,
        "ids": [first.ids[i] for i in points],
        "class_names": list(first.class_names),
        "films": run_meta,
        "sprite": sheet_meta,
        "arrays": payload.index,
        "note": (
            f"Showing {len(points):,} of {first.n_images:,} images in every panel (seeded random sample; every "
            "run's every checkpoint's top-k outliers kept; ranks are over all images)."
            if len(points) < first.n_images
            else ""
        ),
    }
    size = write_page(
        out_path, "compare.html", ["film.css", "compare.css"], ["compare.js"], title, page_meta, payload, sheet
    )
    summary = page_summary(out_path, size, points, first.n_images, [int(f.n_steps) for f in films], sheet_meta)
    return {**summary, "panels": len(films), "ticks": len(data.ticks)}


def run_view(
    meta: dict[str, Any], arrays: dict[str, np.ndarray], r: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Run r's metadata and arrays of a comparison page read by read_page, as a single film page holds them
    (so that dequantised_positions and decoded_ood apply)."""
    run_meta = {**meta["films"][r], **{key: meta[key] for key in ("n", "n_total", "ids", "class_names")}}
    prefix = f"r{r}."
    run_arrays = {name[len(prefix) :]: a for name, a in arrays.items() if name.startswith(prefix)}
    run_arrays["labels"] = arrays["r0.labels"]
    return run_meta, run_arrays
