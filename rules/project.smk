# Stage 5: aligned 2-D projections. Which inputs a projection has is exactly what its alignment mode
# makes it depend on (see workflow_scripts/project.py for the staleness of each mode).

if ALIGN in ("reference", "global"):

    rule pca_basis:
        input:
            embeddings=basis_embeddings(),
        output:
            basis=f"{RESULTS}/projection/basis.npz",
        log:
            f"{RESULTS}/logs/projection/basis.log",
        benchmark:
            f"{RESULTS}/benchmarks/projection/basis.tsv"
        threads: 1
        resources:
            mem_mb=4000,
        params:
            seed=config["seed"],
        conda:
            "../envs/analysis.yaml"
        script:
            "../workflow_scripts/project.py"


if ALIGN == "gpa":

    rule project_gpa:
        input:
            embeddings=per_step("embeddings", STEPS),
        output:
            projections=per_step("projection", STEPS),
        log:
            f"{RESULTS}/logs/projection/gpa.log",
        benchmark:
            f"{RESULTS}/benchmarks/projection/gpa.tsv"
        threads: 1
        resources:
            mem_mb=4000,
        params:
            align=ALIGN,
        conda:
            "../envs/analysis.yaml"
        script:
            "../workflow_scripts/project.py"

else:

    for i, chunk in enumerate(CHUNKS):

        rule:
            name:
                f"project_chunk{i}"
            input:
                **projection_inputs(i),
                embeddings=per_step("embeddings", chunk),
            output:
                projections=per_step("projection", chunk),
            log:
                f"{RESULTS}/logs/projection/chunk{i}.log",
            benchmark:
                f"{RESULTS}/benchmarks/projection/chunk{i}.tsv"
            threads: 1
            resources:
                mem_mb=2000,
            params:
                align=ALIGN,
            conda:
                "../envs/analysis.yaml"
            script:
                "../workflow_scripts/project.py"


rule frame_limits:
    input:
        projections=limits_projections(),
    output:
        limits=f"{RESULTS}/projection/limits.json",
    log:
        f"{RESULTS}/logs/projection/limits.log",
    threads: 1
    params:
        margin=config["frames"]["margin"],
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/project.py"
