# Report extras that only `snakemake --report` shows (docs/report.md): the loss curve and a page that plays
# the film inline (the report offers a GIF/MP4 only as a download). They are not targets of `rule all`;
# request them by rule name, for the run and for the report alike (`make report` does both):
#   snakemake --cores all all loss_curve film_page
#   snakemake --report results/{run}/report.html all loss_curve film_page


rule loss_curve:
    input:
        train_log=f"{RESULTS}/train_log.csv",
    output:
        png=report(
            f"{RESULTS}/loss_curve.png",
            caption="../report/loss_curve.rst",
            category="Film",
            subcategory="Training",
        ),
    log:
        f"{RESULTS}/logs/loss_curve.log",
    threads: 1
    resources:
        mem_mb=1000,
    params:
        steps=STEPS,
        title=f"Training loss ({RUN})",
    conda:
        "../envs/render.yaml"
    script:
        "../workflow_scripts/loss_plot.py"


rule film_page:
    input:
        **animation_outputs(),
    output:
        html=report(
            f"{RESULTS}/report/film.html",
            caption="../report/film_page.rst",
            category="Film",
            subcategory="Animation",
            labels={"format": "player"},
        ),
    log:
        f"{RESULTS}/logs/film_page.log",
    threads: 1
    resources:
        mem_mb=1000,
    params:
        title=f"{RUN}: {len(STEPS)} checkpoints, steps {FIRST} to {LAST}",
    conda:
        "../envs/render.yaml"
    script:
        "../workflow_scripts/film_page.py"
