# What `snakemake` makes by default, and what it says when frames are missing after a failure.


def final_targets():
    return compare_targets() + [
        target
        for run in RUNS.values()
        for target in (
            *(run_path(f"animation.{fmt}", run.name) for fmt in run.cfg["animation"]["formats"]),
            run_path("film.html", run.name),
            run_path("review.parquet", run.name),
            run_path("metrics.csv", run.name),
            run_path("outliers.csv", run.name),
            run_path("train_log.csv", run.name),
            *(
                run_path(f, run.name)
                for f in (
                    "dynamics.parquet",
                    "label_errors.csv",
                    "data_map.png",
                    "label_errors.png",
                    "train_review.parquet",
                )
                if run.dynamics
            ),
        )
    ]


def explain_missing_frames():
    """After a failure (e.g. with --keep-going): name each run's checkpoints that have no frame, so the film
    that was not made says which steps held it back."""
    for run in RUNS.values():
        frames = {s: os.path.exists(run_path(f"frames/{s}.png", run.name)) for s in run.steps}
        missing = [str(s) for s, made in frames.items() if not made]
        failed = [s for s in run.steps if os.path.exists(run_path(f"skipped/{s}.json", run.name))]
        if missing and any(frames.values()):
            print(
                f"the film of run {run.name} was not made: no frame for steps {', '.join(missing)} (their jobs, or the "
                f"jobs they read from, failed: see results/{run.name}/logs/)."
                + (
                    f" Checkpoints {', '.join(map(str, failed))} failed for reasons of their own: run again to make the film "
                    f"without them (results/{run.name}/skipped/ says why)."
                    if failed
                    else " Fix or remove those checkpoints, then run again."
                ),
                file=sys.stderr,
            )


def runs_by_kind(external):
    """Wildcard constraint of the run names that train (external=False) or film external checkpoints."""
    return names_regex([r.name for r in RUNS.values() if r.external == external])
