# Stage 2: fine-tuning. Checkpoints are protected: Snakemake refuses to overwrite or delete them.

if not EXTERNAL:

    rule train:
        input:
            train=rules.prepare_data.output.train,
        output:
            checkpoints=protected(checkpoint_files(STEPS)),
            train_log=f"{RESULTS}/train_log.csv",
        log:
            f"{RESULTS}/logs/train.log",
        benchmark:
            f"{RESULTS}/benchmarks/train.tsv"
        threads: workflow.cores
        resources:
            mem_mb=4000,
            gpu=0 if config["embedding"]["device"] == "cpu" else 1,
        params:
            model=config["model"],
            training=TRAIN,
            tiny_vit=config["tiny_vit"],
            image_size=config["dataset"]["image_size"],
            seed=config["seed"],
            allow_pickle=config["allow_pickle_checkpoints"],
            checkpoint_root=lambda wildcards, output: str(Path(output.checkpoints[0]).parent.parent),
            # the Trainer's own folder (resume state), next to checkpoints/, removed when training ends
            staging=lambda wildcards, output: str(Path(output.checkpoints[0]).parent.parent.parent / "training"),
        conda:
            "../envs/train.yaml"
        script:
            "../workflow_scripts/train.py"

else:

    rule import_train_log:
        input:
            # the newest checkpoint's log history (none: an empty loss curve); the folder is only read
            state=[
                f for f in (f"{checkpoint_dir(s)}/trainer_state.json" for s in reversed(STEPS)) if os.path.isfile(f)
            ][:1],
        output:
            train_log=f"{RESULTS}/train_log.csv",
        log:
            f"{RESULTS}/logs/import_train_log.log",
        threads: 1
        conda:
            "../envs/analysis.yaml"
        script:
            "../workflow_scripts/trainer_state.py"
