# Stage 7: the film.


rule animate:
    input:
        frames=film_frames(),
    output:
        **{
            fmt: report(
                path,
                caption="../report/animation.rst",
                category="Film",
                subcategory="Animation",
                labels={"format": fmt},
            )
            for fmt, path in animation_outputs().items()
        },
    log:
        f"{RESULTS}/logs/animate.log",
    benchmark:
        f"{RESULTS}/benchmarks/animate.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        fps=config["animation"]["fps"],
        hold_last=config["animation"]["hold_last"],
        loop=config["animation"]["loop"],
    conda:
        "../envs/render.yaml"
    script:
        "../workflow_scripts/animate.py"
