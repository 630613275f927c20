# Stage 6: one frame per checkpoint, one job per chunk of checkpoints.

for i, chunk in enumerate(CHUNKS):

    rule:
        name:
            f"frames_chunk{i}"
        input:
            projections=per_step("projection", chunk),
            scores=per_step("ood", chunk),
            limits=rules.frame_limits.output.limits,
            labels=rules.prepare_data.output.labels,
            thumbnails=rules.prepare_data.output.thumbnails,
            classes=rules.prepare_data.output.classes,
            train_log=f"{RESULTS}/train_log.csv",
        output:
            frames=[report(f, category="Frames", labels={"checkpoint": str(s)}) for f, s in zip(per_step("frames", chunk, "png"), chunk)],
        log:
            f"{RESULTS}/logs/frames/chunk{i}.log",
        benchmark:
            f"{RESULTS}/benchmarks/frames/chunk{i}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
        params:
            steps=chunk,
            max_step=LAST,
            title=Path(config["model"]).name if not EXTERNAL else Path(EXTERNAL).name,
            style={k: config["frames"][k] for k in ("width", "height", "top_k", "point_size")},
        conda:
            "../envs/render.yaml"
        script:
            "../workflow_scripts/render.py"
