"""Rule film_html: reads the job's files and settings and calls embedding_film.film.page."""

from __future__ import annotations

import numpy as np

from embedding_film.adapters import Job
from embedding_film.film.page import build_film_html, film_data_from_run, log
from embedding_film.film.page.data_map import data_map_from_run


def main(job: Job) -> None:
    """Rule film_html: the run's explorable film. Its inputs are the run's files that film_data_from_run
    reads (listed by the rule, read here by their place in the run folder), and with training dynamics the
    data map's files (input dynamics, trace, train_thumbnails, label_noise; the rule lists them only when the
    run's dynamics are on)."""
    from embedding_film.film.camera import read_view

    p, i = job.params, job.input
    data = film_data_from_run(p.run_dir, p.steps, top_k=p.top_k)
    if i.get("dynamics"):
        data.data_map = data_map_from_run(i.dynamics, i.trace, i.train_thumbnails, i.label_noise)
        if data.data_map is None:
            log.info("no data map: the run scored no training image (see the dynamics job's log)")
    views = [read_view(path, step) for path, step in zip(p.view_files, p.steps)]  # the frames' camera
    data.limits = np.array([[*v["x"], *v["y"]] for v in views], dtype=np.float64)
    data.zoom = np.array([float(v.get("zoom", 1.0)) for v in views])
    summary = build_film_html(data, job.output.html, max_points=p.max_points, title=p.title)
    log.info(
        "wrote %s: %.2f MB, %d of %d images",
        job.output.html,
        summary["bytes"] / 1e6,
        summary["points_shown"],
        summary["points_total"],
    )
