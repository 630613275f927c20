"""Stage 4b: likely label issues per checkpoint, with cleanlab (rule label_issues).

In:  probs/{step}.npy (the checkpoint's own predicted class probabilities), data/labels.npy.
Out: label_issues/{step}.npy  int64 indices of likely label issues from cleanlab.filter.find_label_issues,
     most severe first (empty when the checkpoint has no classification head).
"""

from embedding_film.adapters import Job
from embedding_film.film.common import load_npy, save_npy
from embedding_film.film.label_issues import label_issues


def warm(job: Job | None = None) -> None:
    import cleanlab.filter  # noqa: F401


def main(job: Job) -> None:
    save_npy(job.output.issues, label_issues(load_npy(job.input.labels), load_npy(job.input.probs)))
