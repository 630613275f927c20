# Stage 4: cleanlab outlier scores and label issues, one job per chunk of checkpoints.

for i, chunk in enumerate(CHUNKS):

    rule:
        name:
            f"ood_chunk{i}"
        input:
            embeddings=per_step("embeddings", chunk),
            probs=per_step("probs", chunk),
            labels=rules.prepare_data.output.labels,
        output:
            scores=per_step("ood", chunk),
            label_issues=per_step("label_issues", chunk),
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
