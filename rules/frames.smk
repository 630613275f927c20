# Stage 6: one frame per checkpoint, the interpolated (tween) frames between consecutive checkpoints, and the
# frames' leaderboards as one table (outliers_table).


# What a checkpoint's frame and the tween frames after it both read, and the settings they share.
FRAME_UNPACKS = [
    unpack(previous_step("previous_scores", "ood")),
    unpack(previous_step("previous_issues", "label_issues")),
    unpack(loss_log),
]
FRAME_INPUTS = dict(
    layout=film_layout,
    projection=run_path("projection/{step}.npy"),
    scores=run_path("ood/{step}.npy"),
    issues=run_path("label_issues/{step}.npy"),
    metrics=run_path("metrics/{step}.json"),
    labels=rules.prepare_data.output.labels,
    thumbnails=rules.prepare_data.output.thumbnails,
    classes=rules.prepare_data.output.classes,
)
FRAME_SETTINGS = dict(
    step=step_of,
    max_step=planned_last_step,
    title=model_title,
    align=setting("projection", "align"),
    leaderboard=setting("frames", "leaderboard"),
    top_k=setting("frames", "top_k"),
    style=lambda wildcards: {k: setting("frames", k)(wildcards) for k in ("width", "height", "point_size")},
)


rule frame:
    input:
        *FRAME_UNPACKS,
        unpack(frame_views),
        **FRAME_INPUTS,
        code=code_files("frame"),
    output:
        # browsable by checkpoint in the report
        frame=report(
            run_path("frames/{step}.png"),
            caption="../report/frame.rst",
            category="Frames",
            labels=report_labels(checkpoint=padded_step),
        ),
        # the view it shows (camera.mode causal: the camera it replayed, which the page and metrics read)
        view=run_path("frames/{step}.json"),
    log:
        run_log("frames/{step}.log"),
    benchmark:
        run_benchmark("frames/{step}.tsv")
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params("frame", **FRAME_SETTINGS, camera=frame_camera),
    shell:
        job()


# The frames between a checkpoint and the next (animation.tween > 0): the frame's rule, moving the points
# and the camera a share of the way to the next checkpoint's.
use rule frame as tween with:
    input:
        *FRAME_UNPACKS,
        unpack(tween_views),
        **FRAME_INPUTS,
        next_projection=next_projection,
        code=code_files("tween"),
    output:
        frame=run_path("frames/tween/{step}-{j}.png"),
    log:
        run_log("frames/tween/{step}-{j}.log"),
    benchmark:
        run_benchmark("frames/tween/{step}-{j}.tsv")
    wildcard_constraints:
        j=r"\d+",
    params:
        **job_params(
            "tween",
            **FRAME_SETTINGS,
            next_step=lambda wildcards: neighbour(wildcards, 1),
            j=lambda wildcards: int(wildcards.j),
            tween=setting("animation", "tween"),
        ),


rule outliers_table:
    # the leaderboard of every frame as one table (frames.top_k): drawn with the frames, in their environment
    input:
        scores=all_steps("ood"),
        classes=rules.prepare_data.output.classes,
        code=code_files("outliers_table"),
    output:
        csv=run_path("outliers.csv"),
    log:
        run_log("outliers.log"),
    benchmark:
        run_benchmark("outliers.tsv")
    conda:
        "../envs/render.yaml"
    threads: 1
    params:
        **job_params(
            "outliers_table", steps=lambda wildcards: run_of(wildcards).steps, top_k=setting("frames", "top_k")
        ),
    shell:
        job()
