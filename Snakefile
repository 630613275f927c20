# Embedding film: how a vision model's embedding space changes while it is fine-tuned.
#
# Results layout (one folder per run, `run:` in the config), {step} = a checkpoint's training step:
#   results/{run}/data/            eval/train parquet, labels, thumbnails, preprocessed pixels  (once per run)
#   results/{run}/checkpoints/     checkpoint-{step}/ from the Trainer, step 0 included         (protected)
#   results/{run}/train_log.csv    loss curve
#   results/{run}/embeddings/{step}.npy   probs/{step}.npy   ood/{step}.npy   label_issues/{step}.npy
#   results/{run}/projection/{step}.npy   (+ layout.npz, limits.json)         metrics/{step}.json
#   results/{run}/frames/{step}.png       (+ frames/tween/{step}-{j}.png)
#   results/{run}/animation.gif    results/{run}/review.parquet    metrics.csv   outliers.csv
#   results/{run}/logs/{rule}/{step}.log, results/{run}/benchmarks/{rule}/{step}.tsv
#
# Every per-checkpoint stage is one rule with a {step} wildcard (one job per checkpoint); film-level rules
# gather them. Jobs run in warm workers that import torch, cleanlab and matplotlib once per Snakemake run
# (workflow_scripts/embedding_film/runtime/worker.py), not once per job.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/setup.smk"
include: "rules/jobs.smk"
include: "rules/inputs.smk"
include: "rules/targets.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/embed.smk"
include: "rules/ood.smk"
include: "rules/project.smk"
include: "rules/metrics.smk"
include: "rules/frames.smk"
include: "rules/animate.smk"
include: "rules/html.smk"
include: "rules/review.smk"
include: "rules/dynamics.smk"
include: "rules/compare.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),


onstart:
    drop_default_rate_limit(workflow)


onsuccess:
    say_workers_linger()


onerror:
    explain_missing_frames()
