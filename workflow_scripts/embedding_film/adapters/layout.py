"""Rule layout: reads the job's files and settings and calls embedding_film.film.layout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import embedding_film.film.param_map as param_map
from embedding_film.film.common import NpyFiles
from embedding_film.film.layout import fit_layout, may_learn, save_layout

# ------------------------------------------------------------------------------------------- the rule


def warm(job: Any = None) -> None:
    import openTSNE  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401

    if job is not None and job_may_learn(job.params):
        param_map.warm_up()  # torch and its first training step: off the layout job, a barrier of the film


def warm_key(job: Any) -> str | None:
    """What warm(job) would do that the worker has not done yet: the learned map's first training steps, when
    the job may fit the map (the worker warms up once per key, see runtime/worker.py)."""
    return "learned map" if job_may_learn(job.params) and not param_map.warmed_up() else None


def warm_ahead_key(env: Mapping[str, str]) -> str | None:
    """What to warm up ahead of the layout job when the worker serves its first job of a run whose environment
    is `env`: the learned map's first training steps when the run's film may need the map (FILM_WARM_LEARNED_MAP,
    set by the workflow) and the worker has not done them. Not while the worker starts: on a few cores that
    would slow the imports and the first embeddings, which every later stage waits for (runtime/worker.py)."""
    return "learned map" if env.get("FILM_WARM_LEARNED_MAP") == "1" and not param_map.warmed_up() else None


def warm_ahead() -> None:
    param_map.warm_up()


def job_may_learn(p: Any) -> bool:
    """Whether a layout job with params `p` may fit the learned map (layout.may_learn)."""
    return may_learn(p.method, p.settings["auto"]["candidates"] if p.method == "auto" else ())


def main(job: Any) -> None:
    """Rule layout: the film-wide layout, fitted on the checkpoints its inputs are (all, or the fit steps):
    for method pca the basis (align reference, global) or the aligned frames (gpa); else fit_layout's map."""
    from embedding_film.film.projection import fit_pca_layout

    p = job.params
    embeddings = NpyFiles(job.input.embeddings)
    if p.method == "pca":
        layout = {**fit_pca_layout(p.align, embeddings, p.steps, seed=p.seed), "method": np.array("pca")}
    else:
        settings = {name: p.settings[name] for name in ("tsne", "param", "umap", "auto")}
        auto = {**settings["auto"], "k": p.k, "max_points": p.max_points}
        layout = fit_layout(embeddings, p.steps, p.method, {**settings, "auto": auto}, None, p.seed)
        layout.update(fingerprint=np.array(p.fingerprint), refit_reason=np.array(p.refit_reason))
    save_layout(job.output.layout, layout)
