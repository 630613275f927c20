"""Stage 8: the review table, first vs last checkpoint, for Renumics Spotlight or pandas.

In:  data/eval.parquet, and for the first and last checkpoint: embeddings, projection, OOD scores, probs.
Out: review.parquet, one row per eval image: id, image (the PNG/JPEG bytes), label, class_name, and for
     `first` and `last`: embedding_* (fixed-size list of float32), x_*, y_* (2-D coordinates), ood_*
     (outlier score), pred_* (predicted class, -1 without a head) and pred_name_* (its name, null without).
     class_name and pred_name_* are dictionary-encoded over all class names in label order, so pandas
     reads them as a Categorical whose codes are the labels and Spotlight shows them as categories.

    import pandas as pd; df = pd.read_parquet("results/demo/review.parquet")
    from renumics import spotlight; spotlight.show(df, dtype=SPOTLIGHT_DTYPES)   # or: make review
"""

import logging
from typing import Any

import numpy as np

from embedding_film.film.common import atomic_path, load_json, load_npy

log = logging.getLogger(__name__)

TAGS = ("first", "last")

# Column -> Spotlight type, as the names `spotlight.show(df, dtype=...)` accepts, so that using it needs no
# Spotlight import here. Spotlight would guess these two kinds too; naming them makes the guess certain.
SPOTLIGHT_DTYPES: dict[str, str] = {"image": "Image", **{f"embedding_{tag}": "Embedding" for tag in TAGS}}


def spotlight_dtypes() -> dict[str, str]:
    """The column types Spotlight needs to show images and embeddings: `spotlight.show(df, dtype=...)`."""
    return dict(SPOTLIGHT_DTYPES)


def _class_names(names: Any, codes: np.ndarray) -> Any:
    """`codes` as a dictionary array over every class name (null where a code is negative)."""
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=codes < 0), names)


def build_review(eval_parquet: str, classes: str, first: dict[str, str], last: dict[str, str]) -> "Any":
    """The review table as a pyarrow Table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(eval_parquet, columns=["id", "image", "label"])
    names = pa.array([str(n) for n in load_json(classes)["names"]], pa.string())
    labels = table.column("label").to_numpy().astype(np.int64)
    columns: dict[str, Any] = {
        "id": table.column("id"),
        "image": table.column("image").combine_chunks().field("bytes"),
        "label": pa.array(labels, pa.int64()),
        "class_name": _class_names(names, labels),
    }
    for tag, files in zip(TAGS, (first, last)):
        emb = load_npy(files["embeddings"]).astype(np.float32)
        xy = load_npy(files["projection"])
        probs = load_npy(files["probs"])
        pred = probs.argmax(axis=1) if probs.shape[1] else np.full(len(emb), -1)
        columns[f"embedding_{tag}"] = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), emb.shape[1])
        columns[f"x_{tag}"] = pa.array(xy[:, 0].astype(np.float64))
        columns[f"y_{tag}"] = pa.array(xy[:, 1].astype(np.float64))
        columns[f"ood_{tag}"] = pa.array(load_npy(files["scores"]).astype(np.float64))
        columns[f"pred_{tag}"] = pa.array(pred, pa.int64())
        columns[f"pred_name_{tag}"] = _class_names(names, pred)
    return pa.table(columns)


def write_review(table: Any, out: str) -> None:
    import pyarrow.parquet as pq

    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    log.info("wrote %s: %d rows, columns %s", out, table.num_rows, table.column_names)


def build_train_review(dynamics_path: str, train_parquet: str) -> "Any":
    """The training images' review table: dynamics.parquet's columns (film.dynamics) with each image's bytes,
    sorted by label_error_rank (the likeliest label errors first), for Spotlight or pandas."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(dynamics_path)
    table = table.take(pa.compute.sort_indices(table, [("label_error_rank", "ascending")]))
    images = pq.read_table(train_parquet, columns=["image"]).column("image").combine_chunks().field("bytes")
    rows = table.column("row").to_numpy()
    return table.add_column(1, "image", images.take(pa.array(rows, pa.int64())))
