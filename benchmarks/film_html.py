"""The explorable film page (workflow_scripts/embedding_film/film/page): file size per 1,000 images x checkpoint, build time,
load time and the frame interval while playing, at 10,000 x 80 and smaller, in headless Chromium; and the
comparison page (runs side by side, compare.py) measured the same way.

    .venv/bin/python benchmarks/film_html.py                      # prints a markdown section
    .venv/bin/python benchmarks/film_html.py --run results/demo    # also the demo run's page
    .venv/bin/python benchmarks/film_html.py --update-results benchmarks/RESULTS.md

Synthetic films (workflow_scripts/embedding_film/film/page/synthetic.py: random clusters that form, 32-px blocky random
thumbnails) are the worst case for compression: a real run's coordinates, scores and thumbnails compress
better (the demo row). Frame interval: the page plays at 4 checkpoints/s for 4 s; filmDebug.frameStats()
collects requestAnimationFrame intervals (16.7 ms = the 60 Hz cap of headless Chromium). Software WebGL
(SwiftShader) on this machine's 2 cores; any GPU does better. Needs Playwright and Debian's chromium.
Comparison rows: synthetic_comparison (runs of their own dynamics on the same images, a clock of
fractions of training); the page plays at 4 ticks/s and compareDebug.frameStats() collects the same intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

from embedding_film.film.page import build_film_html, film_data_from_run, read_page  # noqa: E402
from embedding_film.film.page.compare import CompareData, build_compare_html  # noqa: E402
from embedding_film.film.page.synthetic import synthetic_comparison, synthetic_film  # noqa: E402

FLAGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu-compositing",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
SIZES = [(1_000, 20), (1_000, 80), (5_000, 80), (10_000, 80), (20_000, 80)]
COMPARE_SIZES = [(2, 2_000, 40), (3, 2_000, 40), (3, 10_000, 80)]  # runs, images, checkpoints per run
MARK = "## The explorable film page (benchmarks/film_html.py)"


def photo_film() -> Any:
    """The 10,000 x 80 synthetic film with natural-image thumbnails: 64-px crops of scikit-learn's two sample
    photos (the worst case for the sprite sheet; the blocky synthetic thumbnails compress far better)."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    data = synthetic_film(10_000, 80, thumb=8, camera=True)
    photos = load_sample_images().images
    rng = np.random.default_rng(0)
    crops = []
    for k in range(data.n_images):
        photo, side = photos[k % 2], int(rng.integers(32, 160))
        y, x = int(rng.integers(0, photo.shape[0] - side)), int(rng.integers(0, photo.shape[1] - side))
        crops.append(np.asarray(Image.fromarray(photo[y : y + side, x : x + side]).resize((64, 64))))
    data.thumbnails = np.stack(crops)
    return data


def measure_page(browser: Any, path: Path, seconds: float = 4.0, hook: str = "filmDebug") -> dict[str, Any]:
    page = browser.new_page(viewport={"width": 1280, "height": 720}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_function(f"window.{hook} && {hook}.ready", timeout=120_000)
    load = time.perf_counter() - t0
    page.evaluate(f"{hook}.resetFrameStats(); {hook}.play(4)")
    page.wait_for_timeout(int(seconds * 1000))
    stats = page.evaluate(f"{hook}.frameStats()")
    page.close()
    return {"load_s": load, **stats, "errors": errors}


def split_bytes(path: Path) -> dict[str, int]:
    """The page's bytes: data payload, thumbnail sprite (both base64) and the rest (code, styles, metadata)."""
    text = path.read_text(encoding="utf-8")
    data = len(text.split('id="film-data">', 1)[1].split("</script>", 1)[0])
    sprite = len(text.split('id="film-sprite">', 1)[1].split("</script>", 1)[0])
    return {"total": len(text.encode()), "data": data, "sprite": sprite, "rest": len(text.encode()) - data - sprite}


def row(
    label: str,
    n: int,
    s: int,
    summary: dict[str, Any],
    build_s: float,
    parts: dict[str, int],
    m: dict[str, Any] | None,
    runs: int = 1,
) -> dict[str, Any]:
    """One table row; `s` checkpoints per run, `runs` > 1 for a comparison page (data per image x checkpoint of all runs)."""
    shown = summary["points_shown"]
    return {
        "film": label,
        "images": n,
        "shown": shown,
        "checkpoints": s,
        "runs": runs,
        "build_s": build_s,
        **{f"bytes_{k}": v for k, v in parts.items()},
        "per_1000_x_ckpt": parts["data"] / (shown / 1000 * s * runs),
        "per_image_thumb": parts["sprite"] / shown,
        "thumb": summary["thumbnail"],
        **({} if m is None else m),
    }


def markdown(rows: list[dict[str, Any]], load: float) -> str:
    lines = [
        MARK,
        "",
        f"Headless Chromium {chromium_version()} with software WebGL (SwiftShader), flags `{' '.join(FLAGS)}`; "
        f"load average {load:.1f} on 2 cores when it ran. Sizes are of the whole self-contained page; *data* is the "
        "gzip + base64 payload (uint16 coordinates per axis and step, uint16 OOD score, OOD rank and label-issue "
        "rank, predicted class and its probability), *thumbnails* the base64 WebP sprite sheet.",
        "",
        "| film | shown x checkpoints (x runs) | page | data | thumbnails | data per 1,000 images x checkpoint | thumbnail per image | build | load | median frame | p95 frame | script per frame |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        frame = f"{r['median']:.1f} ms" if r.get("median") is not None else "–"
        p95 = f"{r['p95']:.1f} ms" if r.get("p95") is not None else "–"
        load_s = f"{r['load_s']:.1f} s" if "load_s" in r else "–"
        work = f"{r['medianWork']:.1f} ms" if r.get("medianWork") is not None else "–"
        thumb = f"{r['thumb']['cell']} px {'lossless' if r['thumb']['lossless'] else 'lossy'}"
        runs = f" x {r['runs']}" if r["runs"] > 1 else ""
        lines.append(
            f"| {r['film']} | {r['shown']:,} x {r['checkpoints']}{runs} | {r['bytes_total'] / 1e6:.1f} MB | {r['bytes_data'] / 1e6:.1f} MB | "
            f"{r['bytes_sprite'] / 1e6:.1f} MB ({thumb}) | {r['per_1000_x_ckpt'] / 1e3:.1f} KB | {r['per_image_thumb'] / 1e3:.2f} KB | "
            f"{r['build_s']:.1f} s | {load_s} | {frame} | {p95} | {work} |"
        )
    return "\n".join(lines) + "\n"


def chromium_version() -> str:
    import subprocess

    try:
        return subprocess.run(["chromium", "--version"], capture_output=True, text=True, timeout=30).stdout.split()[1]
    except Exception:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="also a finished run folder, e.g. results/demo (all its checkpoints)")
    parser.add_argument("--update-results", help="replace (or append) this section in a RESULTS.md")
    parser.add_argument("--no-browser", action="store_true", help="sizes only")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = None if args.no_browser else p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        jobs: list[tuple[str, Any]] = []
        if args.run:
            run = Path(args.run)
            steps = sorted(int(f.stem) for f in (run / "projection").glob("*.npy") if f.stem.isdigit())
            jobs.append((f"{run.name} run", lambda: film_data_from_run(str(run), steps)))
        jobs += [
            (f"synthetic {n:,} x {s}", lambda n=n, s=s: synthetic_film(n, s, thumb=32, camera=True)) for n, s in SIZES
        ]
        jobs.append(("synthetic 10,000 x 80, 64-px photo thumbnails", photo_film))
        jobs += [
            (
                f"comparison, {r} synthetic runs of {n:,} x {s}",
                lambda r=r, n=n, s=s: synthetic_comparison(n, [s] * r, thumb=32),
            )
            for r, n, s in COMPARE_SIZES
        ]
        for label, make in jobs:
            data = make()
            out = Path(tmp) / "film.html"
            compare = isinstance(data, CompareData)
            t0 = time.perf_counter()
            summary = build_compare_html(data, str(out)) if compare else build_film_html(data, str(out))
            build_s = time.perf_counter() - t0
            read_page(str(out))  # it decodes
            m = measure_page(browser, out, hook="compareDebug" if compare else "filmDebug") if browser else None
            film = data.films[0] if compare else data
            r = row(
                label,
                film.n_images,
                film.n_steps,
                summary,
                build_s,
                split_bytes(out),
                m,
                runs=len(data.films) if compare else 1,
            )
            print(json.dumps({k: v for k, v in r.items() if k != "thumb"}), flush=True)
            rows.append(r)
        if browser:
            browser.close()
    section = markdown(rows, load)
    print(section)
    if args.update_results:
        path = Path(args.update_results)
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if MARK in text:
            before, after = text.split(MARK, 1)
            rest = after.split("\n## ", 1)
            text = before + section + ("\n## " + rest[1] if len(rest) > 1 else "")
        else:
            text = text.rstrip() + "\n\n" + section
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
