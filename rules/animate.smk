# Stage 7: the film.


rule animate:
    input:
        frames=per_step("frames", STEPS, "png"),
    output:
        gif=report(
            f"{RESULTS}/animation.gif",
            caption="../report/animation.rst",
            category="Film",
        ),
    log:
        f"{RESULTS}/logs/animate.log",
    benchmark:
        f"{RESULTS}/benchmarks/animate.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        frame_duration_ms=config["animation"]["frame_duration_ms"],
        hold_last_ms=config["animation"]["hold_last_ms"],
        loop=config["animation"]["loop"],
    conda:
        "../envs/render.yaml"
    script:
        "../workflow_scripts/animate.py"
