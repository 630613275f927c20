# Stage 5b: film quality metrics per checkpoint (one job per chunk), then the whole-film table.

for i, chunk in enumerate(CHUNKS):

    rule:
        name:
            f"metrics_chunk{i}"
        input:
            **previous_step_inputs(i, "previous", "projection"),
            embeddings=per_step("embeddings", chunk),
            projections=per_step("projection", chunk),
            probs=per_step("probs", chunk),
            labels=rules.prepare_data.output.labels,
        output:
            metrics=per_step("metrics", chunk, "json"),
        log:
            f"{RESULTS}/logs/metrics/chunk{i}.log",
        benchmark:
            f"{RESULTS}/benchmarks/metrics/chunk{i}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
        params:
            steps=chunk,
            k=config["metrics"]["k"],
            max_points=config["metrics"]["max_points"],
        conda:
            "../envs/analysis.yaml"
        script:
            "../workflow_scripts/metrics.py"


rule metrics_table:
    input:
        steps=per_step("metrics", STEPS, "json"),
        embeddings=per_step("embeddings", STEPS),
        projections=per_step("projection", STEPS),
    output:
        csv=report(
            f"{RESULTS}/metrics.csv",
            caption="../report/metrics.rst",
            category="Film",
            subcategory="Metrics",
        ),
        film=f"{RESULTS}/film_metrics.json",
    log:
        f"{RESULTS}/logs/metrics/table.log",
    threads: 1
    resources:
        mem_mb=4000,
    params:
        align=ALIGN,
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/metrics.py"


rule outliers_table:
    input:
        scores=per_step("ood", STEPS),
        classes=rules.prepare_data.output.classes,
    output:
        csv=f"{RESULTS}/outliers.csv",
    log:
        f"{RESULTS}/logs/outliers.log",
    threads: 1
    params:
        steps=STEPS,
        top_k=config["frames"]["top_k"],
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/outliers.py"


rule compare_alignment:
    input:
        embeddings=per_step("embeddings", STEPS),
    output:
        csv=f"{RESULTS}/alignment_comparison.csv",
    log:
        f"{RESULTS}/logs/metrics/compare_alignment.log",
    threads: 1
    resources:
        mem_mb=4000,
    params:
        k=config["metrics"]["k"],
        max_points=config["metrics"]["max_points"],
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/compare_alignment.py"
