# Stage 1: the data, prepared once per run.


rule prepare_data:
    input:
        code=code_files("prepare_data"),
    output:
        train="results/{run}/data/train.parquet",
        eval="results/{run}/data/eval.parquet",
        labels="results/{run}/data/labels.npy",
        thumbnails="results/{run}/data/thumbnails.npy",
        classes="results/{run}/data/classes.json",
    log:
        "results/{run}/logs/prepare_data.log",
    benchmark:
        "results/{run}/benchmarks/prepare_data.tsv"
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(
            "prepare_data",
            dataset=setting("dataset"),
            seed=setting("seed"),
            need_train=lambda wildcards: not run_of(wildcards).external,
        ),
    shell:
        job()


rule preprocess:
    input:
        eval=rules.prepare_data.output.eval,
        code=code_files("preprocess"),
    output:
        pixels="results/{run}/data/pixels.npy",
        spec="results/{run}/data/pixels.json",
    log:
        "results/{run}/logs/preprocess.log",
    benchmark:
        "results/{run}/benchmarks/preprocess.tsv"
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(
            "preprocess",
            model=setting("model"),
            image_size=setting("dataset", "image_size"),
            checkpoint_dir=lambda wildcards: (
                run_of(wildcards).checkpoint_dir(run_of(wildcards).first) if run_of(wildcards).external else None
            ),
        ),
    shell:
        job()
