"""How well the training dynamics find wrong training labels, and what they cost.

    .venv/bin/python benchmarks/label_errors.py                 # every row (about an hour on 2 cores)
    .venv/bin/python benchmarks/label_errors.py --only u10 --regimes trained --folds 0   # one quick row

For each label-noise scenario (10 % uniform flips, 15 % class c -> c + 1), the embedded default is trained with
the noisy labels twice: as config.yaml trains it, and until it memorises (more steps, training loss near zero).
The workflow computes the training dynamics (`results/<run>/dynamics.parquet`), and every ranking is scored
against the flipped rows (`data/label_noise.csv`): average precision, AUROC and precision at the true count of
label_error_score, the data-map confidence, the margin (AUM), forgetting events, the final checkpoint's own
1 - p(given label) and cleanlab.filter.find_label_issues on the final checkpoint's probabilities (its precision
and recall), and cleanlab with K-fold out-of-sample probabilities (K extra trainings of config.yaml's recipe,
their time stated; the same noisy labels serve both regimes, so they are trained once per scenario).

`--cost` times the whole embedded default (`snakemake --cores 2` in a fresh folder, as `make run` does) with the
training dynamics on and off, alternating, and the cost of scoring per checkpoint per 1,000 training images.

Everything is written under benchmarks/work/label_errors/ (git-ignored); the tables go to its report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "work" / "label_errors"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
sys.path.insert(0, str(REPO / "workflow_scripts"))

SCENARIOS = {"u10": {"fraction": 0.10, "kind": "uniform"}, "p15": {"fraction": 0.15, "kind": "pair"}}


def config(run: str, noise: dict[str, Any] | None, steps: int | None) -> dict[str, Any]:
    """config.yaml with `run`, the label noise and (None: as config.yaml) the training length, 20 checkpoints."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["run"] = run
    if noise:
        cfg["dataset"]["label_noise"] = dict(noise)
    if steps:
        cfg["training"]["max_steps"] = steps
        cfg["training"]["save_steps"] = steps // 20
    return cfg


def with_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    """`cfg` validated and completed with the schema's defaults (what the workflow's jobs receive)."""
    from snakemake.utils import validate

    cfg = json.loads(json.dumps(cfg))
    validate(cfg, str(REPO / "schemas" / "config.schema.yaml"), set_default=True)
    return cfg


def snakemake(workdir: Path, cfg: dict[str, Any], *targets: str) -> float:
    """Run the workflow in `workdir` with `cfg`; its wall seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "bench.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--cores", "2", "--configfile", "bench.yaml"]
    start = time.perf_counter()
    with open(workdir / "snakemake.log", "w") as log:
        proc = subprocess.run([*cmd, "--", *targets], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f"snakemake failed in {workdir}: see {workdir / 'snakemake.log'}")
    return time.perf_counter() - start


def ranking_metrics(truth: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AP, AUROC and precision at the true count of `score` (higher = likelier flipped) against `truth`."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    k = int(truth.sum())
    top = np.argsort(-score, kind="stable")[:k]
    return {
        "AP": average_precision_score(truth, score),
        "AUROC": roc_auc_score(truth, score),
        "P@k": float(truth[top].mean()),
    }


def cleanlab_flags(labels: np.ndarray, probs: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision and recall of cleanlab.filter.find_label_issues on `probs`."""
    from cleanlab.filter import find_label_issues

    flagged = find_label_issues(labels, probs)
    hits = int((flagged & truth).sum())
    return {
        "flagged": int(flagged.sum()),
        "precision": hits / flagged.sum() if flagged.sum() else 0.0,
        "recall": hits / truth.sum(),
    }


def final_train_loss(results: Path) -> float:
    log = pd.read_csv(results / "train_log.csv")
    return float(log["loss"].tail(5).mean())


def kfold_probs(results: Path, cfg: dict[str, Any], folds: int, workdir: Path) -> tuple[np.ndarray, float]:
    """Out-of-sample probabilities of every scored training image from `folds` trainings of `cfg`'s recipe on
    the other folds (cleanlab's recommended input), and their total seconds."""
    from sklearn.model_selection import StratifiedKFold

    from embedding_film.film.common import load_npy, save_npy
    from embedding_film.film.embedding import predict_checkpoint
    from embedding_film.film.training import train

    cache = workdir / "out_of_sample.npz"  # the K trainings do not depend on the workflow's code: kept
    if cache.is_file():
        saved = np.load(cache)
        return saved["probs"], float(saved["seconds"])
    cfg = with_defaults(cfg)
    index = pd.read_parquet(results / "data" / "train_index.parquet")
    labels = index["label"].to_numpy()
    from datasets import load_dataset

    table = load_dataset("parquet", data_files={"train": str(results / "data" / "train.parquet")}, split="train")
    pixels = load_npy(results / "data" / "train_pixels.npy")
    out = np.zeros((len(index), 0), np.float32)
    seconds = 0.0
    splitter = StratifiedKFold(folds, shuffle=True, random_state=cfg["seed"])
    for k, (fit, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        fold = workdir / f"fold{k}"
        shutil.rmtree(fold, ignore_errors=True)
        fold.mkdir(parents=True)
        table.select(index["row"].to_numpy()[fit]).to_parquet(str(fold / "train.parquet"))
        start = time.perf_counter()
        train(
            str(fold / "train.parquet"),
            cfg["model"],
            cfg["training"],
            cfg.get("tiny_vit") or {},
            cfg["dataset"],
            cfg["seed"],
            False,
            str(fold / "checkpoints"),
            str(fold / "train_log.csv"),
            2,
            str(fold / "staging"),
        )
        seconds += time.perf_counter() - start
        save_npy(fold / "held_pixels.npy", pixels[held])
        last = max((fold / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        predict_checkpoint(
            str(last),
            str(fold / "held_pixels.npy"),
            str(results / "data" / "train_pixels.json"),
            str(fold / "held_probs.npy"),
        )
        probs = load_npy(fold / "held_probs.npy")
        if out.shape[1] == 0:
            out = np.zeros((len(index), probs.shape[1]), np.float32)
        out[held] = probs
    np.savez(cache, probs=out, seconds=seconds)
    return out, seconds


def score_run(results: Path, oos: np.ndarray | None) -> dict[str, dict[str, float]]:
    """Every ranking's metrics on one trained run (and the K-fold row from `oos`, when given)."""
    from embedding_film.film.common import load_npy
    from embedding_film.film.dynamics import given_probability

    table = pd.read_parquet(results / "dynamics.parquet")
    flipped = set(pd.read_csv(results / "data" / "label_noise.csv")["row"])
    truth = table["row"].isin(flipped).to_numpy()
    labels = table["label"].to_numpy()
    final_step = max(int(p.stem) for p in (results / "train_probs").glob("*.npy"))
    final = load_npy(results / "train_probs" / f"{final_step}.npy")
    rows = {
        "label_error_score": ranking_metrics(truth, table["label_error_score"].to_numpy()),
        "data-map confidence (1 - confidence)": ranking_metrics(truth, -table["confidence"].to_numpy()),
        "margin (-AUM)": ranking_metrics(truth, -table["aum"].to_numpy()),
        # Toneva et al. count an example never learned as forgotten most often
        "forgetting events (never learned = most)": ranking_metrics(
            truth, table["forgetting"].to_numpy() + (table["correctness"].to_numpy() == 0) * (len(table) + 1.0)
        ),
        "final checkpoint 1 - p(given)": ranking_metrics(truth, -table["final_p_given"].to_numpy()),
        "cleanlab find_label_issues, final checkpoint": cleanlab_flags(labels, final, truth),
    }
    if oos is not None:
        p = given_probability(oos[None], labels)[0]
        rows["cleanlab K-fold: 1 - p(given), out of sample"] = ranking_metrics(truth, -p)
        rows["cleanlab K-fold: find_label_issues"] = cleanlab_flags(labels, oos, truth)
    return rows


def fmt_row(name: str, m: dict[str, float]) -> str:
    if "AP" in m:
        return f"| {name} | {m['AP']:.3f} | {m['AUROC']:.3f} | {m['P@k']:.3f} |"
    return f"| {name} | flags {m['flagged']}: precision {m['precision']:.2f}, recall {m['recall']:.2f} | | |"


def quality(args: argparse.Namespace) -> list[str]:
    lines = []
    for name in args.only:
        noise = SCENARIOS[name]
        oos, kfold_s = None, 0.0
        for regime in args.regimes:
            steps = None if regime == "trained" else args.memorise_steps
            run = f"{name}_{regime}"
            wd = WORK / run
            seconds = snakemake(wd, config(run, noise, steps), f"results/{run}/dynamics.parquet")
            results = wd / "results" / run
            if args.folds and oos is None:
                oos, kfold_s = kfold_probs(results, config(run, noise, None), args.folds, WORK / f"{name}_kfold")
            rows = score_run(results, oos)
            train_s = json.loads(json.dumps(pd.read_csv(results / "benchmarks" / "train.tsv", sep="\t")["s"][0]))
            lines += [
                f"\n**{name} ({noise['fraction']:.0%} {noise['kind']}), {regime}**: "
                f"{config(run, noise, steps)['training']['max_steps']} steps, final training loss "
                f"{final_train_loss(results):.3f}, training {train_s:.0f} s, the run {seconds:.0f} s"
                + (f"; K-fold: {args.folds} trainings, {kfold_s:.0f} s" if oos is not None else ""),
                "",
                "| ranking | AP | AUROC | precision at the true count |",
                "|---|---|---|---|",
                *(fmt_row(k, v) for k, v in rows.items()),
            ]
            print("\n".join(lines[-(len(rows) + 4) :]), flush=True)
    return lines


def cost(args: argparse.Namespace) -> list[str]:
    """The embedded default from nothing, with the training dynamics on and off, alternating."""
    times: dict[str, list[float]] = {"on": [], "off": []}
    per_k = []
    for i in range(args.repeats):
        for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
            wd = WORK / f"cost_{mode}"
            shutil.rmtree(wd, ignore_errors=True)
            cfg = config("demo", None, None)
            cfg.setdefault("dynamics", {})["enabled"] = mode == "on"
            times[mode].append(snakemake(wd, cfg))
            if mode == "on":
                tsv = sorted((wd / "results" / "demo" / "benchmarks" / "train_probs").glob("*.tsv"))
                n = len(pd.read_parquet(wd / "results" / "demo" / "data" / "train_index.parquet"))
                per_k.append(np.median([pd.read_csv(t, sep="\t")["s"][0] for t in tsv]) / n * 1000)
            print(mode, f"{times[mode][-1]:.1f} s", flush=True)
    on, off = np.mean(times["on"]), np.mean(times["off"])
    return [
        "",
        f"**Cost on the embedded default** (`snakemake --cores 2` from nothing, as `make run`; {args.repeats} runs "
        f"each, alternating): dynamics on {', '.join(f'{t:.1f}' for t in times['on'])} s, off "
        f"{', '.join(f'{t:.1f}' for t in times['off'])} s: **+{(on / off - 1):.0%}**; scoring "
        f"{np.mean(per_k):.2f} s per checkpoint per 1,000 training images (the median train_probs job, CPU, 1 thread).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--regimes", nargs="+", default=["trained", "memorised"], choices=["trained", "memorised"])
    parser.add_argument("--memorise-steps", type=int, default=3000, help="training length that memorises the labels")
    parser.add_argument("--folds", type=int, default=5, help="K of the K-fold cleanlab row (0: no such row)")
    parser.add_argument("--cost", action="store_true", help="also time the default run with dynamics on and off")
    parser.add_argument("--no-quality", action="store_true", help="only the --cost rows")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each --cost mode")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    lines = [] if args.no_quality else quality(args)
    if args.cost:
        lines += cost(args)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
