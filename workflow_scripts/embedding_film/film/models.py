"""Models: the built-in tiny ViT, safe loading of hub ids / local folders / checkpoints, and pooling.

Safety: weights are only read from safetensors files and `trust_remote_code` is always False, so loading
a model never runs code that came with it. A folder that only has a pickle (pytorch_model.bin) is refused
unless the user opts in with `allow_pickle_checkpoints: true`.

Pooling (`embedding.pooling`), see docs/models.md for the table per architecture:
  auto    what the classifier head sees: the input of the checkpoint's classification head when it has
          one (ViT/DeiT: CLS of the final, layer-normed hidden state; BEiT: layer-normed mean of the patch
          tokens; DINOv2: CLS concatenated with the patch mean; Swin/ConvNeXt/ResNet: the pooled
          features). Without a head, the same choice is made from the architecture (AUTO_HEADLESS).
  cls     first token of the last hidden state (models with a CLS token only).
  mean    mean over tokens (token models) or spatial positions (CNNs).
  pooler  the model's `pooler_output`.

Nothing here imports torch or transformers at module level: the Snakefile imports this module at parse
time (cheap checks of checkpoint folders), and every job pays those imports only when it needs them.
"""

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedding_film.film.checkpoints import PICKLE_FILES, WEIGHT_FILES, safetensors_problem, weight_files
from embedding_film.film.common import CheckpointError, UserError

if TYPE_CHECKING:  # torch/transformers are imported lazily: they cost seconds per process.
    import torch
    from transformers import PretrainedConfig

log = logging.getLogger(__name__)

BUILTIN_TINY_VIT = "builtin:tiny-vit"
BUILTIN_MODELS = (BUILTIN_TINY_VIT,)
POOLINGS = ("auto", "cls", "mean", "pooler")

# Token models whose first token is a patch, not a CLS token: `cls` pooling is refused for them.
NO_CLS_TOKEN = frozenset({"swin", "swinv2", "donut-swin", "maskformer-swin", "focalnet", "pvt", "pvt_v2", "hiera"})
# `auto` for a checkpoint without a classification head: what that architecture's
# *ForImageClassification head would see. Unlisted token models use cls, unlisted CNNs pooler (or mean).
AUTO_HEADLESS = {
    "vit": "cls",
    "deit": "cls",
    "beit": "pooler",  # layer-normed mean of the patch tokens (use_mean_pooling), else CLS
    "data2vec-vision": "pooler",
    "dinov2": "cls+mean",  # Dinov2ForImageClassification: concat(CLS, mean of patch tokens)
    "swin": "pooler",
    "swinv2": "pooler",
    "convnext": "pooler",
    "convnextv2": "pooler",
    "resnet": "pooler",
    "regnet": "pooler",
}
_WARNED: set[str] = set()
# config.json keys that decide the weights' shapes (and so the embedding size): checkpoints in one
# external folder must agree on them.
ARCHITECTURE_KEYS = (
    "model_type",
    "architectures",
    "num_labels",
    "hidden_size",
    "hidden_sizes",
    "embed_dim",
    "depths",
    "num_hidden_layers",
    "num_attention_heads",
    "patch_size",
    "image_size",
    "num_channels",
    "embedding_size",
    "use_mean_pooling",
)


def is_builtin(model: str) -> bool:
    """True for builtin:tiny-vit; an unknown builtin: name is a UserError (raised at parse time)."""
    if not model.startswith("builtin:"):
        return False
    if model not in BUILTIN_MODELS:
        raise UserError(
            f"model '{model}' is not a built-in model; use {', '.join(BUILTIN_MODELS)}, a hub id or a save_pretrained folder."
        )
    return True


def looks_like_path(name: str) -> bool:
    """A name the user meant as a local path (hub ids are 'owner/name' or 'name')."""
    return name.startswith(("/", "./", "../", "~")) or Path(name).exists()


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


def read_config(folder: str | os.PathLike[str], what: str = "model folder") -> dict[str, Any]:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise UserError(f"{what} '{folder}' has no config.json; point it at a folder written by save_pretrained.")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(
            f"'{path}' is not readable JSON ({type(err).__name__}); re-save the model with save_pretrained."
        ) from err
    if not isinstance(config, dict) or "model_type" not in config:
        raise UserError(
            f"'{path}' has no model_type; it is not a transformers model config (re-save with save_pretrained)."
        )
    if config.get("auto_map") and not _WARNED:
        _WARNED.add("auto_map")
        log.warning(
            "%s asks for custom code (auto_map); it is ignored, only built-in transformers classes are used", path
        )
    return config


def check_model_folder(
    folder: str | os.PathLike[str], allow_pickle: bool = False, what: str = "model folder"
) -> dict[str, Any]:
    """Refuse a folder that is not a loadable model, has broken safetensors, or only pickled weights
    (unless opted in). Returns its config.json. No torch import: milliseconds per folder."""
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"{what} '{path}' does not exist; check the path.")
    config = read_config(path, what)
    has_safe = any((path / f).is_file() for f in WEIGHT_FILES)
    has_pickle = any((path / f).is_file() for f in PICKLE_FILES)
    if not has_safe and has_pickle and not allow_pickle:
        raise UserError(
            f"{what} '{path}' only has pickled weights (pytorch_model.bin), which can run code when loaded; "
            "convert it to safetensors or set allow_pickle_checkpoints: true if you trust it."
        )
    if not has_safe and not has_pickle:
        raise UserError(f"{what} '{path}' has no model.safetensors; save it with save_pretrained.")
    if has_safe:
        for weights in weight_files(path):
            if not weights.is_file():
                raise UserError(
                    f"{what} '{path}' lacks the weight shard '{weights.name}' its index names; copy it or re-save the model."
                )
            problem = safetensors_problem(weights)
            if problem:
                raise UserError(f"'{weights}' {problem}; re-save or re-download that {what}.")
    return config


def architecture_signature(config: dict[str, Any]) -> dict[str, Any]:
    derived = {"num_labels": len(config.get("id2label") or {}) or config.get("num_labels")}
    return {k: derived[k] if k in derived else config.get(k) for k in ARCHITECTURE_KEYS}


def check_pooling(pooling: str, model_type: str, where: str) -> None:
    """Refuse a pooling the architecture cannot do (before any image is embedded)."""
    if pooling not in POOLINGS:
        raise UserError(f"embedding.pooling '{pooling}' is unknown; use {', '.join(POOLINGS)}.")
    if pooling == "cls" and model_type in NO_CLS_TOKEN:
        raise UserError(
            f"embedding.pooling: cls needs a CLS token, which {model_type} ({where}) has not; use auto, mean or pooler."
        )


def check_checkpoint_folders(
    folders: Sequence[str | os.PathLike[str]], allow_pickle: bool = False, pooling: str = "auto"
) -> dict[str, Any]:
    """Check every checkpoint folder of an external training run, cheaply and before any job runs:
    each is a loadable model, and all share one architecture. Returns the first one's config."""
    first: tuple[str, dict[str, Any]] | None = None
    for folder in folders:
        config = check_model_folder(folder, allow_pickle, what="checkpoint")
        signature = architecture_signature(config)
        if first is None:
            first = (str(folder), signature)
            check_pooling(pooling, str(config["model_type"]), str(folder))
            continue
        differ = [k for k in ARCHITECTURE_KEYS if signature[k] != first[1][k]]
        if differ:
            k = differ[0]
            raise UserError(
                f"checkpoint '{folder}' has {k}={signature[k]} but '{first[0]}' has {k}={first[1][k]}; "
                "one checkpoints folder must hold checkpoints of one architecture (move the others out)."
            )
    if first is None:
        raise UserError(
            "no checkpoint folders were given; point checkpoints: at a Trainer output_dir with checkpoint-* folders."
        )
    return read_config(first[0], "checkpoint")


def check_model_source(model: str, allow_pickle: bool = False) -> None:
    """Parse-time check of `model:`: a known builtin, or an existing save_pretrained folder when it is a
    path. Hub ids are not looked up (nothing is downloaded when the workflow is parsed)."""
    if is_builtin(model):
        return
    if looks_like_path(model):
        if not Path(model).expanduser().exists():
            raise UserError(
                f"model folder '{model}' does not exist; give an existing save_pretrained folder, a hub id or {BUILTIN_TINY_VIT}."
            )
        check_model_folder(Path(model).expanduser(), allow_pickle)


# --- loading (torch/transformers) ------------------------------------------------------------------------


def _load_kwargs(allow_pickle: bool) -> dict[str, Any]:
    return {"trust_remote_code": False, "use_safetensors": None if allow_pickle else True}


def _hub_error(source: str, err: Exception) -> UserError:
    text = str(err)
    if "trust_remote_code" in text or "custom code" in text:
        return UserError(
            f"model '{source}' needs its own code (trust_remote_code), which the workflow never runs; "
            "use a model that transformers supports natively."
        )
    if "safetensors" in text and ("pytorch_model.bin" in text or "no file named" in text or "does not appear" in text):
        return UserError(
            f"model '{source}' has no safetensors weights, only a pickle that can run code when loaded; "
            "use a safetensors copy or set allow_pickle_checkpoints: true if you trust it."
        )
    return UserError(
        f"model '{source}' could not be found locally or on the Hugging Face hub ({type(err).__name__}); "
        "check the model: name, or pre-download it (HF_HUB_OFFLINE=1 then uses the local cache)."
    )


def _local_folder(source: str) -> Path | None:
    """The folder `source` names when it is a local path (checked: exists, has a config), else None (a hub id)."""
    if not looks_like_path(source):
        return None
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise UserError(
            f"model folder '{source}' does not exist; give an existing save_pretrained folder, a hub id or {BUILTIN_TINY_VIT}."
        )
    read_config(folder)
    return folder


def load_model_config(source: str) -> "PretrainedConfig":
    """The config of a hub id or local folder, with a clear error when neither exists."""
    from transformers import AutoConfig

    _local_folder(source)
    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as err:
        raise _hub_error(source, err) from err


def load_processor(source: str) -> Any:
    """The image processor of a hub id or local folder.

    The PIL backend is requested so that the pixels are the same with or without torchvision installed.
    """
    from transformers import AutoImageProcessor

    folder = _local_folder(source)
    if folder is not None and not (folder / "preprocessor_config.json").is_file():
        raise UserError(
            f"model folder '{source}' has no preprocessor_config.json; save the model's image processor there "
            "with processor.save_pretrained."
        )
    try:
        return AutoImageProcessor.from_pretrained(source, trust_remote_code=False, backend="pil")
    except (OSError, ValueError, KeyError) as err:
        if folder is not None:
            raise UserError(
                f"the image processor in '{source}' could not be loaded ({type(err).__name__}); re-save it with processor.save_pretrained."
            ) from err
        raise _hub_error(source, err) from err


def load_for_training(source: str, num_labels: int, id2label: dict[int, str], allow_pickle: bool) -> "torch.nn.Module":
    """A hub/local backbone with a fresh classification head for our labels."""
    from transformers import AutoModelForImageClassification

    if looks_like_path(source):
        check_model_source(source, allow_pickle)
    load_model_config(source)
    try:
        return AutoModelForImageClassification.from_pretrained(
            source,
            num_labels=num_labels,
            id2label={int(k): v for k, v in id2label.items()},
            label2id={v: int(k) for k, v in id2label.items()},
            ignore_mismatched_sizes=True,
            **_load_kwargs(allow_pickle),
        )
    except (OSError, ValueError) as err:
        raise _hub_error(source, err) from err


def model_class(config: dict[str, Any]) -> Any:
    """The transformers class to load a checkpoint with: the one its config names, when that is a built-in
    image model class (so a DeiT distilled checkpoint keeps both heads), else AutoModel(ForImageClassification)."""
    import transformers
    from transformers import AutoModel, AutoModelForImageClassification

    for name in config.get("architectures") or []:
        cls = getattr(transformers, name, None)
        if cls is not None and ("ForImageClassification" in name or name.endswith("Model")):
            return cls
    heads = any("ForImageClassification" in a for a in config.get("architectures") or [])
    return AutoModelForImageClassification if heads else AutoModel


def load_for_embedding(folder: str | os.PathLike[str], allow_pickle: bool) -> "torch.nn.Module":
    """Load a checkpoint for inference, in float32, with its classification head when it has one."""
    import torch
    import transformers

    config = check_model_folder(folder, allow_pickle, what="checkpoint")
    cls = model_class(config)
    transformers.logging.set_verbosity_error()  # no "weights not used" chatter per checkpoint
    try:
        model, info = cls.from_pretrained(
            str(folder), dtype=torch.float32, output_loading_info=True, **_load_kwargs(allow_pickle)
        )
    except Exception as err:  # safetensors raises its own error types for corrupt files
        first_line = (str(err).splitlines() or [""])[0][:120]
        raise CheckpointError(
            f"checkpoint '{folder}' could not be loaded ({type(err).__name__}: {first_line}); "
            "the file is probably truncated or corrupt: re-save or re-download it."
        ) from err
    missing = sorted(info.get("missing_keys") or [])
    essential = [k for k in missing if "pooler" not in k]
    if essential:
        raise CheckpointError(
            f"checkpoint '{folder}' lacks {len(essential)} weights of its architecture (e.g. {essential[0]}); "
            "it is incomplete or of another model class: re-save it with save_pretrained."
        )
    model.film_random_pooler = bool(missing)  # a pooler the checkpoint did not save is untrained
    return model.eval()


# --- pooling ---------------------------------------------------------------------------------------------


def classifier_module(model: "torch.nn.Module") -> "torch.nn.Module | None":
    """The classification head whose input `auto` pooling returns, if the model has one.

    HF image classifiers call it `classifier`; DeiT's distilled model has `cls_classifier` (on the CLS
    token) next to a distillation head. A head replaced by nn.Identity (num_labels=0) is no head.
    """
    import torch

    for name in ("classifier", "cls_classifier"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module) and not isinstance(head, torch.nn.Identity):
            return head
    return None


def resolve_pooling(pooling: str, model: "torch.nn.Module") -> str:
    """The concrete pooling for this model: head (the classifier's input), cls, mean, pooler or cls+mean."""
    model_type = str(getattr(model.config, "model_type", ""))
    check_pooling(pooling, model_type, type(model).__name__)
    if classifier_module(model) is not None and pooling == "auto":
        return "head"
    mode = AUTO_HEADLESS.get(model_type, "default") if pooling == "auto" else pooling
    if mode == "pooler" and getattr(model, "film_random_pooler", False):
        if pooling == "pooler":
            raise UserError(
                f"embedding.pooling: pooler uses the pooler of {type(model).__name__}, which this checkpoint did not save "
                "(it would be random); use auto, cls or mean."
            )
        mode = "default"
    return mode


def pool(
    pooling: str,
    last_hidden_state: "torch.Tensor",
    pooler_output: "torch.Tensor | None",
    head_input: "torch.Tensor | None",
) -> "torch.Tensor":
    """Turn one batch of model outputs into one vector per image.

    `pooling` is a resolved mode (see resolve_pooling) or one of the config values (auto works as in
    resolve_pooling for a model whose type is unknown).
    """
    tokens = last_hidden_state.dim() == 3  # [batch, tokens, hidden] for transformers, [batch, C, H, W] for CNNs
    if pooling in ("auto", "head"):
        if head_input is not None:
            return head_input.flatten(1)
        pooling = "default"
    if pooling == "default":
        pooling = "cls" if tokens else ("pooler" if pooler_output is not None else "mean")
    if pooling == "pooler" and pooler_output is None:
        raise UserError("embedding.pooling: pooler needs a model with a pooler_output; use auto, cls or mean.")
    if pooling == "cls":
        if not tokens:
            raise UserError(
                "embedding.pooling: cls needs a token model (ViT-style); use auto, mean or pooler for CNNs."
            )
        return last_hidden_state[:, 0]
    if pooling == "mean":
        return last_hidden_state.mean(dim=1) if tokens else last_hidden_state.mean(dim=(2, 3))
    if pooling == "pooler":
        return pooler_output.flatten(1)
    if pooling == "cls+mean":
        import torch

        return torch.cat([last_hidden_state[:, 0], last_hidden_state[:, 1:].mean(dim=1)], dim=1)
    raise UserError(f"embedding.pooling '{pooling}' is unknown; use {', '.join(POOLINGS)}.")
