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

from typing import Sequence

import numpy as np

from workflow_scripts.common import atomic_path, load_json, load_npy
from workflow_scripts.frame_limits import axis_limits
from workflow_scripts.job import Job
from workflow_scripts.project import fit_basis, pca_project

SHARED = (
    "one PCA layout for all runs (they start from the same weights): positions are comparable across panels, "
    "on the same axes"
)
SEPARATE = "each run its own aligned layout (they start from different weights): compare shapes, not positions"


def per_run(files: Sequence[str], counts: Sequence[int]) -> list[list[str]]:
    """`files` (every run's checkpoints, run after run) split into one list per run."""
    out, start = [], 0
    for n in counts:
        out.append(list(files[start : start + n]))
        start += n
    return out


def same_start(firsts: Sequence[np.ndarray]) -> bool:
    """Whether the runs' first checkpoints embed the eval images identically (same model, same weights)."""
    return all(f.shape == firsts[0].shape and np.array_equal(f, firsts[0]) for f in firsts[1:])


def compare_layout(
    embeddings: Sequence[Sequence[str]],
    projections: Sequence[Sequence[str]],
    limits: Sequence[str],
    every: int,
    margin: float,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The comparison's layout (see the module docstring): per-run coordinates, panel limits, and why."""
    if same_start([load_npy(run[0]) for run in embeddings]):
        basis = fit_basis([load_npy(p) for run in embeddings for p in run[::every]], seed=seed)
        coords = [np.stack([pca_project(load_npy(p), *basis) for p in run]).astype(np.float32) for run in embeddings]
        common = axis_limits([c.reshape(-1, 2) for c in coords], margin)
        panel_limits = [[*common["x"], *common["y"]]] * len(coords)
        shared, note = True, SHARED
    else:
        coords = [np.stack([load_npy(p) for p in run]).astype(np.float32) for run in projections]
        panel_limits = [[*(lim := load_json(path))["x"], *lim["y"]] for path in limits]
        shared, note = False, SEPARATE
    return {
        **{f"coords_{i}": c for i, c in enumerate(coords)},
        "limits": np.asarray(panel_limits, dtype=np.float64),
        "shared": np.asarray(shared),
        "note": np.asarray(note),
    }


def warm(job: Job | None = None) -> None:
    import sklearn.decomposition  # noqa: F401


def main(job: Job) -> None:
    p = job.params
    counts = [len(steps) for steps in p.steps]
    layout = compare_layout(
        per_run(job.input.embeddings, counts), per_run(job.input.projections, counts), job.input.limits,
        p.global_every, p.margin, p.seed,
    )
    with atomic_path(job.output.layout, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **layout)
