"""Compare the alignment modes on a finished run: temporal stability and spatial quality of each.

In:  embeddings/{step}.npy of every checkpoint, data/labels.npy.
Out: alignment_comparison.csv: one row per mode (the article's chained scipy Procrustes included):
     stability_spearman, movement_stress (whole film), mean and minimum trustworthiness over checkpoints.

    snakemake compare_alignment     # results/{run}/alignment_comparison.csv
"""

from embedding_film.adapters import Job
from embedding_film.film.common import load_npy
from embedding_film.film.compare import compare, write_comparison


def warm(job: Job | None = None) -> None:
    import scipy.spatial  # noqa: F401
    import sklearn.manifold  # noqa: F401


def main(job: Job) -> None:
    embeddings = [load_npy(p) for p in job.input.embeddings]
    write_comparison(compare(embeddings, job.params.k, job.params.max_points), job.output.csv)
