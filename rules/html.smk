# Stage 7b: the explorable film, one self-contained HTML page (workflow_scripts/embedding_film/film/page/).


rule film_html:
    input:
        unpack(film_data_map),
        projections=all_steps("projection"),
        scores=all_steps("ood"),
        probs=all_steps("probs"),
        issues=all_steps("label_issues"),
        metrics=all_steps("metrics", "json"),
        film=rules.metrics_table.output.film,
        views=all_views,
        loss_log=run_path("train_log.csv"),
        labels=rules.prepare_data.output.labels,
        thumbnails=rules.prepare_data.output.thumbnails,
        classes=rules.prepare_data.output.classes,
        code=code_files("film_html"),
    output:
        html=report(
            run_path("film.html"),
            caption="../report/film_html.rst",
            category="Film",
            subcategory="Explorable film",
            labels=report_labels(format="html"),
        ),
    log:
        run_log("film_html.log"),
    benchmark:
        run_benchmark("film_html.tsv")
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        **job_params(
            "film_html",
            run_dir=lambda wildcards, input: str(Path(input.labels).parent.parent),  # results/{run}
            steps=lambda wildcards: run_of(wildcards).steps,
            top_k=setting("frames", "top_k"),
            max_points=setting("html", "max_points"),
            view_files=lambda wildcards: [view_file(wildcards, s) for s in run_of(wildcards).steps],
            title=lambda wildcards: f"{wildcards.run}: {model_title(wildcards)}",
        ),
    shell:
        job()
