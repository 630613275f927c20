# Stage 5: aligned 2-D projections. What a projection depends on is exactly what its alignment mode ties it
# to (projection_inputs; workflow_scripts/project.py describes each mode's staleness).


rule layout:
    input:
        embeddings=layout_embeddings,
        code=code_files("layout"),
    output:
        layout="results/{run}/projection/layout.npz",
    log:
        "results/{run}/logs/projection/layout.log",
    benchmark:
        "results/{run}/benchmarks/projection/layout.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        **job_params(align=setting("projection", "align"), steps=layout_steps, seed=setting("seed")),
    conda:
        "../envs/analysis.yaml"
    shell:
        job("layout")


rule project:
    input:
        unpack(projection_inputs),
        embeddings="results/{run}/embeddings/{step}.npy",
        code=code_files("project"),
    output:
        projection="results/{run}/projection/{step}.npy",
    log:
        "results/{run}/logs/projection/{step}.log",
    benchmark:
        "results/{run}/benchmarks/projection/{step}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(align=setting("projection", "align"), step=step_of),
    conda:
        "../envs/analysis.yaml"
    shell:
        job("project")


rule frame_limits:
    input:
        projections=limits_projections,
        code=code_files("frame_limits"),
    output:
        limits="results/{run}/projection/limits.json",
    log:
        "results/{run}/logs/projection/limits.log",
    benchmark:
        "results/{run}/benchmarks/projection/limits.tsv"
    threads: 1
    params:
        **job_params(margin=setting("frames", "margin")),
    conda:
        "../envs/analysis.yaml"
    shell:
        job("frame_limits")
