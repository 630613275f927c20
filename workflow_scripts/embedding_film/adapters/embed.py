"""Rule embed: reads the job's files and settings and calls embedding_film.film.embedding."""

from pathlib import Path

from embedding_film.adapters import Job
from embedding_film.film.checkpoints import record_failure
from embedding_film.film.common import CheckpointError, load_json, load_npy
from embedding_film.film.embedding import PixelFeeder, embed_checkpoint, embed_model
from embedding_film.film.models import load_for_embedding, model_class, read_config

_rehearsed = False


def warm(job: Job | None = None) -> None:
    """Import torch and transformers (a worker's start), and the model class of the job's checkpoint (a warm-up
    of the worker's, done by a successor while the job runs: runtime/worker.py); the first time, also rehearse
    the job on two images (`rehearse`)."""
    global _rehearsed
    import torch  # noqa: F401
    import transformers.modeling_utils  # noqa: F401  (under every model class and image processor: once)

    if job is None:
        return
    try:
        model_class(read_config(job.params.checkpoint_dir, what="checkpoint"))
        if not _rehearsed:
            _rehearsed = True
            rehearse(job)
    except Exception:  # noqa: BLE001 - only a head start: the job reports any problem itself
        pass


def warm_key(job: Job) -> str | None:
    """What warm(job) would load that the worker's start did not: the model classes the job's checkpoint names
    (the worker warms up once per key, see runtime/worker.py; None when its config is unreadable: the job
    says so)."""
    try:
        config = read_config(job.params.checkpoint_dir, what="checkpoint")
    except Exception:  # noqa: BLE001 - the job reports it
        return None
    return f"{config['model_type']}: {' '.join(config.get('architectures') or [])}"


def rehearse(job: Job) -> None:
    """Load the job's checkpoint and embed its first two images on the CPU, in the worker before it forks the
    jobs after it: the first call's one-time costs (the loading path's lazy imports, the kernels' set-up) are
    then paid once per worker instead of once per job. One thread, no GPU (the worker may not start either)."""
    import torch

    p = job.params
    model = load_for_embedding(p.checkpoint_dir, p.allow_pickle)
    feeder = PixelFeeder(load_npy(job.input.pixels, mmap=True)[:2], load_json(job.input.spec), torch.device("cpu"), 2)
    embed_model(model, feeder, pooling=p.pooling, batch_size=2, device=torch.device("cpu"), precision="fp32")


def main(job: Job) -> None:
    p = job.params
    try:
        embed_checkpoint(
            p.checkpoint_dir,
            job.input.pixels,
            job.input.spec,
            job.output.embeddings,
            job.output.probs,
            p.pooling,
            p.batch_size,
            p.device,
            p.precision,
            p.allow_pickle,
        )
    except CheckpointError as err:
        record_failure(p.failure_record, p.checkpoint_dir, str(err))  # the next run leaves it out
        raise
    Path(p.failure_record).unlink(missing_ok=True)
