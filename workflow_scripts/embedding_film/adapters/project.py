"""Rule project: reads the job's files and settings and calls embedding_film.film.projection."""

import numpy as np

from embedding_film.adapters import Job
from embedding_film.film.common import load_npy, save_npy
from embedding_film.film.projection import project_step


def warm(job: Job | None = None) -> None:
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401


def main(job: Job) -> None:
    """A checkpoint's projection: PCA aligned as projection.align says (method pca), or its frame of the
    film-wide t-SNE/UMAP layout, placed on it when the layout was fitted without it (layout.place)."""
    from embedding_film.film.layout import load_layout, place

    p, i = job.params, job.input
    embeddings = load_npy(i.embeddings)
    if p.method != "pca":
        projection = place(load_layout(i.layout), p.step, embeddings)
    else:
        layout = None
        if "layout" in i.keys():
            with np.load(i.layout, allow_pickle=False) as handle:
                layout = dict(handle)
        anchor = load_npy(i.anchor) if "anchor" in i.keys() else None
        projection = project_step(p.align, embeddings, layout, anchor, p.step)
    save_npy(job.output.projection, projection)
