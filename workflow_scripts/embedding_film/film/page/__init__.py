"""The explorable film: one self-contained HTML page per run.

In:  a FilmData (every checkpoint's aligned 2-D projection, OOD scores, class probabilities, label issues,
     metrics, plus the eval images' labels, ids and thumbnails and the loss curve); `film_data_from_run`
     reads it from a finished run folder (results/{run}/...).
Out: film.html: opens from disk (file://), makes no network request, needs no server. A time slider over
     the checkpoints with play/pause, speed and arrow keys (points and camera interpolated between
     checkpoints), the current step's loss and metrics beside small curves (click to jump), colouring by
     class / predicted class / correct-wrong / OOD score / label-issue rank, the top-k outliers marked
     with their rank, a hover card (thumbnail, id, label, prediction, OOD score and rank), pinned images
     with their trajectory over all checkpoints. With training dynamics (FilmData.data_map, data_map.py) a
     data map beside the scatter: the training images at their running (variability, confidence) at the
     slider's checkpoint, with its own hover card and pinned paths.

Everything the page needs is inlined: the shell page.html filled with film.html's parts, film.css,
film_core.js (what this page and the comparison page, compare.py, share) and film.js beside this file, the
vendored uPlot (vendor/, see vendor/README.md), one binary payload and one thumbnail sprite sheet (with a
data map, the training images' sheet rides in the payload).
The payload is gzip-compressed little-endian arrays, base64-encoded; coordinates are quantised to uint16
per axis and step (error at most half a quantisation step: (max - min) / 65535 / 2 of that step's range), OOD
scores to uint16 of their logarithm (they span orders of magnitude near 0, where the outliers are).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedding_film.film.camera import axis_limits
from embedding_film.film.checkpoints import read_train_log
from embedding_film.film.common import UserError, atomic_path, load_json, load_npy
from embedding_film.film.layout_plan import FIRST_FIT
from embedding_film.film.page.data_map import DataMapData, choose_train_points, encode_data_map

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
VENDOR = HERE / "vendor"

# The largest side of a WebP image; the sprite sheet must fit in it.
WEBP_MAX_SIDE = 16383
RANK_MAX = 65535  # ranks are shipped as uint16; larger ranks show as ">= 65535"
OOD_FLOOR = 1e-12  # OOD scores are shipped as uint16 of log(max(score, OOD_FLOOR))


@dataclass
class FilmData:
    """Everything one film page shows. Per-checkpoint arrays are in step order (S checkpoints, N images)."""

    steps: np.ndarray  # [S] int
    projections: np.ndarray  # [S, N, 2] float32, aligned data coordinates
    labels: np.ndarray  # [N] int
    class_names: list[str]
    thumbnails: np.ndarray  # [N, h, w, 3] uint8
    ids: list[str]  # [N], e.g. "test/17"
    ood: np.ndarray  # [S, N] float, low = outlying (cleanlab's convention)
    probs: np.ndarray  # [S, N, C] float32; C == 0 without a classifier head
    label_issues: list[np.ndarray] = field(default_factory=list)  # per step, most severe first; [] = none
    metrics: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [S]
    loss_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [L]
    loss_values: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [L]
    top_k: int = 8
    limits: np.ndarray | None = None  # [S, 4] camera (x0, x1, y0, y1) per step; None = fixed, from the data
    zoom: np.ndarray | None = None  # [S] zoom factor per step; None = derived from the limits
    layout_note: str = ""
    data_map: DataMapData | None = None  # the training images' data map (training dynamics); None = no panel

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def n_images(self) -> int:
        return len(self.labels)

    def validate(self) -> None:
        """Raise ValueError naming the first field whose shape does not fit the others."""
        s, n = self.n_steps, self.n_images
        checks: list[tuple[str, tuple[int, ...], tuple[int | None, ...]]] = [
            ("projections", np.shape(self.projections), (s, n, 2)),
            ("ood", np.shape(self.ood), (s, n)),
            ("probs", np.shape(self.probs), (s, n, None)),
            ("thumbnails", np.shape(self.thumbnails), (n, None, None, 3)),
        ]
        if self.limits is not None:
            checks.append(("limits", np.shape(self.limits), (s, 4)))
        if self.zoom is not None:
            checks.append(("zoom", np.shape(self.zoom), (s,)))
        for name, shape, want in checks:
            if len(shape) != len(want) or any(w is not None and a != w for a, w in zip(shape, want)):
                raise ValueError(
                    f"FilmData.{name} has shape {shape}; expected {want} (None = any) for {s} steps, {n} images"
                )
        if s == 0 or n == 0:
            raise ValueError(f"FilmData holds {s} steps and {n} images; a film needs at least one of each")
        if len(self.ids) != n:
            raise ValueError(f"FilmData.ids has {len(self.ids)} entries for {n} images")
        if self.label_issues and len(self.label_issues) != s:
            raise ValueError(f"FilmData.label_issues has {len(self.label_issues)} entries for {s} steps (or give [])")
        for name, values in self.metrics.items():
            if len(values) != s:
                raise ValueError(f"FilmData.metrics[{name!r}] has {len(values)} values for {s} steps")
        if len(self.loss_steps) != len(self.loss_values):
            raise ValueError("FilmData.loss_steps and loss_values differ in length")
        if len(self.labels) and (np.min(self.labels) < 0 or np.max(self.labels) >= len(self.class_names)):
            raise ValueError(f"FilmData.labels run outside the {len(self.class_names)} class names")
        if np.any(np.diff(np.asarray(self.steps)) <= 0):
            raise ValueError("FilmData.steps must be strictly increasing")
        for name in ("projections", "limits", "zoom"):
            value = getattr(self, name)
            if value is not None and not np.all(np.isfinite(value)):
                raise ValueError(f"FilmData.{name} holds NaN or infinite values")
        if self.data_map is not None:
            self.data_map.validate(len(self.class_names))


# --- reading a run folder ------------------------------------------------------------------------------


LAYOUTS = {
    "pca": "PCA projection",
    "tsne": "one t-SNE map of all checkpoints",
    "umap": "AlignedUMAP",
    "param": "one learned map of all checkpoints",
}


def describe_layout(film: dict[str, Any]) -> str:
    """What the page says about the layout, from film_metrics.json (method, alignment, auto's choice)."""
    layout = film.get("layout") or {"method": "pca"}
    method = str(layout.get("method", "pca"))
    note = LAYOUTS.get(method, method)
    if method == "pca" and "align" in film:
        note += f", alignment: {film['align']}"
    if "choice" in layout:
        note += f" (auto: {layout['choice'].get('reason', '')})"
    if layout.get("placed_steps"):
        steps = layout["placed_steps"]
        note += f"; fitted on {len(layout.get('fit_steps', []))} checkpoints, {len(steps)} appended ones placed on it"
    if layout.get("refit_due"):
        note += f"; the next run refits it: {layout['refit_due']}"
    elif layout.get("refit_reason") and layout["refit_reason"] != FIRST_FIT:
        note += f"; refitted on every checkpoint because {layout['refit_reason']}"
    return note


def film_data_from_run(
    run_dir: str,
    steps: Sequence[int],
    *,
    top_k: int = 8,
    layout_note: str | None = None,
    projection_files: Sequence[str] | None = None,
) -> FilmData:
    """Read a finished run folder into a FilmData.

    Reads projection/{step}.npy, ood/{step}.npy, probs/{step}.npy, label_issues/{step}.npy and
    metrics/{step}.json for every step; data/labels.npy, data/thumbnails.npy, data/classes.json (class
    names and image ids); train_log.csv (the loss
    curve; none when missing); projection/limits.json (the frames' fixed axis limits) and
    film_metrics.json (the alignment mode, for the layout note) when present. Missing label-issue files
    mean no label issues. `projection_files` (one per step) replace projection/{step}.npy: a layout made
    elsewhere, to which the run's projection/limits.json does not apply (it is then not read).
    """
    run = Path(run_dir)
    steps = [int(s) for s in steps]
    if not steps:
        raise UserError(f"no checkpoint steps given for {run}; a film needs at least one")
    if projection_files is not None and len(projection_files) != len(steps):
        raise UserError(f"{len(projection_files)} projection files given for {len(steps)} steps of {run}")
    projection = (
        [Path(f) for f in projection_files]
        if projection_files is not None
        else [run / "projection" / f"{s}.npy" for s in steps]
    )
    missing = [str(p) for p in [*projection, *(run / "ood" / f"{s}.npy" for s in steps)] if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]} is missing ({len(missing)} files in all); run the workflow up to the film first")
    labels = load_npy(run / "data" / "labels.npy").astype(np.int64)
    classes = load_json(run / "data" / "classes.json")
    n = len(labels)

    def per_step(folder: str) -> list[np.ndarray]:
        return [load_npy(run / folder / f"{s}.npy") for s in steps]

    probs_files = [run / "probs" / f"{s}.npy" for s in steps]
    probs = (
        np.stack([load_npy(p).astype(np.float32) for p in probs_files])
        if all(p.is_file() for p in probs_files)
        else np.zeros((len(steps), n, 0), np.float32)
    )
    issue_files = [run / "label_issues" / f"{s}.npy" for s in steps]
    issues = [load_npy(p).astype(np.int64) for p in issue_files] if all(p.is_file() for p in issue_files) else []
    metric_rows = [load_json(p) if (p := run / "metrics" / f"{s}.json").is_file() else {} for s in steps]
    names = sorted({k for row in metric_rows for k, v in row.items() if k != "step" and isinstance(v, (int, float))})
    metrics = {k: np.array([float(row.get(k, math.nan)) for row in metric_rows]) for k in names}
    loss = read_train_log(run / "train_log.csv").get("loss", []) if (run / "train_log.csv").is_file() else []
    loss_steps, loss_values = np.array([p[0] for p in loss], dtype=float), np.array([p[1] for p in loss], dtype=float)

    limits = None
    if projection_files is None and (lim := run / "projection" / "limits.json").is_file():
        fixed = load_json(lim)
        limits = np.tile(np.array([*fixed["x"], *fixed["y"]], dtype=np.float64), (len(steps), 1))
    if layout_note is None:
        film = load_json(run / "film_metrics.json") if (run / "film_metrics.json").is_file() else {}
        layout_note = describe_layout(film)
        if limits is not None:
            layout_note += "; fixed axis limits (projection/limits.json)"
    return FilmData(
        steps=np.array(steps, dtype=np.int64),
        projections=np.stack([load_npy(p).astype(np.float32) for p in projection]),
        labels=labels,
        class_names=[str(c) for c in classes["names"]],
        thumbnails=load_npy(run / "data" / "thumbnails.npy"),
        ids=[str(i) for i in classes["ids"]],
        ood=np.stack(per_step("ood")).astype(np.float64),
        probs=probs,
        label_issues=issues,
        metrics=metrics,
        loss_steps=loss_steps,
        loss_values=loss_values,
        top_k=top_k,
        limits=limits,
        layout_note=layout_note,
    )


# --- encoding --------------------------------------------------------------------------------------------


def film_limits(projections: np.ndarray, margin: float = 1.1) -> np.ndarray:
    """Fixed, square camera limits [x0, x1, y0, y1] around all steps (0.5-99.5 percentiles times `margin`)."""
    limits = axis_limits([np.asarray(projections, np.float64).reshape(-1, 2)], margin)
    return np.array([*limits["x"], *limits["y"]])


def choose_points(data: FilmData, max_points: int, seed: int) -> np.ndarray:
    """The images shown: all, or a seeded sample of `max_points` that keeps every step's top-k outliers."""
    return sample_points(data.n_images, data.top_k, np.asarray(data.ood), max_points, seed)


def sample_points(n: int, top_k: int, ood: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """All n images, or a seeded sample of `max_points` that keeps the top-k outliers of every row of `ood` [rows, n]."""
    if n <= max_points:
        return np.arange(n)
    k = min(top_k, n)
    keep = np.unique(np.concatenate([np.lexsort((np.arange(n), row))[:k] for row in ood]))
    if len(keep) >= max_points:
        return np.sort(keep[:max_points])
    rest = np.setdiff1d(np.arange(n), keep)
    extra = np.random.default_rng(seed).choice(rest, max_points - len(keep), replace=False)
    return np.sort(np.concatenate([keep, extra]))


def quantise(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[S, N, 2] floats -> (uint16 [S, N, 2], per step and axis (min, scale) [S, 2, 2]): x = min + q * scale."""
    xy = np.asarray(xy, np.float64)
    lo = xy.min(axis=1)  # [S, 2]
    span = xy.max(axis=1) - lo
    scale = np.where(span > 0, span / 65535.0, 1.0)
    q = np.rint((xy - lo[:, None, :]) / scale[:, None, :])
    return np.clip(q, 0, 65535).astype("<u2"), np.stack([lo, scale], axis=2)


def ranks_from_order(order: np.ndarray, n: int, shown: np.ndarray) -> np.ndarray:
    """1-based rank of each shown image in `order` (0 = not in it), saturated at RANK_MAX, as uint16."""
    rank = np.zeros(n, dtype=np.int64)
    rank[np.asarray(order, np.int64)] = np.arange(1, len(order) + 1)
    return np.minimum(rank[shown], RANK_MAX).astype("<u2")


class Payload:
    """Named little-endian arrays packed into one buffer (4-byte aligned), described for the page."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.index: dict[str, dict[str, Any]] = {}
        self.size = 0

    def add(self, name: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        kind = {"u1": "Uint8", "<u2": "Uint16", "<u4": "Uint32", "<f4": "Float32"}[array.dtype.str.lstrip("|")]
        self.index[name] = {"type": kind, "offset": self.size, "length": int(array.size), "shape": list(array.shape)}
        self.arrays[name] = array
        self.size += array.nbytes + (-array.nbytes % 4)

    def extend(self, other: Payload, prefix: str, skip: frozenset[str] = frozenset()) -> None:
        """Append `other`'s arrays, but those named in `skip`, each named `prefix` + its name."""
        for name, array in other.arrays.items():
            if name not in skip:
                self.add(prefix + name, array)

    def gzip_base64(self) -> str:
        raw = b"".join(a.tobytes() + b"\0" * (-a.nbytes % 4) for a in self.arrays.values())
        return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def thumbnail_sheet(
    thumbnails: np.ndarray, budget: int, lossless_max: int = 16_000_000
) -> tuple[bytes, dict[str, Any]]:
    """All thumbnails in one WebP sprite sheet (row-major grid), within `budget` bytes where possible.

    Lossless when the raw pixels are small (so the page shows them exactly), else lossy; the cell size
    shrinks until the sheet fits the budget (and WebP's 16383-pixel side).
    """
    from PIL import Image

    n, h, w, _ = thumbnails.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    size = max(h, w)
    size = min(size, WEBP_MAX_SIDE // cols)
    if size < 4:
        raise UserError(f"{n} thumbnails do not fit one sprite sheet; lower max_points")
    attempts = [(size, True)] if n * size * size * 3 <= lossless_max else []
    s = size
    while s >= 8:
        attempts.append((s, False))
        s = int(s * 0.75)
    data, meta = b"", {}
    for cell, lossless in attempts:
        images = thumbnails
        if (h, w) != (cell, cell):
            images = np.stack(
                [np.asarray(Image.fromarray(t).resize((cell, cell), Image.Resampling.BILINEAR)) for t in thumbnails]
            )
        sheet = np.zeros((rows * cell, cols * cell, 3), np.uint8)
        for i, img in enumerate(images):
            r, c = divmod(i, cols)
            sheet[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = img
        buffer = io.BytesIO()
        if lossless:
            Image.fromarray(sheet).save(buffer, format="WEBP", lossless=True, quality=100, method=2)
        else:
            Image.fromarray(sheet).save(buffer, format="WEBP", quality=80, method=2)
        data = buffer.getvalue()
        meta = {"cell": cell, "cols": cols, "count": n, "lossless": lossless, "bytes": len(data)}
        if len(data) <= budget:
            break
    return data, meta


def _json_script(value: Any) -> str:
    """JSON safe inside a <script> element (no '</' and no NaN)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")


def _finite(values: Any) -> list[float | None]:
    return [float(v) if math.isfinite(float(v)) else None for v in np.asarray(values, np.float64).ravel()]


def encode(data: FilmData, shown: np.ndarray) -> tuple[Payload, dict[str, Any]]:
    """The binary payload and the page's metadata for the `shown` images."""
    s, n = data.n_steps, data.n_images
    proj = np.asarray(data.projections)[:, shown]
    q, dequant = quantise(proj)
    ood = np.asarray(data.ood, np.float64)
    payload = Payload()
    payload.add("xy", q)
    payload.add("labels", np.asarray(data.labels)[shown].astype("<u2"))
    # OOD scores span orders of magnitude near 0 (the outliers): uint16 on a log scale, 3e-4 relative error
    log_ood = np.log(np.clip(np.nan_to_num(ood, nan=1.0), OOD_FLOOR, None))
    ood_lo, ood_hi = float(log_ood.min()), float(log_ood.max())
    ood_scale = (ood_hi - ood_lo) / 65535.0 or 1.0
    payload.add("ood", np.rint((log_ood[:, shown] - ood_lo) / ood_scale).astype("<u2"))
    order = [np.lexsort((np.arange(n), row)) for row in ood]  # embedding_film.ood.top_outliers, all rows
    payload.add("ood_rank", np.stack([ranks_from_order(o, n, shown) for o in order]))
    k = min(data.top_k, n)
    position = np.full(n, -1, np.int64)
    position[shown] = np.arange(len(shown))
    payload.add("top", np.stack([position[o[:k]] for o in order]).astype("<u4"))
    has_issues = bool(data.label_issues)
    if has_issues:
        payload.add("issue_rank", np.stack([ranks_from_order(np.asarray(x), n, shown) for x in data.label_issues]))
    probs = np.asarray(data.probs)
    n_pred = probs.shape[2]
    if n_pred:
        sp = probs[:, shown]
        pred = sp.argmax(axis=2)
        payload.add("pred", pred.astype("u1" if n_pred <= 256 else "<u2"))
        payload.add(
            "prob", np.rint(np.take_along_axis(sp, pred[..., None], axis=2)[..., 0] * 255).clip(0, 255).astype("u1")
        )

    limits = (
        np.asarray(data.limits, np.float64)
        if data.limits is not None
        else np.tile(film_limits(data.projections), (s, 1))
    )
    if data.zoom is not None:
        zoom = np.asarray(data.zoom, np.float64)
    else:
        extent = np.maximum(limits[:, 1] - limits[:, 0], limits[:, 3] - limits[:, 2])
        zoom = extent.max() / np.where(extent > 0, extent, extent.max())
    meta = {
        "steps": [int(x) for x in data.steps],
        "n": len(shown),
        "n_total": n,
        "class_names": list(data.class_names),
        "ids": [data.ids[i] for i in shown],
        "dequant": np.asarray(dequant).tolist(),  # [S][axis][min, scale]
        "ood_log": [ood_lo, ood_scale],  # score = exp(min + q * scale)
        "top_k": k,
        "has_issues": has_issues,
        "n_pred_classes": n_pred,
        "limits": limits.tolist(),
        "zoom": _finite(zoom),
        "metrics": {name: _finite(v) for name, v in data.metrics.items()},
        "loss": {"steps": _finite(data.loss_steps), "values": _finite(data.loss_values)},
        "layout_note": data.layout_note,
        "arrays": payload.index,
    }
    return payload, meta


# uPlot's banner names its home page with a scheme; the page must hold no http(s) URL at all.
VENDOR_BANNERS = {
    "/*! https://github.com/leeoniya/uPlot (v1.6.32) */": "/*! uPlot v1.6.32, MIT licence, (c) 2022 Leon Sorokin, github.com/leeoniya/uPlot */"
}


def _vendor(name: str) -> str:
    text = (VENDOR / name).read_text(encoding="utf-8")
    for banner, replacement in VENDOR_BANNERS.items():
        text = text.replace(banner, replacement)
    return _inline_script(text)


def _inline_script(code: str) -> str:
    """JavaScript safe inside a <script> element."""
    return code.replace("</script", "<\\/script")


def write_page(
    out_path: str,
    parts_file: str,
    css: list[str],
    scripts: list[str],
    title: str,
    meta: dict[str, Any],
    payload: Payload,
    sheet: bytes,
) -> int:
    """Fill page.html with a page's own parts and write it atomically; its size in bytes.

    `parts_file` (film.html, compare.html) holds the page's parts of the shell, each after a
    `<!--PART:NAME-->` line, for page.html's `<!--FILM:NAME-->` placeholders. Inlines `css` and `scripts`
    (files beside this one; film_core.js goes before the scripts, uPlot before both), the metadata, the
    payload and the sprite sheet.
    """
    import html

    shell = (HERE / "page.html").read_text(encoding="utf-8")
    own = re.findall(
        r"<!--PART:(\w+)-->\n?(.*?)(?=<!--PART:|\Z)", (HERE / parts_file).read_text(encoding="utf-8"), re.DOTALL
    )
    code = "\n".join((HERE / name).read_text(encoding="utf-8") for name in ["film_core.js", *scripts])
    parts = {
        **{f"<!--FILM:{name}-->": text.rstrip("\n") for name, text in own},
        "<!--FILM:TITLE-->": html.escape(title),
        "/*FILM:CSS*/": "".join((HERE / name).read_text(encoding="utf-8") for name in css) + _vendor("uPlot.min.css"),
        "<!--FILM:META-->": f'<script type="application/json" id="film-meta">{_json_script(meta)}</script>',
        "<!--FILM:DATA-->": f'<script type="text/plain" id="film-data">{payload.gzip_base64()}</script>',
        "<!--FILM:SPRITE-->": f'<script type="text/plain" id="film-sprite">{base64.b64encode(sheet).decode("ascii")}</script>',
        "<!--FILM:VENDOR-->": f"<script>{_vendor('uPlot.iife.min.js')}</script>",
        "<!--FILM:APP-->": f"<script>{_inline_script(code)}</script>",
    }
    missing = sorted(set(re.findall(r"<!--FILM:\w+-->", shell)) - set(parts)) + [
        key for key in parts if key not in shell
    ]
    if missing:
        raise RuntimeError(f"page.html and {parts_file} do not match: {missing}")
    page = re.sub("|".join(re.escape(key) for key in parts), lambda m: parts[m.group(0)], shell)
    encoded = page.encode("utf-8")
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(encoded)
    return len(encoded)


def page_summary(
    out_path: str, size: int, points: np.ndarray, total: int, steps: Any, thumbnail: dict[str, Any]
) -> dict[str, Any]:
    """What build_film_html and build_compare_html return (and log)."""
    log.info("wrote %s: %.1f MB, %d of %d images, checkpoints: %s", out_path, size / 1e6, len(points), total, steps)
    return {
        "bytes": size,
        "points_shown": len(points),
        "points_total": int(total),
        "subsampled": len(points) < total,
        "steps": steps,
        "thumbnail": thumbnail,
    }


def build_film_html(
    data: FilmData,
    out_path: str,
    *,
    max_points: int = 10_000,
    title: str = "Embedding film",
    seed: int = 0,
    thumbnail_budget: int = 8_000_000,
) -> dict[str, Any]:
    """Write the film page to `out_path` (atomically) and return a summary.

    Above `max_points` images a seeded sample is shown (every step's top-k outliers kept) and the page says
    how many; the data map's training images (data.data_map) are sampled the same way, keeping the likeliest
    label errors. `thumbnail_budget` bounds the sprite sheet's bytes (before base64); the training images'
    thumbnails get a sheet of their own (their own cell size and budget), carried in the payload as "dm.sprite".
    Returns {"bytes", "points_shown", "points_total", "subsampled", "steps", "thumbnail"}, and "data_map"
    ({"points_shown", "points_total", "thumbnail"}) with a data map.
    """
    data.validate()
    shown = choose_points(data, max_points, seed)
    payload, meta = encode(data, shown)
    if data.data_map is not None:
        train_shown = choose_train_points(data.data_map.label_error_rank, max_points, seed)
        arrays, meta["data_map"] = encode_data_map(data.data_map, train_shown, data.steps)
        q, dequant = quantise(arrays.pop("xy"))
        meta["data_map"]["dequant"] = np.asarray(dequant).tolist()
        payload.add("dm.xy", q)
        for name, array in arrays.items():
            payload.add(f"dm.{name}", array)
        dm_sheet, meta["data_map"]["sprite"] = thumbnail_sheet(
            np.asarray(data.data_map.thumbnails)[train_shown], thumbnail_budget
        )
        payload.add("dm.sprite", np.frombuffer(dm_sheet, np.uint8))  # WebP bytes: the page makes a blob: image
    sheet, sheet_meta = thumbnail_sheet(np.asarray(data.thumbnails)[shown], thumbnail_budget)
    subsampled = len(shown) < data.n_images
    meta["title"] = title
    meta["sprite"] = sheet_meta
    meta["note"] = (
        f"Showing {len(shown):,} of {data.n_images:,} images (seeded random sample; every checkpoint's "
        f"top-{meta['top_k']} outliers kept; ranks are over all images)."
        if subsampled
        else ""
    )
    size = write_page(out_path, "film.html", ["film.css"], ["data_map.js", "film.js"], title, meta, payload, sheet)
    summary = page_summary(out_path, size, shown, data.n_images, int(data.n_steps), sheet_meta)
    if data.data_map is not None:
        summary["data_map"] = {
            "points_shown": meta["data_map"]["n"],
            "points_total": data.data_map.n_images,
            "thumbnail": meta["data_map"]["sprite"],
        }
    return summary


def read_page(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray], bytes]:
    """(metadata, payload arrays, sprite sheet bytes) of a written film page: what the page itself decodes."""
    page = Path(path).read_text(encoding="utf-8")

    def script(element_id: str) -> str:
        found = re.search(f'<script type="[^"]+" id="{element_id}">(.*?)</script>', page, re.S)
        if not found:
            raise ValueError(f"{path} has no {element_id} element")
        return found.group(1)

    meta = json.loads(script("film-meta"))
    raw = gzip.decompress(base64.b64decode(script("film-data")))
    types = {"Uint8": "u1", "Uint16": "<u2", "Uint32": "<u4", "Float32": "<f4"}
    arrays = {
        name: np.frombuffer(raw, dtype=types[d["type"]], count=d["length"], offset=d["offset"]).reshape(d["shape"])
        for name, d in meta["arrays"].items()
    }
    return meta, arrays, base64.b64decode(script("film-sprite"))


def dequantised_positions(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """[S, n, 2] float64 data coordinates as the page computes them (error at most scale / 2 per axis and step)."""
    dq = np.asarray(meta["dequant"], np.float64)  # [S, axis, (min, scale)]
    return dq[:, None, :, 0] + arrays["xy"].astype(np.float64) * dq[:, None, :, 1]


def decoded_ood(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """[S, n] OOD scores as the page computes them (relative error at most about 2e-4 over the demo's range)."""
    lo, scale = meta["ood_log"]
    return np.exp(lo + arrays["ood"].astype(np.float64) * scale)


def data_map_positions(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """[T, n, 2] (variability, confidence) of a written page's data map, as the page computes them."""
    dq = np.asarray(meta["data_map"]["dequant"], np.float64)
    return dq[:, None, :, 0] + arrays["dm.xy"].astype(np.float64) * dq[:, None, :, 1]
