# Stage 4: cleanlab outlier scores and label issues, one job per checkpoint each.


rule ood:
    input:
        embeddings=run_path("embeddings/{step}.npy"),
        code=code_files("ood"),
    output:
        scores=run_path("ood/{step}.npy"),
    log:
        run_log("ood/{step}.log"),
    benchmark:
        run_benchmark("ood/{step}.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params("ood", k=setting("ood", "k")),
    shell:
        job()


rule label_issues:
    input:
        probs=run_path("probs/{step}.npy"),
        labels=rules.prepare_data.output.labels,
        code=code_files("label_issues"),
    output:
        issues=run_path("label_issues/{step}.npy"),
    log:
        run_log("label_issues/{step}.log"),
    benchmark:
        run_benchmark("label_issues/{step}.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params("label_issues"),
    shell:
        job()
