"""Datasets: the same tiny image set as an imagefolder tree, parquet files, arrow files, save_to_disk
folders and a (stand-in) hub dataset, through the real prepare_data code; every bad input fails in one
sentence naming the key, column, split or file. Nothing is downloaded."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub lookup fails at once instead of retrying for 20 s

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedding_film.film.common import UserError

CLASSES = ["cat", "dog", "eel"]
PER_CLASS = {"train": 6, "test": 4}


def _image(label: int, i: int) -> Any:
    from PIL import Image

    rng = np.random.default_rng(100 * label + i)
    pixels = np.zeros((12, 12, 3), dtype=np.uint8)
    pixels[..., label] = 200
    return Image.fromarray(np.clip(pixels + rng.integers(0, 50, pixels.shape), 0, 255).astype(np.uint8))


def _splits(image_column: str = "img", label_column: str = "label") -> Any:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value

    features = Features({image_column: Image(), label_column: ClassLabel(names=CLASSES), "note": Value("string")})
    out = {}
    for split, n in PER_CLASS.items():
        rows = [(label, i) for label in range(len(CLASSES)) for i in range(n)]
        out[split] = Dataset.from_dict(
            {
                image_column: [_image(label, i) for label, i in rows],
                label_column: [label for label, _ in rows],
                "note": [f"{split}-{label}-{i}" for label, i in rows],
            },
            features=features,
        )
    return DatasetDict(out)


def make_imagefolder(root: Path) -> Path:
    for split, n in PER_CLASS.items():
        for label, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                _image(label, i).save(root / split / name / f"{i}.png")
    return root


def make_parquet(root: Path) -> Path:
    root.mkdir(parents=True)
    for split, ds in _splits().items():
        ds.to_parquet(str(root / f"{split}.parquet"))
    return root


def make_arrow(root: Path) -> Path:
    from datasets import Dataset

    root.mkdir(parents=True)
    for split, ds in _splits().items():  # plain arrow stream files, as datasets' cache holds them
        Dataset.from_dict(ds.to_dict(), features=ds.features).flatten_indices().save_to_disk(str(root / "tmp" / split))
        arrow = next((root / "tmp" / split).glob("*.arrow"))
        arrow.rename(root / f"{split}.arrow")
    import shutil

    shutil.rmtree(root / "tmp")
    return root


def make_disk(root: Path) -> Path:
    _splits().save_to_disk(str(root))
    return root


def cfg(name: str | Path, **overrides: Any) -> dict[str, Any]:
    base = {
        "name": str(name),
        "config": None,
        "image_column": "img",
        "label_column": "label",
        "train_split": "train",
        "eval_split": "test",
        "eval_size": None,
        "image_size": 16,
    }
    return {**base, **overrides}


def prepare(config: dict[str, Any], out: Path, need_train: bool = True, seed: int = 0) -> dict[str, str]:
    from embedding_film.film.data import prepare as run

    paths = {
        k: str(out / f"{k}.{ext}")
        for k, ext in [
            ("train", "parquet"),
            ("eval", "parquet"),
            ("labels", "npy"),
            ("thumbnails", "npy"),
            ("classes", "json"),
            ("label_noise", "csv"),
        ]
    }
    run(config, seed, need_train, paths)
    return paths


FORMATS = {
    "imagefolder": (make_imagefolder, {"image_column": "image"}),
    "parquet": (make_parquet, {}),
    "arrow": (make_arrow, {}),
    "save_to_disk": (make_disk, {}),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_local_format_prepares_the_same_data(tmp_path: Path, fmt: str) -> None:
    from datasets import load_dataset

    make, overrides = FORMATS[fmt]
    paths = prepare(cfg(make(tmp_path / fmt), **overrides), tmp_path / "out")
    classes = json.loads(Path(paths["classes"]).read_text())
    assert classes["names"] == CLASSES  # from the ClassLabel feature (imagefolder: the folder names)
    labels = np.load(paths["labels"])
    assert sorted(labels.tolist()) == sorted([c for c in range(3) for _ in range(PER_CLASS["test"])])
    assert np.load(paths["thumbnails"]).shape == (12, 64, 64, 3)
    ev = load_dataset("parquet", data_files=paths["eval"], split="train")
    assert ev.features["label"].names == CLASSES and ev[0]["image"].size == (12, 12)
    assert len(load_dataset("parquet", data_files=paths["train"], split="train")) == 18
    # the image is the one its label says (the red, green or blue channel is bright)
    for row in ev:
        assert int(np.argmax(np.asarray(row["image"]).mean(axis=(0, 1)))) == row["label"]


@pytest.mark.parametrize("fmt", ["save_to_disk", "imagefolder"])
def test_the_dataset_folder_is_only_read(tmp_path: Path, fmt: str) -> None:
    make, overrides = FORMATS[fmt]
    root = make(tmp_path / fmt)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    prepare(cfg(root, eval_size=6, **overrides), tmp_path / "out")  # map/cast/select would cache next to the data
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_hub_dataset_name_goes_through_load_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(name: str, config: str | None = None, **kwargs: Any) -> Any:
        calls.append((name, config))
        return _splits()  # cifar10's layout: img (Image), label (ClassLabel), train/test

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    paths = prepare(cfg("cifar10", config="plain_text"), tmp_path / "out")
    assert calls == [("cifar10", "plain_text")]
    assert json.loads(Path(paths["classes"]).read_text())["names"] == CLASSES


def test_single_parquet_file_is_the_train_split(tmp_path: Path) -> None:
    root = make_parquet(tmp_path / "pq")
    paths = prepare(cfg(root / "test.parquet", eval_split="train"), tmp_path / "out", need_train=False)
    assert len(np.load(paths["labels"])) == 12
    with pytest.raises(
        UserError, match=r"dataset.eval_split 'test' is not a split of '.*test.parquet'; it has \['train'\]"
    ):
        prepare(cfg(root / "test.parquet"), tmp_path / "out2", need_train=False)


def test_eval_size_is_a_stratified_seeded_subset(tmp_path: Path) -> None:
    root = make_disk(tmp_path / "disk")
    a = prepare(cfg(root, eval_size=6), tmp_path / "a", seed=1)
    b = prepare(cfg(root, eval_size=6), tmp_path / "b", seed=1)
    c = prepare(cfg(root, eval_size=6), tmp_path / "c", seed=2)
    ids = [json.loads(Path(p["classes"]).read_text())["ids"] for p in (a, b, c)]
    assert ids[0] == ids[1] and ids[0] != ids[2]
    assert np.bincount(np.load(a["labels"])).tolist() == [2, 2, 2]


def test_string_labels_get_one_class_list_for_both_splits(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict, Image

    splits = _splits()
    as_strings = {
        split: Dataset.from_dict(
            {"img": list(ds.cast_column("img", Image(decode=False))["img"]), "label": [CLASSES[v] for v in ds["label"]]}
        ).cast_column("img", Image())
        for split, ds in splits.items()
    }
    as_strings["test"] = as_strings["test"].filter(lambda row: row["label"] != "cat")  # eval lacks a class
    DatasetDict(as_strings).save_to_disk(str(tmp_path / "disk"))
    paths = prepare(cfg(tmp_path / "disk"), tmp_path / "out")
    assert json.loads(Path(paths["classes"]).read_text())["names"] == CLASSES
    assert set(np.load(paths["labels"]).tolist()) == {1, 2}  # dog, eel keep the train split's numbers


# --- one sentence per bad input ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_disk(tmp_path_factory.mktemp("ds") / "disk")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"image_column": "image"},
            r"dataset column 'image' \(dataset.image_column\) is not in split 'train'; its columns are \['img', 'label', 'note'\]",
        ),
        (
            {"label_column": "fine_label"},
            r"dataset column 'fine_label' \(dataset.label_column\) is not in split 'train'; its columns are",
        ),
        (
            {"eval_split": "validation"},
            r"dataset.eval_split 'validation' is not a split of '.*'; it has \['test', 'train'\]: set dataset.eval_split to one of them",
        ),
        (
            {"train_split": "training"},
            r"dataset.train_split 'training' is not a split of '.*'; it has \['test', 'train'\]",
        ),
        (
            {"image_column": "note"},
            r"dataset column 'note' \(dataset.image_column\) holds Value\(string\), not images; image columns are \['img'\]",
        ),
        (
            {"image_column": "label"},
            r"dataset column 'label' \(dataset.image_column\) holds ClassLabel, not images; image columns are \['img'\]",
        ),
        (
            {"label_column": "img"},
            r"dataset column 'img' \(dataset.label_column\) holds Image, not class labels; give an integer, string or ClassLabel column",
        ),
        ({"name": "builtin:cifar"}, r"dataset.name 'builtin:cifar' is not a built-in dataset; use builtin:digits"),
        (
            {"name": "./no/such/dir"},
            r"dataset.name './no/such/dir' does not exist; give an existing path, a hub name or builtin:digits",
        ),
    ],
)
def test_bad_dataset_config_is_one_sentence(
    disk: Path, tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        prepare({**cfg(disk), **overrides}, tmp_path)


def test_unknown_hub_dataset_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        UserError,
        match=r"dataset 'nobody/no-such-dataset' could not be loaded locally or from the hub \(\w+\); check dataset.name",
    ):
        prepare(cfg("nobody/no-such-dataset"), tmp_path)


def test_folder_without_images_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match=r"dataset folder '.*empty' has no images, parquet or arrow files"):
        prepare(cfg(tmp_path / "empty"), tmp_path / "out")


@pytest.mark.parametrize("split", ["test", "train"])
def test_corrupt_image_is_named_with_its_file(tmp_path: Path, split: str) -> None:
    root = make_imagefolder(tmp_path / "tree")
    bad = root / split / "dog" / "2.png"
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated download
    with pytest.raises(
        UserError,
        match=rf"image '.*{split}/dog/2.png' \({split}/\d+\) of split '{split}' (is unreadable|could not be decoded) \(\w+\); remove or replace it",
    ):
        prepare(cfg(root, image_column="image"), tmp_path / "out")


def test_empty_eval_split_is_named(disk: Path, tmp_path: Path) -> None:
    root = make_parquet(tmp_path / "pq")
    _splits()["test"].select([]).to_parquet(str(root / "test.parquet"))
    with pytest.raises(UserError, match=r"dataset.eval_split 'test' of '.*pq' is empty; choose a split with images"):
        prepare(cfg(root), tmp_path / "out")


def test_single_class_eval_set_is_named(disk: Path, tmp_path: Path) -> None:
    from datasets import load_from_disk

    splits = load_from_disk(str(disk))
    splits["test"] = splits["test"].filter(lambda row: row["label"] == 1)
    splits.save_to_disk(str(tmp_path / "disk"))
    with pytest.raises(
        UserError,
        match=r"the eval set \(dataset.eval_split 'test'\) holds a single class; .* choose another split or check dataset.label_column",
    ):
        prepare(cfg(tmp_path / "disk"), tmp_path / "out")


def test_eval_size_smaller_than_two_is_refused_by_the_schema() -> None:
    import yaml

    schema = yaml.safe_load((Path(__file__).parents[2] / "schemas" / "config.schema.yaml").read_text())
    assert schema["properties"]["dataset"]["properties"]["eval_size"]["minimum"] == 2


def test_negative_labels_are_named(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    ds = Dataset.from_dict({"img": [_image(0, i) for i in range(4)], "label": [0, 1, -1, 1]})
    DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "disk"))
    with pytest.raises(
        UserError, match=r"dataset column 'label' \(dataset.label_column\) holds negative labels \(-1\)"
    ):
        prepare(cfg(tmp_path / "disk"), tmp_path / "out")
