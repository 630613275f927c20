# Stage 5: aligned 2-D projections. What a projection depends on is exactly what its alignment mode ties it
# to (projection_inputs; workflow_scripts/embedding_film/film/projection.py describes each mode's staleness).


rule layout:
    input:
        embeddings=layout_embeddings,
        code=code_files("layout"),
    output:
        layout=run_path("projection/layout.npz"),
    log:
        run_log("projection/layout.log"),
    benchmark:
        run_benchmark("projection/layout.tsv")
    conda:
        "../envs/analysis.yaml"
    # every core: nothing else can run before the film-wide layout, and the learned map trains on them all
    threads: workflow.cores
    resources:
        mem_mb=4000,
    params:
        **job_params(
            "layout",
            method=setting("projection", "method"),
            align=setting("projection", "align"),
            steps=layout_steps,
            seed=setting("seed"),
            settings=lambda wildcards: {
                k: setting("projection", k)(wildcards) for k in ("tsne", "param", "umap", "auto")
            },
            k=setting("metrics", "k"),
            max_points=setting("metrics", "max_points"),
            fingerprint=lambda wildcards: fingerprint(run_of(wildcards).cfg),
            # why the layout is refitted (fit: auto), for the film to say; in the job only, not a setting
            refit_reason=lambda wildcards, input: run_of(wildcards).refit_reason,
        ),
    shell:
        job()


rule project:
    input:
        unpack(projection_inputs),
        embeddings=run_path("embeddings/{step}.npy"),
        code=code_files("project"),
    output:
        projection=run_path("projection/{step}.npy"),
    log:
        run_log("projection/{step}.log"),
    benchmark:
        run_benchmark("projection/{step}.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(
            "project", method=setting("projection", "method"), align=setting("projection", "align"), step=step_of
        ),
    shell:
        job()


rule frame_limits:
    input:
        projections=limits_projections,
        code=code_files("frame_limits"),
    output:
        limits=run_path("projection/limits.json"),
    log:
        run_log("projection/limits.log"),
    benchmark:
        run_benchmark("projection/limits.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    params:
        **job_params("frame_limits", margin=setting("frames", "margin")),
    shell:
        job()


# The camera (workflow_scripts/embedding_film/film/camera.py): what each frame shows of the layout. camera.mode fixed uses
# frame_limits above; lookahead plans every frame at once (rule camera); causal gives each checkpoint its own
# camera from the frames up to it, so appending a checkpoint changes no old frame: its frame job replays it
# from the camera state of every tenth checkpoint (rule camera_step, a chain: rules/inputs.smk camera_base)
# and the frames since.


rule camera:
    input:
        projections=all_steps("projection"),
        code=code_files("camera"),
    output:
        camera=run_path("projection/camera.json"),
    log:
        run_log("projection/camera.log"),
    benchmark:
        run_benchmark("projection/camera.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    params:
        **job_params(
            "camera",
            steps=lambda wildcards: run_of(wildcards).steps,
            mode="lookahead",
            settings=setting("camera"),
            margin=setting("frames", "margin"),
        ),
    shell:
        job()


rule camera_step:
    input:
        unpack(camera_state),
        projections=camera_window,
        code=code_files("camera_step"),
    output:
        camera=run_path("projection/camera/{step}.json"),
    log:
        run_log("projection/camera/{step}.log"),
    benchmark:
        run_benchmark("projection/camera/{step}.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    params:
        **job_params(
            "camera_step",
            step=step_of,
            replay=camera_replay,
            settings=setting("camera"),
            margin=setting("frames", "margin"),
        ),
    shell:
        job()
