"""The code a rule's job runs: its adapter and every workflow_scripts module that imports, as Python resolves them.

A rule lists these files among its inputs (rules/jobs.smk, `code_files`), so editing a module reruns the jobs
whose code it is, and no other: editing the learned map (film/param_map.py) replans the layout, not the frames.
Imports are read from the source (every `import` and `from ... import` statement, function-level ones
included), not executed, so the workflow pays no import when it is parsed. A module's file is what Python
would load for its dotted name (`a/b.py` or `a/b/__init__.py`), with the `__init__.py` of every package above
it (Python runs those first) unless it is empty; `from package import name` also counts `name` when it is a
submodule. A package
that reads files of its own (the film page's templates and scripts) brings every non-Python file in its
folder and its plain subfolders.

Standard library only (the Snakefile imports it).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "workflow_scripts"


def code_inputs(rule: str, root: str | Path) -> list[str]:
    """Sorted absolute paths of the code rule `rule` runs (`root`: the folder that holds workflow_scripts/)."""
    root = Path(root).resolve()
    files: set[Path] = set()
    todo, seen = [f"{PACKAGE}.adapters.{rule}"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name, root)
        if path is None:
            continue
        if path.stat().st_size:  # an empty package marker carries no code (and each input costs the planner)
            files.add(path)
        if path.name == "__init__.py":
            files.update(_package_data(path.parent))
        todo.extend(imported_modules(path, root))
        todo.append(name.rpartition(".")[0])  # Python runs the package's __init__.py first
    return sorted(str(f) for f in files)


def module_file(name: str, root: Path) -> Path | None:
    """The file Python loads for the dotted module `name` under `root`, or None when there is none."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@cache
def imported_modules(path: Path, root: Path) -> tuple[str, ...]:
    """The workflow_scripts modules the file `path` imports anywhere in its body."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == PACKAGE:
            names.append(node.module)
            # `from package import module` imports the submodule too
            names += [f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}", root)]
    return tuple(names)


def _package_data(folder: Path) -> list[Path]:
    """Non-Python files of a package folder and of its subfolders that are not packages themselves."""
    out = []
    for path in folder.iterdir():
        if path.is_file() and path.suffix not in (".py", ".pyc"):
            out.append(path)
        elif path.is_dir() and path.name != "__pycache__" and not (path / "__init__.py").exists():
            out += [p for p in path.rglob("*") if p.is_file()]
    return out
