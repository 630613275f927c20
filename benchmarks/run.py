#!/usr/bin/env python
"""The workflow (`snakemake --cores 2`) against the article's single-process loop (benchmarks/monolithic.py),
side by side, same inputs, same machine, same outputs .

    python benchmarks/run.py --scale small      # 8 checkpoints, 100 images: minutes; validates the harness
    python benchmarks/run.py --scale full       # 80 + 20 (demo) checkpoints, 360 images: the issue's table
    make bench [SCALE=small]                    # the same, and writes the tables into benchmarks/RESULTS.md

Per workload (a film of N checkpoints of builtin:tiny-vit from an external Trainer folder):
  1 full run        data preparation to animation, workflow vs baseline on N checkpoints  target <= 0.6x (bench80), 0.8x (demo)
  1c cold jobs      the same with FILM_WORKERS=off: every job a fresh Python (no warm workers)   (no target)
  2 +1 checkpoint   append checkpoint N, rerun, vs the baseline on N+1 (it recomputes all)    target <= 0.15x (bench80)
  3 frame setting   change frames.top_k, rerun (frames + film only) vs the baseline on N+1     target <= 0.2x
then once: 4 dry run of 1,000 (fake) checkpoints, target <= 5 s; the peak memory of every job (each job's
own process, from the worker's record in its log), and per-stage per-job overhead (job seconds - work).

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
SNAPSHOT = [
    "Snakefile",
    "config.yaml",
    "rules",
    "workflow_scripts",
    "schemas",
    "envs",
    "report",
    "profiles",
    "benchmarks/monolithic.py",
]
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
    start: int = 0  # the pool's checkpoints from this one on (0: from step 0)


SCALES: dict[str, dict[str, Any]] = {
    "small": {"workloads": [Workload("small", "small.yaml", 8)], "cold": True, "dryrun": 1000},
    "full": {
        "workloads": [
            Workload("bench80", "bench80.yaml", 80),
            Workload("demo", "demo.yaml", 20),
            Workload("few120", "few120.yaml", 80),
            Workload("many", "many.yaml", 20),
            Workload("late40", "late40.yaml", 40, start=40),
        ],
        "cold": False,
        "dryrun": 1000,
        "scale_probe": True,
    },
}
DIGITS_ALL = WORK / "data" / "digits-all"  # many.yaml's dataset: all 1,797 digits as one "test" split

STAGE_ORDER = [
    "prepare_data",
    "preprocess",
    "import_train_log",
    "embed",
    "ood",
    "label_issues",
    "layout",
    "project",
    "frame_limits",
    "metrics",
    "frame",
    "tween",
    "metrics_table",
    "outliers_table",
    "animate",
    "film_html",
    "review",
]
PER_CHECKPOINT = {"embed", "ood", "label_issues", "project", "metrics", "frame"}
# Targets: full run per workload (the demo's row is <= 0.8x), +1 checkpoint, frame setting, dry run, memory
# (no worse than the chunked workflow's 560 MB before one job per checkpoint and stage).
TARGETS = {
    "full": {"bench80": 0.6, "demo": 0.8},
    "append": {"bench80": 0.15},
    "frames": 0.2,
    "dryrun_s": 5.0,
    "rss_mb": 560.0,
    # the default config (config.yaml's layout and camera) against the same loop: where global PCA meets the
    # film's targets, <= 1.0x the loop and <= 1.15x the workflow with method pca (row 1); where the learned
    # map is needed, <= 1.25x (the embedded default); an appended checkpoint <= 0.2x, no old frame redrawn
    "default_full": 1.0,
    "default_vs_pca": 1.15,
    "default_learned": 1.25,
    "default_append": 0.2,
    "layout_s": 10.0,
    "probe_s": 60.0,
    "probe_mb": 4096.0,
}


# --------------------------------------------------------------------------------------------- running


@dataclass
class Timed:
    seconds: float
    peak_rss_mb: float
    output: str
    jobs: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0  # user + system seconds of the command and the children it waited for
    machine_cpu_s: float | None = None  # busy CPU seconds of the whole machine meanwhile (detached workers too)
    steal_s: float | None = None  # CPU seconds the hypervisor gave other machines meanwhile (machine_steal_seconds)


def machine_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (/proc/stat: user, nice, system, irq, softirq), None
    where there is no /proc/stat. A difference of two readings is what everything ran meanwhile, including
    processes no one waits for (the warm workers detach), so run it on a quiet machine."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / os.sysconf("SC_CLK_TCK")


def machine_steal_seconds() -> float | None:
    """CPU seconds since boot that this virtual machine's hypervisor gave to others while this machine had work
    for them (/proc/stat's steal), None where there is no /proc/stat. On a shared host it comes in bursts that
    slow whatever runs then: a row measured while much was stolen (against little during its loop) is noise,
    which the rows' notes show (steal_note)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else None


def steal_note(*runs: tuple[str, Timed]) -> str:
    """'steal: workflow 3.1 s, loop 0.4 s' (the CPU seconds the hypervisor took from this machine during each
    run), or '' where none was taken or it cannot be read."""
    read = [(name, t.steal_s) for name, t in runs if t.steal_s is not None]
    if all(steal < 0.05 for _, steal in read):
        return ""
    parts = [f"{name} {steal:.1f} s".strip() for name, steal in read]
    return "steal: " + ", ".join(parts)


def run_timed(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> Timed:
    """Run `cmd`, return wall seconds, the peak RSS of its largest process and its CPU seconds (getrusage of
    children), and the whole machine's busy CPU seconds meanwhile."""
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        busy, stolen = machine_busy_seconds(), machine_steal_seconds()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ.copy())
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        after, stolen_after = machine_busy_seconds(), machine_steal_seconds()
    text = log.read_text()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}) in {cwd}; see {log}:\n{text[-3000:]}")
    machine = None if busy is None or after is None else after - busy
    steal = None if stolen is None or stolen_after is None else stolen_after - stolen
    cpu = usage.ru_utime + usage.ru_stime
    return Timed(seconds, usage.ru_maxrss / 1024, text, job_counts(text), cpu, machine, steal)


def packing_floor(cpu_s: float, cores: int, loop_s: float) -> float:
    """The lowest ratio to the loop's wall time `loop_s` that `cpu_s` CPU seconds can reach on `cores` cores:
    all of it spread perfectly over every core, nothing waiting for anything."""
    return cpu_s / cores / loop_s


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


def summarise_jobs(jobs: dict[str, int]) -> str:
    """'embed 1, frame 3, animate 1, ...' in pipeline order."""
    return ", ".join(f"{s} {jobs[s]}" for s in sorted(jobs, key=lambda s: (STAGE_ORDER + [s]).index(s)))


def snakemake_cmd(cores: int, *extra: str) -> list[str]:
    return [
        SNAKEMAKE,
        "--snakefile",
        str(SRC / "Snakefile"),
        "--cores",
        str(cores),
        "--configfile",
        "bench.yaml",
        *extra,
    ]


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


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
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", *SNAPSHOT], capture_output=True, text=True
    ).stdout.strip()
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
        return {
            p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in skip
        }

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


RESOURCES = re.compile(
    r"job resources \(forked from a warm worker\): wall ([\d.]+) s, cpu ([\d.]+) s, max RSS ([\d.]+) MB"
)


def stage_of(rel: Path) -> str:
    """The rule of a job's log or benchmark file, from its path under logs/ or benchmarks/."""
    if rel.parts[0] == "projection":
        return {"layout": "layout", "limits": "frame_limits"}.get(rel.stem, "project")
    if rel.parts[:2] == ("frames", "tween"):
        return "tween"
    if rel.parts[0] == "frames":
        return "frame"
    if rel.parts[0] == "metrics" and rel.stem == "table":
        return "metrics_table"
    if len(rel.parts) == 1:
        return {"outliers": "outliers_table"}.get(rel.stem.split("-")[0], rel.stem.split("-")[0])
    return rel.parts[0]


def stage_benchmarks(results: Path) -> dict[str, list[dict[str, float]]]:
    """{stage: one row per job}: wall seconds from Snakemake's benchmark files (results/{run}/benchmarks/),
    and the job process's own CPU seconds and peak RSS from the warm worker's record in the job's log (a
    benchmark file measures only the client of a warm worker; cold jobs' benchmark files measure the job)."""
    out: dict[str, list[dict[str, float]]] = {}
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rel = tsv.relative_to(results / "benchmarks")
        with open(tsv) as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        record = {k: float(row[k]) for k in ("s", "max_rss", "cpu_time") if row.get(k) not in (None, "", "NA", "-")}
        log = results / "logs" / rel.with_suffix(".log")
        found = RESOURCES.search(log.read_text()) if log.is_file() else None
        if found:
            record.update(cpu_time=float(found.group(2)), max_rss=float(found.group(3)))
        out.setdefault(stage_of(rel), []).append(record)
    return out


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
    align: str
    eval_images: int
    rows: list[Row] = field(default_factory=list)
    stages: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    cold_stages: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    baseline_times: dict[str, Any] = field(default_factory=dict)
    baseline_rss_mb: float = 0.0
    baseline_note: str = ""
    cpu_note: str = ""


def ratio_row(scenario: str, wf: Timed, base: Timed, limit: float | None, outputs: str = "") -> Row:
    ratio = wf.seconds / base.seconds
    target, passed = ("(reported)", None) if limit is None else (f"<= {limit}x", ratio <= limit)
    note = "; ".join(filter(None, [outputs, steal_note(("workflow", wf), ("loop", base))]))
    return Row(scenario, wf.seconds, base.seconds, target, passed, summarise_jobs(wf.jobs), note)


def stop_workers(root: Path) -> None:
    """End the warm workers that serve the folders under `root`: row 1 times a first run (no worker lingering
    from an earlier harness run in the same folder), and a finished workload's workers hold no memory."""
    from embedding_film.cli.workers import stop

    for folder in (root / name for name in ("wf", "wf_cold", "wf_default", "mono")):
        stop(folder)


def run_workload(w: Workload, scale: str, args: argparse.Namespace) -> WorkloadResult:
    root = WORK / scale / w.name
    stop_workers(root)
    if root.exists():
        shutil.rmtree(root)
    folder = root / "checkpoints" / POOL.name
    film(POOL, folder, w.n, w.start)
    overrides = yaml.safe_load((HERE / "configs" / w.config).read_text()) or {}
    overrides["checkpoints"] = str(folder)
    if w.name == "many":
        overrides["dataset"]["name"] = str(digits_all())
    cfg = resolve_config(overrides)
    # the same workload as a user runs it: config.yaml's layout and camera (no projection or camera overrides)
    cfg_default = resolve_config({k: v for k, v in overrides.items() if k not in ("projection", "camera")})
    run = cfg["run"]
    wf, mono = root / "wf", root / "mono"
    write_workdir(wf, cfg)
    write_workdir(mono, cfg)
    # the digits' held-out split has 360 images; many.yaml films all 1,797 of its own dataset
    eval_images = cfg["dataset"]["eval_size"] or (1797 if w.name == "many" else 360)
    result = WorkloadResult(w.name, w.n, cfg["projection"]["align"], eval_images)
    print(
        f"\n== {w.name}: {w.n} checkpoints (+1), {eval_images} eval images, "
        f"align {cfg['projection']['align']}   [{root}]",
        flush=True,
    )

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
        print(f"{t.seconds:.1f} s", steal_note(("", t)), flush=True)
        return t

    def workflow(tag: str, cwd: Path = wf, env: dict[str, str] | None = None) -> Timed:
        print(f"   workflow ({tag}), load {load()} ...", end=" ", flush=True)
        t = run_timed(snakemake_cmd(args.cores), cwd, cwd / f"snakemake_{tag}.log", env)
        print(f"{t.seconds:.1f} s ({sum(t.jobs.values())} jobs)", steal_note(("", t)), flush=True)
        return t

    # 1: full run.
    wf1 = workflow("full")
    result.stages = stage_benchmarks(wf / "results" / run)
    base_n = baseline(f"n{w.n}")
    tag, loops = f"n{w.n}", [base_n]
    if args.baseline_threads == "best":
        # The baseline gets the faster of its two thread settings (on a busy machine, threads that wait for
        # a core can make the libraries' default slower than one thread), and keeps it for row 2.
        one = baseline(f"n{w.n}_1thread", one_thread=True)
        loops.append(one)
        threads = 1 if one.seconds < base_n.seconds else None
        result.baseline_note = (
            f"baseline threads: default {base_n.seconds:.1f} s, one {one.seconds:.1f} s; "
            f"rows use {'one thread' if threads == 1 else 'the default'}"
        )
        print(f"   {result.baseline_note}", flush=True)
        if threads == 1:
            base_n, tag = one, f"n{w.n}_1thread"
    result.baseline_times = json.loads((mono / f"timings_{tag}.json").read_text())
    result.baseline_rss_mb = result.baseline_times.get("peak_rss_mb") or base_n.peak_rss_mb
    same = compare_outputs(wf / "results" / run, mono / "results" / run)

    # 1c: the same DAG with every job a fresh process (FILM_WORKERS=off): what the warm workers save.
    cold_row = None
    if args.cold:
        cold = root / "wf_cold"
        write_workdir(cold, cfg)
        t = workflow("cold", cold, dict(os.environ, FILM_WORKERS="off"))
        result.cold_stages = stage_benchmarks(cold / "results" / run)
        cold_row = Row(
            f"1c full run, FILM_WORKERS=off ({w.n} ckpts)",
            t.seconds,
            base_n.seconds,
            "(no warm workers)",
            None,
            summarise_jobs(t.jobs),
        )

    # 1d: the default config, as a user runs it, against the same loop and beside row 1.
    wfd = root / "wf_default"
    write_workdir(wfd, cfg_default)
    wf1d = workflow("default", wfd)

    # --repeat: more rounds of rows 1 and 1d and their loop, each run from nothing (no worker, no result of the
    # round before); each keeps its fastest round (as timeit does), so that a burst of the hypervisor's steal
    # on a shared host, which slows one run and not the next, does not decide a ratio.
    for round_ in range(2, args.repeat + 1):
        print(f"   round {round_} of {args.repeat}: rows 1 and 1d and the loop again, from nothing", flush=True)
        stop_workers(root)
        for workdir in (wf, wfd):
            shutil.rmtree(workdir / "results")
        wf1 = min(wf1, workflow("full"), key=lambda t: t.seconds)
        base_n = min(base_n, baseline(tag), key=lambda t: t.seconds)
        wf1d = min(wf1d, workflow("default", wfd), key=lambda t: t.seconds)
    rounds = f"fastest of {args.repeat} rounds" if args.repeat > 1 else ""

    result.rows.append(
        ratio_row(
            f"1 full run ({w.n} ckpts)",
            wf1,
            base_n,
            TARGETS["full"].get(w.name),
            "; ".join(filter(None, [same, rounds])),
        )
    )
    result.cpu_note = cpu_note(wf1, loops, base_n, args.cores, TARGETS["full"].get(w.name))
    print(f"   {result.cpu_note}", flush=True)
    if cold_row is not None:
        result.rows.append(cold_row)
    result.rows.append(default_row(wf1d, base_n, wf1, wfd / "results" / run))
    result.rows[-1].outputs = "; ".join(filter(None, [result.rows[-1].outputs, rounds]))
    old_frames = frame_bytes(wfd / "results" / run)

    # 2: append one checkpoint.
    add(POOL, folder, pool_steps(POOL)[w.start + w.n])
    wf2 = workflow("append")
    base_n1 = baseline(f"n{w.n + 1}")
    same = compare_outputs(wf / "results" / run, mono / "results" / run)
    result.rows.append(ratio_row("2 +1 checkpoint", wf2, base_n1, TARGETS["append"].get(w.name), same))

    # 2d: the default config's film, one checkpoint appended.
    wf2d = workflow("default_append", wfd)
    result.rows.append(default_append_row(wf2d, base_n1, old_frames, wfd / "results" / run))

    # 3: a frame setting.
    changed = copy.deepcopy(cfg)
    changed["frames"]["top_k"] = max(1, cfg["frames"]["top_k"] - 2)
    (wf / "bench.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    wf3 = workflow("frames")
    result.rows.append(
        ratio_row(
            f"3 frames.top_k {cfg['frames']['top_k']}->{changed['frames']['top_k']}",
            wf3,
            base_n1,
            TARGETS["frames"],
        )
    )

    # 5: peak memory of every job's own process (and the baseline process).
    peak = max((r["max_rss"] for rows in result.stages.values() for r in rows if "max_rss" in r), default=0.0)
    result.rows.append(
        Row(
            "5 peak RSS of any job, MB",
            peak,
            None,
            f"<= {TARGETS['rss_mb']:.0f}",
            peak <= TARGETS["rss_mb"],
            outputs=f"baseline process: {result.baseline_rss_mb:.0f} MB",
        )
    )
    stop_workers(root)
    return result


def digits_all() -> Path:
    """many.yaml's dataset: scikit-learn's 1,797 digits as the "test" split of a save_to_disk folder."""
    if not (DIGITS_ALL / "dataset_dict.json").is_file():
        import numpy as np
        from datasets import Dataset, DatasetDict, Features, Image, Value
        from PIL import Image as PILImage
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = [PILImage.fromarray(np.uint8(im * 255 / 16)) for im in digits.images]
        features = Features({"image": Image(), "label": Value("int64")})
        ds = Dataset.from_dict({"image": images, "label": [int(t) for t in digits.target]}, features=features)
        DatasetDict({"test": ds}).save_to_disk(str(DIGITS_ALL))
    return DIGITS_ALL


def film_layout(results: Path) -> dict[str, Any]:
    """film_metrics.json's quality and layout, and the layout job's own wall seconds (its log's record)."""
    film = json.loads((results / "film_metrics.json").read_text())
    layout = film.get("layout") or {}
    found = RESOURCES.search((results / "logs" / "projection" / "layout.log").read_text())
    return {
        "method": layout.get("method", "pca"),
        "choice": (layout.get("choice") or {}).get("reason", ""),
        "quality": f"{film['stability_spearman']:.3f} / {film['mean_trustworthiness']:.3f} / {film['min_trustworthiness']:.3f}",
        "layout_s": float(found.group(1)) if found else None,
        "placed": layout.get("placed_steps", []),
        "refit_due": layout.get("refit_due"),
    }


def frame_bytes(results: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (results / "frames").glob("*.png")}


def default_row(wf: Timed, loop: Timed, pca: Timed, results: Path) -> Row:
    """Row 1d: the full film with the default config. Its target depends on the layout auto kept: global PCA
    (a cheap layout met the targets) <= 1.0x the loop and <= 1.15x row 1; the learned map <= 1.25x the loop."""
    info = film_layout(results)
    loop_s, ratio, vs_pca = loop.seconds, wf.seconds / loop.seconds, wf.seconds / pca.seconds
    if info["method"] == "pca":
        target = f"<= {TARGETS['default_full']}x, <= {TARGETS['default_vs_pca']}x row 1"
        passed = ratio <= TARGETS["default_full"] and vs_pca <= TARGETS["default_vs_pca"]
    else:
        target, passed = f"<= {TARGETS['default_learned']}x", ratio <= TARGETS["default_learned"]
    layout_s = f"{info['layout_s']:.1f} s" if info["layout_s"] is not None else "-"
    note = (
        f"{vs_pca:.2f}x row 1; layout {info['method']} (job {layout_s}), stability / trust mean / worst frame "
        f"{info['quality']}; auto: {info['choice']}"
    )
    note = "; ".join(filter(None, [note, steal_note(("workflow", wf), ("loop", loop), ("row 1", pca))]))
    return Row("1d full run, default config", wf.seconds, loop_s, target, passed, summarise_jobs(wf.jobs), note)


def default_append_row(wf: Timed, loop: Timed, before: dict[str, bytes], results: Path) -> Row:
    """Row 2d: one checkpoint appended to row 1d's film; no old frame may be redrawn unless the film says why."""
    info = film_layout(results)
    after = frame_bytes(results)
    redrawn = sorted(name for name, content in before.items() if after.get(name) != content)
    why = info["refit_due"] or ""
    passed = wf.seconds / loop.seconds <= TARGETS["default_append"] and (not redrawn or bool(why))
    note = f"old frames redrawn: {len(redrawn)}; placed on the layout: {info['placed']}" + (
        f"; refit due: {why}" if why else ""
    )
    note = "; ".join(filter(None, [note, steal_note(("workflow", wf), ("loop", loop))]))
    return Row(
        "2d +1 checkpoint, default config",
        wf.seconds,
        loop.seconds,
        f"<= {TARGETS['default_append']}x",
        passed,
        summarise_jobs(wf.jobs),
        note,
    )


def scale_probe() -> Row:
    """The default layout job at CIFAR-10 scale (layouts.py --scale-probe --method auto: 10,000 synthetic
    images x 80 checkpoints x 768 dimensions), wall seconds and peak RSS under /usr/bin/time -v."""
    print("\n== the layout job at 10,000 x 80 x 768 (synthetic), load " + load() + " ...", end=" ", flush=True)
    proc = subprocess.run(
        [PYTHON, str(HERE / "layouts.py"), "--scale-probe", "--method", "auto"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in proc.stdout.splitlines() if line.startswith("layout job"))
    job = json.loads(line[line.index("{", line.index("}") + 1) :])
    wall = sum(float(x) * 60**i for i, x in enumerate(reversed(job["time_wall"].split(":"))))
    print(f"{wall:.1f} s, {job['time_max_rss_mb']} MB", flush=True)
    passed = wall <= TARGETS["probe_s"] and job["time_max_rss_mb"] <= TARGETS["probe_mb"]
    return Row(
        "6 layout job, 10,000 x 80 x 768, default",
        wall,
        None,
        f"<= {TARGETS['probe_s']:.0f} s, <= {TARGETS['probe_mb'] / 1024:.0f} GB",
        passed,
        f"peak RSS {job['time_max_rss_mb']} MB, CPU {job['cpu_s']} s",
    )


def cpu_note(workflow: Timed, loops: list[Timed], loop: Timed, cores: int, target: float | None) -> str:
    """What the full run cost in CPU, and the floors that puts on the ratio to the row's `loop` (packing_floor):
    the work's (the least CPU of the `loops` runs: on one thread no thread waits by spinning) and the
    workflow's (everything the machine ran meanwhile: jobs, workers, clients, Snakemake)."""
    work = min(t.cpu_s for t in loops)
    note = (
        f"CPU of the full run (user + system): the work {work:.1f} s (the loop's least, of "
        f"{', '.join(f'{t.cpu_s:.1f}' for t in loops)} s)"
    )
    if workflow.machine_cpu_s is not None:
        note += f", the workflow {workflow.machine_cpu_s:.1f} s (all its processes; Snakemake, its shells and clients and the jobs that ran in them {workflow.cpu_s:.1f} s)"
    note += (
        f". Spread perfectly over {cores} cores, with no start-up and nothing waiting: the work alone "
        f"{packing_floor(work, cores, loop.seconds):.2f}x the loop's {loop.seconds:.1f} s"
    )
    if workflow.machine_cpu_s is not None:
        note += f", the workflow's CPU {packing_floor(workflow.machine_cpu_s, cores, loop.seconds):.2f}x"
    return note + (f" (target {target}x)" if target else "")


# The job graph of the dry run with nothing but wildcard rules: the same per-checkpoint rules and film-level
# rule, no params, logs, benchmarks, input functions or environments. Snakemake's own planning of that graph
# is a floor no workflow with one job per checkpoint and stage goes under.
BARE_GRAPH = """\
STEPS = list(range({n}))


wildcard_constraints:
    step=r"\\d+",


rule all:
    input: "animation.gif"


rule animate:
    input: expand("frame/{{step}}", step=STEPS)
    output: "animation.gif"
    shell: "touch {{output}}"


rule embed:
    output: "embed/{{step}}"
    shell: "touch {{output}}"


for stage, reads in [("ood", "embed"), ("label_issues", "embed"), ("project", "embed"), ("metrics", "project")]:

    rule:
        name: stage
        input: f"{{reads}}/{{{{step}}}}"
        output: f"{{stage}}/{{{{step}}}}"
        shell: "touch {{output}}"


rule frame:
    input: "ood/{{step}}", "label_issues/{{step}}", "project/{{step}}", "metrics/{{step}}"
    output: "frame/{{step}}"
    shell: "touch {{output}}"
"""


def bare_graph_dry_run(n: int, wd: Path, cores: int) -> Timed:
    """`snakemake -n` of BARE_GRAPH for n checkpoints (6 n + 2 jobs)."""
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "Snakefile").write_text(BARE_GRAPH.format(n=n))
    return run_timed([SNAKEMAKE, "--cores", str(cores), "-n"], wd, wd / "dryrun.log")


def dry_run(scale: str, n: int, args: argparse.Namespace) -> Row:
    folder = WORK / f"fake{n}" / POOL.name
    fake(folder, n, template=POOL / f"checkpoint-{pool_steps(POOL)[-1]}")
    wd = WORK / scale / f"dryrun{n}"
    if wd.exists():
        shutil.rmtree(wd)
    cfg = resolve_config({"run": "dryrun", "checkpoints": str(folder)})
    write_workdir(wd, cfg)
    scenario, target = f"4 dry run, {n} ckpts", f"<= {TARGETS['dryrun_s']:.0f} s"
    print(f"\n== dry run, {n} checkpoints, load {load()} ...", end=" ", flush=True)
    try:
        t = run_timed(snakemake_cmd(args.cores, "-n"), wd, wd / "dryrun.log")
    except SystemExit as err:
        print(err, flush=True)
        return Row(scenario, None, None, target, False, f"failed: see {wd / 'dryrun.log'}")
    print(f"{t.seconds:.1f} s", flush=True)
    print("   the same job graph with bare rules ...", end=" ", flush=True)
    bare = bare_graph_dry_run(n, WORK / scale / f"dryrun{n}_bare", args.cores)
    print(f"{bare.seconds:.1f} s", flush=True)
    return Row(
        scenario,
        t.seconds,
        None,
        target,
        t.seconds <= TARGETS["dryrun_s"],
        f"{sum(t.jobs.values())} jobs planned; Snakemake plans the same graph of bare rules ({sum(bare.jobs.values())} "
        f"jobs: no params, logs or input functions) in {bare.seconds:.1f} s",
    )


# --------------------------------------------------------------------------------------------- report


def fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def scenario_table(results: list[WorkloadResult], extra: list[Row]) -> str:
    lines = [
        "| workload | scenario | workflow s | baseline s | ratio | target | pass | jobs run (per stage) | outputs vs baseline |",
        "|---|---|---:|---:|---:|---|---|---|---|",
    ]
    for res in results:
        for r in res.rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
            value = fmt(r.workflow_s, 0 if r.scenario.startswith("5") else 1)
            verdict = {True: "PASS", False: "FAIL", None: "-"}[r.passed]
            lines.append(
                f"| {res.name} | {r.scenario} | {value} | {fmt(r.baseline_s)} | {ratio} | {r.target} | {verdict} | {r.jobs} | {r.outputs} |"
            )
    for r in extra:
        verdict = {True: "PASS", False: "FAIL", None: "-"}[r.passed]
        lines.append(f"| - | {r.scenario} | {fmt(r.workflow_s)} | - | - | {r.target} | {verdict} | {r.jobs} | |")
    return "\n".join(lines)


def stage_table(res: WorkloadResult, stages: dict[str, list[dict[str, float]]], title: str) -> str:
    """Per stage: jobs, mean job seconds (Snakemake's benchmark), the same work in the baseline's loop, the
    per-job overhead (the difference: process start-up or fork, Snakemake's scheduling of the job), and the
    largest CPU time and peak RSS of a job's own process."""
    loop = res.baseline_times.get("stages", {})
    lines = [
        f"{res.name}, {title}:",
        "",
        "| stage | jobs | job s (mean) | work s/job in the loop | overhead s/job | cpu s (mean) | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for stage in sorted(stages, key=lambda s: (STAGE_ORDER + [s]).index(s)):
        rows = stages[stage]
        job_s = sum(r["s"] for r in rows) / len(rows)
        calls = loop.get(stage, [])
        work = sum(calls) / len(calls) if calls else None
        cpu = [r["cpu_time"] for r in rows if "cpu_time" in r]
        rss = max((r.get("max_rss", 0.0) for r in rows), default=0.0)
        lines.append(
            f"| {stage} | {len(rows)} | {job_s:.2f} | {fmt(work, 3)} | {fmt(job_s - work if work is not None else None, 2)} | "
            f"{fmt(sum(cpu) / len(cpu) if cpu else None, 2)} | {rss:.0f} |"
        )
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
        body = body[: body.index(start)] + block + body[body.index(end) + len(end) :]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    path.write_text(body)


# --------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2, as in the issue)")
    parser.add_argument(
        "--baseline-threads",
        choices=["default", "1", "best"],
        default="best",
        help="the baseline's threads: the libraries' default (all cores), 1, or the faster of the two "
        "as measured in row 1 (default; costs one more baseline run per workload)",
    )
    cold = parser.add_mutually_exclusive_group()
    cold.add_argument(
        "--cold", dest="cold", action="store_true", default=None, help="also run with FILM_WORKERS=off (default)"
    )
    cold.add_argument("--no-cold", dest="cold", action="store_false")
    parser.add_argument("--only", nargs="*", help="run only these workloads (names, e.g. demo) and/or dryrun")
    parser.add_argument("--skip-dryrun", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of rows 1 and 1d and their loop, each from nothing; each keeps its fastest (default 1)",
    )
    parser.add_argument("--update-results", type=Path, default=None, help="write the tables into this markdown file")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    if args.cold is None:
        args.cold = scale["cold"]
    started = time.perf_counter()

    # Checkpoints: trained once, reused (training is out of the comparison).
    if not POOL.is_dir() or len(pool_steps(POOL)) < POOL_STEPS + 1:
        print(f"training the checkpoint pool ({POOL_STEPS} steps, a checkpoint every step) ...", flush=True)
        train(POOL, POOL_STEPS, tiny=False)
    training = json.loads((POOL.parent / f"{POOL.name}.timing.json").read_text())

    # Warm the page cache for both contestants alike, and measure what every Snakemake call pays first.
    subprocess.run(
        [
            PYTHON,
            "-c",
            "import torch, transformers, cleanlab.outlier, sklearn.decomposition, matplotlib.figure, datasets",
        ],
        check=True,
    )
    start = time.perf_counter()
    subprocess.run([SNAKEMAKE, "--version"], check=True, capture_output=True)
    cli_s = time.perf_counter() - start
    print(f"snakemake --version: {cli_s:.1f} s; load average {load()}; {os.cpu_count()} CPUs", flush=True)

    source = snapshot(WORK / args.scale / "src")
    results = [run_workload(w, args.scale, args) for w in scale["workloads"] if not args.only or w.name in args.only]
    extra = []
    if not args.skip_dryrun and (not args.only or "dryrun" in args.only):
        extra.append(dry_run(args.scale, scale["dryrun"], args))
    if scale.get("scale_probe") and (not args.only or "probe" in args.only):
        extra.append(scale_probe())

    sections = [
        f"Scale `{args.scale}`, workflow {source}, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, `snakemake --cores {args.cores}`. "
        f"Checkpoints: builtin:tiny-vit trained with the HF Trainer, a checkpoint every step: "
        f"{training['checkpoints']} checkpoints in {training['train_s']:.1f} s (not part of any row). "
        f"`snakemake --version` takes {cli_s:.1f} s here (paid by every Snakemake call, dry runs included). "
        f"Harness wall time {time.perf_counter() - started:.0f} s.",
        scenario_table(results, extra),
    ]
    for res in results:
        sections.append(
            baseline_table(res)
            + (f" ({res.baseline_note})" if res.baseline_note else "")
            + (f". {res.cpu_note}." if res.cpu_note else "")
        )
        sections.append(stage_table(res, res.stages, "warm workers (the default)"))
        if res.cold_stages:
            sections.append(stage_table(res, res.cold_stages, "FILM_WORKERS=off (a fresh process per job)"))
    report = "\n\n".join(sections)
    out = WORK / args.scale / "report.md"
    out.write_text(report + "\n")
    (WORK / args.scale / "results.json").write_text(
        json.dumps(
            [
                {
                    "workload": r.name,
                    "n": r.n,
                    "rows": [vars(x) | {"ratio": x.ratio} for x in r.rows],
                    "stages": r.stages,
                    "cold_stages": r.cold_stages,
                    "baseline": r.baseline_times,
                }
                for r in results
            ]
            + [{"dryrun": vars(x)} for x in extra],
            indent=1,
        )
    )
    print("\n" + report + f"\n\n(written to {out})")
    if args.update_results:
        replace_block(args.update_results, args.scale, report)
        print(f"(tables written into {args.update_results})")


if __name__ == "__main__":
    main()
