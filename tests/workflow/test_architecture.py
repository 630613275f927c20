"""The package's layering: the film's library, one adapter per rule, the job runtime and the command-line tools,
importing one way only (cli, runtime -> adapters -> film), with no cycle; and each rule's code inputs are its
adapter and exactly the modules it imports, as Python resolves them."""

from __future__ import annotations

import ast
import hashlib
import re
from modulefinder import ModuleFinder
from pathlib import Path

import pytest

from embedding_film.runtime.code_inputs import code_digest, code_inputs, module_file

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "workflow_scripts"  # the source folder that holds the embedding_film package
PACKAGE = SRC / "embedding_film"
# a layer may import its own and the layers after it in this list, never one before it
LAYERS = ["cli", "api", "runtime", "adapters", "film"]
RULES = sorted(p.stem for p in (PACKAGE / "adapters").glob("*.py") if p.stem != "__init__")


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(path: Path) -> set[str]:
    """Every embedding_film module `path` imports, function-level imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n.startswith("embedding_film.") and module_file(n, SRC)}
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


GRAPH = {name: imports_of(path) - {name} for name, path in modules().items()}


def test_every_module_lives_in_a_layer() -> None:
    stray = [m for m in GRAPH if m != "embedding_film" and layer(m) is None]
    assert not stray, f"modules outside film/, adapters/, runtime/, api/, cli/: {stray}"


def test_imports_run_one_way() -> None:
    upward = [
        f"{m} -> {n}"
        for m, targets in GRAPH.items()
        for n in targets
        if layer(m) and layer(n) and LAYERS.index(layer(n)) < LAYERS.index(layer(m))
    ]
    assert not upward, "imports against the layering: " + "; ".join(sorted(upward))


def test_no_adapter_imports_another_adapter() -> None:
    crossing = [
        f"{m} -> {n}"
        for m, targets in GRAPH.items()
        if layer(m) == "adapters"
        for n in targets
        if layer(n) == "adapters" and n != "embedding_film.adapters"
    ]
    assert not crossing, crossing


def test_the_import_graph_has_no_cycle() -> None:
    """Packages' __init__ edges aside (a submodule's import of its own package is how Python loads it), no
    module reaches itself through the imports."""

    def deps(m: str) -> set[str]:
        return {n for n in GRAPH.get(m, ()) if not m.startswith(n + ".")}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in deps(m):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n) :] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in GRAPH:
        if m not in state:
            visit(m)


def test_the_layering_check_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from embedding_film.adapters.ood import main\n")
    assert imports_of(source) == {"embedding_film.adapters.ood"}


def test_every_rule_with_a_shell_command_has_its_adapter() -> None:
    smk = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    called = set(re.findall(r'job_params\(\s*"(\w+)"', smk)) | set(re.findall(r'code_files\("(\w+)"\)', smk))
    assert called and called <= set(RULES), sorted(called - set(RULES))


@pytest.mark.parametrize("rule", RULES)
def test_a_rules_code_inputs_are_what_python_imports_for_its_adapter(rule: str) -> None:
    """code_inputs reads the source; the standard library's ModuleFinder follows the compiled code's imports
    (function-level ones too) the way Python resolves them. Both must name the same embedding_film files."""
    finder = ModuleFinder(path=[str(SRC)])
    finder.import_hook(f"embedding_film.adapters.{rule}")
    python = {
        Path(m.__file__).resolve()
        for name, m in finder.modules.items()
        if name.startswith("embedding_film")
        and m.__file__
        and Path(m.__file__).stat().st_size  # empty markers: no code
    }
    ours = {Path(p) for p in code_inputs(rule, SRC)}
    assert {p for p in ours if p.suffix == ".py"} == python
    data = {p for p in ours if p.suffix != ".py"}
    if any(p.parent.name == "page" for p in python):
        assert PACKAGE / "film" / "page" / "film.js" in data  # the page's scripts and templates are its code too
    else:
        assert not data


@pytest.mark.parametrize("rule", RULES)
def test_a_rules_code_file_lists_its_code_inputs_with_their_hashes(rule: str, tmp_path: Path) -> None:
    """The one file a rule's jobs list for their code (code_files in rules/jobs.smk) names exactly its code
    inputs, relative to the workflow's folder, each with the sha256 of what it holds now."""
    written = Path(code_digest(rule, SRC, tmp_path)).read_text().splitlines()
    expected = [
        f"{hashlib.sha256(Path(p).read_bytes()).hexdigest()}  {Path(p).relative_to(SRC)}"
        for p in code_inputs(rule, SRC)
    ]
    assert written == expected


def test_editing_the_learned_map_replans_no_per_checkpoint_job_of_a_pca_film() -> None:
    """The per-checkpoint stages that never touch the learned map do not list it."""
    for rule in ("embed", "ood", "label_issues", "metrics", "frame", "tween", "compare_frame"):
        assert not any(p.endswith("param_map.py") for p in code_inputs(rule, SRC)), rule


def test_the_tests_follow_the_same_layout() -> None:
    """tests/<layer>/ for the library, the adapters, the runtime, the Python entry points and the tools, beside tests/workflow/ (Snakemake
    end to end) and tests/benchmarks/ (the harness); only the shared conftest.py at the top."""
    tests = ROOT / "tests"
    folders = {p.parent.name for p in tests.rglob("test_*.py")}
    assert folders == {"film", "adapters", "runtime", "api", "cli", "workflow", "benchmarks"}, folders
    assert [p.name for p in tests.glob("*.py")] == ["conftest.py"]
