# Stage 9: several runs side by side on a common clock (only when the config lists several runs:).
# results/compare/{name}/: layout.npz, frames/{tick}.png, animation.{gif,mp4}, film.html, metrics.csv


rule compare_layout:
    input:
        embeddings=all_runs("embeddings"),
        projections=all_runs("projection"),
        limits=lambda wildcards: [f"results/{r}/projection/limits.json" for r in RUNS],
        code=code_files("compare_layout"),
    output:
        layout="results/compare/{name}/layout.npz",
    log:
        "results/compare/{name}/logs/layout.log",
    benchmark:
        "results/compare/{name}/benchmarks/layout.tsv"
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
        loss_logs=lambda wildcards: [f"results/{r}/train_log.csv" for r in RUNS],
        labels=lambda wildcards: f"results/{next(iter(RUNS))}/data/labels.npy",
        classes=lambda wildcards: f"results/{next(iter(RUNS))}/data/classes.json",
        code=code_files("compare_frame"),
    output:
        frame="results/compare/{name}/frames/{tick}.png",
    log:
        "results/compare/{name}/logs/frames/{tick}.log",
    benchmark:
        "results/compare/{name}/benchmarks/frames/{tick}.tsv"
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
            "results/compare/{name}/animation.{format}",
            caption="../report/compare.rst",
            category="Comparison",
            labels={"format": "{format}"},
        ),
    log:
        "results/compare/{name}/logs/animate-{format}.log",
    benchmark:
        "results/compare/{name}/benchmarks/animate-{format}.tsv"
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
        tables=lambda wildcards: [f"results/{r}/metrics.csv" for r in RUNS],
        films=lambda wildcards: [f"results/{r}/film_metrics.json" for r in RUNS],
        code=code_files("compare_metrics"),
    output:
        csv=report("results/compare/{name}/metrics.csv", caption="../report/compare.rst", category="Comparison"),
    log:
        "results/compare/{name}/logs/metrics.log",
    benchmark:
        "results/compare/{name}/benchmarks/metrics.tsv"
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
        labels=lambda wildcards: [f"results/{r}/data/labels.npy" for r in RUNS],
        thumbnails=lambda wildcards: [f"results/{r}/data/thumbnails.npy" for r in RUNS],
        classes=lambda wildcards: [f"results/{r}/data/classes.json" for r in RUNS],
        loss_logs=lambda wildcards: [f"results/{r}/train_log.csv" for r in RUNS],
        code=code_files("compare_html"),
    output:
        html=report(
            "results/compare/{name}/film.html",
            caption="../report/compare.rst",
            category="Comparison",
            labels={"format": "html"},
        ),
    log:
        "results/compare/{name}/logs/film_html.log",
    benchmark:
        "results/compare/{name}/benchmarks/film_html.tsv"
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
