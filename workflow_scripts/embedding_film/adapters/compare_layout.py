"""Stage 9a: the comparison's layout (rule compare_layout): where each run's points sit in its panel.

In:  every run's embeddings/{step}.npy and projection/{step}.npy, and each run's projection/limits.json.
Out: results/compare/{name}/layout.npz: `coords_{i}` [S_i, N, 2] for the i-th run, `limits` [R, 4]
     (x0, x1, y0, y1 of each panel), `shared` (bool) and `note` (what the page and frames say about it).

When the runs start from the same weights (their first checkpoints embed the eval images identically, as
runs that differ only in a training setting do), the embedding dimensions mean the same in every run: one
PCA basis fitted on all runs' checkpoints places them all, and every panel shares the same axes, so a
position in one panel is comparable with the same position in another. Otherwise (another architecture,
width or starting point) each panel keeps its run's own aligned layout and axes: compare shapes, not
positions.
"""

import numpy as np

from embedding_film.adapters import Job
from embedding_film.film.common import atomic_path
from embedding_film.film.compare import compare_layout, per_run


def warm(job: Job | None = None) -> None:
    import sklearn.decomposition  # noqa: F401


def main(job: Job) -> None:
    p = job.params
    counts = [len(steps) for steps in p.steps]
    layout = compare_layout(
        per_run(job.input.embeddings, counts),
        per_run(job.input.projections, counts),
        job.input.limits,
        p.global_every,
        p.margin,
        p.seed,
    )
    with atomic_path(job.output.layout, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **layout)
