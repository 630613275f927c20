"""The top-k outliers of every checkpoint in one table, so one image can be followed through training.

In:  ood/{step}.npy for every step, data/classes.json (image ids).
Out: outliers.csv: step, rank, id, index, score (rank 1 = most outlying).
"""

import csv
import logging
from typing import Sequence

from workflow_scripts.common import atomic_path, load_json, load_npy
from workflow_scripts.job import Job
from workflow_scripts.ood import top_outliers

log = logging.getLogger(__name__)


def write_outliers(steps: Sequence[int], scores: Sequence[str], ids: Sequence[str], top_k: int, out: str) -> None:
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "rank", "id", "index", "score"])
        for step, path in zip(steps, scores):
            values = load_npy(path)
            for rank, i in enumerate(top_outliers(values, top_k), start=1):
                writer.writerow([step, rank, ids[i], int(i), f"{values[i]:.6g}"])


def main(job: Job) -> None:
    ids = load_json(job.input.classes)["ids"]
    write_outliers(job.params.steps, job.input.scores, ids, job.params.top_k, job.output.csv)
