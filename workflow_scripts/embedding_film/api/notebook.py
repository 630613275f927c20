"""The film in a notebook: `show_film("results/my-run")` shows the run's explorable page inline in Jupyter,
JupyterLab and VS Code; `show_film("results/a", compare=["results/b"])` shows the runs side by side.

The page (film.html, or the comparison page) is self-contained HTML, so showing it is a matter of embedding it:
in an `<iframe srcdoc=...>`, which gives it a document of its own, so its scripts, styles and element ids
neither touch the notebook nor another film in the same notebook. The frame is as wide as the output area and
`height` pixels high, without a border. The object returned renders through `_repr_html_` (text/html, kept in
the saved notebook); IPython is not needed to make it. Which page is shown, and when it is built from the run
folder instead of read from it, is api/pages.py's choice.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

from embedding_film.api.pages import compare_page, film_page
from embedding_film.film.common import UserError

DEFAULT_HEIGHT = 720  # pixels: the page's scatter, controls and curves at a notebook's usual width
# Shown where the frame is not: notebooks that do not run a saved output's HTML (an untrusted Jupyter notebook)
# strip the iframe and keep this line
NOT_SHOWN = "The film is not shown here: trust the notebook (Jupyter: File › Trust Notebook) or rerun the cell."


class FilmView:
    """A film page to show in a notebook: `_repr_html_` is the page in an iframe; `page` is the page itself,
    `source` the file it was read from (None when it was built from the run folders when shown)."""

    def __init__(self, page: str, *, height: int = DEFAULT_HEIGHT, title: str = "", source: Path | None = None):
        self.page = page
        self.height = height
        self.title = title
        self.source = source

    def _repr_html_(self) -> str:
        frame = (
            f'<iframe srcdoc="{html.escape(self.page, quote=True)}" title="{html.escape(self.title, quote=True)}" '
            'style="position:absolute;left:0;top:0;width:100%;height:100%;border:0;background:#fff" '
            'allow="fullscreen"></iframe>'
        )
        return (
            f'<div class="embedding-film" style="position:relative;width:100%;height:{self.height}px">'
            f'<p style="margin:0;padding:8px;color:#666">{html.escape(NOT_SHOWN)}</p>{frame}</div>'
        )

    def __repr__(self) -> str:
        where = str(self.source) if self.source else "built from the run folder"
        return f"<FilmView {self.title!r}: {len(self.page):,} characters, {where}>"


PathLike = str | os.PathLike[str]


def show_film(
    run: PathLike,
    *,
    compare: PathLike | Sequence[PathLike] | None = None,
    height: int = DEFAULT_HEIGHT,
    max_points: int = 10_000,
) -> FilmView | None:
    """Show the explorable page of the run folder `run` (e.g. "results/my-run") in the notebook, wherever the
    call is in the cell (as plotly's show does), and return None; outside IPython, return the FilmView (its
    `page` is the HTML). The arguments are film_view's."""
    view = film_view(run, compare=compare, height=height, max_points=max_points)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return view
    if get_ipython() is None:
        return view
    display(view)
    return None


def film_view(
    run: PathLike,
    *,
    compare: PathLike | Sequence[PathLike] | None = None,
    height: int = DEFAULT_HEIGHT,
    max_points: int = 10_000,
) -> FilmView:
    """The explorable page of the run folder `run` (e.g. "results/my-run"), to show in a notebook.

    With `compare` (another run folder, or several), the comparison page of `run` and those runs, in that
    order. The page is the run's film.html when it is at least as new as the run's newest projection,
    otherwise built from the checkpoints filmed so far (`max_points` images at most, a seeded sample beyond);
    the comparison page is the workflow's when it shows exactly these runs and is up to date, otherwise built
    with each run in its own layout. `height` is the frame's height in pixels; it is as wide as the notebook.
    Relative paths are relative to the current directory.
    """
    if not isinstance(height, int) or isinstance(height, bool) or height < 100:
        raise UserError(f"height={height!r} is not a frame height; give a whole number of pixels, at least 100.")
    if compare is None or (not isinstance(compare, (str, os.PathLike)) and len(compare) == 0):
        page, source = film_page(run, max_points=max_points)
        return FilmView(page, height=height, title=f"Embedding film: {Path(run).resolve().name}", source=source)
    others = [compare] if isinstance(compare, (str, os.PathLike)) else list(compare)
    runs = [run, *others]
    page, source = compare_page(runs, max_points=max_points)
    title = "Runs compared: " + ", ".join(Path(r).resolve().name for r in runs)
    return FilmView(page, height=height, title=title, source=source)
