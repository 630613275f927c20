"""The workflow's files and a film's settings, for the entries that start it from Python or a shell
(the Trainer callback, the `embedding-film` command, the watcher).

The workflow's files (Snakefile, rules/, schemas/, profiles/, envs/, report/, configs/, config.yaml) sit
beside workflow_scripts/ in a checkout and are copied into the package as `embedding_film/workflow/` by
`pip install .` (pyproject.toml); `workflow_folder()` finds them either way. `film_settings` checks keyword
settings against the config schema the Snakefile validates with, before anything runs, and says what is
wrong in one sentence.
"""

from __future__ import annotations

import copy
import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from embedding_film.film.common import UserError

PACKAGE = Path(__file__).resolve().parents[1]


def workflow_folder() -> Path:
    """The folder that holds the Snakefile: the package's copy when installed, else the checkout's root."""
    for folder in (PACKAGE / "workflow", PACKAGE.parents[1]):
        if (folder / "Snakefile").is_file():
            return folder
    raise UserError(f"no Snakefile found in {PACKAGE / 'workflow'} or {PACKAGE.parents[1]}; reinstall embedding-film.")


@cache
def schema() -> dict[str, Any]:
    """The config schema (schemas/config.schema.yaml)."""
    return yaml.safe_load((workflow_folder() / "schemas" / "config.schema.yaml").read_text())


def default_config() -> dict[str, Any]:
    """The workflow's config.yaml (the embedded default), as Snakemake reads it before any --configfile."""
    return yaml.safe_load((workflow_folder() / "config.yaml").read_text()) or {}


def merged(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`base` updated with `new`, nested mappings merged key by key (how Snakemake merges config files)."""
    out = copy.deepcopy(base)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def schema_error(cfg: dict[str, Any]) -> str | None:
    """The first way `cfg` breaks the schema, as one sentence naming the setting, or None when it is valid."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(cfg))
    if error is None:
        return None
    where = ".".join(map(str, error.absolute_path)) or "the settings"
    if error.validator == "additionalProperties" and not error.absolute_path:
        return f"{error.message.replace('were unexpected', 'are not settings')}; see `embedding-film --help` for every setting."
    return f"{where}: {error.message}; see `embedding-film --help` for what it takes."


def film_settings(settings: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """`settings` (a film's config keys, nested as in config.yaml) over `base` (default: the workflow's
    config.yaml), checked against the schema and completed with its defaults (Snakemake's validate, as the
    Snakefile does), so it is the whole config a film runs with. Raises UserError with one sentence when a key
    is unknown or a value is not what the schema takes."""
    from snakemake.utils import validate

    cfg = merged(default_config() if base is None else base, settings)
    if message := schema_error(cfg):
        raise UserError(message)
    validate(cfg, str(workflow_folder() / "schemas" / "config.schema.yaml"), set_default=True)  # as the Snakefile
    return cfg


def write_settings(cfg: dict[str, Any], path: str | Path) -> Path:
    """Write `cfg` as YAML to `path` (a temporary file, then renamed: never half a config)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.replace(tmp, path)
    return path
