"""The top-k outliers of every checkpoint in one table, so one image can be followed through training.

In:  ood/{step}.npy for every step, data/classes.json (image ids).
Out: outliers.csv: step, rank, id, index, score (rank 1 = most outlying).
"""

from workflow_scripts.adapters import Job
from workflow_scripts.film.common import load_json
from workflow_scripts.film.ood import write_outliers


def main(job: Job) -> None:
    ids = load_json(job.input.classes)["ids"]
    write_outliers(job.params.steps, job.input.scores, ids, job.params.top_k, job.output.csv)
