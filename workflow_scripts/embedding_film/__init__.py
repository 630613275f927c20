"""embedding_film: film how a vision model's embedding space changes while it is fine-tuned.

    from embedding_film import FilmCallback, show_film

FilmCallback (api/callback.py) films a Trainer's checkpoints while it trains; show_film (api/notebook.py)
shows a film in a notebook; the `embedding-film` command (cli/command.py) runs the workflow from a shell.
Both names load on first use: every job of the workflow imports this package, and neither should pay for
transformers or IPython.
"""

import importlib
from typing import Any

_EXPORTS = {"FilmCallback": "embedding_film.api.callback", "show_film": "embedding_film.api.notebook"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'embedding_film' has no attribute {name!r}")
