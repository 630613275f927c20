"""Stage 1: prepare the data once per run.

In:  `dataset:` config (builtin:digits, a hub name, an imagefolder tree, parquet/arrow files, a save_to_disk folder).
Out: data/train.parquet and data/eval.parquet (HF `datasets`-loadable: id, image (Image), label (ClassLabel)),
     data/labels.npy (int64, eval order), data/thumbnails.npy (uint8 [N, T, T, 3]), data/classes.json.
"""


import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workflow_scripts.common import UserError, atomic_path, progress, run_job, save_json, save_npy

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

BUILTIN_DIGITS = "builtin:digits"
THUMBNAIL_SIZE = 64


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
    train_idx, test_idx = train_test_split(
        indices, test_size=eval_fraction, stratify=digits.target, random_state=seed
    )
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


def _local_kind(path: Path) -> str:
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


def load_split(name: str, config: str | None, split: str) -> "Dataset":
    """One split of a local or hub dataset, with a clear error for a missing split or dataset."""
    import datasets

    path = Path(name)
    if path.exists():
        kind = _local_kind(path)
        if kind == "disk":
            loaded = datasets.load_from_disk(str(path))
            splits = loaded if isinstance(loaded, datasets.DatasetDict) else {split: loaded}
        elif path.is_file():
            splits = datasets.load_dataset(kind, data_files={split: str(path)})
        else:
            splits = datasets.load_dataset(kind, data_dir=str(path))
    else:
        if name.startswith(("/", "./", "../")) or name.startswith("builtin:"):
            raise UserError(f"dataset.name '{name}' does not exist; give an existing path, a hub name or builtin:digits.")
        try:
            splits = datasets.load_dataset(name, config)
        except Exception as err:  # hub errors come in many types (connection, not found, gated)
            raise UserError(
                f"dataset '{name}' could not be loaded locally or from the hub ({type(err).__name__}); "
                "check dataset.name, or pre-download it (HF_DATASETS_OFFLINE=1 uses the local cache)."
            ) from err
    if split not in splits:
        raise UserError(f"dataset '{name}' has no split '{split}'; it has {sorted(splits)}: set dataset.train_split/eval_split.")
    return splits[split]


def standardise(ds: "Dataset", image_column: str, label_column: str, prefix: str) -> "Dataset":
    """Rename to id/image/label, check the column types, and make the label a ClassLabel."""
    from datasets import ClassLabel, Image, Value

    columns = list(ds.column_names)
    for key, column in (("image_column", image_column), ("label_column", label_column)):
        if column not in columns:
            raise UserError(f"dataset column '{column}' (dataset.{key}) does not exist; columns are {columns}.")
    if not isinstance(ds.features[image_column], Image):
        images = [c for c in columns if isinstance(ds.features[c], Image)]
        raise UserError(
            f"dataset column '{image_column}' (dataset.image_column) holds {ds.features[image_column]}, not images; "
            f"image columns are {images}."
        )
    label_feature = ds.features[label_column]
    if isinstance(label_feature, Value) and label_feature.dtype == "string":
        ds = ds.class_encode_column(label_column)
    elif isinstance(label_feature, Value) and label_feature.dtype.startswith("int"):
        n = int(max(ds[label_column])) + 1
        ds = ds.cast_column(label_column, ClassLabel(names=[str(i) for i in range(n)]))
    elif not isinstance(label_feature, ClassLabel):
        raise UserError(f"dataset column '{label_column}' (dataset.label_column) holds {label_feature}, not class labels.")
    ds = ds.select_columns([image_column, label_column])
    if image_column != "image":
        ds = ds.rename_column(image_column, "image")
    if label_column != "label":
        ds = ds.rename_column(label_column, "label")
    ids = [f"{prefix}/{i}" for i in range(len(ds))]
    ds = ds.add_column("id", ids)
    return ds.cast(_features(ds.features["label"].names))


def stratified_subset(ds: "Dataset", size: int | None, seed: int) -> "Dataset":
    """A seeded subset of `size` rows with the class proportions of `ds` (all rows when size is None)."""
    if size is None or size >= len(ds):
        return ds
    from sklearn.model_selection import train_test_split

    labels = np.asarray(ds["label"])
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 and size >= (counts > 0).sum() else None
    keep, _ = train_test_split(np.arange(len(ds)), train_size=size, stratify=stratify, random_state=seed)
    return ds.select(np.sort(keep))


def check_eval_set(ds: "Dataset") -> None:
    if len(ds) < 2:
        raise UserError(f"the eval set has {len(ds)} image(s); the film needs at least 2 (check dataset.eval_split/eval_size).")
    if len(set(ds["label"])) < 2:
        raise UserError("the eval set holds a single class; silhouette and class colours need at least 2 (check dataset.eval_split).")


def load_dataset_splits(cfg: dict[str, Any], seed: int, need_train: bool) -> dict[str, "Dataset"]:
    """The train and eval splits named by the `dataset:` config, standardised."""
    if cfg["name"] == BUILTIN_DIGITS:
        splits = builtin_digits(cfg["image_size"], seed)
        names = {"train": "train", "eval": "test"}
    else:
        names = {"train": cfg["train_split"], "eval": cfg["eval_split"]}
        splits = {}
        for role, split in names.items():
            if role == "train" and not need_train:
                continue
            raw = load_split(cfg["name"], cfg.get("config"), split)
            splits[split] = standardise(raw, cfg["image_column"], cfg["label_column"], split)
    out = {"eval": stratified_subset(splits[names["eval"]], cfg.get("eval_size"), seed)}
    if need_train:
        out["train"] = splits[names["train"]]
    check_eval_set(out["eval"])
    return out


def decode_rgb(ds: "Dataset", size: int) -> np.ndarray:
    """All images of `ds` as uint8 RGB thumbnails [N, size, size, 3]; a corrupt image names its row."""
    from PIL import Image

    out = np.zeros((len(ds), size, size, 3), dtype=np.uint8)
    for i, row in enumerate(progress(ds, "thumbnails", total=len(ds))):
        try:
            image = row["image"].convert("RGB")
        except Exception as err:
            raise UserError(f"image {row.get('id', i)} could not be decoded ({err}); remove or fix it.") from err
        resample = Image.Resampling.NEAREST if min(image.size) <= size // 2 else Image.Resampling.BILINEAR
        out[i] = np.asarray(image.resize((size, size), resample))
    return out


def write_parquet(ds: "Dataset", path: str | Path) -> None:
    """Write a split as parquet with images embedded, loadable by `datasets.load_dataset("parquet")`."""
    from datasets.table import embed_table_storage

    ds = ds.with_format("arrow").map(embed_table_storage, batched=True).with_format(None)
    with atomic_path(path) as tmp:
        ds.to_parquet(str(tmp))


def prepare(cfg: dict[str, Any], seed: int, need_train: bool, out: dict[str, str]) -> None:
    splits = load_dataset_splits(cfg, seed, need_train)
    ev = splits["eval"]
    log.info("eval set: %d images, %d classes", len(ev), len(ev.features["label"].names))
    if need_train:
        log.info("train set: %d images", len(splits["train"]))
        write_parquet(splits["train"], out["train"])
    else:
        write_parquet(ev.select([]), out["train"])  # external checkpoints: nothing is trained
    write_parquet(ev, out["eval"])
    save_npy(out["labels"], np.asarray(ev["label"], dtype=np.int64))
    save_npy(out["thumbnails"], decode_rgb(ev, THUMBNAIL_SIZE))
    save_json(out["classes"], {"names": ev.features["label"].names, "ids": list(ev["id"])})


def _main(snakemake: Any) -> None:
    prepare(dict(snakemake.params.dataset), snakemake.params.seed, snakemake.params.need_train, dict(snakemake.output))


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
