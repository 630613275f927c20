"""Scatter libraries compared for the film page: bundle size, and the frame interval while 10,000 points move
every frame (positions interpolated between 80 random checkpoints, 0.2 checkpoint per frame), in headless
Chromium with the flags the tests use. Needs node/npm once (see README.md); the workflow never does.

    cd benchmarks/film_html_libs && npm install && python run.py [N]
"""

import gzip
import json
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).parent
FLAGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu-compositing",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
BUNDLES = {  # library -> (esbuild entry or a prebuilt file, version)
    "regl-scatterplot (await)": ("entries/regl-scatterplot.js", "regl-scatterplot 1.16.0"),
    "deck.gl": ("entries/deck.js", "@deck.gl/core + layers 9.4.0"),
    "echarts": ("entries/echarts.js", "echarts 6.1.0 (scatter + canvas renderer only)"),
    "plotly-gl2d": ("node_modules/plotly.js-gl2d-dist-min/plotly-gl2d.min.js", "plotly.js-gl2d-dist-min 3.7.0"),
    "canvas2d (hand)": (None, "none"),
    "webgl (hand)": (None, "none"),
}


def bundle(entry: str | None) -> str:
    if entry is None:
        return ""
    if not entry.startswith("entries/"):
        return (HERE / entry).read_text()
    out = HERE / "dist" / (Path(entry).stem + ".min.js")
    subprocess.run(
        [
            "npx",
            "esbuild",
            entry,
            "--bundle",
            "--minify",
            "--format=iife",
            "--target=es2020",
            "--legal-comments=none",
            f"--outfile={out.relative_to(HERE)}",
            "--log-level=warning",
        ],
        cwd=HERE,
        check=True,
    )
    return out.read_text()


def main(n: int) -> None:
    harness, libs = (HERE / "harness.js").read_text(), (HERE / "libs.js").read_text()
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        for name, (entry, version) in BUNDLES.items():
            src = bundle(entry)
            page_file = HERE / "dist" / f"{name.split()[0]}.html"
            page_file.parent.mkdir(exist_ok=True)
            page_file.write_text(
                f"<!DOCTYPE html><meta charset=utf-8><body style='margin:0'><div id=plot style='position:relative;width:800px;height:600px'></div>"
                f"<script>{src}</script><script>{harness}</script><script>{libs}</script><script>window.LIBNAME={json.dumps(name)};</script>"
            )
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(page_file.as_uri())
            result = page.evaluate(f"runBench(LIBS[LIBNAME], {n}, 80, 150)")
            page.close()
            row = {
                "library": name,
                "version": version,
                "bytes": len(src.encode()),
                "gzip": len(gzip.compress(src.encode())),
                **result,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
        browser.close()
    print(
        "\n| library | version | minified | gzip | init ms | median frame ms | p95 ms | frames that moved the points |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['library']} | {r['version']} | {r['bytes'] / 1e3:.0f} KB | {r['gzip'] / 1e3:.0f} KB | {r['initMs']:.0f} | "
            f"{r['medianFrame']:.1f} | {r['p95Frame']:.1f} | {r['updated']:.0%} |"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
