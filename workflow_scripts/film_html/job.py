"""Snakemake adapter for the film page (a rule's `script:`): reads the run folder, writes output.html.

params: run_dir (results/{run}), steps (every checkpoint, in order), and optionally top_k (frames.top_k),
max_points, title, layout_note. Inputs are listed by the rule for staleness only; the loader reads the
files by their place in the run folder (see film_data_from_run).
"""

from typing import Any

from workflow_scripts.common import run_job
from workflow_scripts.film_html import build_film_html, film_data_from_run


def _main(snakemake: Any) -> None:
    p = snakemake.params
    option = lambda name, default: getattr(p, name, default)  # noqa: E731
    data = film_data_from_run(p.run_dir, p.steps, top_k=option("top_k", 8), layout_note=option("layout_note", None))
    build_film_html(data, snakemake.output.html, max_points=option("max_points", 10_000), title=option("title", "Embedding film"))


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
