"""Rule film_page: reads the job's files and settings and calls embedding_film.film.page.player."""

from embedding_film.adapters import Job
from embedding_film.film.page.player import film_page


def main(job: Job) -> None:
    films = {path.rsplit(".", 1)[-1]: path for path in job.input.films}
    film_page(films, job.output.html, job.params.title)
