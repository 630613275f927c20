"""Stage 9e: the comparison's explorable page (rule compare_html): the runs side by side in one offline HTML
file (workflow_scripts/embedding_film/film/page/compare.py builds it).

In:  results/compare/{name}/layout.npz (each run's coordinates in its panel, shared or not, and why), and
     every run's files the single-run page reads (film_html.film_data_from_run).
Out: results/compare/{name}/film.html: one panel per run on the common clock; hovering or pinning an image
     highlights it in every panel, with its trajectory in each; a per-run metrics table at the current tick.
"""

from pathlib import Path

import numpy as np

from embedding_film.adapters import Job
from embedding_film.film.page.compare import build_compare_html, compare_data_from_runs

CLOCKS = {"step": "the same training step", "fraction": "the same fraction of each run's training"}


def main(job: Job) -> None:
    p = job.params
    with np.load(job.input.layout, allow_pickle=False) as layout:
        coords = [layout[f"coords_{r}"] for r in range(len(p.runs))]
        shared, note = bool(layout["shared"]), str(layout["note"])
    run_dirs = [str(Path(labels).parent.parent) for labels in job.input.labels]  # results/{run}
    data = compare_data_from_runs(
        run_dirs, p.runs, p.steps, p.shown, p.ticks, CLOCKS[p.clock], note, top_k=p.top_k, shared_layout=shared
    )
    for film, run_coords in zip(data.films, coords):
        film.projections = run_coords  # the comparison's layout (the run's own, when not shared)
    build_compare_html(data, job.output.html, max_points=p.max_points, title=p.title)
