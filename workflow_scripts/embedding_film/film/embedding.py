"""Stage 3: embeddings (and class probabilities) of the eval images, per checkpoint.

In:  checkpoint folders (safetensors), data/pixels.npy + data/pixels.json (preprocessed once per run).
Out: embeddings/{step}.npy (float32 [N, D], eval order) and probs/{step}.npy (float32 [N, classes], or
     [N, 0] when the checkpoint has no classification head), one pair per checkpoint.

One job per checkpoint; torch and transformers (and the checkpoint's model class) are imported once by the
warm worker (workflow_scripts/embedding_film/runtime/worker.py). On a GPU the uint8 pixels are uploaded per job (4x smaller than
float32) and normalised on the device in batches, and the outputs stay on the device until the checkpoint
is done, so the GPU does not wait for the host. Inference runs
under `torch.inference_mode` with optional bf16/fp16 autocast; embeddings are stored as float32.
"""

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from embedding_film.film.common import CheckpointError, UserError, load_json, load_npy, save_npy
from embedding_film.film.models import (
    classifier_module,
    load_for_embedding,
    pool,
    resolve_pooling,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# Convolutional backbones: channels_last memory layout is faster for them on a GPU.
CNN_TYPES = frozenset({"convnext", "convnextv2", "resnet", "regnet", "efficientnet", "mobilenet_v2", "bit"})
# Share of the free GPU memory the uint8 pixels may take to stay resident on the device for the whole job.
RESIDENT_SHARE = 0.25


def select_device(name: str) -> "torch.device":
    """auto = cuda, then mps, then cpu; a named device must exist."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UserError(f"embedding.device '{name}' is not a device name; use auto, cpu, cuda, cuda:N or mps.") from err
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UserError(f"embedding.device '{name}' is not available on this machine; use auto or cpu.")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError(f"embedding.device '{name}' is not available on this machine; use auto or cpu.")
    return device


def autocast_dtype(precision: str, device: "torch.device") -> "torch.dtype | None":
    """The autocast dtype for `precision` (None = plain float32). Reduced precision is used on GPUs only."""
    import torch

    if precision not in ("fp32", "bf16", "fp16"):
        raise UserError(f"embedding.precision '{precision}' is unknown; use fp32, bf16 or fp16.")
    if precision == "fp32":
        return None
    if device.type == "cpu":
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class PixelFeeder:
    """Normalised float32 batches of the uint8 pixels [N, 3, H, W], on the device.

    On a GPU the pixels are uploaded once per job (when they take under RESIDENT_SHARE of the free memory); otherwise batches are staged in pinned memory by a background
    thread and copied asynchronously. On the CPU batches are read from the memory map as they are needed.
    """

    def __init__(self, pixels: np.ndarray, spec: dict[str, Any], device: "torch.device", batch_size: int) -> None:
        import torch

        if pixels.ndim != 4 or pixels.dtype != np.uint8:
            raise UserError(
                f"the preprocessed pixels have shape {pixels.shape} and dtype {pixels.dtype}, not uint8 [N, 3, H, W]; delete data/pixels.npy to rebuild it."
            )
        self.pixels = pixels
        self.device = device
        self.batch_size = batch_size
        std = torch.tensor(spec["std"], dtype=torch.float32).view(1, -1, 1, 1)
        mean = torch.tensor(spec["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        # x * rescale, then (x - mean) / std  ==  x * scale + shift, one fused op on the device
        self.scale = (spec["rescale"] / std).to(device)
        self.shift = (-mean / std).to(device)
        self.resident: torch.Tensor | None = None
        if device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device)
            if pixels.nbytes < RESIDENT_SHARE * free:
                self.resident = torch.from_numpy(np.array(pixels)).to(device)
        elif device.type == "mps":
            self.resident = torch.from_numpy(np.array(pixels)).to(device)

    def __len__(self) -> int:
        return len(self.pixels)

    def _normalise(self, batch: "torch.Tensor") -> "torch.Tensor":
        import torch

        return torch.addcmul(self.shift, batch.float(), self.scale)

    def _staged(self) -> Iterator["torch.Tensor"]:
        """Pinned host batches, read ahead by one thread (keeps the GPU fed when pixels cannot stay resident)."""
        import torch

        slots: queue.Queue[torch.Tensor | BaseException | None] = queue.Queue(maxsize=3)
        stop = threading.Event()

        def reader() -> None:
            try:
                for start in range(0, len(self.pixels), self.batch_size):
                    if stop.is_set():
                        return
                    chunk = np.array(self.pixels[start : start + self.batch_size])
                    slots.put(torch.from_numpy(chunk).pin_memory())
                slots.put(None)
            except BaseException as err:  # surfaced in the consumer
                slots.put(err)

        thread = threading.Thread(target=reader, daemon=True, name="pixel-reader")
        thread.start()
        try:
            while (item := slots.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item.to(self.device, non_blocking=True)
        finally:
            stop.set()
            while thread.is_alive():  # unblock a reader waiting on a full queue
                try:
                    slots.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)

    def batches(self) -> Iterator["torch.Tensor"]:
        import torch

        if self.resident is not None:
            for start in range(0, len(self.resident), self.batch_size):
                yield self._normalise(self.resident[start : start + self.batch_size])
        elif self.device.type == "cuda":
            for batch in self._staged():
                yield self._normalise(batch)
        else:
            for start in range(0, len(self.pixels), self.batch_size):
                yield self._normalise(torch.from_numpy(np.array(self.pixels[start : start + self.batch_size])))


def embed_model(
    model: "torch.nn.Module",
    pixels: "np.ndarray | PixelFeeder",
    spec: dict[str, Any] | None = None,
    pooling: str = "auto",
    batch_size: int = 256,
    device: "torch.device | None" = None,
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """Embed uint8 pixels [N, 3, H, W] with `model`. Returns (embeddings [N, D], probs [N, C] or [N, 0]).

    On the CPU with several threads, that many batches run at once, each on one thread (in_lanes): a CPU kernel
    may round differently when it splits its work across threads, so this keeps a checkpoint's embeddings the
    same bits whatever the cores its job had (an appended checkpoint, which gets every core, and a full film)."""
    import torch

    device = device or (pixels.device if isinstance(pixels, PixelFeeder) else torch.device("cpu"))
    feeder = pixels if isinstance(pixels, PixelFeeder) else PixelFeeder(pixels, spec or {}, device, batch_size)
    mode = resolve_pooling(pooling, model)  # a pooling the model cannot do fails before any batch
    model = model.to(device)
    channels_last = device.type == "cuda" and getattr(model.config, "model_type", "") in CNN_TYPES
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    head = classifier_module(model)
    base = getattr(model, "base_model", model)
    captured = threading.local()  # what the hooks saw in this thread's forward pass
    hooks = []
    if head is not None:
        hooks.append(head.register_forward_pre_hook(lambda _m, args: captured.seen.__setitem__("head_input", args[0])))
    if base is not model:
        hooks.append(base.register_forward_hook(lambda _m, _a, out: captured.seen.__setitem__("base", out)))
    dtype = autocast_dtype(precision, device)

    def forward(batch: "torch.Tensor") -> "tuple[torch.Tensor, torch.Tensor | None]":
        captured.seen = {}
        # (inference mode and autocast are per thread: entered here, in the thread that runs the batch)
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            if channels_last and batch.dim() == 4:
                batch = batch.contiguous(memory_format=torch.channels_last)
            out = model(pixel_values=batch)
            base_out = captured.seen.get("base", out)
            hidden = base_out.last_hidden_state
            vectors = pool(mode, hidden, getattr(base_out, "pooler_output", None), captured.seen.get("head_input"))
            # both stay on the device: one transfer per checkpoint
            return vectors.float(), torch.softmax(out.logits.float(), dim=-1) if head is not None else None

    lanes = torch.get_num_threads() if device.type == "cpu" else 1
    embeddings: list[torch.Tensor] = []
    probs: list[torch.Tensor] = []
    try:
        results = in_lanes(forward, feeder.batches(), lanes) if lanes > 1 else map(forward, feeder.batches())
        for vectors, prob in results:
            embeddings.append(vectors)
            if prob is not None:
                probs.append(prob)
    finally:
        for hook in hooks:
            hook.remove()
    emb = torch.cat(embeddings).cpu().numpy().astype(np.float32, copy=False)
    prob = (
        torch.cat(probs).cpu().numpy().astype(np.float32, copy=False) if probs else np.zeros((len(emb), 0), np.float32)
    )
    return emb, prob


def in_lanes(function: Callable[[Any], Any], items: Iterable[Any], lanes: int) -> Iterator[Any]:
    """function(item) for each item, in order, `lanes` items at a time on threads of one torch thread each (torch
    releases the GIL in its kernels). Items are taken as lanes free up, so a streamed input stays streamed."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (what new threads' kernels use too)
    try:
        with ThreadPoolExecutor(lanes, thread_name_prefix="embed-lane") as executor:
            running: deque[Future[Any]] = deque()
            for item in items:
                running.append(executor.submit(function, item))
                if len(running) == lanes:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
    finally:
        torch.set_num_threads(threads)


def check_finite(embeddings: np.ndarray, checkpoint: str) -> None:
    if not np.isfinite(embeddings).all():
        bad = int((~np.isfinite(embeddings)).any(axis=1).sum())
        raise CheckpointError(
            f"checkpoint '{checkpoint}' gives NaN/inf embeddings for {bad} of {len(embeddings)} images (training diverged?); "
            "lower training.learning_rate or drop that checkpoint."
        )


def embed_checkpoint(
    checkpoint: str,
    pixels_path: str,
    spec_path: str,
    out_embeddings: str,
    out_probs: str,
    pooling: str = "auto",
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "fp32",
    allow_pickle: bool = False,
) -> None:
    """Embed the eval images with one checkpoint; write its embeddings and class probabilities."""
    import torch

    torch.manual_seed(0)
    dev = select_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if autocast_dtype(precision, dev) is None and precision != "fp32":  # validates before anything is loaded
        log.info("embedding.precision %s is ignored on the CPU; computing in float32", precision)
    pixels = load_npy(pixels_path, mmap=True)
    feeder = PixelFeeder(pixels, load_json(spec_path), dev, batch_size)
    model = load_for_embedding(checkpoint, allow_pickle)
    start = time.perf_counter()
    emb, prob = embed_model(model, feeder, pooling=pooling, batch_size=batch_size, device=dev, precision=precision)
    seconds = time.perf_counter() - start
    check_finite(emb, checkpoint)
    save_npy(out_embeddings, emb)
    save_npy(out_probs, prob)
    log.info(
        "%s -> %s %s on %s (%s, pixels %s, %.0f images/s)",
        checkpoint,
        out_embeddings,
        emb.shape,
        dev,
        precision,
        "on the device" if feeder.resident is not None else "streamed",
        len(emb) / max(seconds, 1e-9),
    )


def predict_checkpoint(
    checkpoint: str,
    pixels_path: str,
    spec_path: str,
    out_probs: str,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "fp32",
    allow_pickle: bool = False,
) -> None:
    """Write one checkpoint's class probabilities on the scored training images (float32 [N, C]; [N, 0] when the
    checkpoint has no classification head, [0, 0] when there are no training images, without loading it)."""
    import torch

    pixels = load_npy(pixels_path, mmap=True)
    if len(pixels) == 0:
        save_npy(out_probs, np.zeros((0, 0), np.float32))
        log.info("no training images to score: wrote an empty %s", out_probs)
        return
    torch.manual_seed(0)
    dev = select_device(device)
    feeder = PixelFeeder(pixels, load_json(spec_path), dev, batch_size)
    model = load_for_embedding(checkpoint, allow_pickle)
    start = time.perf_counter()
    _, prob = embed_model(model, feeder, batch_size=batch_size, device=dev, precision=precision)
    seconds = time.perf_counter() - start
    if not np.isfinite(prob).all():
        raise CheckpointError(
            f"checkpoint '{checkpoint}' gives NaN/inf class probabilities (training diverged?); lower "
            "training.learning_rate or drop that checkpoint."
        )
    save_npy(out_probs, prob)
    log.info(
        "%s -> %s %s on %s (%.0f images/s)", checkpoint, out_probs, prob.shape, dev, len(prob) / max(seconds, 1e-9)
    )
