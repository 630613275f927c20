"""Models: the built-in tiny ViT, safe loading of hub ids / local folders / checkpoints, and pooling.

Pooling (`embedding.pooling`):
  auto    what the classifier head sees: the input of the checkpoint's `classifier` module when it has a
          classification head (ViT/DeiT: CLS of the final, layer-normed hidden state; BEiT: mean of patch
          tokens; DINOv2: CLS concatenated with the patch mean; Swin/ConvNeXt/ResNet: the pooled features);
          without a head, CLS for token models and the pooled features for CNNs.
  cls     first token of the last hidden state (token models only).
  mean    mean over tokens (token models) or spatial positions (CNNs).
  pooler  the model's `pooler_output`.
"""


import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow_scripts.common import UserError

if TYPE_CHECKING:  # torch/transformers are imported lazily: they cost seconds per process.
    import torch
    from transformers import PretrainedConfig

log = logging.getLogger(__name__)

BUILTIN_TINY_VIT = "builtin:tiny-vit"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def is_builtin(model: str) -> bool:
    return model.startswith("builtin:")


def tiny_vit_config(
    num_labels: int,
    id2label: dict[int, str],
    image_size: int = 32,
    hidden_size: int = 128,
    num_hidden_layers: int = 4,
    num_attention_heads: int = 4,
    intermediate_size: int = 256,
    patch_size: int = 4,
) -> "PretrainedConfig":
    """A ViT small enough to fine-tune on two CPU cores in about a minute."""
    from transformers import ViTConfig

    if hidden_size % num_attention_heads:
        raise UserError(
            f"tiny_vit.hidden_size ({hidden_size}) must be divisible by tiny_vit.num_attention_heads "
            f"({num_attention_heads}); change one of them."
        )
    if image_size % patch_size:
        raise UserError(
            f"tiny_vit.patch_size ({patch_size}) must divide dataset.image_size ({image_size}); change one of them."
        )
    return ViTConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        num_labels=num_labels,
        id2label={int(k): v for k, v in id2label.items()},
        label2id={v: int(k) for k, v in id2label.items()},
    )


def tiny_vit_processor(image_size: int) -> Any:
    """Pixel preprocessing of builtin:tiny-vit: resize to image_size, scale to [-1, 1]."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(
        size={"height": image_size, "width": image_size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )


def check_model_folder(folder: str | os.PathLike[str], allow_pickle: bool = False, what: str = "model folder") -> None:
    """Refuse a folder that is not a loadable model, or that only has pickled weights (unless opted in)."""
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise UserError(f"{what} '{path}' has no config.json; point it at a folder written by save_pretrained.")
    has_safe = any((path / f).is_file() for f in WEIGHT_FILES)
    has_pickle = any((path / f).is_file() for f in PICKLE_FILES)
    if not has_safe and has_pickle and not allow_pickle:
        raise UserError(
            f"{what} '{path}' only has pickled weights (pytorch_model.bin), which can run code when loaded; "
            "convert it to safetensors or set allow_pickle_checkpoints: true if you trust it."
        )
    if not has_safe and not has_pickle:
        raise UserError(f"{what} '{path}' has no model.safetensors; save it with save_pretrained.")


def _load_kwargs(allow_pickle: bool) -> dict[str, Any]:
    return {"trust_remote_code": False, "use_safetensors": None if allow_pickle else True}


def load_model_config(source: str) -> "PretrainedConfig":
    """The config of a hub id or local folder, with a clear error when neither exists."""
    from transformers import AutoConfig

    if Path(source).exists() and not (Path(source) / "config.json").is_file():
        raise UserError(f"model folder '{source}' has no config.json; point model: at a folder written by save_pretrained.")
    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise UserError(
            f"model '{source}' could not be found locally or on the Hugging Face hub ({type(err).__name__}); "
            "check the model: name, or pre-download it (HF_HUB_OFFLINE=1 uses the local cache)."
        ) from err


def load_processor(source: str) -> Any:
    """The image processor of a hub id or local folder."""
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise UserError(
            f"model '{source}' has no image processor (preprocessor_config.json); save one with "
            "processor.save_pretrained into the model folder."
        ) from err


def load_for_training(source: str, num_labels: int, id2label: dict[int, str], allow_pickle: bool) -> "torch.nn.Module":
    """A hub/local backbone with a fresh classification head for our labels."""
    from transformers import AutoModelForImageClassification

    if Path(source).exists():
        check_model_folder(source, allow_pickle)
    load_model_config(source)
    return AutoModelForImageClassification.from_pretrained(
        source,
        num_labels=num_labels,
        id2label={int(k): v for k, v in id2label.items()},
        label2id={v: int(k) for k, v in id2label.items()},
        ignore_mismatched_sizes=True,
        **_load_kwargs(allow_pickle),
    )


def has_classifier_head(folder: str | os.PathLike[str]) -> bool:
    config = json.loads((Path(folder) / "config.json").read_text())
    return any(a.endswith("ForImageClassification") for a in config.get("architectures") or [])


def load_for_embedding(folder: str | os.PathLike[str], allow_pickle: bool) -> "torch.nn.Module":
    """Load a checkpoint for inference: with its classification head when it has one."""
    import transformers
    from transformers import AutoModel, AutoModelForImageClassification

    check_model_folder(folder, allow_pickle, what="checkpoint")
    cls = AutoModelForImageClassification if has_classifier_head(folder) else AutoModel
    transformers.logging.set_verbosity_error()  # no "weights not used" chatter per checkpoint
    try:
        model = cls.from_pretrained(folder, **_load_kwargs(allow_pickle))
    except Exception as err:  # safetensors raises its own error types for truncated files
        raise UserError(
            f"checkpoint '{folder}' could not be loaded ({type(err).__name__}: {str(err).splitlines()[0][:120]}); "
            "the file is probably truncated or corrupt: delete the folder or re-save it."
        ) from err
    return model.eval()


def classifier_module(model: "torch.nn.Module") -> "torch.nn.Module | None":
    """The classification head's module, if the model has one (HF image classifiers call it `classifier`)."""
    return getattr(model, "classifier", None)


def pool(
    pooling: str,
    last_hidden_state: "torch.Tensor",
    pooler_output: "torch.Tensor | None",
    head_input: "torch.Tensor | None",
) -> "torch.Tensor":
    """Turn one batch of model outputs into one vector per image (see the module docstring)."""
    tokens = last_hidden_state.dim() == 3  # [batch, tokens, hidden] for transformers, [batch, C, H, W] for CNNs
    if pooling == "auto":
        if head_input is not None:
            return head_input.flatten(1)
        pooling = "cls" if tokens else ("pooler" if pooler_output is not None else "mean")
    if pooling == "cls":
        if not tokens:
            raise UserError("embedding.pooling: cls needs a token model (ViT-style); use auto, mean or pooler for CNNs.")
        return last_hidden_state[:, 0]
    if pooling == "mean":
        return last_hidden_state.mean(dim=1) if tokens else last_hidden_state.mean(dim=(2, 3))
    if pooling == "pooler":
        if pooler_output is None:
            raise UserError("embedding.pooling: pooler needs a model with a pooler_output; use auto, cls or mean.")
        return pooler_output.flatten(1)
    raise UserError(f"embedding.pooling '{pooling}' is unknown; use auto, cls, mean or pooler.")
