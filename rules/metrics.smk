# Stage 5b: film quality metrics per checkpoint, then the whole-film tables.


rule metrics:
    input:
        unpack(previous_step("previous", "projection")),
        embeddings=run_path("embeddings/{step}.npy"),
        projection=run_path("projection/{step}.npy"),
        probs=run_path("probs/{step}.npy"),
        labels=rules.prepare_data.output.labels,
        code=code_files("metrics"),
    output:
        metrics=run_path("metrics/{step}.json"),
    log:
        run_log("metrics/{step}.log"),
    benchmark:
        run_benchmark("metrics/{step}.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params("metrics", k=setting("metrics", "k"), max_points=setting("metrics", "max_points")),
    shell:
        job()


rule metrics_table:
    input:
        steps=all_steps("metrics", "json"),
        embeddings=all_steps("embeddings"),
        projections=all_steps("projection"),
        views=all_views,
        layout=film_layout,
        code=code_files("metrics_table"),
    output:
        csv=report(
            run_path("metrics.csv"),
            caption="../report/metrics.rst",
            category="Film",
            subcategory="Metrics",
        ),
        film=run_path("film_metrics.json"),
    log:
        run_log("metrics/table.log"),
    benchmark:
        run_benchmark("metrics/table.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        **job_params(
            "metrics_table",
            align=setting("projection", "align"),
            # the checkpoints left out of the film and why (incomplete, corrupt, failed before)
            skipped=lambda wildcards: [
                {"step": s, "reason": why} for s, why in sorted(run_of(wildcards).skipped.items())
            ],
            view_files=lambda wildcards: [view_file(wildcards, s) for s in run_of(wildcards).steps],
            fit=setting("projection", "fit"),
            targets=setting("projection", "auto"),
        ),
    shell:
        job()


rule compare_alignment:
    input:
        embeddings=all_steps("embeddings"),
        code=code_files("compare_alignment"),
    output:
        csv=run_path("alignment_comparison.csv"),
    log:
        run_log("metrics/compare_alignment.log"),
    benchmark:
        run_benchmark("metrics/compare_alignment.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        **job_params("compare_alignment", k=setting("metrics", "k"), max_points=setting("metrics", "max_points")),
    shell:
        job()
