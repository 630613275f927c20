"""The film's metrics table: every checkpoint's metrics in one CSV, and the film-level summary (film_metrics.json)."""

import csv
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedding_film.film.camera import spread, view_row
from embedding_film.film.common import atomic_path, load_json, load_npy, save_json
from embedding_film.film.layout_plan import refit_due
from embedding_film.film.metrics import BASIS_GAP_WARNING, COLUMNS, temporal_stability

log = logging.getLogger(__name__)


def write_metrics_table(
    step_files: Sequence[str],
    embeddings: Sequence[str],
    projections: Sequence[str],
    out_csv: str,
    out_json: str,
    align: str,
    skipped: Sequence[dict[str, Any]] = (),
    views: Sequence[dict[str, Any]] | None = None,
    layout: dict[str, Any] | None = None,
    targets: dict[str, float] | None = None,
) -> dict[str, Any]:
    """metrics.csv (one row per step) and film_metrics.json (whole-film stability). `views`: each frame's view
    (its axis limits and zoom), whose spread (the share of the plot the central 90 % spans) and zoom become
    columns; `layout`: the film-wide layout's method and, under auto, its choice; with its fit steps and the
    film's `targets` (projection.auto's min_*), which checkpoints were placed on it and whether a refit is due
    (layout_plan.refit_due)."""
    rows = [load_json(p) for p in step_files]
    for row, view, projection in zip(rows, views or [], projections):
        row["spread"] = spread(load_npy(projection), view_row(view))
        row["zoom"] = float(view.get("zoom", 1.0))
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    high, low = [load_npy(p, mmap=True) for p in embeddings], [load_npy(p) for p in projections]
    film = temporal_stability(high, low)
    film["align"] = align
    film["skipped"] = list(skipped)
    film["layout"] = layout or {"method": "pca"}
    if layout and "fit_steps" in layout and targets is not None:
        film["layout"].update(placement(rows, high, low, film["stability_spearman"], layout["fit_steps"], targets))
    if views:
        film["min_spread"] = float(min(r["spread"] for r in rows))
    film["mean_trustworthiness"] = float(np.mean([r["trustworthiness"] for r in rows]))
    film["min_trustworthiness"] = float(np.min([r["trustworthiness"] for r in rows]))
    gaps = [r["shared_basis_gap"] for r in rows]
    film["basis_warning"] = bool(align in ("reference", "global") and max(gaps) > BASIS_GAP_WARNING)
    if film["basis_warning"]:
        log.warning(
            "the shared PCA basis fits some checkpoints much worse than their own PCA (trustworthiness gap %.3f): "
            "the embedding dimensions may not keep their identity across checkpoints; consider align: first",
            max(gaps),
        )
    save_json(out_json, film)
    return film


def placement(
    rows: Sequence[dict[str, Any]],
    high: Sequence[np.ndarray],
    low: Sequence[np.ndarray],
    stability: float,
    fit_steps: Sequence[int],
    targets: dict[str, float],
) -> dict[str, Any]:
    """The layout's fitted and placed checkpoints and `refit_due` (None, or why the next run refits it)."""
    steps = [int(r["step"]) for r in rows]
    fitted = [i for i, s in enumerate(steps) if s in set(fit_steps)]
    placed = [s for s in steps if s not in set(fit_steps)]
    own = (
        temporal_stability([high[i] for i in fitted], [low[i] for i in fitted])["stability_spearman"]
        if placed
        else stability
    )
    due = refit_due(steps, fit_steps, [float(r["trustworthiness"]) for r in rows], stability, own, targets)
    if due:
        log.warning("the layout should be refitted: %s; the next run refits it", due)
    return {"fit_steps": [int(s) for s in fit_steps], "placed_steps": placed, "refit_due": due}


def layout_info(path: str) -> dict[str, Any]:
    """The film-wide layout's method, and under method auto which candidate it kept and why."""
    with np.load(path, allow_pickle=False) as layout:
        info: dict[str, Any] = {"method": str(layout["method"]) if "method" in layout else "pca"}
        if "choice" in layout:
            info["choice"] = json.loads(str(layout["choice"]))
        if (
            "fit_steps" in layout and "fingerprint" in layout
        ):  # fitted by the layout rule of a tsne/param/umap/auto film
            info["fit_steps"] = [int(s) for s in layout["fit_steps"]]
            info["refit_reason"] = str(layout["refit_reason"]) if "refit_reason" in layout else ""
    return info
