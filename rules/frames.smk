# Stage 6: one frame per checkpoint, the interpolated (tween) frames between consecutive checkpoints, and the
# frames' leaderboards as one table (outliers_table).


rule frame:
    input:
        unpack(previous_step("previous_scores", "ood")),
        unpack(previous_step("previous_issues", "label_issues")),
        unpack(loss_log),
        unpack(frame_views),
        layout=film_layout,
        projection="results/{run}/projection/{step}.npy",
        scores="results/{run}/ood/{step}.npy",
        issues="results/{run}/label_issues/{step}.npy",
        metrics="results/{run}/metrics/{step}.json",
        labels=rules.prepare_data.output.labels,
        thumbnails=rules.prepare_data.output.thumbnails,
        classes=rules.prepare_data.output.classes,
        code=code_files("frame"),
    output:
        # browsable by checkpoint in the report
        frame=report(
            "results/{run}/frames/{step}.png",
            caption="../report/frame.rst",
            category="Frames",
            labels=report_labels(checkpoint=padded_step),
        ),
    log:
        "results/{run}/logs/frames/{step}.log",
    benchmark:
        "results/{run}/benchmarks/frames/{step}.tsv"
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(
            step=step_of,
            max_step=planned_last_step,
            title=model_title,
            align=setting("projection", "align"),
            leaderboard=setting("frames", "leaderboard"),
            top_k=setting("frames", "top_k"),
            style=lambda wildcards: {k: setting("frames", k)(wildcards) for k in ("width", "height", "point_size")},
        ),
    shell:
        job("frame")


rule tween:
    input:
        unpack(previous_step("previous_scores", "ood")),
        unpack(previous_step("previous_issues", "label_issues")),
        unpack(loss_log),
        unpack(tween_views),
        layout=film_layout,
        projection="results/{run}/projection/{step}.npy",
        next_projection=next_projection,
        scores="results/{run}/ood/{step}.npy",
        issues="results/{run}/label_issues/{step}.npy",
        metrics="results/{run}/metrics/{step}.json",
        labels=rules.prepare_data.output.labels,
        thumbnails=rules.prepare_data.output.thumbnails,
        classes=rules.prepare_data.output.classes,
        code=code_files("tween"),
    output:
        frame="results/{run}/frames/tween/{step}-{j}.png",
    log:
        "results/{run}/logs/frames/tween/{step}-{j}.log",
    benchmark:
        "results/{run}/benchmarks/frames/tween/{step}-{j}.tsv"
    wildcard_constraints:
        j=r"\d+",
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(
            step=step_of,
            next_step=lambda wildcards: neighbour(wildcards, 1),
            j=lambda wildcards: int(wildcards.j),
            tween=setting("animation", "tween"),
            max_step=planned_last_step,
            title=model_title,
            align=setting("projection", "align"),
            leaderboard=setting("frames", "leaderboard"),
            top_k=setting("frames", "top_k"),
            style=lambda wildcards: {k: setting("frames", k)(wildcards) for k in ("width", "height", "point_size")},
        ),
    shell:
        job("tween")


rule outliers_table:
    # the leaderboard of every frame as one table (frames.top_k): drawn with the frames, in their environment
    input:
        scores=all_steps("ood"),
        classes=rules.prepare_data.output.classes,
        code=code_files("outliers_table"),
    output:
        csv="results/{run}/outliers.csv",
    log:
        "results/{run}/logs/outliers.log",
    benchmark:
        "results/{run}/benchmarks/outliers.tsv"
    conda:
        "../envs/render.yaml"
    threads: 1
    params:
        **job_params(steps=lambda wildcards: run_of(wildcards).steps, top_k=setting("frames", "top_k")),
    shell:
        job("outliers_table")
