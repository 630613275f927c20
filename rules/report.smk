# Report extras that only `snakemake --report` shows (docs/report.md): the loss curve and a page that plays
# the film inline (the report offers a GIF/MP4 only as a download). They are not targets of `rule all`;
# request them through report_extras, for the run and for the report alike (`make report` does both):
#   snakemake --cores all all report_extras
#   snakemake --report results/{run}/report.html all report_extras


rule loss_curve:
    input:
        train_log=run_path("train_log.csv"),
        code=code_files("loss_curve"),
    output:
        png=report(
            run_path("loss_curve.png"),
            caption="../report/loss_curve.rst",
            category="Film",
            subcategory="Training",
        ),
    log:
        run_log("loss_curve.log"),
    benchmark:
        run_benchmark("loss_curve.tsv")
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        **job_params(
            "loss_curve",
            steps=lambda wildcards: run_of(wildcards).steps,
            title=lambda wildcards: f"Training loss ({wildcards.run})",
        ),
    shell:
        job()


rule film_page:
    input:
        films=lambda wildcards: [
            run_path(f"animation.{fmt}", wildcards.run) for fmt in setting("animation", "formats")(wildcards)
        ],
        code=code_files("film_page"),
    output:
        html=report(
            run_path("report/film.html"),
            caption="../report/film_page.rst",
            category="Film",
            subcategory="Animation",
            labels=report_labels(format="player"),
        ),
    log:
        run_log("film_page.log"),
    benchmark:
        run_benchmark("film_page.tsv")
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        **job_params(
            "film_page",
            title=lambda wildcards: (
                f"{wildcards.run}: {len(run_of(wildcards).steps)} checkpoints, "
                f"steps {run_of(wildcards).first} to {run_of(wildcards).last}"
            ),
        ),
    shell:
        job()


# The report's own targets: every run's extras (snakemake --report needs them as targets).
rule report_extras:
    input:
        [run_path(f"{name}", run) for run in RUNS for name in ("loss_curve.png", "report/film.html")],
