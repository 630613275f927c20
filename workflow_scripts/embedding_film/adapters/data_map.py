"""Rule data_map: the data map and the gallery of suspected label errors (embedding_film.film.data_map)."""

from embedding_film.adapters import Job
from embedding_film.film.data_map import plot_data_map, plot_label_errors


def warm(job: Job | None = None) -> None:
    import matplotlib.pyplot  # noqa: F401


def main(job: Job) -> None:
    i, o, p = job.input, job.output, job.params
    plot_data_map(i.table, i.noise, o.data_map, p.title)
    plot_label_errors(i.table, i.thumbnails, i.noise, o.gallery, p.top_k, p.title)
