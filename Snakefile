# Embedding film: how a vision model's embedding space changes while it is fine-tuned.
#
# Results layout (one folder per config `run:`):
#   results/{run}/data/            eval/train parquet, labels, thumbnails, preprocessed pixels  (once per run)
#   results/{run}/checkpoints/     checkpoint-{step}/ from the Trainer, step 0 included         (protected)
#   results/{run}/train_log.csv    loss curve
#   results/{run}/embeddings/{step}.npy   probs/{step}.npy   ood/{step}.npy
#   results/{run}/projection/{step}.npy   (+ basis.npz, limits.json)
#   results/{run}/frames/{step}.png
#   results/{run}/animation.gif    results/{run}/review.parquet
#   results/{run}/logs/, results/{run}/benchmarks/
#
# Per-checkpoint stages run in chunks of `chunk_size` checkpoints per job (see rules/common.smk), so
# torch, transformers, cleanlab and matplotlib are imported once per chunk, not once per checkpoint.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/embed.smk"
include: "rules/ood.smk"
include: "rules/project.smk"
include: "rules/metrics.smk"
include: "rules/frames.smk"
include: "rules/animate.smk"
include: "rules/review.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
