"""Stage 8: the review table, first vs last checkpoint, for Renumics Spotlight or pandas.

In:  data/eval.parquet, and for the first and last checkpoint: embeddings, projection, OOD scores, probs.
Out: review.parquet, one row per eval image: id, image (PNG/JPEG bytes), label, class_name, and for
     `first` and `last`: embedding_*, x_*, y_*, ood_*, pred_* (predicted class, -1 without a head).

    import pandas as pd; df = pd.read_parquet("results/demo/review.parquet")
    from renumics import spotlight; spotlight.show(df, dtype=spotlight_dtypes())
"""


import logging
from typing import Any

import numpy as np

from workflow_scripts.common import atomic_path, load_json, load_npy, run_job

log = logging.getLogger(__name__)


def spotlight_dtypes() -> dict[str, Any]:
    """The column types Spotlight needs to show images and embeddings."""
    from renumics import spotlight

    return {
        "image": spotlight.Image,
        "embedding_first": spotlight.Embedding,
        "embedding_last": spotlight.Embedding,
    }


def build_review(eval_parquet: str, classes: str, first: dict[str, str], last: dict[str, str]) -> "Any":
    """The review table as a pyarrow Table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(eval_parquet, columns=["id", "image", "label"])
    names = np.asarray(load_json(classes)["names"], dtype=object)
    labels = table.column("label").to_numpy()
    columns: dict[str, Any] = {
        "id": table.column("id"),
        "image": table.column("image").combine_chunks().field("bytes"),
        "label": pa.array(labels, pa.int64()),
        "class_name": pa.array(names[labels].tolist(), pa.string()),
    }
    for tag, files in (("first", first), ("last", last)):
        emb = load_npy(files["embeddings"]).astype(np.float32)
        xy = load_npy(files["projection"])
        probs = load_npy(files["probs"])
        columns[f"embedding_{tag}"] = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), emb.shape[1])
        columns[f"x_{tag}"] = pa.array(xy[:, 0].astype(np.float64))
        columns[f"y_{tag}"] = pa.array(xy[:, 1].astype(np.float64))
        columns[f"ood_{tag}"] = pa.array(load_npy(files["scores"]).astype(np.float64))
        columns[f"pred_{tag}"] = pa.array(probs.argmax(axis=1) if probs.shape[1] else np.full(len(emb), -1), pa.int64())
    return pa.table(columns)


def write_review(table: Any, out: str) -> None:
    import pyarrow.parquet as pq

    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    log.info("wrote %s: %d rows, columns %s", out, table.num_rows, table.column_names)


def _main(snakemake: Any) -> None:
    i = snakemake.input
    table = build_review(
        i.eval,
        i.classes,
        {"embeddings": i.emb_first, "projection": i.proj_first, "scores": i.ood_first, "probs": i.probs_first},
        {"embeddings": i.emb_last, "projection": i.proj_last, "scores": i.ood_last, "probs": i.probs_last},
    )
    write_review(table, snakemake.output.review)


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
