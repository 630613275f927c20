# Stage 1: the data, prepared once per run.


rule prepare_data:
    output:
        train=f"{RESULTS}/data/train.parquet",
        eval=f"{RESULTS}/data/eval.parquet",
        labels=f"{RESULTS}/data/labels.npy",
        thumbnails=f"{RESULTS}/data/thumbnails.npy",
        classes=f"{RESULTS}/data/classes.json",
    log:
        f"{RESULTS}/logs/prepare_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_data.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        dataset=config["dataset"],
        seed=config["seed"],
        need_train=not EXTERNAL,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/data.py"


rule preprocess:
    input:
        eval=rules.prepare_data.output.eval,
    output:
        pixels=f"{RESULTS}/data/pixels.npy",
        spec=f"{RESULTS}/data/pixels.json",
    log:
        f"{RESULTS}/logs/preprocess.log",
    benchmark:
        f"{RESULTS}/benchmarks/preprocess.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        model=config["model"],
        image_size=config["dataset"]["image_size"],
        checkpoint_dir=checkpoint_dir(FIRST) if EXTERNAL else None,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/preprocess.py"
