#!/usr/bin/env python
"""The benchmark of issue 4: the workflow (`snakemake --cores 2`) against the article's single-process loop
(benchmarks/monolithic.py), side by side, same inputs, same machine, same outputs.

    python benchmarks/run.py --scale small      # 8 checkpoints, 100 images: minutes; validates the harness
    python benchmarks/run.py --scale full       # 80 + 20 (demo) checkpoints, 360 images: the issue's table
    make bench [SCALE=small]                    # the same, and writes the tables into benchmarks/RESULTS.md

Per workload (a film of N checkpoints of builtin:tiny-vit from an external Trainer folder):
  1 full run        data preparation to animation, workflow vs baseline on N checkpoints      target <= 0.8x
  1n naive DAG      the same with chunk_size 1 (one job per checkpoint per stage)             (no target)
  2 +1 checkpoint   append checkpoint N, rerun, vs the baseline on N+1 (it recomputes all)    target <= 0.2x
  3 frame setting   change frames.top_k, rerun (frames + film only) vs the baseline on N+1     target <= 0.3x
then once: 4 dry run of 1,000 (fake) checkpoints, target <= 10 s; and the peak memory of every stage
(Snakemake's benchmark: files, max_rss), target <= 2 GB, and per-stage start-up vs work.

Checkpoints come from benchmarks/work/pool/ (trained once with the HF Trainer, saving every step; the
training time is reported apart). Everything is written under benchmarks/work/ (git-ignored). The
workflow's outputs are compared with the baseline's after runs 1 and 2 (exact bytes, or the largest
difference), so the table also says whether the two did the same work.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "work"
POOL = WORK / "pool" / "tiny-vit-digits"
SRC = REPO  # the snapshot of the workflow that is benchmarked (see snapshot())
SNAPSHOT = ["Snakefile", "config.yaml", "rules", "workflow_scripts", "schemas", "envs", "report", "profiles",
            "benchmarks/monolithic.py"]
POOL_STEPS = 80  # checkpoint-0 ... checkpoint-80: 80 to film + 1 to append
PYTHON = sys.executable
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
sys.path.insert(0, str(HERE))

from make_checkpoints import add, fake, film, pool_steps, train  # noqa: E402


@dataclass
class Workload:
    name: str
    config: str  # benchmarks/configs/<config>
    n: int  # checkpoints filmed at first (one more is appended in scenario 2)


SCALES: dict[str, dict[str, Any]] = {
    "small": {"workloads": [Workload("small", "small.yaml", 8)], "naive": True, "dryrun": 1000},
    "full": {"workloads": [Workload("bench80", "bench80.yaml", 80), Workload("demo", "demo.yaml", 20)], "naive": False, "dryrun": 1000},
}

# The heavy imports each stage's job pays before any work (cross-check of the derived start-up).
STAGE_IMPORTS = {
    "prepare_data": "import workflow_scripts.data, datasets, sklearn.datasets, sklearn.model_selection, PIL.Image",
    "preprocess": "import workflow_scripts.preprocess, datasets, transformers; from transformers import AutoImageProcessor",
    "embed": "import workflow_scripts.embed, torch, transformers; from transformers import AutoModel, AutoModelForImageClassification; import transformers.models.vit.modeling_vit",
    "ood": "import workflow_scripts.ood, cleanlab.outlier, cleanlab.filter",
    "project": "import workflow_scripts.project, sklearn.decomposition, scipy.linalg",
    "metrics": "import workflow_scripts.metrics, sklearn.neighbors, sklearn.manifold, sklearn.metrics, scipy.stats",
    "frames": "import workflow_scripts.render, matplotlib.figure, matplotlib.backends.backend_agg; from matplotlib import colormaps",
    "animate": "import workflow_scripts.animate, PIL.Image",
}
STAGE_ORDER = ["prepare_data", "preprocess", "import_train_log", "embed", "ood", "pca_basis", "project", "project_gpa",
               "frame_limits", "metrics", "frames", "metrics_table", "outliers_table", "animate", "review"]
TARGETS = {"full": 0.8, "append": 0.2, "frames": 0.3, "dryrun_s": 10.0, "rss_mb": 2000.0}


# --------------------------------------------------------------------------------------------- running


@dataclass
class Timed:
    seconds: float
    peak_rss_mb: float
    output: str
    jobs: dict[str, int] = field(default_factory=dict)


def run_timed(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> Timed:
    """Run `cmd`, return wall seconds and the peak RSS of its largest process (getrusage of children)."""
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ.copy())
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    text = log.read_text()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}) in {cwd}; see {log}:\n{text[-3000:]}")
    return Timed(seconds, usage.ru_maxrss / 1024, text, job_counts(text))


def job_counts(output: str) -> dict[str, int]:
    """{rule: jobs} from Snakemake's 'Job stats' table (empty when nothing ran)."""
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    jobs = {}
    for line in table.splitlines():
        m = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if m and m.group(1) not in ("job", "all"):
            jobs[m.group(1)] = int(m.group(2))
    return jobs


def stage_of(rule: str) -> str:
    return re.sub(r"_chunk\d+$", "", rule)


def summarise_jobs(jobs: dict[str, int]) -> str:
    """'embed 1, frames 3, animate 1, ...' (chunk jobs counted per stage)."""
    per: dict[str, int] = {}
    for rule, count in jobs.items():
        per[stage_of(rule)] = per.get(stage_of(rule), 0) + count
    return ", ".join(f"{s} {per[s]}" for s in sorted(per, key=lambda s: (STAGE_ORDER + [s]).index(s)))


def snakemake_cmd(cores: int, *extra: str) -> list[str]:
    return [SNAKEMAKE, "--snakefile", str(SRC / "Snakefile"), "--cores", str(cores), "--configfile", "bench.yaml", *extra]


def load() -> str:
    return "{:.1f}".format(os.getloadavg()[0])


# --------------------------------------------------------------------------------------------- config


def snapshot(dest: Path) -> str:
    """Copy the workflow (and the baseline) to `dest` and benchmark that copy, so edits made to the working
    tree while the benchmark runs change neither contestant (nor trigger Snakemake's code-change reruns).
    Returns the commit it was taken from, '+dirty' when the working tree had changes."""
    global SRC
    if dest.exists():
        shutil.rmtree(dest)
    for rel in SNAPSHOT:
        source = REPO / rel
        if source.is_dir():
            shutil.copytree(source, dest / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    SRC = dest
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", *SNAPSHOT], capture_output=True, text=True).stdout.strip()
    return commit + ("+dirty" if dirty else "")


def resolve_config(overrides: dict[str, Any]) -> dict[str, Any]:
    """config.yaml updated (one level deep) with `overrides`, validated and completed with the schema's defaults."""
    from snakemake.utils import validate

    cfg = yaml.safe_load((SRC / "config.yaml").read_text())
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    validate(cfg, str(SRC / "schemas" / "config.schema.yaml"), set_default=True)
    return cfg


def write_workdir(path: Path, cfg: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(SRC / "config.yaml", path / "config.yaml")
    (path / "bench.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


# --------------------------------------------------------------------------------------------- outputs


def compare_outputs(a: Path, b: Path) -> str:
    """How two results/{run}/ folders compare (logs and benchmarks ignored): 'identical'; or 'same files'
    with the largest difference between arrays and the names of other files whose bytes differ; or
    'DIFFERENT' when a file is missing on one side or an array has another shape or type."""
    import numpy as np

    skip = {"logs", "benchmarks"}

    def files(root: Path) -> set[Path]:
        return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in skip}

    fa, fb = files(a), files(b)
    problems = [f"only in workflow: {sorted(map(str, fa - fb))[:5]}"] if fa - fb else []
    problems += [f"only in baseline: {sorted(map(str, fb - fa))[:5]}"] if fb - fa else []
    worst, arrays, others = 0.0, 0, []
    for rel in sorted(fa & fb):
        x, y = a / rel, b / rel
        if x.read_bytes() == y.read_bytes():
            continue
        if rel.suffix == ".npy":
            u, v = np.load(x), np.load(y)
            if u.shape != v.shape or u.dtype != v.dtype:
                problems.append(f"{rel}: {u.dtype}{u.shape} vs {v.dtype}{v.shape}")
            else:
                arrays += 1
                worst = max(worst, float(np.abs(u.astype(float) - v.astype(float)).max()))
        else:
            others.append(str(rel))
    if problems:
        return "DIFFERENT: " + "; ".join(problems[:6]) + (f" (+{len(problems) - 6})" if len(problems) > 6 else "")
    if not arrays and not others:
        return f"identical ({len(fa)} files)"
    text = f"same {len(fa)} files; {arrays} arrays differ by <= {worst:.1e}"
    if others:
        text += f"; bytes differ: {', '.join(others[:4])}" + (f" (+{len(others) - 4})" if len(others) > 4 else "")
    return text


def stage_benchmarks(results: Path) -> dict[str, list[dict[str, float]]]:
    """{stage: [benchmark rows]} from results/{run}/benchmarks/**.tsv (one row per job)."""
    root = results / "benchmarks"
    out: dict[str, list[dict[str, float]]] = {}
    for tsv in sorted(root.rglob("*.tsv")):
        rel = tsv.relative_to(root)
        if len(rel.parts) == 1:
            stage = rel.stem
        else:
            stage = {"projection": {"basis": "pca_basis", "gpa": "project_gpa"}.get(rel.stem, "project")}.get(rel.parts[0], rel.parts[0])
        with open(tsv) as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                out.setdefault(stage, []).append({k: float(row[k]) for k in ("s", "max_rss", "cpu_time") if row.get(k) not in (None, "", "NA", "-")})
    return out


def import_seconds(stage: str) -> float | None:
    """Wall seconds of a fresh interpreter doing only `stage`'s heavy imports (best of 2)."""
    if stage not in STAGE_IMPORTS:
        return None
    env = dict(os.environ, PYTHONPATH=str(SRC))
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", STAGE_IMPORTS[stage]], check=True, env=env, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


# --------------------------------------------------------------------------------------------- scenarios


@dataclass
class Row:
    scenario: str
    workflow_s: float | None
    baseline_s: float | None
    target: str
    passed: bool | None
    jobs: str = ""
    outputs: str = ""

    @property
    def ratio(self) -> float | None:
        if self.workflow_s is None or not self.baseline_s:
            return None
        return self.workflow_s / self.baseline_s


@dataclass
class WorkloadResult:
    name: str
    n: int
    chunk_size: int
    align: str
    eval_images: int
    rows: list[Row] = field(default_factory=list)
    stages: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    naive_stages: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    baseline_times: dict[str, Any] = field(default_factory=dict)
    baseline_rss_mb: float = 0.0
    baseline_note: str = ""


def ratio_row(scenario: str, wf: Timed, base: float, limit: float, outputs: str = "") -> Row:
    ratio = wf.seconds / base
    return Row(scenario, wf.seconds, base, f"<= {limit}x", ratio <= limit, summarise_jobs(wf.jobs), outputs)


def run_workload(w: Workload, scale: str, args: argparse.Namespace) -> WorkloadResult:
    root = WORK / scale / w.name
    if root.exists():
        shutil.rmtree(root)
    folder = root / "checkpoints" / POOL.name
    film(POOL, folder, w.n)
    overrides = yaml.safe_load((HERE / "configs" / w.config).read_text()) or {}
    overrides["checkpoints"] = str(folder)
    if args.chunk_size:
        overrides["chunk_size"] = args.chunk_size
    cfg = resolve_config(overrides)
    run = cfg["run"]
    wf, mono = root / "wf", root / "mono"
    write_workdir(wf, cfg)
    write_workdir(mono, cfg)
    eval_images = cfg["dataset"]["eval_size"] or 360
    result = WorkloadResult(w.name, w.n, cfg["chunk_size"], cfg["projection"]["align"], eval_images)
    print(f"\n== {w.name}: {w.n} checkpoints (+1), {eval_images} eval images, chunk_size {cfg['chunk_size']}, "
          f"align {cfg['projection']['align']}   [{root}]", flush=True)

    threads = {"default": None, "1": 1}.get(args.baseline_threads)

    def baseline(tag: str, one_thread: bool | None = None) -> Timed:
        """The baseline, with the libraries' default threads (all cores, as in a notebook) or one thread
        (torch, OpenMP and BLAS), whichever `--baseline-threads` chose."""
        single = threads == 1 if one_thread is None else one_thread
        shutil.rmtree(mono / "results", ignore_errors=True)
        env = dict(os.environ)
        cmd = [PYTHON, str(SRC / "benchmarks" / "monolithic.py"), "bench.yaml", "--timings", f"timings_{tag}.json"]
        if single:
            env.update({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
            cmd += ["--threads", "1"]
        print(f"   baseline ({tag}{', 1 thread' if single else ''}), load {load()} ...", end=" ", flush=True)
        t = run_timed(cmd, mono, mono / f"baseline_{tag}.log", env)
        print(f"{t.seconds:.1f} s", flush=True)
        return t

    def workflow(tag: str, cwd: Path = wf) -> Timed:
        print(f"   workflow ({tag}), load {load()} ...", end=" ", flush=True)
        t = run_timed(snakemake_cmd(args.cores), cwd, cwd / f"snakemake_{tag}.log")
        print(f"{t.seconds:.1f} s ({sum(t.jobs.values())} jobs)", flush=True)
        return t

    # 1: full run.
    wf1 = workflow("full")
    result.stages = stage_benchmarks(wf / "results" / run)
    base_n = baseline(f"n{w.n}")
    tag = f"n{w.n}"
    if args.baseline_threads == "best":
        # The baseline gets the faster of its two thread settings (on a busy machine, threads that wait for
        # a core can make the libraries' default slower than one thread), and keeps it for row 2.
        one = baseline(f"n{w.n}_1thread", one_thread=True)
        threads = 1 if one.seconds < base_n.seconds else None
        result.baseline_note = (f"baseline threads: default {base_n.seconds:.1f} s, one {one.seconds:.1f} s; "
                                f"rows use {'one thread' if threads == 1 else 'the default'}")
        print(f"   {result.baseline_note}", flush=True)
        if threads == 1:
            base_n, tag = one, f"n{w.n}_1thread"
    result.baseline_times = json.loads((mono / f"timings_{tag}.json").read_text())
    result.baseline_rss_mb = result.baseline_times.get("peak_rss_mb") or base_n.peak_rss_mb
    same = compare_outputs(wf / "results" / run, mono / "results" / run)
    result.rows.append(ratio_row(f"1 full run ({w.n} ckpts)", wf1, base_n.seconds, TARGETS["full"], same))

    # 1n: the naive DAG (one job per checkpoint per stage), same checkpoints.
    if args.naive:
        naive = root / "wf_naive"
        write_workdir(naive, {**cfg, "chunk_size": 1})
        t = workflow("naive", naive)
        result.naive_stages = stage_benchmarks(naive / "results" / run)
        result.rows.append(Row(f"1n full run, chunk_size 1 ({w.n} ckpts)", t.seconds, base_n.seconds, "(naive DAG)", None,
                               summarise_jobs(t.jobs)))

    # 2: append one checkpoint.
    add(POOL, folder, pool_steps(POOL)[w.n])
    wf2 = workflow("append")
    base_n1 = baseline(f"n{w.n + 1}")
    same = compare_outputs(wf / "results" / run, mono / "results" / run)
    result.rows.append(ratio_row("2 +1 checkpoint", wf2, base_n1.seconds, TARGETS["append"], same))

    # 3: a frame setting.
    changed = copy.deepcopy(cfg)
    changed["frames"]["top_k"] = max(1, cfg["frames"]["top_k"] - 2)
    (wf / "bench.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    wf3 = workflow("frames")
    result.rows.append(ratio_row(f"3 frames.top_k {cfg['frames']['top_k']}->{changed['frames']['top_k']}", wf3,
                                 base_n1.seconds, TARGETS["frames"]))

    # 5: peak memory of every stage (and the baseline process).
    peak = max((r["max_rss"] for rows in result.stages.values() for r in rows if "max_rss" in r), default=0.0)
    result.rows.append(Row("5 peak RSS of any stage job, MB", peak, None, f"<= {TARGETS['rss_mb']:.0f}",
                           peak <= TARGETS["rss_mb"], outputs=f"baseline process: {result.baseline_rss_mb:.0f} MB"))
    return result


def dry_run(scale: str, n: int, chunk_size: int | None, args: argparse.Namespace) -> Row:
    folder = WORK / f"fake{n}" / POOL.name
    fake(folder, n, template=POOL / f"checkpoint-{pool_steps(POOL)[-1]}")
    wd = WORK / scale / f"dryrun{n}_chunk{chunk_size or 'default'}"
    if wd.exists():
        shutil.rmtree(wd)
    overrides: dict[str, Any] = {"run": "dryrun", "checkpoints": str(folder)}
    if chunk_size:
        overrides["chunk_size"] = chunk_size
    cfg = resolve_config(overrides)
    write_workdir(wd, cfg)
    print(f"\n== dry run, {n} checkpoints, chunk_size {cfg['chunk_size']}, load {load()} ...", end=" ", flush=True)
    try:
        t = run_timed(snakemake_cmd(args.cores, "-n"), wd, wd / "dryrun.log")
    except SystemExit as err:
        print(err, flush=True)
        return Row(f"4 dry run, {n} ckpts, chunk_size {cfg['chunk_size']}", None, None, f"<= {TARGETS['dryrun_s']:.0f} s", False,
                   f"failed: see {wd / 'dryrun.log'}")
    print(f"{t.seconds:.1f} s", flush=True)
    return Row(f"4 dry run, {n} ckpts, chunk_size {cfg['chunk_size']}", t.seconds, None, f"<= {TARGETS['dryrun_s']:.0f} s",
               t.seconds <= TARGETS["dryrun_s"], f"{sum(t.jobs.values())} jobs planned")


# --------------------------------------------------------------------------------------------- report


def fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def scenario_table(results: list[WorkloadResult], extra: list[Row]) -> str:
    lines = ["| workload | scenario | workflow s | baseline s | ratio | target | pass | jobs run (per stage) | outputs vs baseline |",
             "|---|---|---:|---:|---:|---|---|---|---|"]
    for res in results:
        for r in res.rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
            value = fmt(r.workflow_s, 0 if r.scenario.startswith("5") else 1)
            verdict = {True: "PASS", False: "FAIL", None: "-"}[r.passed]
            lines.append(f"| {res.name} | {r.scenario} | {value} | {fmt(r.baseline_s)} | {ratio} | {r.target} | {verdict} | {r.jobs} | {r.outputs} |")
    for r in extra:
        verdict = {True: "PASS", False: "FAIL", None: "-"}[r.passed]
        lines.append(f"| - | {r.scenario} | {fmt(r.workflow_s)} | - | - | {r.target} | {verdict} | {r.jobs} | |")
    return "\n".join(lines)


def stage_table(res: WorkloadResult, stages: dict[str, list[dict[str, float]]], chunk_size: int, imports: dict[str, float | None]) -> str:
    """Per stage: jobs, checkpoints per job, mean job seconds, in-loop work, derived start-up, import-only, RSS."""
    loop = res.baseline_times.get("stages", {})
    lines = [f"{res.name}, chunk_size {chunk_size}:", "",
             "| stage | jobs | ckpts/job | job s (mean) | work s/ckpt in the loop | work s/job | start-up s/job | import-only s | peak RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    per_ckpt_stages = {"embed", "ood", "project", "metrics", "frames"}
    for stage in sorted(stages, key=lambda s: (STAGE_ORDER + [s]).index(s)):
        rows = stages[stage]
        job_s = sum(r["s"] for r in rows) / len(rows)
        rss = max(r.get("max_rss", 0.0) for r in rows)
        calls = loop.get(stage, [])
        if stage in per_ckpt_stages and calls:
            per_ckpt = sum(calls) / res.n
            per_job_ckpts = res.n / len(rows)
            work = per_ckpt * per_job_ckpts
            ckpts, work_ckpt = f"{per_job_ckpts:.1f}", fmt(per_ckpt, 3)
        else:
            work = sum(calls) if calls else None
            ckpts, work_ckpt = "-", "-"
        startup = job_s - work if work is not None else None
        lines.append(f"| {stage} | {len(rows)} | {ckpts} | {job_s:.2f} | {work_ckpt} | {fmt(work, 2)} | {fmt(startup, 2)} | "
                     f"{fmt(imports.get(stage), 2)} | {rss:.0f} |")
    return "\n".join(lines)


def baseline_table(res: WorkloadResult) -> str:
    t = res.baseline_times
    parts = [f"imports {t.get('imports_s', 0):.1f}"]
    for stage, calls in t.get("stages", {}).items():
        parts.append(f"{stage} {sum(calls):.1f}" + (f" ({sum(calls) / len(calls):.3f}/ckpt)" if len(calls) > 1 else ""))
    return f"baseline ({res.name}, {res.n} ckpts, one process, total {t.get('total_s', 0):.1f} s): " + ", ".join(parts)


def replace_block(path: Path, scale: str, text: str) -> None:
    start, end = f"<!-- bench:{scale}:start -->", f"<!-- bench:{scale}:end -->"
    body = path.read_text() if path.exists() else ""
    block = f"{start}\n{text}\n{end}"
    if start in body and end in body:
        body = body[: body.index(start)] + block + body[body.index(end) + len(end):]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    path.write_text(body)


# --------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2, as in the issue)")
    parser.add_argument("--chunk-size", type=int, default=None, help="override every workload's chunk_size")
    parser.add_argument("--baseline-threads", choices=["default", "1", "best"], default="best",
                        help="the baseline's threads: the libraries' default (all cores), 1, or the faster of the two "
                             "as measured in row 1 (default; costs one more baseline run per workload)")
    naive = parser.add_mutually_exclusive_group()
    naive.add_argument("--naive", dest="naive", action="store_true", default=None, help="also run chunk_size 1 (default: small only)")
    naive.add_argument("--no-naive", dest="naive", action="store_false")
    parser.add_argument("--only", nargs="*", help="run only these workloads (names, e.g. demo) and/or dryrun")
    parser.add_argument("--skip-dryrun", action="store_true")
    parser.add_argument("--update-results", type=Path, default=None, help="write the tables into this markdown file")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    if args.naive is None:
        args.naive = scale["naive"]
    started = time.perf_counter()

    # Checkpoints: trained once, reused (training is out of the comparison).
    if not POOL.is_dir() or len(pool_steps(POOL)) < POOL_STEPS + 1:
        print(f"training the checkpoint pool ({POOL_STEPS} steps, a checkpoint every step) ...", flush=True)
        train(POOL, POOL_STEPS, tiny=False)
    training = json.loads((POOL.parent / f"{POOL.name}.timing.json").read_text())

    # Warm the page cache for both contestants alike, and measure what every Snakemake call pays first.
    subprocess.run([PYTHON, "-c", "import torch, transformers, cleanlab.outlier, sklearn.decomposition, matplotlib.figure, datasets"], check=True)
    start = time.perf_counter()
    subprocess.run([SNAKEMAKE, "--version"], check=True, capture_output=True)
    cli_s = time.perf_counter() - start
    print(f"snakemake --version: {cli_s:.1f} s; load average {load()}; {os.cpu_count()} CPUs", flush=True)

    source = snapshot(WORK / args.scale / "src")
    results = [run_workload(w, args.scale, args) for w in scale["workloads"] if not args.only or w.name in args.only]
    extra = []
    if not args.skip_dryrun and (not args.only or "dryrun" in args.only):
        extra.append(dry_run(args.scale, scale["dryrun"], None, args))
        if args.naive:
            extra.append(dry_run(args.scale, scale["dryrun"], 1, args))

    imports = {s: import_seconds(s) for s in STAGE_IMPORTS} if results else {}
    sections = [
        f"Scale `{args.scale}`, workflow {source}, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, `snakemake --cores {args.cores}`. "
        f"Checkpoints: builtin:tiny-vit trained with the HF Trainer, a checkpoint every step: "
        f"{training['checkpoints']} checkpoints in {training['train_s']:.1f} s (not part of any row). "
        f"`snakemake --version` takes {cli_s:.1f} s here (paid by every Snakemake call, dry runs included). "
        f"Harness wall time {time.perf_counter() - started:.0f} s.",
        scenario_table(results, extra),
    ]
    for res in results:
        sections.append(baseline_table(res) + (f" ({res.baseline_note})" if res.baseline_note else ""))
        sections.append(stage_table(res, res.stages, res.chunk_size, imports))
        if res.naive_stages:
            sections.append(stage_table(res, res.naive_stages, 1, imports))
    report = "\n\n".join(sections)
    out = WORK / args.scale / "report.md"
    out.write_text(report + "\n")
    (WORK / args.scale / "results.json").write_text(json.dumps(
        [{"workload": r.name, "n": r.n, "chunk_size": r.chunk_size, "rows": [vars(x) | {"ratio": x.ratio} for x in r.rows],
          "stages": r.stages, "naive_stages": r.naive_stages, "baseline": r.baseline_times} for r in results]
        + [{"dryrun": vars(x)} for x in extra], indent=1))
    print("\n" + report + f"\n\n(written to {out})")
    if args.update_results:
        replace_block(args.update_results, args.scale, report)
        print(f"(tables written into {args.update_results})")


if __name__ == "__main__":
    main()
