# Stage 6: one frame per checkpoint (plus interpolated frames), one job per chunk of checkpoints.

for i, chunk in enumerate(CHUNKS):

    rule:
        name:
            f"frames_chunk{i}"
        input:
            **previous_step_inputs(i, "previous_scores", "ood"),
            **previous_step_inputs(i, "previous_issues", "label_issues"),
            **(
                {"next_projection": f"{RESULTS}/projection/{next_step(i)}.npy"}
                if config["animation"]["tween"] and next_step(i) is not None
                else {}
            ),
            projections=per_step("projection", chunk),
            scores=per_step("ood", chunk),
            label_issues=per_step("label_issues", chunk),
            metrics=per_step("metrics", chunk, "json"),
            limits=rules.frame_limits.output.limits,
            labels=rules.prepare_data.output.labels,
            thumbnails=rules.prepare_data.output.thumbnails,
            classes=rules.prepare_data.output.classes,
            **loss_inputs(chunk),
        output:
            frames=[
                # browsable by checkpoint in the report; zero-padded because the report sorts labels as text
                report(
                    f,
                    caption="../report/frame.rst",
                    category="Frames",
                    labels={"checkpoint": str(s).zfill(len(str(LAST)))},
                )
                for f, s in zip(per_step("frames", chunk, "png"), chunk)
            ],
            tweens=tween_frames(chunk),
        log:
            f"{RESULTS}/logs/frames/chunk{i}.log",
        benchmark:
            f"{RESULTS}/benchmarks/frames/chunk{i}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
        params:
            steps=chunk,
            checkpoint_dirs=[checkpoint_dir(s) for s in chunk],
            max_step=planned_last_step(),
            next_step=next_step(i) if config["animation"]["tween"] else None,
            tween=config["animation"]["tween"],
            title=Path(config["model"]).name if not EXTERNAL else Path(EXTERNAL).name,
            leaderboard=config["frames"]["leaderboard"],
            top_k=config["frames"]["top_k"],
            style={k: config["frames"][k] for k in ("width", "height", "point_size")},
        conda:
            "../envs/render.yaml"
        script:
            "../workflow_scripts/render.py"
