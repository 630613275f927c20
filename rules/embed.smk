# Stage 3: embeddings and class probabilities, one job per checkpoint.


rule embed:
    input:
        checkpoint=checkpoint_weights,
        pixels=rules.preprocess.output.pixels,
        spec=rules.preprocess.output.spec,
        code=code_files("embed"),
    output:
        embeddings=run_path("embeddings/{step}.npy"),
        probs=run_path("probs/{step}.npy"),
    log:
        run_log("embed/{step}.log"),
    benchmark:
        run_benchmark("embed/{step}.tsv")
    conda:
        "../envs/train.yaml"
    threads: embed_threads
    resources:
        mem_mb=4000,
        # one GPU unless embedding.device is cpu (slurm: --gpus; locally --resources gpu=N serialises)
        gpu=lambda wildcards: 0 if setting("embedding", "device")(wildcards) == "cpu" else 1,
    params:
        **job_params(
            "embed",
            checkpoint_dir=lambda wildcards: run_of(wildcards).checkpoint_dir(step_of(wildcards)),
            pooling=setting("embedding", "pooling"),
            batch_size=setting("embedding", "batch_size"),
            device=setting("embedding", "device"),
            precision=setting("embedding", "precision"),
            allow_pickle=setting("allow_pickle_checkpoints"),
            # where a checkpoint that fails for a reason of its own is noted, so the next run leaves it out
            failure_record=run_path("skipped/{step}.json"),
        ),
    shell:
        job()
