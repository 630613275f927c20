"""The report's film player: one self-contained HTML page that plays the animation inline.

Snakemake's HTML report shows PNG/SVG/JPEG and HTML results in place but offers a GIF or MP4 only as a
download; this page embeds the film (MP4 as a looping <video> when it was made, else the GIF as an image)
so that `snakemake --report` plays it where it is listed.

In:  animation.gif and/or animation.mp4.
Out: report/film.html (for the report only; not part of the film itself).
"""

import base64
import html
import logging
from collections.abc import Mapping
from pathlib import Path

from embedding_film.film.common import atomic_path

log = logging.getLogger(__name__)

MIME = {".gif": "image/gif", ".mp4": "video/mp4"}


def film_page(animations: Mapping[str, str], out: str, title: str) -> None:
    paths = {fmt: Path(p) for fmt, p in animations.items()}
    fmt = "mp4" if "mp4" in paths else next(iter(paths))
    src = paths[fmt]
    data = base64.b64encode(src.read_bytes()).decode("ascii")
    uri = f"data:{MIME[src.suffix]};base64,{data}"
    if fmt == "mp4":
        player = f'<video id="film" src="{uri}" autoplay loop muted controls playsinline></video>'
    else:
        player = f'<img id="film" src="{uri}" alt="{html.escape(title)}">'
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{margin:0;background:#fff;font-family:sans-serif}}#film{{display:block;max-width:100%;height:auto}}
p{{margin:.4em .6em;color:#555;font-size:13px}}</style></head>
<body>{player}<p>{html.escape(title)}: {html.escape(src.name)} ({src.stat().st_size / 1e6:.1f} MB).
The file itself is listed next to this page in the report, for download.</p></body></html>
"""
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("wrote %s: plays %s", out, src)
