# Stage 1: the data, prepared once per run.


rule prepare_data:
    input:
        code=code_files("prepare_data"),
    output:
        train=run_path("data/train.parquet"),
        eval=run_path("data/eval.parquet"),
        labels=run_path("data/labels.npy"),
        thumbnails=run_path("data/thumbnails.npy"),
        classes=run_path("data/classes.json"),
        label_noise=run_path("data/label_noise.csv"),
    log:
        run_log("prepare_data.log"),
    benchmark:
        run_benchmark("prepare_data.tsv")
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
            want_train=lambda wildcards: bool(run_of(wildcards).dynamics),
        ),
    shell:
        job()


rule preprocess:
    input:
        eval=rules.prepare_data.output.eval,
        code=code_files("preprocess"),
    output:
        pixels=run_path("data/pixels.npy"),
        spec=run_path("data/pixels.json"),
    log:
        run_log("preprocess.log"),
    benchmark:
        run_benchmark("preprocess.tsv")
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
