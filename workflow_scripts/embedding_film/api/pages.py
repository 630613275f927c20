"""A run folder's film page, and the comparison page of several run folders, as HTML text, without Snakemake.

`film_page(run)` is the workflow's results/{run}/film.html when it is at least as new as the run's newest
projection file; otherwise (the film is still being made, or the page was never built) the page is built from
the checkpoints filmed so far, as `python -m embedding_film.cli.build_page` builds it (`run_film_data` is what
both read). `compare_page(runs)` is the workflow's results/compare/{name}/film.html when one was made for
exactly these runs, in this order, after their newest projection; otherwise it is built from the runs' own
folders, each panel in its run's own layout, on the workflow's clock (the same training step when every run
ends at the same step, else the same fraction of each run's training).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from embedding_film.film.common import UserError
from embedding_film.film.page import FilmData, build_film_html, film_data_from_run
from embedding_film.film.page.compare import build_compare_html, common_clock, compare_data_from_runs
from embedding_film.film.page.data_map import data_map_from_run

SEPARATE_LAYOUTS = "each run in its own layout (built from the run folders): compare shapes, not positions"
CLOCKS = {"step": "the same training step", "fraction": "the same fraction of each run's training"}


def run_steps(run: Path) -> list[int]:
    """The steps with a projection file, in order."""
    return sorted(int(p.stem) for p in (run / "projection").glob("*.npy") if p.stem.isdigit())


def filmed_steps(run: Path) -> list[int]:
    """The steps filmed so far: those with both a projection and an OOD score file, in order."""
    return [s for s in run_steps(run) if (run / "ood" / f"{s}.npy").is_file()]


def run_film_data(run: Path, steps: Sequence[int], top_k: int = 8) -> FilmData:
    """The run folder's FilmData for `steps`, with the data map of the training images when the run holds the
    training dynamics' files (dynamics.parquet, dynamics_trace.npz, data/train_thumbnails.npy)."""
    data = film_data_from_run(str(run), steps, top_k=top_k)
    dynamics = [run / "dynamics.parquet", run / "dynamics_trace.npz", run / "data" / "train_thumbnails.npy"]
    if all(p.is_file() for p in dynamics):
        data.data_map = data_map_from_run(*map(str, dynamics), str(run / "data" / "label_noise.csv"))
    return data


def newest_projection(run: Path) -> int:
    """The newest mtime (ns) of the run's projection/*.npy files; 0 when there is none."""
    return max((p.stat().st_mtime_ns for p in (run / "projection").glob("*.npy")), default=0)


def checked_run(run: str | Path) -> Path:
    """`run` as a Path, when it is a folder; else a UserError saying so."""
    path = Path(run).expanduser()
    if not path.is_dir():
        raise UserError(
            f"the run folder {path} does not exist; give a folder the workflow writes, e.g. results/my-run."
        )
    return path


def filmed(run: Path) -> list[int]:
    """The run's filmed steps; a UserError when it has none yet."""
    steps = filmed_steps(run)
    if not steps:
        raise UserError(
            f"{run} holds no filmed checkpoint yet (no projection/{{step}}.npy with its ood/{{step}}.npy); "
            "run the workflow until it films one."
        )
    return steps


def built(write: Callable[[str], object]) -> str:
    """The text of the page `write(path)` writes, written to a temporary folder that is then removed."""
    with tempfile.TemporaryDirectory(prefix="embedding-film-") as folder:
        out = Path(folder) / "film.html"
        write(str(out))
        return out.read_text(encoding="utf-8")


def film_page(run: str | Path, *, max_points: int = 10_000, top_k: int = 8) -> tuple[str, Path | None]:
    """(the run's film page, the file it was read from, or None when it was built from the run folder now)."""
    path = checked_run(run)
    page = path / "film.html"
    if page.is_file() and page.stat().st_mtime_ns >= newest_projection(path):
        return page.read_text(encoding="utf-8"), page
    data = run_film_data(path, filmed(path), top_k=top_k)
    title = f"Embedding film: {path.resolve().name}"
    return built(lambda out: build_film_html(data, out, max_points=max_points, title=title)), None


def page_runs(page: Path) -> list[str] | None:
    """The run names a comparison page shows (its metadata's "runs"), or None when it holds none."""
    text = page.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="film-meta">(.*?)</script>', text, re.S)
    try:
        runs = json.loads(found.group(1)).get("runs") if found else None
    except ValueError:
        return None
    return runs if isinstance(runs, list) else None


def workflow_comparison(runs: Sequence[Path]) -> Path | None:
    """The workflow's comparison page of exactly `runs` (results/compare/*/film.html beside the run folders),
    when it is at least as new as every run's newest projection; else None."""
    parents = {run.resolve().parent for run in runs}
    if len(parents) != 1:
        return None
    names = [run.resolve().name for run in runs]
    newest = max(newest_projection(run) for run in runs)
    for page in sorted(parents.pop().glob("compare/*/film.html")):
        if page.stat().st_mtime_ns >= newest and page_runs(page) == names:
            return page
    return None


def compare_page(runs: Sequence[str | Path], *, max_points: int = 10_000, top_k: int = 8) -> tuple[str, Path | None]:
    """(the comparison page of `runs`, in this order, the file it was read from, or None when it was built now)."""
    paths = [checked_run(run) for run in runs]
    seen: dict[Path, Path] = {}
    for path in paths:
        if (twin := seen.setdefault(path.resolve(), path)) is not path:
            raise UserError(f"the run folder {path} is given twice (also as {twin}); list each run once.")
    page = workflow_comparison(paths)
    if page is not None:
        return page.read_text(encoding="utf-8"), page
    steps = [filmed(path) for path in paths]
    names = [path.resolve().name for path in paths]
    if len(set(names)) < len(names):
        names = [str(path) for path in paths]
    which, ticks, shown = common_clock(steps)
    try:
        data = compare_data_from_runs(
            [str(p) for p in paths], names, steps, shown.tolist(), ticks, CLOCKS[which], SEPARATE_LAYOUTS, top_k=top_k
        )
    except ValueError as err:  # the runs do not fit together (other eval images): the message names the run
        raise UserError(f"{err}.") from None
    title = f"Runs compared: {', '.join(names)}"
    return built(lambda out: build_compare_html(data, out, max_points=max_points, title=title)), None
