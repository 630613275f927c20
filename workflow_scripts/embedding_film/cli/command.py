"""`embedding-film film`: film a Trainer's checkpoints with one command, from any folder.

    embedding-film film --checkpoints DIR [--model M] [--dataset D] [--run NAME] [--cores N]
                        [--profile slurm] [--watch] [--SECTION.SETTING VALUE ...] [SNAKEMAKE OPTIONS ...]

The settings come from the workflow's config.yaml, then each --configfile, then --config KEY=VALUE, then the
options on the command line (every setting of schemas/config.schema.yaml is an option in dotted form,
`--ood.k 10`, its value read as YAML). The merged, checked, complete config (every setting, defaults
included) is written to results/{run}/film_config.yaml under the working directory (or --directory) and the
packaged workflow runs on it in this process, through Snakemake's own argument handling, with
--replace-workflow-config (a config.yaml in the working directory is not read). Every option this command
does not know goes to Snakemake as it is (-n, --forceall, --keep-going, --executor slurm, targets, ...). A
dry run, a listing or a graph writes the config to .snakemake/embedding-film/ instead, so nothing is made
under results/. --watch runs the live watcher (cli/watch.py) on the written config instead of one run.

The help lists every setting with its description and default, generated from the schema. A mistake the
user can fix (an unknown setting, a value of the wrong type, a missing checkpoints folder, an option
Snakemake does not know) is one sentence on stderr and exit status 2, before anything is written; otherwise
the exit status is Snakemake's (0 or 1).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from embedding_film.api.settings import default_config, film_settings, merged, schema, workflow_folder, write_settings
from embedding_film.film.common import UserError

PROG = "embedding-film"
USAGE = (
    f"{PROG} film [--checkpoints DIR] [--model M] [--dataset D] [--run NAME] [--cores N] [--profile P] [--watch]\n"
    f"{' ' * 27}[--configfile F ...] [--SECTION.SETTING VALUE ...] [SNAKEMAKE OPTIONS ...]"
)
CONFIG_NAME = "film_config.yaml"
DESCRIPTION = """Film how a vision model's embedding space changes over a fine-tuning's checkpoints (a Snakemake workflow).

The settings come from the workflow's config.yaml, then --configfile, then --config, then the options below
(values read as YAML). The complete config is written to results/{run}/film_config.yaml and the workflow runs
on it; --run defaults to the checkpoints folder's name. Options not listed here go to Snakemake."""
EPILOG = """Every other option goes to Snakemake as it is (`snakemake --help` lists them): -n prints the plan
without running it, --forceall reruns everything, --keep-going, --executor, targets. docs/command.md has
examples. `embedding-film workers [--stop]` lists (ends) the warm workers a run leaves for the next one."""
RUN_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")  # the schema's pattern for run
# Snakemake modes that only plan, list or draw: their config goes to .snakemake/embedding-film/, not results/
PLAN_ONLY = (
    "dryrun",
    "lint",
    "list_rules",
    "list_target_rules",
    "dag",
    "rulegraph",
    "filegraph",
    "d3dag",
    "summary",
    "detailed_summary",
    "list_changes",
    "list_input_changes",
    "list_params_changes",
    "list_untracked",
    "print_compilation",
)
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list,),
    "object": (dict,),
}


# --- the settings, from the schema --------------------------------------------------------------------------


def sections(node: dict[str, Any] | None = None, prefix: str = "") -> list[tuple[str, str, dict[str, dict]]]:
    """[(section, its description, {dotted setting: its schema})] in the schema's order: the top level's
    settings first, then each section and sub-section (projection.tsne, dataset.label_noise)."""
    node = schema() if node is None else node
    leaves, nested = {}, []
    for key, sub in node.get("properties", {}).items():
        name = f"{prefix}{key}"
        if "properties" in sub:
            nested += sections(sub, f"{name}.")
        else:
            leaves[name] = sub
    here = (prefix.rstrip("."), " ".join(str(node.get("description", "")).split()), leaves)
    return ([here] if leaves else []) + nested


def leaves() -> dict[str, dict]:
    """{dotted setting: its schema} of every leaf setting."""
    return {name: sub for _, _, found in sections() for name, sub in found.items()}


def types_of(leaf: dict[str, Any]) -> list[str]:
    """The JSON types a setting takes (from type, or its enum's values, or its oneOf)."""
    if "type" in leaf:
        return [leaf["type"]] if isinstance(leaf["type"], str) else list(leaf["type"])
    if "enum" in leaf:
        return sorted({next(t for t in JSON_TYPES if is_type(v, t)) for v in leaf["enum"]})
    return [t for option in leaf.get("oneOf", []) for t in types_of(option)]


def is_type(value: Any, json_type: str) -> bool:
    if isinstance(value, bool) and json_type in ("integer", "number"):
        return False
    return isinstance(value, JSON_TYPES[json_type])


def show(value: Any) -> str:
    """A value as YAML on one line (null, true, [gif], builtin:digits)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def value_of(name: str, raw: str, leaf: dict[str, Any]) -> Any:
    """A setting's value from the command line: YAML, read as the setting's type where YAML reads it as
    another (`--run 2024` is the name "2024"; `--training.learning_rate 1e-4` is a number)."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise UserError(f"--{name}: {raw!r} is not a YAML value; quote it or see `{PROG} --help`.") from None
    types = types_of(leaf)
    if any(is_type(value, t) for t in types) or not types:
        return value
    if isinstance(value, str) and {"number", "integer"} & set(types):
        with contextlib.suppress(ValueError):
            number = float(value)
            return int(number) if "integer" in types and number.is_integer() else number
    return raw if "string" in types else value


# --- the command line --------------------------------------------------------------------------------------


class HelpFormatter(argparse.HelpFormatter):
    """Help text wrapped at spaces only (a model id or a path stays whole), paragraphs kept."""

    def __init__(self, prog: str) -> None:
        import shutil

        super().__init__(prog, max_help_position=34, width=min(120, max(60, shutil.get_terminal_size().columns - 2)))

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_long_words=False, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            textwrap.fill(
                " ".join(paragraph.split()),
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
            for paragraph in text.split("\n\n")
        )


class Parser(argparse.ArgumentParser):
    """argparse, with its complaints as one sentence (UserError) instead of the usage and exit 2."""

    def error(self, message: str) -> Any:
        raise UserError(f"{message}; see `{PROG} --help`.")


def parser() -> Parser:
    p = Parser(
        prog=f"{PROG} film",
        usage=USAGE,
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
        allow_abbrev=False,  # --config must not stand for --configfile, nor an abbreviation hide a Snakemake option
        add_help=False,
        epilog=EPILOG,
    )
    run = p.add_argument_group("the command")
    run.add_argument("-h", "--help", action="store_true", help="show this help (every setting) and exit")
    run.add_argument(
        "--configfile",
        "--configfiles",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="YAML files of settings (as config.yaml), merged in order over the workflow's config.yaml",
    )
    run.add_argument(
        "--config",
        "-C",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="top-level settings as Snakemake's --config takes them (after the config files)",
    )
    run.add_argument(
        "--cores", "-c", metavar="N", help="CPU cores to use, or all (default: the profile's; all on this machine)"
    )
    run.add_argument(
        "--profile",
        metavar="P",
        help="a workflow profile: one of the workflow's (default, slurm) or a folder with a config.yaml; "
        "Snakemake's --workflow-profile (default: the workflow's profiles/default)",
    )
    run.add_argument(
        "--directory",
        "-d",
        metavar="DIR",
        help="the working directory: results/ and .snakemake/ go there (default: the current one)",
    )
    run.add_argument(
        "--watch",
        action="store_true",
        help="film the checkpoints folder while it grows: run the workflow again for each new checkpoint "
        "(docs/live.md) until the Trainer's last checkpoint is filmed, --watch-quiet seconds pass without one, "
        "or Ctrl-C",
    )
    run.add_argument(
        "--watch-quiet",
        type=float,
        default=600.0,
        metavar="S",
        help="with --watch: stop after this many seconds without a new checkpoint (default: 600)",
    )
    defaults = default_config()
    for section, description, found in sections():
        group = p.add_argument_group(section or "settings", description if section else None)
        if section == "dataset":
            group.add_argument(
                "--dataset", dest="dataset.name", default=argparse.SUPPRESS, metavar="D", help="= --dataset.name"
            )
        for name, leaf in found.items():
            group.add_argument(
                f"--{name}",
                dest=name,
                default=argparse.SUPPRESS,
                metavar=metavar(leaf),
                help=help_of(name, leaf, defaults),
            )
    return p


def metavar(leaf: dict[str, Any]) -> str:
    if "enum" in leaf:
        return "{" + ",".join(map(show, leaf["enum"])) + "}"
    if leaf.get("items", {}).get("enum"):
        return "[" + "|".join(leaf["items"]["enum"]) + ", ...]"
    names = {"string": "TEXT", "integer": "INT", "number": "NUMBER", "boolean": "true|false", "null": "null"}
    names |= {"array": "[A, B]", "object": "{KEY: VALUE}"}
    return "|".join(names[t] for t in types_of(leaf)) or "YAML"


def help_of(name: str, leaf: dict[str, Any], defaults: dict[str, Any]) -> str:
    """A setting's description and its default (config.yaml's value where it sets one, else the schema's)."""
    value: Any = defaults
    for key in name.split("."):
        value = value.get(key, KeyError) if isinstance(value, dict) else KeyError
    default = leaf.get("default") if value is KeyError else value
    description = " ".join(str(leaf.get("description", "")).split())
    return f"{description} (default: {show(default)})".strip().replace("%", "%%")


def help_text() -> str:
    return parser().format_help()


# --- from the command line to a film ---------------------------------------------------------------------


def unknown_setting(token: str, known: dict[str, dict]) -> str | None:
    """The sentence for an option Snakemake would get that looks like a setting (dotted, or a section's name)."""
    name = token[2:].split("=", 1)[0] if token.startswith("--") else ""
    sections_ = {s.split(".")[0] for s in known if "." in s}
    if "." in name:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" (did you mean --{close[0]}?)" if close else ""
        return f"--{name} is not a setting{hint}; `{PROG} --help` lists every setting."
    if name in sections_:
        return f"--{name} is a section, not a setting; give its settings as --{name}.SETTING VALUE (`{PROG} --help` lists them)."
    return None


def settings_of(args: argparse.Namespace, rest: list[str]) -> tuple[dict[str, Any], set[str]]:
    """The user's settings: the config files, --config, then the options (nested as in config.yaml), and the
    top-level keys they set."""
    known = leaves()
    for token in rest:
        if message := unknown_setting(token, known):
            raise UserError(message)
    layers = []
    for path in args.configfile:
        if not Path(path).is_file():
            raise UserError(f"--configfile {path}: no such file; give a YAML file of settings.")
        try:
            data = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise UserError(f"--configfile {path} is not valid YAML{where}; fix the file.") from None
        if data is not None and not isinstance(data, dict):
            raise UserError(f"--configfile {path} is not a mapping of settings; write it as config.yaml is written.")
        layers.append(data or {})
    if args.config:
        from snakemake.cli import parse_config

        try:
            layers.append(parse_config(args.config))
        except ValueError:
            raise UserError(f"--config takes KEY=VALUE entries, not {' '.join(args.config)!r}.") from None
    options: dict[str, Any] = {}
    for name, raw in vars(args).items():
        if name in known:
            node = options
            *path, last = name.split(".")
            for key in path:
                node = node.setdefault(key, {})
            node[last] = value_of(name, raw, known[name])
    layers.append(options)
    if args.directory:  # a path given here is meant from the current folder, not from --directory
        for section, key in ((options, "checkpoints"), (options, "model"), (options.get("dataset", {}), "name")):
            value = section.get(key)
            if isinstance(value, str) and (key == "checkpoints" or Path(value).exists()):
                section[key] = str(Path(value).resolve())
    out: dict[str, Any] = {}
    for layer in layers:
        out = merged(out, layer)
    return out, {key for layer in layers for key in layer}


def film_config(args: argparse.Namespace, rest: list[str], workdir: Path) -> dict[str, Any]:
    """The complete, checked config of the film the command line asks for."""
    settings, given = settings_of(args, rest)
    cfg = film_settings(settings)
    if "run" not in given and cfg.get("checkpoints") and not cfg.get("runs"):  # named after the folder
        name = (workdir / cfg["checkpoints"]).resolve().name
        if RUN_NAME.match(name) and name != "compare":
            cfg = film_settings({**settings, "run": name})
    if cfg.get("checkpoints") and not args.watch and not (workdir / cfg["checkpoints"]).is_dir():
        raise UserError(
            f"checkpoints: {cfg['checkpoints']} is not a folder; give --checkpoints the Trainer's output_dir "
            "(the folder with the checkpoint-<step> folders)."
        )
    if args.watch and not cfg.get("checkpoints"):
        raise UserError("--watch films a Trainer output folder while it grows; give it as --checkpoints DIR.")
    return cfg  # film_settings filled in every default, as the workflow's validation does


def config_path(cfg: dict[str, Any], workdir: Path) -> Path:
    """Where the config goes: beside the run's results, or the comparison's when several runs are filmed."""
    runs = cfg.get("runs")
    if runs and len(runs) > 1:
        return workdir / "results" / "compare" / cfg["compare"]["name"] / CONFIG_NAME
    name = next(iter(runs)) if isinstance(runs, dict) else Path(runs[0]).name if runs else cfg["run"]
    return workdir / "results" / name / CONFIG_NAME


def profile_folder(name: str) -> Path:
    """--profile: a folder (with a config.yaml), else one of the workflow's profiles/."""
    for folder in (Path(name), workflow_folder() / "profiles" / name):
        if (folder / "config.yaml").is_file():
            return folder.resolve()
    known = ", ".join(sorted(p.name for p in (workflow_folder() / "profiles").iterdir() if p.is_dir()))
    raise UserError(
        f"--profile {name}: no such profile; give one of the workflow's ({known}) or a folder with a config.yaml."
    )


def workflow_profile(args: argparse.Namespace) -> Path:
    """The workflow profile: --profile's, else the workflow's profiles/default (named, so that a profiles/ or
    default/ folder in the working directory is not taken for it)."""
    return profile_folder(args.profile) if args.profile else workflow_folder() / "profiles" / "default"


def snakemake_argv(args: argparse.Namespace, configfile: Path, rest: list[str]) -> list[str]:
    """Snakemake's command line for the film: the packaged workflow on `configfile`, then every option this
    command does not know, as given (so a later --workflow-profile, say, wins)."""
    return [
        "--snakefile",
        str(workflow_folder() / "Snakefile"),
        "--workflow-profile",
        str(workflow_profile(args)),
        "--configfile",
        str(configfile),
        "--replace-workflow-config",
        *(["--cores", args.cores] if args.cores else []),
        *(["--directory", str(Path(args.directory).resolve())] if args.directory else []),
        *rest,
    ]


def parse_snakemake(argv: list[str]) -> tuple[Any, argparse.Namespace]:
    """Snakemake's own parse of `argv` (its profiles read), or its complaint as one sentence."""
    from snakemake.cli import parse_args

    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            sm_parser, sm_args = parse_args(argv)
    except SystemExit:
        lines = [line for line in said.getvalue().splitlines() if line.strip()]
        complaint = lines[-1].split("error:", 1)[-1].strip() if lines else "it could not read its options"
        if executor := re.search(r"--executor.*invalid choice: '([^']+)'", complaint):
            raise UserError(
                f"Snakemake has no executor {executor.group(1)}: install its plugin "
                f"(snakemake-executor-plugin-{executor.group(1)}; for SLURM: pip install 'embedding-film[slurm]' or make slurm)."
            ) from None
        raise UserError(
            f"Snakemake: {complaint}; `snakemake --help` lists its options, `{PROG} --help` the settings."
        ) from None
    except Exception as err:  # a profile it cannot read, a bad value
        raise UserError(f"Snakemake: {' '.join(str(err).split())}; fix the option or the profile.") from None
    sys.stderr.write(said.getvalue())  # "Using workflow specific profile ..."
    return sm_parser, sm_args


def film(argv: list[str]) -> int:
    args, rest = parser().parse_known_args(argv)
    if args.help:
        print(help_text(), end="")
        return 0
    workdir = Path(args.directory).resolve() if args.directory else Path.cwd()
    cfg = film_config(args, rest, workdir)
    target = config_path(cfg, workdir)
    if args.watch:
        return watch(args, cfg, target, workdir, rest)
    sm_parser, sm_args = parse_snakemake(snakemake_argv(args, target, rest))
    if any(getattr(sm_args, mode, False) for mode in PLAN_ONLY):  # nothing is made under results/
        target = workdir / ".snakemake" / "embedding-film" / CONFIG_NAME
        sm_args.configfile = [target]
    write_settings(cfg, target)
    from snakemake.cli import args_to_api
    from snakemake.exceptions import print_exception

    try:
        return 0 if args_to_api(sm_args, sm_parser) else 1
    except Exception as err:
        print_exception(err)
        return 1


def watch(args: argparse.Namespace, cfg: dict[str, Any], target: Path, workdir: Path, rest: list[str]) -> int:
    """--watch: the live watcher on the written config, in the working directory, with the other options
    for Snakemake in every round."""
    from embedding_film.cli import watch as watcher

    extra = ["--workflow-profile", str(workflow_profile(args)), "--replace-workflow-config", *rest]
    parse_snakemake(["--snakefile", str(workflow_folder() / "Snakefile"), *extra, "--configfile", str(target)])
    write_settings(cfg, target)
    os.chdir(workdir)  # the watcher finds the results in its working directory
    cores = args.cores or "all"
    return watcher.main(["--configfile", str(target), "--cores", cores, "--quiet", str(args.watch_quiet), "--", *extra])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if not argv or argv[0] in ("-h", "--help", "help"):
            print(help_text(), end="")
            return 0
        if argv[0] == "workers":
            from embedding_film.cli.workers import main as workers

            return workers(argv[1:])
        if argv[0] != "film":
            raise UserError(
                f"{argv[0]!r} is not a command; run `{PROG} film ...` or `{PROG} workers` (`{PROG} --help` says how)."
            )
        return film(argv[1:])
    except UserError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
