"""Build a finished run's film page by hand: `python -m embedding_film.cli.build_page results/demo`.

Every checkpoint whose projection/{step}.npy exists is filmed; the page goes to {run}/film.html unless --out.
With the training dynamics' files (dynamics.parquet, dynamics_trace.npz, data/train_thumbnails.npy) the page
has a data map of the training images.
"""

import argparse
import json
import sys
from pathlib import Path

from embedding_film.api.pages import run_film_data, run_steps
from embedding_film.film.common import UserError
from embedding_film.film.page import build_film_html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embedding_film.cli.build_page", description=__doc__)
    parser.add_argument("run", help="a finished run folder, e.g. results/demo")
    parser.add_argument("--out", help="the page (default: RUN/film.html)")
    parser.add_argument("--max-points", type=int, default=10_000, help="subsample above this many images (seeded)")
    parser.add_argument("--top-k", type=int, default=8, help="outliers marked with their rank per checkpoint")
    parser.add_argument("--title", help="page title (default: the run folder's name)")
    args = parser.parse_args(argv)
    run = Path(args.run)
    try:
        data = run_film_data(run, run_steps(run), top_k=args.top_k)
        summary = build_film_html(
            data,
            args.out or str(run / "film.html"),
            max_points=args.max_points,
            title=args.title or f"Embedding film: {run.name}",
        )
    except UserError as err:
        print(err, file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
