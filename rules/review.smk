# Stage 8: the review table (first vs last checkpoint) for Spotlight or pandas.


rule review:
    input:
        eval=rules.prepare_data.output.eval,
        classes=rules.prepare_data.output.classes,
        emb_first=f"{RESULTS}/embeddings/{FIRST}.npy",
        emb_last=f"{RESULTS}/embeddings/{LAST}.npy",
        probs_first=f"{RESULTS}/probs/{FIRST}.npy",
        probs_last=f"{RESULTS}/probs/{LAST}.npy",
        proj_first=f"{RESULTS}/projection/{FIRST}.npy",
        proj_last=f"{RESULTS}/projection/{LAST}.npy",
        ood_first=f"{RESULTS}/ood/{FIRST}.npy",
        ood_last=f"{RESULTS}/ood/{LAST}.npy",
    output:
        review=f"{RESULTS}/review.parquet",
    log:
        f"{RESULTS}/logs/review.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/review.py"
