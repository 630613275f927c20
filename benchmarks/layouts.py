#!/usr/bin/env python
"""Which layout should the film use? The layout table: PCA, pooled t-SNE, the learned map, their reference
variants, AlignedUMAP and auto on finished runs, with the camera check, and the layout job at CIFAR-10 scale.

    python benchmarks/layouts.py RUN_FOLDER [RUN_FOLDER ...] [--methods 'a;b'] [--cached-only] [--force]
    python benchmarks/layouts.py --scale-probe [--images 10000 --checkpoints 80 --dims 768] [--method param|tsne] [--settings JSON]

A run folder is a results/{run} folder with embeddings/{step}.npy. Every (run, layout) is fitted in a fresh
process (`--child`), so its time (the fit alone, imports excluded) and peak RSS (the whole process, as
Snakemake's max_rss would show for a layout job) are its own; frames and figures are cached under
benchmarks/work/layouts/{run}/ (--force refits). Metrics are the workflow's own (layout.film_quality:
metrics.temporal_stability, sklearn trustworthiness with k = 10 on metrics.subsample's rows). The camera
check plans embedding_film.film.camera on every layout's frames, look-ahead and causal.

The scale probe writes synthetic embeddings (10 classes that tighten over the checkpoints, D = 768) under
benchmarks/work/layouts/scale/, then runs the layout job (learned map or pooled t-SNE: fit on max_fit_rows
rows, place all others) in a fresh process under /usr/bin/time -v, and times `place` for one checkpoint of
10,000 images in another.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))
WORK = REPO / "benchmarks" / "work" / "layouts"

# name -> what to fit. `settings` overrides layout.TSNE_DEFAULTS / UMAP_DEFAULTS; `reference` picks the
# checkpoints a reference variant is fitted on (every4: every 4th checkpoint and the last; half: the first
# half of the run, as when the second half is appended to a live film).
TSNE_GRID = [(30, 1), (30, 2), (100, 1), (100, 2), (200, 1), (200, 2)]
DEFAULT_TSNE = "t-SNE p200 e2 (default)"
LEARNED = "learned map (param)"


def tsne_name(perplexity: int, exaggeration: int) -> str:
    from embedding_film.film.layout import TSNE_DEFAULTS

    default = (perplexity, exaggeration) == (TSNE_DEFAULTS["perplexity"], TSNE_DEFAULTS["exaggeration"])
    return f"t-SNE p{perplexity} e{exaggeration}" + (" (default)" if default else "")


LAYOUTS: dict[str, dict[str, Any]] = {
    "article": {"method": "article"},
    "global PCA": {"method": "pca"},
    **{
        tsne_name(p, e): {"method": "tsne", "settings": {"tsne": {"perplexity": p, "exaggeration": e}}}
        for p, e in TSNE_GRID
    },
    "t-SNE default, reference every 4th": {"method": "tsne", "reference": "every4"},
    "t-SNE default, reference first half": {"method": "tsne", "reference": "half"},
    "AlignedUMAP": {"method": "umap"},
    LEARNED: {"method": "param"},
    "learned map, reference every 4th": {"method": "param", "reference": "every4"},
    "learned map, no movement term": {"method": "param", "settings": {"param": {"movement": 0.0}}},
    # auto = fit the candidates (global PCA, the learned map) + layout.choose on their measurements; the table
    # takes those two rows' measurements instead of fitting them a second time (fit_auto is deterministic).
    "auto (default)": {"method": "auto", "from": ["global PCA", LEARNED]},
}


def load_run(folder: Path, mmap: bool = False) -> tuple[list[int], list[np.ndarray]]:
    """(steps, embeddings) of a results/{run} folder, in step order."""
    steps = sorted(int(p.stem) for p in (folder / "embeddings").glob("*.npy"))
    if len(steps) < 2:
        raise SystemExit(f"{folder} has fewer than two embeddings/*.npy files; run the workflow on it first.")
    return steps, [
        np.load(folder / "embeddings" / f"{s}.npy", allow_pickle=False, mmap_mode="r" if mmap else None) for s in steps
    ]


def reference_steps(rule: str | None, steps: Sequence[int]) -> list[int] | None:
    if rule is None:
        return None
    if rule == "every4":
        return sorted(set(steps[::4]) | {steps[-1]})
    if rule == "half":
        return list(steps[: len(steps) // 2 + 1])
    raise SystemExit(f"unknown reference rule {rule}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------- one layout


def child(folder: Path, name: str, out: Path) -> None:
    """Fit layout `name` on the run in `folder` (this process only), write its frames and figures."""
    from embedding_film.film.layout import film_quality, fit_layout, save_layout
    from embedding_film.film.projection import project_all

    spec = LAYOUTS[name]
    steps, embeddings = load_run(folder, mmap=True)
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    choice = None
    if spec["method"] == "auto":
        raise SystemExit("auto is measured from its candidates' rows (measure)")
    if spec["method"] == "article":
        frames = np.stack(
            [f.astype(np.float32) for f in project_all("article", [np.asarray(e, np.float64) for e in embeddings])]
        )
    else:
        layout = fit_layout(
            embeddings,
            steps,
            spec["method"],
            spec.get("settings"),
            reference_steps(spec.get("reference"), steps),
            seed=0,
        )
        frames = layout["coords"]
        save_layout(out.with_suffix(".npz"), layout)  # for --place-job
        choice = json.loads(str(layout["choice"])) if "choice" in layout else None
    seconds = time.perf_counter() - start
    rss = peak_rss_mb()
    quality = film_quality([np.asarray(e) for e in embeddings], list(frames))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out.with_suffix(".npy"), frames, allow_pickle=False)
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "name": name,
                "run": folder.name,
                "checkpoints": len(steps),
                "images": int(frames.shape[1]),
                "fit_s": round(seconds, 2),
                "peak_rss_mb": round(rss, 1),
                "rss_before_fit_mb": round(rss_before, 1),
                **{k: quality[k] for k in ("stability_spearman", "movement_stress", "trust_mean", "trust_worst")},
                "trust": quality["trust"],
                "choice": choice,
                "spec": spec,
            },
            indent=1,
        )
    )


def cache_path(folder: Path, name: str) -> Path:
    return WORK / folder.name / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")


def cached(folder: Path, name: str) -> bool:
    names = LAYOUTS[name].get("from", [name])
    return all(cache_path(folder, n).with_suffix(".json").exists() for n in names)


def measure(folder: Path, name: str, force: bool) -> dict[str, Any]:
    if "from" in LAYOUTS[name]:
        return auto_from(folder, LAYOUTS[name]["from"], force)
    out = cache_path(folder, name)
    if force or not out.with_suffix(".json").exists():
        print(f"  {folder.name}: {name} ...", end=" ", flush=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", str(folder), name, str(out)], check=True)
        print(f"{time.perf_counter() - start:.0f} s", flush=True)
    return {**json.loads(out.with_suffix(".json").read_text()), "frames": out.with_suffix(".npy")}


def auto_from(folder: Path, candidates: list[str], force: bool) -> dict[str, Any]:
    """auto's row from its candidates' rows: layout.choose on their figures (what fit_auto computes), the
    chosen candidate's frames and metrics, the candidates' fit times added up and the larger peak RSS."""
    from embedding_film.film.layout import AUTO_DEFAULTS, choose

    rows = {c: measure(folder, c, force) for c in candidates}
    targets = {k: AUTO_DEFAULTS[k] for k in ("min_stability", "min_trust_mean", "min_trust_worst")}
    choice = choose({c: r for c, r in rows.items()}, targets)
    chosen = rows[choice["method"]]
    return {
        **chosen,
        "name": "auto",
        "fit_s": sum(r["fit_s"] for r in rows.values()),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows.values()),
        "choice": choice,
    }


# ----------------------------------------------------------------------------------------------- tables


def camera_check(frames: np.ndarray) -> dict[str, float]:
    """Film-wide fixed axes vs the camera (look-ahead, causal): smallest spread, largest frame-to-frame change."""
    from embedding_film.film.camera import axis_limits, camera_metrics, plan_camera, smoothness

    frames = list(frames)
    fixed = axis_limits(frames, 1.15)
    half = (fixed["x"][1] - fixed["x"][0]) / 2
    fixed_cam = np.array([(fixed["x"][0] + fixed["x"][1]) / 2, (fixed["y"][0] + fixed["y"][1]) / 2, half, 1.0])
    out = {"fixed_min_spread": min(m["spread"] for m in camera_metrics(frames, [fixed_cam] * len(frames)))}
    for mode in ("lookahead", "causal"):
        cams = plan_camera(frames, mode)
        spreads = [m["spread"] for m in camera_metrics(frames, cams)]
        out[f"{mode}_min_spread"] = min(spreads)
        out.update({f"{mode}_{k}": v for k, v in smoothness(cams).items()})
        out[f"{mode}_max_zoom"] = float(cams[:, 3].max())
    return out


def ok(r: dict[str, Any]) -> bool:
    return r["stability_spearman"] >= 0.90 and r["trust_mean"] >= 0.95 and r["trust_worst"] >= 0.85


def cell(r: dict[str, Any]) -> str:
    mark = " ✔" if ok(r) else ""
    return (
        f"{r['stability_spearman']:.3f} / {r['movement_stress']:.2f} / {r['trust_mean']:.3f} ({r['trust_worst']:.3f}) "
        f"/ {r['fit_s']:.1f} s, {r['peak_rss_mb']:.0f} MB{mark}"
    )


def tables(runs: list[Path], names: list[str], results: dict[tuple[str, str], dict[str, Any]]) -> str:
    lines = ["| layout | " + " | ".join(r.name for r in runs) + " |", "|---|" + "---|" * len(runs)]
    for name in names:
        lines.append(
            f"| {name} | "
            + " | ".join(cell(results[(r.name, name)]) if (r.name, name) in results else "not run" for r in runs)
            + " |"
        )
    lines += [
        "",
        "| run: layout | fixed axes: min spread | look-ahead camera: min spread / max zoom change / max centre shift / max zoom "
        "| causal camera: the same |",
        "|---|---:|---|---|",
    ]
    for r in runs:
        for name in names:
            if (r.name, name) not in results or name not in (
                "global PCA",
                DEFAULT_TSNE,
                "AlignedUMAP",
                LEARNED,
                "auto (default)",
            ):
                continue
            c = camera_check(np.load(results[(r.name, name)]["frames"], allow_pickle=False))
            lines.append(
                f"| {r.name}: {name} | {c['fixed_min_spread']:.3f} "
                f"| {c['lookahead_min_spread']:.2f} / {c['lookahead_max_zoom_change']:.3f} / {c['lookahead_max_shift']:.3f} / x{c['lookahead_max_zoom']:.1f} "
                f"| {c['causal_min_spread']:.2f} / {c['causal_max_zoom_change']:.3f} / {c['causal_max_shift']:.3f} / x{c['causal_max_zoom']:.1f} |"
            )
    autos = [
        (r.name, results[(r.name, "auto (default)")]["choice"]) for r in runs if (r.name, "auto (default)") in results
    ]
    if autos:
        lines += [""] + [f"- auto on {run}: **{c['method']}**: {c['reason']}" for run, c in autos]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ scale probe


def make_synthetic(folder: Path, images: int, checkpoints: int, dims: int, classes: int = 10, seed: int = 0) -> None:
    """embeddings/{step}.npy: `classes` clusters that tighten over the checkpoints (float32 [images, dims])."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dims)).astype(np.float32) * 2
    labels = np.arange(images) % classes
    base = rng.normal(size=(images, dims)).astype(np.float32)
    (folder / "embeddings").mkdir(parents=True, exist_ok=True)
    for t in range(checkpoints):
        a = np.float32(t / max(checkpoints - 1, 1))
        x = (
            a * centres[labels]
            + (1 - 0.8 * a) * base
            + np.float32(0.05) * rng.normal(size=(images, dims)).astype(np.float32)
        )
        np.save(folder / "embeddings" / f"{t}.npy", x.astype(np.float32), allow_pickle=False)


def layout_job(folder: Path, out: Path, method: str, settings: dict[str, Any]) -> None:
    """What a layout job does: embeddings memory-mapped, fit_layout(method) (defaults + `settings`), save_layout."""
    from embedding_film.film.common import NpyFiles
    from embedding_film.film.layout import fit_layout, save_layout

    steps, _ = load_run(folder, mmap=True)
    embeddings = NpyFiles(folder / "embeddings" / f"{s}.npy" for s in steps)  # as the layout rule reads them
    start = time.perf_counter()
    # as the layout rule calls it: auto measures with metrics.k and metrics.max_points (the schema's defaults)
    layout = fit_layout(embeddings, steps, method, {method: settings, "auto": {"k": 10, "max_points": 2000}}, seed=0)
    save_layout(out, layout)
    fit_rows = (
        len(layout["reference_rows"])
        if "reference_rows" in layout
        else json.loads(str(layout["settings"]))["max_fit_rows"]
    )
    print(
        json.dumps(
            {
                "method": method,
                "fit_and_place_s": round(time.perf_counter() - start, 1),
                "peak_rss_mb": round(peak_rss_mb()),
                "fit_rows": fit_rows,
                "rows": int(np.prod(layout["coords"].shape[:2])),
            }
        )
    )


def place_job(layout_path: Path, embeddings_path: Path) -> None:
    """What a per-checkpoint job does: read the layout file and one checkpoint's embeddings, place them."""
    from embedding_film.film.layout import load_layout, place

    start = time.perf_counter()
    layout = load_layout(layout_path)
    x = np.load(embeddings_path, allow_pickle=False)
    loaded = time.perf_counter()
    frame = place(layout, -1, x)  # the first call imports openTSNE and scikit-learn
    first = time.perf_counter()
    again = place(layout, -1, x)
    print(
        json.dumps(
            {
                "images": len(x),
                "load_s": round(loaded - start, 2),
                "first_place_s": round(first - loaded, 2),
                "place_s": round(time.perf_counter() - first, 2),
                "peak_rss_mb": round(peak_rss_mb()),
                "finite": bool(np.isfinite(frame).all()),
                "repeatable": bool(np.array_equal(frame, again)),
            }
        )
    )


def timed(cmd: list[str]) -> dict[str, Any]:
    """Run under /usr/bin/time -v: its JSON line plus wall time and max RSS as time(1) reports them."""
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=True)
    fields = dict(line.strip().split(": ", 1) for line in proc.stderr.splitlines() if ": " in line)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["time_wall"] = fields.get("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    result["time_max_rss_mb"] = round(int(fields["Maximum resident set size (kbytes)"]) / 1024)
    result["cpu_s"] = round(float(fields["User time (seconds)"]) + float(fields["System time (seconds)"]), 1)
    return result


def scale_probe(images: int, checkpoints: int, dims: int, method: str, settings: dict[str, Any]) -> None:
    folder = WORK / "scale" / f"synthetic-{images}x{checkpoints}x{dims}"
    if not (folder / "embeddings" / f"{checkpoints - 1}.npy").exists():
        print(f"writing {checkpoints} x {images} x {dims} synthetic embeddings to {folder} ...", flush=True)
        make_synthetic(folder, images, checkpoints, dims)
    out = folder / f"layout-{method}.npz"
    job = [
        sys.executable,
        __file__,
        "--layout-job",
        str(folder),
        str(out),
        "--method",
        method,
        "--settings",
        json.dumps(settings),
    ]
    print("layout job", method, json.dumps(settings), json.dumps(timed(job)), flush=True)
    print(
        "place one checkpoint:",
        json.dumps(timed([sys.executable, __file__, "--place-job", str(out), str(folder / "embeddings" / "0.npy")])),
    )


# ------------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, help="results/{run} folders")
    parser.add_argument("--methods", help="semicolon-separated layout names (default: all)")
    parser.add_argument("--force", action="store_true", help="refit cached layouts")
    parser.add_argument("--cached-only", action="store_true", help="table of what is cached; fit nothing")
    parser.add_argument("--scale-probe", action="store_true")
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--checkpoints", type=int, default=80)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--method", default="param", help="the scale probe's layout: tsne or param")
    parser.add_argument("--settings", default="{}", help="JSON overrides of projection.<method> for the scale probe")
    parser.add_argument("--child", nargs=3, metavar=("RUN", "NAME", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--layout-job", nargs=2, metavar=("RUN", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--place-job", nargs=2, metavar=("LAYOUT", "EMBEDDINGS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(Path(args.child[0]), args.child[1], Path(args.child[2]))
    if args.layout_job:
        return layout_job(Path(args.layout_job[0]), Path(args.layout_job[1]), args.method, json.loads(args.settings))
    if args.place_job:
        return place_job(Path(args.place_job[0]), Path(args.place_job[1]))
    if args.scale_probe:
        return scale_probe(args.images, args.checkpoints, args.dims, args.method, json.loads(args.settings))
    names = args.methods.split(";") if args.methods else list(LAYOUTS)
    unknown = [n for n in names if n not in LAYOUTS]
    if unknown:
        raise SystemExit(f"unknown layouts {unknown}; known: {list(LAYOUTS)}")
    results = {
        (run.name, name): measure(run, name, args.force)
        for run in args.runs
        for name in names
        if not args.cached_only or cached(run, name)
    }
    print(tables(args.runs, names, results))


if __name__ == "__main__":
    main()
