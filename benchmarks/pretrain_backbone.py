#!/usr/bin/env python
"""A pretrained backbone for the `finetune` run, made locally (nothing can be downloaded here).

    python benchmarks/pretrain_backbone.py benchmarks/work/pretrained-rotation [--steps 400]
    snakemake --cores 2 results/finetune/alignment_comparison.csv --configfile benchmarks/configs/finetune.yaml

The demo trains builtin:tiny-vit from random weights. The article (and most users) fine-tune a pretrained
backbone instead, so this script pretrains the same tiny ViT without labels, on a self-supervised pretext
task (predict which of 0/90/180/270 degrees an image was rotated by; Gidaris et al., ICLR 2018) over the
digits training split only, and saves it with save_pretrained (model + image processor). The `finetune`
config then fine-tunes it on the 10 digit classes through the workflow's hub/local loading path
(from_pretrained with a fresh 10-class head), as for google/vit-base-patch16-224-in21k.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

ROTATIONS = {0: "0", 1: "90", 2: "180", 3: "270"}


def pretrain(out: Path, steps: int, batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0) -> None:
    import torch
    from tqdm.auto import tqdm
    from transformers import ViTForImageClassification

    from embedding_film.film.data import builtin_digits
    from embedding_film.film.models import tiny_vit_config, tiny_vit_processor

    torch.manual_seed(seed)
    processor = tiny_vit_processor(32)
    train = builtin_digits(32, seed=seed)["train"]  # the workflow's split: the eval images are never seen
    pixels = processor(list(train["image"]), return_tensors="pt")["pixel_values"]
    model = ViTForImageClassification(tiny_vit_config(len(ROTATIONS), ROTATIONS))
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(steps), desc="pretrain (rotation)"):
        batch = pixels[torch.randint(0, len(pixels), (batch_size,), generator=generator)]
        turns = torch.randint(0, len(ROTATIONS), (batch_size,), generator=generator)
        rotated = torch.stack([torch.rot90(image, int(k), dims=(1, 2)) for image, k in zip(batch, turns)])
        loss = model(pixel_values=rotated, labels=turns).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    print(f"saved the pretrained backbone to {out} (last pretext loss {loss.item():.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    pretrain(args.out, args.steps)


if __name__ == "__main__":
    main()
