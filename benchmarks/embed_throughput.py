#!/usr/bin/env python
"""Embedding throughput of the workflow's embedding stage, and how close it comes to the FLOP floor.

    python benchmarks/embed_throughput.py --model vit-b16 --images 256               # ViT-B/16, 224 px, random weights
    python benchmarks/embed_throughput.py --model tiny --images 2000                 # tests/configs/tiny.yaml's ViT
    python benchmarks/embed_throughput.py --model vit-b16 --images 20000 --precision bf16 --batch-size 1024   # GPU
    python benchmarks/embed_throughput.py --model path/to/checkpoint-500 --images 1000

It runs the workflow's own code path (embedding_film.film.embedding.embed_model: uint8 pixels moved to the device
once and normalised there, batched inference under torch.inference_mode, optional autocast, pooling and
class probabilities) on random uint8 pixels, after one warm-up pass, and reports:

  images/s         eval images embedded per second (best of --repeats; model already loaded)
  load s           seconds to load the checkpoint from disk (load_for_embedding: safetensors, float32)
  GFLOP/image      the model's forward FLOPs for one image (torch.utils.flop_counter: 2 per multiply-add)
  floor s          FLOPs x images / device peak: the time at 100% of the peak
  % of floor       floor time / measured time = achieved FLOP/s / peak

Device peak: the datasheet dense peak for known GPUs (H200/H100 SXM: 989 TFLOP/s bf16/fp16, 67 fp32;
A100: 312 / 19.5), else (CPUs, other GPUs) the best measured GEMM throughput in that precision on this
machine (--peak-tflops overrides). `--markdown` prints one table row for benchmarks/RESULTS.md (Embedding throughput).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

# Datasheet dense peaks in TFLOP/s: (bf16/fp16 tensor cores, fp32 without TF32).
GPU_PEAKS = {
    "H200": (989.4, 66.9),
    "H100": (989.4, 66.9),
    "A100": (312.0, 19.5),
    "L40S": (362.1, 91.6),
    "A10": (125.0, 31.2),
}


def build_model(name: str, image_size: int) -> tuple[Any, int]:
    """(model in eval mode, image size): vit-b16 = ViTConfig() with random weights; tiny = the test suite's ViT;
    anything else is a checkpoint folder or hub id loaded like the workflow does."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    from embedding_film.film.models import load_for_embedding

    torch.manual_seed(0)
    if name == "vit-b16":
        return ViTForImageClassification(ViTConfig(image_size=image_size, num_labels=10)).eval(), image_size
    if name == "tiny":
        config = ViTConfig(
            image_size=16,
            patch_size=4,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=10,
        )
        return ViTForImageClassification(config).eval(), 16
    model = load_for_embedding(name, allow_pickle=False)
    size = getattr(model.config, "image_size", image_size)
    return model, int(size if isinstance(size, int) else size[0])


def forward_flops(model: Any, image_size: int) -> float:
    """FLOPs of one image's forward pass (2 per multiply-add), counted by torch on the CPU."""
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    probe = copy.deepcopy(model).to("cpu").float().eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        probe(pixel_values=torch.zeros(1, 3, image_size, image_size))
    return float(counter.get_total_flops())


def measured_gemm_tflops(device: Any, precision: str, seconds: float = 2.0) -> float:
    """The best GEMM throughput this device reaches in `precision` (TFLOP/s): the practical peak."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if device.type == "cpu":
        dtype = torch.float32  # the workflow computes in float32 on the CPU
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, 10 * 2 * n**3 / (time.perf_counter() - start) / 1e12)
    return best


def device_peak(device: Any, precision: str, override: float | None) -> tuple[float, str]:
    import torch

    if override:
        return override, "given"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (low, fp32) in GPU_PEAKS.items():
            if key in name:
                return (fp32 if precision == "fp32" else low), f"{key} datasheet"
    return measured_gemm_tflops(device, precision), "measured GEMM"


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from embedding_film.film.embedding import PixelFeeder, autocast_dtype, embed_model, select_device
    from embedding_film.film.models import load_for_embedding

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model, size = build_model(args.model, args.image_size)
    flops = forward_flops(model, size)
    with tempfile.TemporaryDirectory() as tmp:  # what a checkpoint costs to load, as the embed job does it
        model.save_pretrained(tmp)
        start = time.perf_counter()
        model = load_for_embedding(tmp, allow_pickle=False)
        load_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (args.images, 3, size, size), dtype=np.uint8)
    spec = {"rescale": 1 / 255, "mean": [0.5] * 3, "std": [0.5] * 3}
    feeder = PixelFeeder(pixels, spec, device, args.batch_size)
    warm = PixelFeeder(pixels[: min(len(pixels), args.batch_size)], spec, device, args.batch_size)
    embed_model(model, warm, pooling="auto", batch_size=args.batch_size, device=device, precision=args.precision)
    times = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        emb, _ = embed_model(
            model, feeder, pooling="auto", batch_size=args.batch_size, device=device, precision=args.precision
        )
        times.append(time.perf_counter() - start)  # embed_model returns host arrays: the device is done
    best = min(times)
    effective = args.precision if autocast_dtype(args.precision, device) is not None else "fp32"
    peak, peak_source = device_peak(device, effective, args.peak_tflops)
    floor = flops * args.images / (peak * 1e12)
    return {
        "model": args.model,
        "image_size": size,
        "images": args.images,
        "batch_size": args.batch_size,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{device.type} ({torch.get_num_threads()} threads)",
        "precision": effective,
        "images_per_s": args.images / best,
        "median_images_per_s": args.images / statistics.median(times),
        "load_s": load_s,
        "gflop_per_image": flops / 1e9,
        "peak_tflops": peak,
        "peak_source": peak_source,
        "floor_s": floor,
        "seconds": best,
        "percent_of_floor": 100 * floor / best,
        "embedding_dim": int(emb.shape[1]),
        "pixels": "resident" if feeder.resident is not None else "streamed",
    }


def markdown_row(r: dict[str, Any]) -> str:
    return (
        f"| {r['model']} @ {r['image_size']} px | {r['device']} | {r['precision']} | {r['images']} | {r['batch_size']} | "
        f"{r['images_per_s']:,.1f} | {r['load_s']:.2f} | {r['gflop_per_image']:.3f} | {r['peak_tflops']:.2f} ({r['peak_source']}) | "
        f"{r['floor_s']:.3f} | {r['seconds']:.3f} | {r['percent_of_floor']:.0f}% |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit-b16", help="vit-b16, tiny, or a checkpoint folder / hub id")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak to compare with (TFLOP/s)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--markdown", action="store_true", help="print a table row for RESULTS.md")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.markdown:
        print(markdown_row(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
