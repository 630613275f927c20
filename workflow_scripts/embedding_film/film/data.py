"""Stage 1: prepare the data once per run.

In:  `dataset:` config: builtin:digits, a hub name (cifar10), a local imagefolder tree, a parquet/arrow
     file or folder, or a folder written by save_to_disk.
Out: data/train.parquet and data/eval.parquet (HF `datasets`-loadable: id, image (Image), label (ClassLabel)),
     data/labels.npy (int64, eval order), data/thumbnails.npy (uint8 [N, T, T, 3]), data/classes.json,
     data/label_noise.csv (the training labels dataset.label_noise changed, if any).

Every user mistake (a missing split or column, a column without images, a corrupt image, an empty or
single-class eval set) stops this first, cheap job with one sentence naming the thing and the fix.
"""

import contextlib
import io
import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedding_film.film.common import UserError, atomic_path, progress, save_json, save_npy

if TYPE_CHECKING:
    from datasets import Dataset
    from PIL.Image import Image as PILImage

log = logging.getLogger(__name__)

BUILTIN_DIGITS = "builtin:digits"
BUILTIN_DATASETS = (BUILTIN_DIGITS,)
THUMBNAIL_SIZE = 64
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def _features(class_names: list[str]) -> Any:
    from datasets import ClassLabel, Features, Image, Value

    return Features({"id": Value("string"), "image": Image(), "label": ClassLabel(names=class_names)})


def builtin_digits(image_size: int, seed: int, eval_fraction: float = 0.2) -> dict[str, "Dataset"]:
    """scikit-learn's bundled 8x8 digits, upscaled to RGB `image_size` images, split train/test with `seed`."""
    from datasets import Dataset
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    indices = np.arange(len(pixels))
    train_idx, test_idx = train_test_split(indices, test_size=eval_fraction, stratify=digits.target, random_state=seed)
    names = [str(n) for n in digits.target_names]

    def split(name: str, idx: np.ndarray) -> "Dataset":
        images = [
            Image.fromarray(pixels[i]).resize((image_size, image_size), Image.Resampling.BILINEAR).convert("RGB")
            for i in idx
        ]
        return Dataset.from_dict(
            {"id": [f"digits/{i}" for i in idx], "image": images, "label": digits.target[idx].tolist()},
            features=_features(names),
        )

    return {"train": split("train", np.sort(train_idx)), "test": split("test", np.sort(test_idx))}


# --- opening a source ------------------------------------------------------------------------------------


def local_kind(path: Path) -> str:
    """How a local dataset path is read: disk (save_to_disk), parquet, arrow or imagefolder."""
    if path.is_file():
        if path.suffix in (".parquet", ".arrow"):
            return path.suffix[1:]
        raise UserError(f"dataset file '{path}' is neither .parquet nor .arrow; give a folder or one of those files.")
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return "disk"
    if any(path.rglob("*.parquet")):
        return "parquet"
    if any(path.rglob("*.arrow")):
        return "arrow"
    return "imagefolder"


def open_source(name: str, config: str | None, keys: Mapping[str, str] | None = None) -> Mapping[str, "Dataset"]:
    """Every split of a local or hub dataset (a single file or Dataset is the split 'train').

    `keys` maps split names to the config key that asked for them (for the messages).
    """
    import datasets

    if name.startswith("builtin:"):
        raise UserError(
            f"dataset.name '{name}' is not a built-in dataset; use {', '.join(BUILTIN_DATASETS)}, a hub name or a local path."
        )
    path = Path(name).expanduser()
    if not path.exists():
        if name.startswith(("/", "./", "../", "~")):
            raise UserError(
                f"dataset.name '{name}' does not exist; give an existing path, a hub name or {BUILTIN_DIGITS}."
            )
        try:
            return datasets.load_dataset(name, config)
        except Exception as err:  # hub errors come in many types (connection, not found, gated, bad config)
            configs = re.search(r"(?:Available|available).*?(\[.*?\])", str(err))
            if configs and "config" in str(err).lower():
                raise UserError(f"dataset '{name}' needs dataset.config, one of {configs.group(1)}.") from err
            raise UserError(
                f"dataset '{name}' could not be loaded locally or from the hub ({type(err).__name__}); "
                "check dataset.name, or pre-download it (HF_HUB_OFFLINE=1 then uses the local cache)."
            ) from err
    kind = local_kind(path)
    if kind == "imagefolder" and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*")):
        raise UserError(
            f"dataset folder '{name}' has no images, parquet or arrow files; give an imagefolder tree "
            "(split/class/image.png), parquet/arrow files or a save_to_disk folder."
        )
    try:
        if kind == "disk":
            loaded = datasets.load_from_disk(str(path))
            return loaded if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
        if path.is_file():
            return datasets.load_dataset(kind, data_files={"train": str(path)})
        return datasets.load_dataset(kind, data_dir=str(path))
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as err:
        empty = re.search(r'Instruction "(.+?)" corresponds to no data', str(err))
        if empty and empty.group(1) in (keys or {}):
            split = empty.group(1)
            raise UserError(
                f"dataset.{keys[split]} '{split}' of '{name}' is empty; choose a split with images."
            ) from err
        raise UserError(
            f"dataset folder '{name}' has no images, parquet or arrow files ({type(err).__name__}); "
            "give an imagefolder tree (split/class/image.png), parquet/arrow files or a save_to_disk folder."
        ) from err


def pick_split(splits: Mapping[str, "Dataset"], name: str, split: str, key: str) -> "Dataset":
    if split not in splits:
        raise UserError(
            f"dataset.{key} '{split}' is not a split of '{name}'; it has {sorted(splits)}: set dataset.{key} to one of them."
        )
    return splits[split]


# --- columns ---------------------------------------------------------------------------------------------


def as_image_column(ds: "Dataset", column: str) -> Any:
    """The image column as an Image feature, or a UserError naming what the column holds and what exists."""
    from datasets import Image

    feature = ds.features[column]
    if isinstance(feature, Image):
        return ds
    if isinstance(feature, dict) and {"bytes", "path"} <= set(feature):  # images written by pandas/pyarrow
        return ds.cast_column(column, Image())
    images = [c for c, f in ds.features.items() if isinstance(f, Image)]
    raise UserError(
        f"dataset column '{column}' (dataset.image_column) holds {_describe(feature)}, not images; "
        f"image columns are {images or 'none'}."
    )


def _describe(feature: Any) -> str:
    from datasets import Value

    return f"Value({feature.dtype})" if isinstance(feature, Value) else type(feature).__name__


def check_columns(ds: "Dataset", image_column: str, label_column: str, split: str) -> None:
    columns = list(ds.column_names)
    for key, column in (("image_column", image_column), ("label_column", label_column)):
        if column not in columns:
            raise UserError(
                f"dataset column '{column}' (dataset.{key}) is not in split '{split}'; its columns are {columns}."
            )


def class_names(datasets_: list["Dataset"], label_column: str) -> list[str]:
    """Class names for every split together: from the ClassLabel feature when present, else the sorted
    string labels, else '0'..'n-1' for integer labels."""
    from datasets import ClassLabel, Value

    feature = datasets_[0].features[label_column]
    if isinstance(feature, ClassLabel):
        names = list(feature.names)
        for ds in datasets_[1:]:  # another split with its own ClassLabel: its new names come last
            other = ds.features[label_column]
            names += [n for n in getattr(other, "names", []) if n not in names]
        return names
    if isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
        return sorted({str(v) for ds in datasets_ for v in ds[label_column]})
    if isinstance(feature, Value) and (feature.dtype.startswith("int") or feature.dtype.startswith("uint")):
        values = np.concatenate([np.asarray(list(ds[label_column]), dtype=np.int64) for ds in datasets_])
        if len(values) and values.min() < 0:
            raise UserError(
                f"dataset column '{label_column}' (dataset.label_column) holds negative labels ({int(values.min())}); "
                "drop unlabelled rows or give a column of class labels."
            )
        return [str(i) for i in range(int(values.max()) + 1 if len(values) else 0)]
    raise UserError(
        f"dataset column '{label_column}' (dataset.label_column) holds {_describe(feature)}, not class labels; "
        "give an integer, string or ClassLabel column."
    )


def standardise(ds: "Dataset", image_column: str, label_column: str, names: list[str], prefix: str) -> "Dataset":
    """Rename to id/image/label with one ClassLabel (`names`) for every split; ids keep the source row."""
    from datasets import ClassLabel, Value

    ds = as_image_column(ds, image_column)
    feature = ds.features[label_column]
    if not isinstance(feature, ClassLabel) or list(feature.names) != names:
        if isinstance(feature, ClassLabel):  # a split with other ClassLabel names: map by name
            features = ds.features.copy()
            features[label_column] = Value("string")
            ds = ds.map(
                lambda labels: {label_column: feature.int2str(labels)},
                input_columns=[label_column],
                batched=True,
                features=features,
            )
        ds = ds.cast_column(label_column, ClassLabel(names=names))
    ds = ds.select_columns([image_column, label_column])
    if image_column != "image":
        ds = ds.rename_column(image_column, "image")
    if label_column != "label":
        ds = ds.rename_column(label_column, "label")
    ds = ds.add_column("id", [f"{prefix}/{i}" for i in range(len(ds))])
    return ds.cast(_features(names))


# --- subsets and checks ----------------------------------------------------------------------------------


def stratified_subset(ds: "Dataset", size: int | None, seed: int) -> "Dataset":
    """A seeded subset of `size` rows with the class proportions of `ds` (all rows when size is None)."""
    if size is None or size >= len(ds):
        if size is not None:
            log.warning("dataset.eval_size %d >= the %d eval images: all are used", size, len(ds))
        return ds
    from sklearn.model_selection import train_test_split

    labels = np.asarray(list(ds["label"]))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 and size >= (counts > 0).sum() else None
    keep, _ = train_test_split(np.arange(len(ds)), train_size=size, stratify=stratify, random_state=seed)
    return ds.select(np.sort(keep))


def check_eval_set(ds: "Dataset", split: str) -> None:
    if len(ds) < 2:
        raise UserError(
            f"the eval set (dataset.eval_split '{split}') has {len(ds)} image(s); the film needs at least 2: "
            "choose another split or a larger dataset.eval_size."
        )
    if len(set(ds["label"])) < 2:
        raise UserError(
            f"the eval set (dataset.eval_split '{split}') holds a single class; outlier scores and class colours "
            "need at least 2: choose another split or check dataset.label_column."
        )


def _open_image(value: Any) -> "PILImage":
    """A PIL image from a datasets Image cell (decoded, or {'bytes', 'path'} when decode=False)."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return Image.open(io.BytesIO(value["bytes"]))
        if value.get("path"):
            return Image.open(value["path"])
    raise ValueError("empty image cell")


def _image_name(value: Any, row_id: str) -> str:
    path = value.get("path") if isinstance(value, dict) else None
    return f"'{path}' ({row_id})" if path else row_id


def raw_images(ds: "Dataset") -> "Dataset":
    """The same rows with undecoded image cells ({'bytes', 'path'}), so a corrupt file can be named."""
    from datasets import Image

    return ds.cast_column("image", Image(decode=False))


def verify_images(ds: "Dataset", split: str) -> None:
    """Cheap check (headers and checksums, no full decode) that every image of `ds` opens."""
    raw = raw_images(ds)
    for start in progress(range(0, len(raw), 1000), f"verify {split}", total=-(-len(raw) // 1000)):
        batch = raw[start : start + 1000]
        for value, row_id in zip(batch["image"], batch["id"]):
            try:
                with _open_image(value) as image:
                    image.verify()
            except Exception as err:
                raise UserError(
                    f"image {_image_name(value, row_id)} of split '{split}' is unreadable ({type(err).__name__}); remove or replace it."
                ) from err


def decode_rgb(ds: "Dataset", size: int, split: str = "eval") -> np.ndarray:
    """All images of `ds` as uint8 RGB thumbnails [N, size, size, 3]; a corrupt image is named."""
    from PIL import Image

    raw = raw_images(ds)
    out = np.zeros((len(raw), size, size, 3), dtype=np.uint8)
    for i, row in enumerate(progress(raw, "thumbnails", total=len(raw))):
        try:
            image = _open_image(row["image"]).convert("RGB")
        except Exception as err:
            raise UserError(
                f"image {_image_name(row['image'], row['id'])} of split '{split}' could not be decoded "
                f"({type(err).__name__}); remove or replace it."
            ) from err
        resample = Image.Resampling.NEAREST if min(image.size) <= size // 2 else Image.Resampling.BILINEAR
        out[i] = np.asarray(image.resize((size, size), resample))
    return out


# --- the stage -------------------------------------------------------------------------------------------


def load_dataset_splits(
    cfg: dict[str, Any], seed: int, need_train: bool, want_train: bool = False
) -> dict[str, "Dataset"]:
    """The train (when needed, or wanted and there) and eval splits named by the `dataset:` config,
    standardised and checked. `want_train`: the training split is read when the dataset has one (training
    dynamics of external checkpoints); without one, one log line says so."""
    if cfg["name"] == BUILTIN_DIGITS:
        splits = builtin_digits(cfg["image_size"], seed)
        out = {"eval": stratified_subset(splits["test"], cfg.get("eval_size"), seed)}
        if need_train or want_train:
            out["train"] = splits["train"]
        check_eval_set(out["eval"], "test")
        return out
    roles = {"train": ("train_split", cfg["train_split"])} if need_train or want_train else {}
    roles["eval"] = ("eval_split", cfg["eval_split"])
    source = open_source(cfg["name"], cfg.get("config"), {split: key for key, split in roles.values()})
    if not need_train and "train" in roles and cfg["train_split"] not in source:
        log.warning(
            "training dynamics are off: '%s' has no split '%s' (dataset.train_split); it has %s.",
            cfg["name"],
            cfg["train_split"],
            sorted(source),
        )
        del roles["train"]
    raw = {role: pick_split(source, cfg["name"], split, key) for role, (key, split) in roles.items()}
    for role, ds in raw.items():
        check_columns(ds, cfg["image_column"], cfg["label_column"], roles[role][1])
        if len(ds) == 0:
            key, split = roles[role]
            raise UserError(f"dataset.{key} '{split}' of '{cfg['name']}' is empty; choose a split with images.")
    ordered = [raw["train"], raw["eval"]] if "train" in raw else [raw["eval"]]
    names = class_names(ordered, cfg["label_column"])
    out = {
        role: standardise(ds, cfg["image_column"], cfg["label_column"], names, roles[role][1])
        for role, ds in raw.items()
    }
    out["eval"] = stratified_subset(out["eval"], cfg.get("eval_size"), seed)
    check_eval_set(out["eval"], cfg["eval_split"])
    return out


def write_parquet(ds: "Dataset", path: str | Path) -> None:
    """Write a split as parquet with images embedded, loadable by `datasets.load_dataset("parquet")`."""
    from datasets.table import embed_table_storage

    ds = ds.with_format("arrow").map(embed_table_storage, batched=True).with_format(None)
    with atomic_path(path) as tmp:
        ds.to_parquet(str(tmp))


@contextlib.contextmanager
def no_cache_files_next_to_the_data() -> Iterator[None]:
    """datasets writes the results of map/cast/select next to a save_to_disk dataset's own files; with
    caching off they go to a temporary folder instead, so the user's dataset folder is only read."""
    import datasets

    was_enabled = datasets.is_caching_enabled()
    datasets.disable_caching()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_caching()


# --- label noise: a measured share of wrong training labels --------------------------------------------


def noisy_labels(labels: np.ndarray, n_classes: int, fraction: float, kind: str, seed: int) -> np.ndarray:
    """`labels` with round(fraction * N) of them, chosen at random (seeded), changed: to another class drawn
    uniformly (kind uniform) or class c to c + 1, the last to the first (kind pair)."""
    labels = np.asarray(labels, dtype=np.int64)
    out = labels.copy()
    count = int(round(fraction * len(labels)))
    if count == 0 or n_classes < 2:
        return out
    rng = np.random.default_rng([seed, 1001])  # its own stream: the split and training seeds are untouched
    rows = rng.choice(len(labels), count, replace=False)
    if kind == "pair":
        out[rows] = (labels[rows] + 1) % n_classes
    elif kind == "uniform":
        out[rows] = (labels[rows] + rng.integers(1, n_classes, count)) % n_classes  # never the same class
    else:
        raise UserError(f"dataset.label_noise.kind '{kind}' is not uniform or pair; choose one of them.")
    return out


def with_label_noise(ds: "Dataset", noise: dict[str, Any], seed: int, out_csv: str) -> "Dataset":
    """The training split with `noise` applied to its labels, and the changed rows written to `out_csv`
    (row, id, original label, given label; a header only when noise is off)."""
    import pandas as pd

    labels = np.asarray(list(ds["label"]), dtype=np.int64)
    names = ds.features["label"].names
    ids = list(ds["id"])
    given = noisy_labels(labels, len(names), noise.get("fraction", 0.0), noise.get("kind", "uniform"), seed)
    rows = np.flatnonzero(given != labels)
    table = pd.DataFrame(
        {
            "row": rows,
            "id": [ids[r] for r in rows],
            "original_label": labels[rows],
            "given_label": given[rows],
            "original_name": [names[i] for i in labels[rows]],
            "given_name": [names[i] for i in given[rows]],
        }
    )
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    if not len(rows):
        return ds
    log.warning(
        "label noise is on: %d of %d training labels were changed (%s, dataset.label_noise); see %s",
        len(rows),
        len(labels),
        noise.get("kind", "uniform"),
        out_csv,
    )
    noisy = ds.remove_columns("label").add_column("label", given.tolist())
    return noisy.cast_column("label", ds.features["label"]).select_columns(list(ds.column_names))


def prepare(cfg: dict[str, Any], seed: int, need_train: bool, out: dict[str, str], want_train: bool = False) -> None:
    with no_cache_files_next_to_the_data():
        _prepare(cfg, seed, need_train, out, want_train)


def _prepare(cfg: dict[str, Any], seed: int, need_train: bool, out: dict[str, str], want_train: bool) -> None:
    splits = load_dataset_splits(cfg, seed, need_train, want_train)
    ev = splits["eval"]
    names = ev.features["label"].names
    log.info("eval set: %d images, %d classes", len(ev), len(names))
    thumbnails = decode_rgb(ev, THUMBNAIL_SIZE, str(cfg.get("eval_split", "test")))  # also finds corrupt eval images
    noise = cfg.get("label_noise") or {}
    if noise.get("fraction", 0.0) > 0 and not need_train:
        raise UserError(
            "dataset.label_noise changes the labels the workflow trains on, but this run films external "
            "checkpoints; set label_noise.fraction to 0 or let the workflow train."
        )
    if "train" in splits:
        log.info("train set: %d images", len(splits["train"]))
        verify_images(splits["train"], str(cfg.get("train_split", "train")))
        train = with_label_noise(splits["train"], noise, seed, out["label_noise"])
        write_parquet(train, out["train"])
    else:
        with_label_noise(ev.select([]), {}, seed, out["label_noise"])
        write_parquet(ev.select([]), out["train"])  # external checkpoints without a training split
    write_parquet(ev, out["eval"])
    save_npy(out["labels"], np.asarray(list(ev["label"]), dtype=np.int64))
    save_npy(out["thumbnails"], thumbnails)
    # train_size: 0 tells the next planning that there are no training dynamics (rules/setup.smk)
    save_json(out["classes"], {"names": names, "ids": list(ev["id"]), "train_size": len(splits.get("train", []))})
