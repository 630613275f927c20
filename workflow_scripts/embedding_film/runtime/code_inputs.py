"""The code a rule's job runs: its adapter and every workflow_scripts module that imports, as Python resolves them.

A rule lists one file that stands for them among its inputs (rules/jobs.smk, `code_files`; `code_digest` writes
it: each file with its content hash, rewritten only when a hash changes), so editing a module reruns the jobs
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
import hashlib
import os
from functools import cache
from pathlib import Path

PACKAGE = "embedding_film"


def code_inputs(rule: str, root: str | Path) -> list[str]:
    """Sorted absolute paths of the code rule `rule` runs (`root`: the folder that holds workflow_scripts/embedding_film/)."""
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


def code_digest(rule: str, root: str | Path, folder: str | Path) -> str:
    """The path of `folder`/<rule>.txt, the one file that stands for the code of rule `rule` among its job's inputs.

    It lists each of `code_inputs(rule, root)` as the sha256 of its content and its path relative to `root`
    (`sha256sum`'s format: `sha256sum -c` checks it from `root`), and is (re)written only when that text differs
    from what it holds, so its mtime moves when, and only when, the rule's code changes: Snakemake's mtime check
    then reruns the jobs whose code changed, and the planner checks one input per job instead of ten. Written
    where it is missing, it takes the newest code file's mtime, so a new or cleaned `.snakemake/` reruns nothing
    that the code files themselves would not. The write is atomic (_write). Beside it, `<rule>.state` holds the
    package's tree_state when the file was last found right: while that holds, no file is read."""
    root = Path(root).resolve()
    path = Path(folder) / f"{rule}.txt"
    stamp = path.with_suffix(".state")  # the package's tree_state when `path` was last found right
    state = tree_state(root)
    try:
        if stamp.read_text() == state and path.is_file():
            return str(path)  # no file of the package changed since: neither did the rule's code
    except FileNotFoundError:
        pass
    files = [Path(p) for p in code_inputs(rule, root)]
    text = "".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.relative_to(root)}\n" for f in files)
    try:
        if path.read_text() == text:
            _write(stamp, state)
            return str(path)
        newest = None  # the code changed: now
    except FileNotFoundError:
        newest = max((f.stat().st_mtime_ns for f in files), default=None)
    _write(path, text, newest)
    _write(stamp, state)
    return str(path)


def _write(path: Path, text: str, mtime_ns: int | None = None) -> None:
    """Write `path` whole: a temporary file of this process, renamed (processes parsing side by side never see
    half a file); with `mtime_ns`, the file's mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    if mtime_ns is not None:
        os.utime(tmp, ns=(mtime_ns, mtime_ns))
    os.replace(tmp, path)


@cache
def tree_state(root: Path) -> str:
    """A digest of what `stat` says of every file of the package under `root` (path, size, mtime, inode): while it
    is unchanged, so is every rule's code, and code_digest reads no file (a Snakemake run saves the parsing and
    hashing of every module). Any write, copy or checkout of a file changes it."""
    digest = hashlib.sha256()
    for folder, subfolders, names in os.walk(root / PACKAGE):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(names):
            st = os.stat(os.path.join(folder, name))
            digest.update(f"{folder}/{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
    return digest.hexdigest()


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
