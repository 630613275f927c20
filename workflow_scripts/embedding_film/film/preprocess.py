"""Stage 1b: pixel preprocessing, once per run (not once per checkpoint, as the article did).

In:  data/eval.parquet and the model's image processor (a hub id, a folder, or builtin:tiny-vit).
Out: data/pixels.npy (uint8 [N, 3, H, W]: resized and cropped, not yet normalised, 4x smaller than float32)
     data/pixels.json (rescale factor, mean and std: the embedding stage normalises on the device).
     The same for the training images the training dynamics score (`training_images`: data/train_*).
"""

import logging
from pathlib import Path
from typing import Any

import numpy as np

from embedding_film.film.common import UserError, atomic_path, progress, save_json
from embedding_film.film.data import decode_rgb, stratified_subset
from embedding_film.film.models import is_builtin, load_processor, read_config, tiny_vit_processor

log = logging.getLogger(__name__)


def processor_for(model: str, image_size: int, checkpoint_dir: str | None = None) -> Any:
    """The image processor: the checkpoint's own when it saved one, else the model's.

    `checkpoint_dir` is the first checkpoint of an external training run (None when the workflow trains).
    """
    if checkpoint_dir and (Path(checkpoint_dir) / "preprocessor_config.json").is_file():
        return load_processor(checkpoint_dir)
    if is_builtin(model):
        if checkpoint_dir and not _is_tiny_vit(checkpoint_dir, image_size):
            raise UserError(
                f"checkpoint '{checkpoint_dir}' has no preprocessor_config.json and model: is {model}; set model: to the "
                "hub id or folder the checkpoints were fine-tuned from, so that its image processor is used."
            )
        return tiny_vit_processor(image_size)
    return load_processor(model)


def _is_tiny_vit(checkpoint_dir: str, image_size: int) -> bool:
    config = read_config(checkpoint_dir, "checkpoint")
    return config.get("model_type") == "vit" and config.get("image_size") == image_size


def normalisation(processor: Any) -> dict[str, Any]:
    """What the processor does after resizing, applied later on the device: x * rescale, then (x - mean) / std."""
    rescale = float(getattr(processor, "rescale_factor", 1 / 255)) if getattr(processor, "do_rescale", True) else 1.0
    if getattr(processor, "do_normalize", True):
        mean = [float(v) for v in np.broadcast_to(processor.image_mean, 3)]
        std = [float(v) for v in np.broadcast_to(processor.image_std, 3)]
    else:
        mean, std = [0.0] * 3, [1.0] * 3
    return {"rescale": rescale, "mean": mean, "std": std}


def preprocess(eval_parquet: str, processor: Any, out_pixels: str, out_spec: str, batch_size: int = 256) -> None:
    """Resize/crop every eval image once with the model's processor and store the result as uint8."""
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files={"eval": eval_parquet}, split="eval")
    if not len(ds):
        raise UserError("the eval set is empty; check dataset.eval_split and dataset.eval_size.")
    preprocess_images(ds, processor, out_pixels, out_spec, batch_size)


def preprocess_images(ds: Any, processor: Any, out_pixels: str, out_spec: str, batch_size: int = 256) -> None:
    """Resize/crop the images of the dataset `ds` with `processor`; write them as uint8 [N, 3, H, W] (an empty
    [0, 3, 1, 1] array when `ds` has none) and the normalisation the embedding stage applies."""
    pixels: np.lib.format.open_memmap | None = None
    with atomic_path(out_pixels) as tmp:
        for start in progress(range(0, len(ds), batch_size), "preprocess", total=-(-len(ds) // batch_size)):
            images = [im.convert("RGB") for im in ds[start : start + batch_size]["image"]]
            try:
                batch = processor(images, do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"]
                batch = np.asarray(batch, dtype=np.float32)
            except ValueError as err:
                if "inhomogeneous" not in str(err):
                    raise
                batch = np.zeros((0,))  # images of several sizes
            if batch.ndim != 4 or batch.shape[1] != 3 or (pixels is not None and batch.shape[1:] != pixels.shape[1:]):
                shape = f"of shape {tuple(batch.shape)}" if batch.size else "of several sizes"
                raise UserError(
                    f"the image processor {type(processor).__name__} gives pixel arrays {shape}, not one "
                    "[batch, 3, H, W] array; use a model whose processor resizes every image to one size."
                )
            batch = np.clip(np.round(batch), 0, 255).astype(np.uint8)
            if pixels is None:
                pixels = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(ds), *batch.shape[1:]))
            pixels[start : start + len(batch)] = batch
        if pixels is None:
            pixels = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(0, 3, 1, 1))
        pixels.flush()
        del pixels
    spec = normalisation(processor)
    log.info("preprocessed %d images; normalisation %s", len(ds), spec)
    save_json(out_spec, spec)


def training_images(
    train_parquet: str,
    processor: Any,
    max_images: int,
    seed: int,
    out: dict[str, str],
    thumbnail_size: int = 32,
) -> None:
    """The training images the training dynamics score: all, or above `max_images` a seeded stratified subset
    (the same rows for every checkpoint). Writes out["index"] (row, id, label of each, in scoring order),
    out["pixels"] / out["spec"] (as `preprocess_images`) and out["thumbnails"] (uint8 [N, T, T, 3])."""
    import pandas as pd
    import pyarrow.parquet as pq
    from datasets import Dataset, load_dataset

    if pq.ParquetFile(train_parquet).metadata.num_rows == 0:  # no training split: nothing to score
        ds = Dataset.from_dict({"row": [], "id": [], "label": []})
        log.warning("no training images: the training dynamics are off (see prepare_data's log)")
    else:
        ds = load_dataset("parquet", data_files={"train": train_parquet}, split="train")
        ds = ds.add_column("row", list(range(len(ds))))
    if len(ds) > max_images:
        ds = stratified_subset(ds, max_images, seed)
        log.info("scoring a stratified subset of %d training images (dynamics.max_images)", len(ds))
    index = pd.DataFrame({"row": list(ds["row"]), "id": list(ds["id"]), "label": list(ds["label"])})
    with atomic_path(out["index"]) as tmp:
        index.to_parquet(tmp, index=False)
    preprocess_images(ds, processor, out["pixels"], out["spec"])
    thumbnails = (
        decode_rgb(ds, thumbnail_size, "train")
        if len(ds)
        else np.zeros((0, thumbnail_size, thumbnail_size, 3), np.uint8)
    )
    with atomic_path(out["thumbnails"]) as tmp:
        np.save(tmp, thumbnails, allow_pickle=False)
    log.info("%d training images to score", len(ds))
