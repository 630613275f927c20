"""The top-k outliers of every checkpoint in one table, so one image can be followed through training.

In:  ood/{step}.npy for every step, data/classes.json (image ids).
Out: outliers.csv: step, rank, id, index, score (rank 1 = most outlying).
"""

from embedding_film.adapters import Job
from embedding_film.film.common import load_json
from embedding_film.film.ood import write_outliers


def main(job: Job) -> None:
    ids = load_json(job.input.classes)["ids"]
    write_outliers(job.params.steps, job.input.scores, ids, job.params.top_k, job.output.csv)
