"""Stage 3: embeddings (and class probabilities) of the eval images, per checkpoint.

In:  checkpoint folders (safetensors), data/pixels.npy + data/pixels.json (preprocessed once per run).
Out: embeddings/{step}.npy (float32 [N, D], eval order) and probs/{step}.npy (float32 [N, classes], or
     [N, 0] when the checkpoint has no classification head), one pair per checkpoint.

One job handles a chunk of checkpoints so torch/transformers are imported once per chunk; the pixels are
memory-mapped, moved to the device in batches and normalised there.
"""


import logging
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from workflow_scripts.common import UserError, load_json, load_npy, progress, run_job, save_npy
from workflow_scripts.models import classifier_module, load_for_embedding, pool

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def select_device(name: str) -> "torch.device":
    """auto = cuda, then mps, then cpu."""
    import torch

    if name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"embedding.device '{name}' is not available on this machine; use auto or cpu.")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(precision: str, device: "torch.device") -> "torch.dtype | None":
    import torch

    if precision == "fp32" or device.type == "cpu":
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def embed_model(
    model: "torch.nn.Module",
    pixels: np.ndarray,
    spec: dict[str, Any],
    pooling: str = "auto",
    batch_size: int = 256,
    device: "torch.device | None" = None,
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """Embed uint8 pixels [N, 3, H, W] with `model`. Returns (embeddings [N, D], probs [N, C] or [N, 0])."""
    import torch

    device = device or torch.device("cpu")
    model = model.to(device)
    mean = torch.tensor(spec["mean"], device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec["std"], device=device).view(1, -1, 1, 1)
    head = classifier_module(model)
    base = getattr(model, "base_model", model)
    captured: dict[str, Any] = {}
    hooks = []
    if head is not None:
        hooks.append(head.register_forward_pre_hook(lambda _m, args: captured.__setitem__("head_input", args[0])))
    if base is not model:
        hooks.append(base.register_forward_hook(lambda _m, _a, out: captured.__setitem__("base", out)))
    dtype = autocast_dtype(precision, device)
    embeddings: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            for start in range(0, len(pixels), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(pixels[start : start + batch_size]))
                batch = batch.to(device, non_blocking=True).float().mul_(spec["rescale"]).sub_(mean).div_(std)
                captured.clear()
                out = model(pixel_values=batch)
                base_out = captured.get("base", out)
                vectors = pool(
                    pooling,
                    base_out.last_hidden_state,
                    getattr(base_out, "pooler_output", None),
                    captured.get("head_input"),
                )
                embeddings.append(vectors.float().cpu().numpy())
                if head is not None:
                    probs.append(torch.softmax(out.logits.float(), dim=-1).cpu().numpy())
    finally:
        for hook in hooks:
            hook.remove()
    emb = np.concatenate(embeddings).astype(np.float32, copy=False)
    prob = np.concatenate(probs).astype(np.float32) if probs else np.zeros((len(emb), 0), np.float32)
    return emb, prob


def check_finite(embeddings: np.ndarray, checkpoint: str) -> None:
    if not np.isfinite(embeddings).all():
        bad = int((~np.isfinite(embeddings)).any(axis=1).sum())
        raise UserError(
            f"checkpoint '{checkpoint}' gives NaN/inf embeddings for {bad} images (training diverged?); "
            "lower training.learning_rate or drop that checkpoint."
        )


def embed_checkpoints(
    checkpoints: Sequence[str],
    pixels_path: str,
    spec_path: str,
    out_embeddings: Sequence[str],
    out_probs: Sequence[str],
    pooling: str,
    batch_size: int,
    device: str,
    precision: str,
    allow_pickle: bool,
    threads: int,
) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
    torch.manual_seed(0)
    pixels = load_npy(pixels_path, mmap=True)
    spec = load_json(spec_path)
    dev = select_device(device)
    log.info("embedding %d images with %d checkpoint(s) on %s", len(pixels), len(checkpoints), dev)
    for folder, emb_path, prob_path in progress(zip(checkpoints, out_embeddings, out_probs), "embed", len(checkpoints)):
        model = load_for_embedding(folder, allow_pickle)
        emb, prob = embed_model(model, pixels, spec, pooling, batch_size, dev, precision)
        check_finite(emb, folder)
        save_npy(emb_path, emb)
        save_npy(prob_path, prob)
        log.info("%s -> %s %s", folder, emb_path, emb.shape)


def _main(snakemake: Any) -> None:
    p = snakemake.params
    embed_checkpoints(
        p.checkpoint_dirs,
        snakemake.input.pixels,
        snakemake.input.spec,
        snakemake.output.embeddings,
        snakemake.output.probs,
        p.pooling,
        p.batch_size,
        p.device,
        p.precision,
        p.allow_pickle,
        snakemake.threads,
    )


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
