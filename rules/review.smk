# Stage 8: the review table (first vs last checkpoint) for Spotlight or pandas.


rule review:
    input:
        eval=rules.prepare_data.output.eval,
        classes=rules.prepare_data.output.classes,
        emb_first=end_file("embeddings", "first"),
        emb_last=end_file("embeddings", "last"),
        probs_first=end_file("probs", "first"),
        probs_last=end_file("probs", "last"),
        proj_first=end_file("projection", "first"),
        proj_last=end_file("projection", "last"),
        ood_first=end_file("ood", "first"),
        ood_last=end_file("ood", "last"),
        code=code_files("review"),
    output:
        review=run_path("review.parquet"),
    log:
        run_log("review.log"),
    benchmark:
        run_benchmark("review.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params("review"),
    shell:
        job()
