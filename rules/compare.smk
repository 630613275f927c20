# Stage 9: several runs side by side on a common clock (only when the config lists several runs:).
# results/compare/{name}/: layout.npz, frames/{tick}.png, animation.{gif,mp4}, film.html, metrics.csv


rule compare_layout:
    input:
        embeddings=all_runs("embeddings"),
        projections=all_runs("projection"),
        limits=lambda wildcards: [run_path("projection/limits.json", r) for r in RUNS],
        code=code_files("compare_layout"),
    output:
        layout=compare_path("layout.npz"),
    log:
        compare_log("layout.log"),
    benchmark:
        compare_benchmark("layout.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        **job_params(
            "compare_layout",
            runs=list(RUNS),
            steps=[r.steps for r in RUNS.values()],
            global_every=max(r.cfg["projection"]["global_every"] for r in RUNS.values()),
            margin=compare_setting("frames", "margin"),
            seed=compare_setting("seed"),
        ),
    shell:
        job()


rule compare_frame:
    input:
        layout=rules.compare_layout.output.layout,
        scores=shown_files("ood"),
        metrics=shown_files("metrics", "json"),
        loss_logs=lambda wildcards: [run_path("train_log.csv", r) for r in RUNS],
        labels=lambda wildcards: run_path("data/labels.npy", next(iter(RUNS))),
        classes=lambda wildcards: run_path("data/classes.json", next(iter(RUNS))),
        code=code_files("compare_frame"),
    output:
        frame=compare_path("frames/{tick}.png"),
    log:
        compare_log("frames/{tick}.log"),
    benchmark:
        compare_benchmark("frames/{tick}.tsv")
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(
            "compare_frame",
            tick=lambda wildcards: compare_clock()[1][int(wildcards.tick)][0],
            shown=shown_steps,
            steps={r.name: r.steps for r in RUNS.values()},
            last_steps={r.name: r.last for r in RUNS.values()},
            clock=lambda wildcards: compare_clock()[0],
            top_k=compare_setting("frames", "top_k"),
            style={k: compare_setting("frames", k) for k in ("width", "height", "point_size")},
        ),
    shell:
        job()


rule compare_animate:
    input:
        frames=compare_frames,
        code=code_files("compare_animate"),
    output:
        film=report(
            compare_path("animation.{format}"),
            caption="../report/compare.rst",
            category="Comparison",
            labels={"format": "{format}"},
        ),
    log:
        compare_log("animate-{format}.log"),
    benchmark:
        compare_benchmark("animate-{format}.tsv")
    wildcard_constraints:
        format="gif|mp4",
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        **job_params(
            "compare_animate",
            fps=compare_setting("animation", "fps"),
            hold_last=compare_setting("animation", "hold_last"),
            loop=compare_setting("animation", "loop"),
        ),
    shell:
        job()


rule compare_metrics:
    input:
        tables=lambda wildcards: [run_path("metrics.csv", r) for r in RUNS],
        films=lambda wildcards: [run_path("film_metrics.json", r) for r in RUNS],
        code=code_files("compare_metrics"),
    output:
        csv=report(compare_path("metrics.csv"), caption="../report/compare.rst", category="Comparison"),
    log:
        compare_log("metrics.log"),
    benchmark:
        compare_benchmark("metrics.tsv")
    conda:
        "../envs/analysis.yaml"
    threads: 1
    params:
        **job_params("compare_metrics", runs=list(RUNS), last_steps={r.name: r.last for r in RUNS.values()}),
    shell:
        job()


rule compare_html:
    input:
        layout=rules.compare_layout.output.layout,
        projections=all_runs("projection"),
        scores=all_runs("ood"),
        probs=all_runs("probs"),
        issues=all_runs("label_issues"),
        metrics=all_runs("metrics", "json"),
        labels=lambda wildcards: [run_path("data/labels.npy", r) for r in RUNS],
        thumbnails=lambda wildcards: [run_path("data/thumbnails.npy", r) for r in RUNS],
        classes=lambda wildcards: [run_path("data/classes.json", r) for r in RUNS],
        loss_logs=lambda wildcards: [run_path("train_log.csv", r) for r in RUNS],
        code=code_files("compare_html"),
    output:
        html=report(
            compare_path("film.html"),
            caption="../report/compare.rst",
            category="Comparison",
            labels={"format": "html"},
        ),
    log:
        compare_log("film_html.log"),
    benchmark:
        compare_benchmark("film_html.tsv")
    conda:
        "../envs/render.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        **job_params(
            "compare_html",
            runs=list(RUNS),
            steps=[r.steps for r in RUNS.values()],
            ticks=lambda wildcards: [label for label, _ in compare_clock()[1]],
            shown=lambda wildcards: compare_clock()[2],
            clock=lambda wildcards: compare_clock()[0],
            top_k=compare_setting("frames", "top_k"),
            max_points=compare_setting("html", "max_points"),
            title=lambda wildcards: f"{wildcards.name}: {', '.join(RUNS)}",
        ),
    shell:
        job()
