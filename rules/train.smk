# Stage 2: fine-tuning (or, for external checkpoints, their loss curve). The checkpoints folder is
# protected, and its training settings are checked at start-up (rules/setup.smk): it is never retrained
# because something upstream changed.


rule train:
    input:
        # ancient: a re-prepared dataset (or a code change) never retrains over existing checkpoints; what
        # trained them is recorded and checked at start-up (training.json: model, training, data settings)
        train=ancient(rules.prepare_data.output.train),
    output:
        checkpoints=protected(directory(run_path("checkpoints"))),
        train_log=run_path("train_log.csv"),
    log:
        run_log("train.log"),
    benchmark:
        run_benchmark("train.tsv")
    wildcard_constraints:
        run=runs_by_kind(external=False),
    conda:
        "../envs/train.yaml"
    threads: workflow.cores
    resources:
        mem_mb=4000,
        gpu=lambda wildcards: 0 if setting("embedding", "device")(wildcards) == "cpu" else 1,
    params:
        **job_params(
            "train",
            model=setting("model"),
            training=setting("training"),
            tiny_vit=setting("tiny_vit"),
            # without label_noise while it is off: checkpoints trained before it existed are not retrained
            dataset=lambda wildcards: training_dataset(setting("dataset")(wildcards)),
            seed=setting("seed"),
            allow_pickle=setting("allow_pickle_checkpoints"),
            # the Trainer's own folder (resume state), next to checkpoints/, removed when training ends
            staging=run_path("training"),
        ),
    shell:
        job()


rule import_train_log:
    input:
        # the newest checkpoint's log history (none: an empty loss curve); the folder is only read
        state=newest_trainer_state,
        code=code_files("import_train_log"),
    output:
        train_log=run_path("train_log.csv"),
    log:
        run_log("import_train_log.log"),
    benchmark:
        run_benchmark("import_train_log.tsv")
    wildcard_constraints:
        run=runs_by_kind(external=True),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    params:
        **job_params("import_train_log"),
    shell:
        job()
