# Stage 4: cleanlab outlier scores, one job per chunk of checkpoints.

for i, chunk in enumerate(CHUNKS):

    rule:
        name:
            f"ood_chunk{i}"
        input:
            embeddings=per_step("embeddings", chunk),
        output:
            scores=per_step("ood", chunk),
        log:
            f"{RESULTS}/logs/ood/chunk{i}.log",
        benchmark:
            f"{RESULTS}/benchmarks/ood/chunk{i}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
        params:
            k=config["ood"]["k"],
        conda:
            "../envs/analysis.yaml"
        script:
            "../workflow_scripts/ood.py"
