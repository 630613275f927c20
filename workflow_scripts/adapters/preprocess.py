"""Rule preprocess: reads the job's files and settings and calls workflow_scripts.film.preprocess."""

from workflow_scripts.adapters import Job
from workflow_scripts.film.preprocess import preprocess, processor_for


def main(job: Job) -> None:
    p = job.params
    processor = processor_for(p.model, p.image_size, p.checkpoint_dir)
    preprocess(job.input.eval, processor, job.output.pixels, job.output.spec)
