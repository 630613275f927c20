# Stage 7: the film, one job per format (animation.formats: gif, mp4).


rule animate:
    input:
        frames=film_frames,
        code=code_files("animate"),
    output:
        film=report(
            run_path("animation.{format}"),
            caption="../report/animation.rst",
            category="Film",
            subcategory="Animation",
            labels=report_labels(format="{format}"),
        ),
    log:
        run_log("animate-{format}.log"),
    benchmark:
        run_benchmark("animate-{format}.tsv")
    wildcard_constraints:
        format="gif|mp4",
    conda:
        "../envs/render.yaml"
    # the GIF's frames are decoded on 2 threads while it is encoded (the film's last job: nothing else to run)
    threads: 2
    resources:
        mem_mb=2000,
    params:
        **job_params(
            "animate",
            fps=setting("animation", "fps"),
            hold_last=setting("animation", "hold_last"),
            loop=setting("animation", "loop"),
        ),
    shell:
        job()
