"""Rule train_images: the training images the training dynamics score, preprocessed once per run
(embedding_film.film.preprocess.training_images)."""

from embedding_film.adapters import Job
from embedding_film.film.preprocess import processor_for, training_images


def main(job: Job) -> None:
    p = job.params
    processor = processor_for(p.model, p.image_size, p.checkpoint_dir)
    training_images(job.input.train, processor, p.max_images, p.seed, dict(job.output.items()))
