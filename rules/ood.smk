# Stage 4: cleanlab outlier scores and label issues, one job per checkpoint each.


rule ood:
    input:
        embeddings="results/{run}/embeddings/{step}.npy",
        code=code_files("ood"),
    output:
        scores="results/{run}/ood/{step}.npy",
    log:
        "results/{run}/logs/ood/{step}.log",
    benchmark:
        "results/{run}/benchmarks/ood/{step}.tsv"
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
        probs="results/{run}/probs/{step}.npy",
        labels=rules.prepare_data.output.labels,
        code=code_files("label_issues"),
    output:
        issues="results/{run}/label_issues/{step}.npy",
    log:
        "results/{run}/logs/label_issues/{step}.log",
    benchmark:
        "results/{run}/benchmarks/label_issues/{step}.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params("label_issues"),
    shell:
        job()
