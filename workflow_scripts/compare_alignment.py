"""Compare the alignment modes on a finished run: temporal stability and spatial quality of each.

In:  embeddings/{step}.npy of every checkpoint, data/labels.npy.
Out: alignment_comparison.csv: one row per mode (the article's chained scipy Procrustes included):
     stability_spearman, movement_stress (whole film), mean and minimum trustworthiness over checkpoints.

    snakemake compare_alignment     # results/{run}/alignment_comparison.csv
"""

import csv
import logging
from typing import Any, Sequence

import numpy as np

from workflow_scripts.common import atomic_path, load_npy, progress
from workflow_scripts.job import Job
from workflow_scripts.metrics import subsample, temporal_stability
from workflow_scripts.project import project_all

log = logging.getLogger(__name__)

MODES = ("article", "previous", "first", "gpa", "global", "reference")


def compare(embeddings: Sequence[np.ndarray], k: int = 10, max_points: int = 2000, modes: Sequence[str] = MODES) -> list[dict[str, Any]]:
    from sklearn.manifold import trustworthiness

    idx = subsample(len(embeddings[0]), max_points)
    embeddings = [np.asarray(e, dtype=np.float64)[idx] for e in embeddings]
    rows = []
    for mode in progress(modes, "modes", len(modes)):
        frames = project_all(mode, embeddings)
        trust = [trustworthiness(e, f, n_neighbors=k) for e, f in zip(embeddings, frames)]
        rows.append({"align": mode, **temporal_stability(embeddings, frames),
                     "mean_trustworthiness": float(np.mean(trust)), "min_trustworthiness": float(np.min(trust))})
        log.info("%s", rows[-1])
    return rows


def write_comparison(rows: Sequence[dict[str, Any]], out: str) -> None:
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: f"{v:.4f}" if isinstance(v, float) else v for key, v in row.items()})


def warm(job: Job | None = None) -> None:
    import scipy.spatial  # noqa: F401
    import sklearn.manifold  # noqa: F401


def main(job: Job) -> None:
    embeddings = [load_npy(p) for p in job.input.embeddings]
    write_comparison(compare(embeddings, job.params.k, job.params.max_points), job.output.csv)
