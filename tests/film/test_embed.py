"""Preprocessing once per run and the embedding stage: uint8 pixels normalised on the device, batched
inference, one output pair per checkpoint, device and precision choices, NaN checkpoints refused."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_models import build_checkpoint, images

from embedding_film.film.common import UserError


def eval_parquet(path: Path, n: int = 10) -> Path:
    from datasets import ClassLabel, Dataset, Features, Image, Value

    features = Features({"id": Value("string"), "image": Image(), "label": ClassLabel(names=["a", "b"])})
    Dataset.from_dict(
        {"id": [f"test/{i}" for i in range(n)], "image": images(n), "label": [i % 2 for i in range(n)]},
        features=features,
    ).to_parquet(str(path))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two checkpoints (different seeds) and the preprocessed eval pixels, as the workflow makes them."""
    from embedding_film.film.preprocess import preprocess, processor_for

    root = tmp_path_factory.mktemp("embed")
    checkpoints = [str(build_checkpoint(root / f"checkpoint-{s}", "vit", seed=s)) for s in (1, 2)]
    pixels, spec = root / "pixels.npy", root / "pixels.json"
    preprocess(
        str(eval_parquet(root / "eval.parquet")),
        processor_for("builtin:tiny-vit", 16, checkpoints[0]),
        str(pixels),
        str(spec),
        batch_size=4,
    )
    return {"root": root, "checkpoints": checkpoints, "pixels": str(pixels), "spec": str(spec)}


def _embed(run: dict[str, Any], out: Path, checkpoints: list[str] | None = None, **overrides: Any) -> list[np.ndarray]:
    from embedding_film.film.embedding import embed_checkpoint

    checkpoints = checkpoints or run["checkpoints"]
    emb = [str(out / f"emb{i}.npy") for i in range(len(checkpoints))]
    probs = [str(out / f"probs{i}.npy") for i in range(len(checkpoints))]
    kwargs = dict(pooling="auto", batch_size=4, device="auto", precision="fp32", allow_pickle=False) | overrides
    for checkpoint, e, p in zip(checkpoints, emb, probs):
        embed_checkpoint(checkpoint, run["pixels"], run["spec"], e, p, **kwargs)
    return [np.load(p) for p in emb + probs]


def test_pixels_are_stored_once_as_uint8(run: dict[str, Any]) -> None:
    pixels = np.load(run["pixels"])
    assert pixels.dtype == np.uint8 and pixels.shape == (10, 3, 32, 32)
    assert json.loads(Path(run["spec"]).read_text()) == {
        "rescale": 1 / 255,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    }


def test_each_checkpoint_gets_its_own_files_independent_of_batch_size(run: dict[str, Any], tmp_path: Path) -> None:
    from embedding_film.film.embedding import embed_model
    from embedding_film.film.models import load_for_embedding

    e1, e2, p1, p2 = _embed(run, tmp_path / "a")
    assert e1.shape == e2.shape == (10, 16) and p1.shape == (10, 3) and np.allclose(p1.sum(1), 1, atol=1e-5)
    assert not np.allclose(e1, e2)  # two checkpoints, two films
    big = _embed(run, tmp_path / "b", batch_size=64)
    np.testing.assert_allclose(big[0], e1, atol=1e-5)
    direct, _ = embed_model(
        load_for_embedding(run["checkpoints"][1], False),
        np.load(run["pixels"]),
        json.loads(Path(run["spec"]).read_text()),
    )
    np.testing.assert_allclose(direct, e2, atol=1e-5)


def test_a_checkpoints_embeddings_are_the_same_bits_whatever_its_jobs_threads(
    run: dict[str, Any], tmp_path: Path
) -> None:
    """A CPU kernel may round differently when it splits its work across threads (on some CPUs, this tiny ViT's
    attention, 8 values per head, does): a job of 2 or 3 threads embeds that many batches at once, each on one
    thread, and writes the bits a job of 1 thread writes, its batches (here 3 of 4 images) in order. So an
    appended checkpoint, whose job gets every core, gives what a full film's job gives."""
    import torch

    threads = torch.get_num_threads()
    out = {}
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            out[n] = _embed(run, tmp_path / str(n), checkpoints=run["checkpoints"][:1])
            assert torch.get_num_threads() == n  # the job's threads, given back after the batches
    finally:
        torch.set_num_threads(threads)
    for n in (2, 3):
        for array, alone in zip(out[n], out[1]):
            np.testing.assert_array_equal(array, alone)


def test_reduced_precision_is_float32_on_the_cpu(run: dict[str, Any], tmp_path: Path) -> None:
    fp32 = _embed(run, tmp_path / "a", checkpoints=run["checkpoints"][:1])
    bf16 = _embed(run, tmp_path / "b", checkpoints=run["checkpoints"][:1], precision="bf16")
    assert bf16[0].dtype == np.float32
    np.testing.assert_array_equal(fp32[0], bf16[0])


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("cuda:7", "embedding.device 'cuda:7' is not available on this machine; use auto or cpu."),
        ("gpu0", "embedding.device 'gpu0' is not a device name; use auto, cpu, cuda, cuda:N or mps."),
    ],
)
def test_unavailable_device_is_named(device: str, message: str) -> None:
    from embedding_film.film.embedding import select_device

    with pytest.raises(UserError, match=message.replace(".", r"\.").replace("(", r"\(")):
        select_device(device)


def test_auto_device_is_cpu_here() -> None:
    import torch

    from embedding_film.film.embedding import select_device

    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_nan_embeddings_are_refused_and_nothing_is_written(run: dict[str, Any], tmp_path: Path) -> None:
    import torch
    from transformers import ViTForImageClassification

    bad = tmp_path / "checkpoint-9"
    model = ViTForImageClassification.from_pretrained(run["checkpoints"][0])
    with torch.no_grad():
        model.vit.embeddings.patch_embeddings.projection.weight[0, 0, 0, 0] = float("nan")
    model.save_pretrained(bad)
    with pytest.raises(
        UserError,
        match=r"checkpoint '.*checkpoint-9' gives NaN/inf embeddings for 10 of 10 images \(training diverged\?\); lower training.learning_rate or drop that checkpoint",
    ):
        _embed(run, tmp_path / "out", checkpoints=[str(bad)])
    assert not list((tmp_path / "out").glob("*.npy")) if (tmp_path / "out").exists() else True


def test_external_checkpoint_without_processor_needs_the_model_name(tmp_path: Path) -> None:
    from embedding_film.film.preprocess import processor_for

    folder = build_checkpoint(tmp_path / "checkpoint-1", "convnext")
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(
        UserError,
        match=r"checkpoint '.*checkpoint-1' has no preprocessor_config.json and model: is builtin:tiny-vit; set model: to the hub id or folder",
    ):
        processor_for("builtin:tiny-vit", 32, str(folder))
    assert (
        type(processor_for(str(build_checkpoint(tmp_path / "base", "convnext")), 32, str(folder))).__name__
        == "ConvNextImageProcessorPil"
    )


def test_processor_that_keeps_image_sizes_is_refused(tmp_path: Path) -> None:
    from transformers import ViTImageProcessorPil

    from embedding_film.film.preprocess import preprocess

    with pytest.raises(
        UserError,
        match=r"the image processor ViTImageProcessorPil gives pixel arrays of several sizes, not one \[batch, 3, H, W\] array",
    ):
        preprocess(
            str(eval_parquet(tmp_path / "eval.parquet", 4)),
            ViTImageProcessorPil(do_resize=False),
            str(tmp_path / "p.npy"),
            str(tmp_path / "p.json"),
        )
    assert not (tmp_path / "p.npy").exists()  # atomic: no half-written pixels
