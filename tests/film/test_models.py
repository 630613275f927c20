"""Models: tiny checkpoints of seven architectures built from configs, saved with save_pretrained, and
loaded, preprocessed, pooled and embedded by the workflow's real code. Nothing is downloaded."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub lookup fails at once instead of retrying for 20 s

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedding_film.film.common import UserError

SIZE = 32
N_LABELS = 3


def _configs() -> dict[str, Callable[[], tuple[Any, Any, Any]]]:
    """name -> () -> (ForImageClassification class, config, image processor): hidden 8-16, 1 block per stage."""
    import transformers as t

    vit_like = dict(
        image_size=SIZE, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_labels=N_LABELS
    )
    square = {"height": SIZE, "width": SIZE}
    return {
        "vit": lambda: (
            t.ViTForImageClassification,
            t.ViTConfig(intermediate_size=32, **vit_like),
            t.ViTImageProcessorPil(size=square),
        ),
        "deit": lambda: (
            t.DeiTForImageClassification,
            t.DeiTConfig(intermediate_size=32, **vit_like),
            t.DeiTImageProcessorPil(size={"height": SIZE + 4, "width": SIZE + 4}, crop_size=square),
        ),
        "beit": lambda: (
            t.BeitForImageClassification,
            t.BeitConfig(intermediate_size=32, **vit_like),
            t.BeitImageProcessorPil(size=square, do_center_crop=False),
        ),
        "dinov2": lambda: (
            t.Dinov2ForImageClassification,
            t.Dinov2Config(mlp_ratio=2, **vit_like),
            t.BitImageProcessorPil(size={"shortest_edge": SIZE}, crop_size=square),
        ),
        "swin": lambda: (
            t.SwinForImageClassification,
            t.SwinConfig(
                image_size=SIZE,
                patch_size=4,
                embed_dim=8,
                depths=[1, 1],
                num_heads=[1, 2],
                window_size=4,
                num_labels=N_LABELS,
            ),
            t.ViTImageProcessorPil(size=square),
        ),
        "convnext": lambda: (
            t.ConvNextForImageClassification,
            t.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], image_size=SIZE, num_labels=N_LABELS),
            t.ConvNextImageProcessorPil(size={"shortest_edge": SIZE}),
        ),
        "resnet": lambda: (
            t.ResNetForImageClassification,
            t.ResNetConfig(
                embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=N_LABELS
            ),
            t.ConvNextImageProcessorPil(size={"shortest_edge": SIZE}),
        ),
    }


ARCHS = ["vit", "deit", "beit", "dinov2", "swin", "convnext", "resnet"]


def build_checkpoint(folder: Path, arch: str = "vit", seed: int = 0, headless: bool = False) -> Path:
    """save_pretrained a tiny `arch` model (with its image processor) to `folder`."""
    import torch
    import transformers

    cls, config, processor = _configs()[arch]()
    torch.manual_seed(seed)
    model = cls(config)
    if headless:  # the bare backbone (AutoModel), e.g. a hub backbone without a classification head
        model = getattr(transformers, cls.__name__.replace("ForImageClassification", "Model"))(config)
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def images(n: int = 6, seed: int = 0) -> list[Any]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (40 + i, 48, 3), dtype=np.uint8)) for i in range(n)]


def preprocessed(folder: Path, imgs: list[Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """What the preprocess stage stores for `imgs` with the processor saved in `folder` (uint8 + spec)."""
    from embedding_film.film.models import load_processor
    from embedding_film.film.preprocess import normalisation

    processor = load_processor(str(folder))
    batch = processor([im.convert("RGB") for im in imgs], do_rescale=False, do_normalize=False, return_tensors="np")
    return np.clip(np.round(batch["pixel_values"]), 0, 255).astype(np.uint8), normalisation(processor)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zoo")
    return {arch: build_checkpoint(root / arch, arch) for arch in ARCHS}


def _reference(folder: Path, imgs: list[Any]) -> tuple[Any, Any]:
    """The plain transformers path (processor -> model) that the workflow's fast path must reproduce."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        inputs = processor([im.convert("RGB") for im in imgs], return_tensors="pt")
        out = model(**inputs, output_hidden_states=True)
        base = getattr(model, model.base_model_prefix)(**inputs)
    return out, base


EXPECTED_AUTO = {  # what each architecture's classifier head sees, from the reference forward pass
    "vit": lambda base: base.last_hidden_state[:, 0],
    "deit": lambda base: base.last_hidden_state[:, 0],
    "beit": lambda base: base.pooler_output,
    "dinov2": lambda base: np.concatenate(
        [base.last_hidden_state[:, 0], base.last_hidden_state[:, 1:].mean(1)], axis=1
    ),
    "swin": lambda base: base.pooler_output,
    "convnext": lambda base: base.pooler_output,
    "resnet": lambda base: base.pooler_output.reshape(len(base.pooler_output), -1),
}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_embeds_like_its_classifier_head(zoo: dict[str, Path], arch: str) -> None:
    from embedding_film.film.embedding import embed_model
    from embedding_film.film.models import load_for_embedding

    imgs = images()
    pixels, spec = preprocessed(zoo[arch], imgs)
    model = load_for_embedding(zoo[arch], allow_pickle=False)
    emb, probs = embed_model(model, pixels, spec, "auto", batch_size=4)
    out, base = _reference(zoo[arch], imgs)
    expected = np.asarray(EXPECTED_AUTO[arch](base))
    assert emb.dtype == np.float32 and emb.shape == expected.shape
    np.testing.assert_allclose(emb, expected, atol=1e-4)
    np.testing.assert_allclose(probs, out.logits.softmax(-1).numpy(), atol=1e-5)


@pytest.mark.parametrize(
    ("arch", "pooling", "problem"),
    [
        ("swin", "cls", "cls needs a CLS token, which swin"),
        ("convnext", "cls", "cls needs a token model"),
        ("resnet", "cls", "cls needs a token model"),
        ("vit", "pooler", "pooler needs a model with a pooler_output"),
    ],
)
def test_pooling_an_architecture_cannot_do_is_refused(
    zoo: dict[str, Path], arch: str, pooling: str, problem: str
) -> None:
    from embedding_film.film.embedding import embed_model
    from embedding_film.film.models import load_for_embedding

    pixels, spec = preprocessed(zoo[arch], images(2))
    with pytest.raises(UserError, match=problem):
        embed_model(load_for_embedding(zoo[arch], False), pixels, spec, pooling)


@pytest.mark.parametrize("arch", ["vit", "dinov2", "convnext"])
def test_every_pooling_gives_one_vector_per_image(zoo: dict[str, Path], arch: str) -> None:
    from embedding_film.film.embedding import embed_model
    from embedding_film.film.models import load_for_embedding

    pixels, spec = preprocessed(zoo[arch], images(3))
    model = load_for_embedding(zoo[arch], False)
    for pooling in ("auto", "mean") + (("cls",) if arch != "convnext" else ("pooler",)):
        emb, _ = embed_model(model, pixels, spec, pooling)
        assert emb.shape[0] == 3 and np.isfinite(emb).all()


@pytest.mark.parametrize(("arch", "dim"), [("vit", 16), ("dinov2", 32), ("swin", 16)])
def test_headless_backbone_uses_the_architectures_choice(tmp_path: Path, arch: str, dim: int) -> None:
    from embedding_film.film.embedding import embed_model
    from embedding_film.film.models import load_for_embedding, resolve_pooling

    folder = build_checkpoint(tmp_path / arch, arch, headless=True)
    model = load_for_embedding(folder, False)
    pixels, spec = preprocessed(folder, images(3))
    emb, probs = embed_model(model, pixels, spec, "auto")
    assert emb.shape == (3, dim) and probs.shape == (3, 0)
    assert resolve_pooling("auto", model) == {"vit": "cls", "dinov2": "cls+mean", "swin": "pooler"}[arch]


def test_bf16_checkpoint_is_embedded_in_float32(tmp_path: Path) -> None:
    import torch
    from transformers import ViTForImageClassification

    folder = build_checkpoint(tmp_path / "ckpt")
    ViTForImageClassification.from_pretrained(folder).to(torch.bfloat16).save_pretrained(folder)
    from embedding_film.film.models import load_for_embedding

    assert next(load_for_embedding(folder, False).parameters()).dtype == torch.float32


# --- safety and clear errors ------------------------------------------------------------------------------


def _pickle_only(folder: Path) -> Path:
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def test_pickle_only_checkpoint_is_refused_unless_opted_in(tmp_path: Path) -> None:
    from embedding_film.film.models import check_checkpoint_folders, load_for_embedding

    folder = _pickle_only(build_checkpoint(tmp_path / "checkpoint-1"))
    message = "only has pickled weights (pytorch_model.bin), which can run code when loaded; convert it to safetensors or set allow_pickle_checkpoints: true"
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_checkpoint_folders([folder], allow_pickle=False)
    with pytest.raises(UserError, match="allow_pickle_checkpoints: true"):
        load_for_embedding(folder, allow_pickle=False)
    check_checkpoint_folders([folder], allow_pickle=True)
    assert load_for_embedding(folder, allow_pickle=True).config.model_type == "vit"


class _Bomb:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def test_a_pickle_next_to_safetensors_is_never_loaded(tmp_path: Path) -> None:
    from embedding_film.film.models import load_for_embedding

    folder = build_checkpoint(tmp_path / "ckpt")
    marker = tmp_path / "pwned"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Bomb(str(marker))))
    load_for_embedding(folder, allow_pickle=False)
    load_for_embedding(folder, allow_pickle=True)  # safetensors still win
    assert not marker.exists()


def test_custom_code_in_config_is_never_run(tmp_path: Path) -> None:
    from embedding_film.film.models import load_for_embedding

    folder = build_checkpoint(tmp_path / "ckpt")
    (folder / "evil.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w')\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForImageClassification": "evil.Evil", "AutoConfig": "evil.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    assert load_for_embedding(folder, False).config.model_type == "vit"
    assert not (tmp_path / "pwned").exists()


def test_truncated_safetensors_is_named_before_loading(tmp_path: Path) -> None:
    from embedding_film.film.models import check_checkpoint_folders, load_for_embedding

    folder = build_checkpoint(tmp_path / "checkpoint-3")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(
        UserError,
        match=r"model.safetensors' is \d+ bytes but its header needs \d+ \(truncated\); re-save or re-download that checkpoint",
    ):
        check_checkpoint_folders([folder])
    with pytest.raises(UserError, match="truncated"):
        load_for_embedding(folder, False)


def test_corrupt_safetensors_header_is_named(tmp_path: Path) -> None:
    from embedding_film.film.models import check_model_folder

    folder = build_checkpoint(tmp_path / "ckpt")
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + b"\0" * 64)
    with pytest.raises(UserError, match=r"model.safetensors' has an unreadable header \(.*\); re-save or re-download"):
        check_model_folder(folder, what="checkpoint")


def test_checkpoint_missing_weights_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from embedding_film.film.models import load_for_embedding

    folder = build_checkpoint(tmp_path / "ckpt")
    tensors = load_file(folder / "model.safetensors")
    save_file(
        {k: v for k, v in tensors.items() if not k.startswith("classifier")},
        folder / "model.safetensors",
        metadata={"format": "pt"},
    )
    with pytest.raises(UserError, match=r"lacks 2 weights of its architecture \(e.g. classifier.bias\)"):
        load_for_embedding(folder, False)


def test_checkpoints_of_different_architectures_are_refused(zoo: dict[str, Path], tmp_path: Path) -> None:
    from embedding_film.film.models import check_checkpoint_folders

    a = shutil.copytree(zoo["vit"], tmp_path / "checkpoint-1")
    b = shutil.copytree(zoo["convnext"], tmp_path / "checkpoint-2")
    with pytest.raises(
        UserError,
        match=r"checkpoint '.*checkpoint-2' has model_type=convnext but '.*checkpoint-1' has model_type=vit; one checkpoints folder must hold checkpoints of one architecture",
    ):
        check_checkpoint_folders([a, b])
    check_checkpoint_folders([a, shutil.copytree(zoo["vit"], tmp_path / "checkpoint-3")])


def test_cls_pooling_on_swin_checkpoints_fails_at_the_check(zoo: dict[str, Path]) -> None:
    from embedding_film.film.models import check_checkpoint_folders

    with pytest.raises(UserError, match="embedding.pooling: cls needs a CLS token, which swin"):
        check_checkpoint_folders([zoo["swin"]], pooling="cls")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("builtin:tiny-resnet", "model 'builtin:tiny-resnet' is not a built-in model; use builtin:tiny-vit"),
        ("./no/such/folder", "model folder './no/such/folder' does not exist; give an existing save_pretrained folder"),
    ],
)
def test_unknown_model_names_fail_at_parse_time(model: str, message: str) -> None:
    from embedding_film.film.models import check_model_source

    with pytest.raises(UserError, match=message):
        check_model_source(model)


def test_folder_without_config_is_named(tmp_path: Path) -> None:
    from embedding_film.film.models import check_model_source, load_model_config

    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(
        UserError, match=r"model folder '.*' has no config.json; point it at a folder written by save_pretrained"
    ):
        check_model_source(str(tmp_path))
    with pytest.raises(UserError, match="has no config.json"):
        load_model_config(str(tmp_path))


def test_unknown_hub_id_is_named_without_a_long_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    from embedding_film.film.models import load_model_config, load_processor

    with pytest.raises(
        UserError,
        match=r"model 'nobody/no-such-model' could not be found locally or on the Hugging Face hub \(OSError\); check the model: name",
    ):
        load_model_config("nobody/no-such-model")
    with pytest.raises(UserError, match="model 'nobody/no-such-model' could not be found"):
        load_processor("nobody/no-such-model")


def test_model_folder_is_only_read(zoo: dict[str, Path]) -> None:
    from embedding_film.film.embedding import embed_model
    from embedding_film.film.models import load_for_embedding

    folder = zoo["deit"]
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    embed_model(load_for_embedding(folder, False), *preprocessed(folder, images(2)))
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before


@pytest.mark.workflow
def test_article_config_lists_the_whole_dag_offline(tmp_path: Path) -> None:
    from conftest import REPO, make_workdir, planned_jobs

    workdir = make_workdir(tmp_path)
    shutil.copy(REPO / "configs" / "cifar10-vit.yaml", workdir / "test.yaml")
    jobs = planned_jobs(workdir)  # HF_HUB_OFFLINE=1 and no network: nothing may be fetched at parse time
    assert {"prepare_data", "preprocess", "train", "embed", "animate", "review"} <= set(jobs) and jobs["embed"] > 40
    assert not (workdir / "results").exists()


def test_distilled_deit_keeps_both_heads_and_embeds_the_cls_token(tmp_path: Path) -> None:
    import torch
    import transformers as t

    from embedding_film.film.embedding import embed_model
    from embedding_film.film.models import load_for_embedding

    _cls, config, processor = _configs()["deit"]()
    torch.manual_seed(0)
    t.DeiTForImageClassificationWithTeacher(config).eval().save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    model = load_for_embedding(tmp_path, False)
    assert type(model).__name__ == "DeiTForImageClassificationWithTeacher"
    imgs = images(3)
    emb, probs = embed_model(model, *preprocessed(tmp_path, imgs))
    with torch.no_grad():
        inputs = processor([im.convert("RGB") for im in imgs], return_tensors="pt")
        out = model(**inputs)
        base = model.deit(**inputs)
    np.testing.assert_allclose(emb, base.last_hidden_state[:, 0].numpy(), atol=1e-4)
    np.testing.assert_allclose(probs, out.logits.softmax(-1).numpy(), atol=1e-5)


@pytest.mark.workflow
def test_unknown_builtin_model_fails_the_dry_run(tmp_path: Path) -> None:
    from conftest import make_workdir, snakemake

    workdir = make_workdir(tmp_path, {"model": "builtin:tiny-resnet"})
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml", check=False)
    assert proc.returncode != 0
    assert (
        "model 'builtin:tiny-resnet' is not a built-in model; use builtin:tiny-vit, a hub id or a save_pretrained folder."
        in proc.stdout + proc.stderr
    )
