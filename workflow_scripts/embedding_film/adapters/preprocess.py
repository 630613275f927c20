"""Rule preprocess: reads the job's files and settings and calls embedding_film.film.preprocess."""

from embedding_film.adapters import Job
from embedding_film.film.preprocess import preprocess, processor_for


def main(job: Job) -> None:
    p = job.params
    processor = processor_for(p.model, p.image_size, p.checkpoint_dir)
    preprocess(job.input.eval, processor, job.output.pixels, job.output.spec)
