# Training dynamics: every checkpoint's predictions on the training images (one job per checkpoint), and from
# them the data map and the ranking of likely label errors (docs/dynamics.md).


rule train_images:
    input:
        train=rules.prepare_data.output.train,
        code=code_files("train_images"),
    output:
        index=run_path("data/train_index.parquet"),
        pixels=run_path("data/train_pixels.npy"),
        spec=run_path("data/train_pixels.json"),
        thumbnails=run_path("data/train_thumbnails.npy"),
    log:
        run_log("train_images.log"),
    benchmark:
        run_benchmark("train_images.tsv")
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(
            "train_images",
            model=setting("model"),
            image_size=setting("dataset", "image_size"),
            checkpoint_dir=lambda wildcards: (
                run_of(wildcards).checkpoint_dir(run_of(wildcards).first) if run_of(wildcards).external else None
            ),
            max_images=setting("dynamics", "max_images"),
            seed=setting("seed"),
        ),
    shell:
        job()


rule train_probs:
    input:
        checkpoint=checkpoint_weights,
        pixels=rules.train_images.output.pixels,
        spec=rules.train_images.output.spec,
        code=code_files("train_probs"),
    output:
        probs=run_path("train_probs/{step}.npy"),
    log:
        run_log("train_probs/{step}.log"),
    benchmark:
        run_benchmark("train_probs/{step}.tsv")
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=lambda wildcards: 0 if setting("embedding", "device")(wildcards) == "cpu" else 1,
    params:
        **job_params(
            "train_probs",
            checkpoint_dir=lambda wildcards: run_of(wildcards).checkpoint_dir(step_of(wildcards)),
            batch_size=setting("embedding", "batch_size"),
            device=setting("embedding", "device"),
            precision=setting("embedding", "precision"),
            allow_pickle=setting("allow_pickle_checkpoints"),
        ),
    shell:
        job()


rule dynamics:
    input:
        index=rules.train_images.output.index,
        classes=rules.prepare_data.output.classes,
        probs=dynamics_probs,
        code=code_files("dynamics"),
    output:
        table=run_path("dynamics.parquet"),
        errors=run_path("label_errors.csv"),
        trace=run_path("dynamics_trace.npz"),
    log:
        run_log("dynamics.log"),
    benchmark:
        run_benchmark("dynamics.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(
            "dynamics",
            steps=lambda wildcards: list(run_of(wildcards).dynamics),
            top_k=setting("dynamics", "top_k"),
        ),
    shell:
        job()


rule data_map:
    input:
        table=rules.dynamics.output.table,
        thumbnails=rules.train_images.output.thumbnails,
        noise=rules.prepare_data.output.label_noise,
        code=code_files("data_map"),
    output:
        data_map=report(
            run_path("data_map.png"),
            caption="../report/data_map.rst",
            category="Film",
            subcategory="Training dynamics",
        ),
        gallery=report(
            run_path("label_errors.png"),
            caption="../report/label_errors.rst",
            category="Film",
            subcategory="Training dynamics",
        ),
    log:
        run_log("data_map.log"),
    benchmark:
        run_benchmark("data_map.tsv")
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        **job_params(
            "data_map",
            top_k=setting("dynamics", "top_k"),
            title=model_title,
        ),
    shell:
        job()


rule train_review:
    input:
        table=rules.dynamics.output.table,
        train=rules.prepare_data.output.train,
        code=code_files("train_review"),
    output:
        review=run_path("train_review.parquet"),
    log:
        run_log("train_review.log"),
    benchmark:
        run_benchmark("train_review.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params("train_review"),
    shell:
        job()
