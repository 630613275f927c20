# Stage 3: embeddings and class probabilities, one job per chunk of checkpoints.

for i, chunk in enumerate(CHUNKS):

    rule:
        name:
            f"embed_chunk{i}"
        input:
            checkpoints=checkpoint_files(chunk),
            pixels=rules.preprocess.output.pixels,
            spec=rules.preprocess.output.spec,
        output:
            embeddings=per_step("embeddings", chunk),
            probs=per_step("probs", chunk),
        log:
            f"{RESULTS}/logs/embed/chunk{i}.log",
        benchmark:
            f"{RESULTS}/benchmarks/embed/chunk{i}.tsv"
        threads: 1
        resources:
            # one GPU unless embedding.device is cpu (slurm: --gpus; locally --resources gpu=N serialises);
            # `set-resources: {embed: ...}` in a profile applies to every chunk (see stage_resources)
            **stage_resources("embed", mem_mb=4000, gpu=0 if config["embedding"]["device"] == "cpu" else 1),
        params:
            checkpoint_dirs=[checkpoint_dir(s) for s in chunk],
            pooling=config["embedding"]["pooling"],
            batch_size=config["embedding"]["batch_size"],
            device=config["embedding"]["device"],
            precision=config["embedding"]["precision"],
            allow_pickle=config["allow_pickle_checkpoints"],
        conda:
            "../envs/train.yaml"
        script:
            "../workflow_scripts/embed.py"
