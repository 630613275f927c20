"""The top-k outliers of every checkpoint in one table, so one image can be followed through training.

In:  ood/{step}.npy for every step, data/classes.json (image ids).
Out: outliers.csv: step, rank, id, index, score (rank 1 = most outlying).
"""

import csv
import logging
from typing import Any, Sequence

from workflow_scripts.common import atomic_path, load_json, load_npy, run_job
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


def _main(snakemake: Any) -> None:
    ids = load_json(snakemake.input.classes)["ids"]
    write_outliers(snakemake.params.steps, snakemake.input.scores, ids, snakemake.params.top_k, snakemake.output.csv)


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
