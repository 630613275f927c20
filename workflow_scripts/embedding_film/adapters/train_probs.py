"""Rule train_probs: one checkpoint's class probabilities on the scored training images
(embedding_film.film.embedding.predict_checkpoint)."""

from embedding_film.adapters import Job
from embedding_film.film.embedding import predict_checkpoint


def warm(job: Job | None = None) -> None:
    """Import torch and transformers once per worker (what every job of this rule needs)."""
    import torch  # noqa: F401
    import transformers.modeling_utils  # noqa: F401


def main(job: Job) -> None:
    p = job.params
    predict_checkpoint(
        p.checkpoint_dir,
        job.input.pixels,
        job.input.spec,
        job.output.probs,
        p.batch_size,
        p.device,
        p.precision,
        p.allow_pickle,
    )
