"""Stage 4: outlier scores per checkpoint, with cleanlab (rule ood; label issues: label_issues.py).

In:  embeddings/{step}.npy.
Out: ood/{step}.npy  float64 [N] in [0, 1] from cleanlab.outlier.OutOfDistribution().fit_score
                     (lower = more outlying: cleanlab's convention).
"""

from embedding_film.adapters import Job
from embedding_film.film.common import load_npy, save_npy
from embedding_film.film.ood import ood_scores


def warm(job: Job | None = None) -> None:
    import cleanlab.outlier  # noqa: F401


def main(job: Job) -> None:
    save_npy(job.output.scores, ood_scores(load_npy(job.input.embeddings), job.params.k))
