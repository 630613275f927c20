"""The conda environments (envs/*.yaml) that `--sdm conda` builds per rule, e.g. on a cluster: pinned, in
agreement with requirements.txt (what `make` installs into .venv and what the tests run with), and
holding what each rule's script imports. No conda is needed: the files are read, not built."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from conftest import REPO, make_workdir, snakemake

from embedding_film.runtime.code_inputs import module_file

ENVS = sorted((REPO / "envs").glob("*.yaml"))
# In requirements.txt for what runs outside the jobs' scripts: the workflow engine and its config checks, the
# tests, the package's build, the notebook view and its test.
TOOLING = {"snakemake", "jsonschema", "pyyaml", "pytest", "ruff", "snakefmt", "playwright", "hatchling"}
TOOLING |= {"ipython", "ipykernel", "nbclient", "nbformat"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = PIN.match(line)
            assert m, f"requirements.txt: '{line}' is not pinned as name==version"
            pins[norm(m.group(1))] = m.group(2)
    return pins


def env_pins(env: Path) -> tuple[dict[str, str], dict[str, str]]:
    """({conda package: spec}, {pip package: version}) of one environment file."""
    spec = yaml.safe_load(env.read_text())
    conda, pip = {}, {}
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                m = PIN.match(line.strip())
                assert m, f"{env.name}: pip requirement '{line}' is not pinned as name==version"
                pip[norm(m.group(1))] = m.group(2)
        else:
            name, _, version = str(dep).partition("=")
            conda[name] = version
    return conda, pip


@pytest.mark.parametrize("env", ENVS, ids=[e.stem for e in ENVS])
def test_env_pins_agree_with_requirements(env: Path) -> None:
    reqs = requirements()
    conda, pip = env_pins(env)
    assert set(conda) == {"python", "pip"}, f"{env.name}: conda packages besides python/pip: {conda}"
    assert conda["python"] == f"{sys.version_info.major}.{sys.version_info.minor}", (
        f"{env.name} pins python={conda['python']}; the workflow and tests run on {sys.version_info[:2]}"
    )
    assert pip, f"{env.name} installs nothing"
    for name, version in pip.items():
        assert name in reqs, f"{env.name} pins {name}=={version}, which requirements.txt does not have"
        assert reqs[name] == version, f"{env.name} pins {name}=={version}, requirements.txt {name}=={reqs[name]}"


def test_every_script_requirement_is_in_some_env() -> None:
    in_envs = set().union(*(env_pins(e)[1] for e in ENVS))
    missing = set(requirements()) - TOOLING - in_envs
    assert not missing, f"requirements.txt packages that no envs/*.yaml installs: {sorted(missing)}"


def test_venv_runs_the_pinned_versions() -> None:
    # What `make` installed is what requirements.txt says (a CUDA build's local suffix, +cu126, aside).
    for name, version in requirements().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is in requirements.txt but not installed; run `make test` (it reinstalls)")
        assert installed.split("+")[0] == version, f"{name}: installed {installed}, requirements.txt {version}"


# ------------------------------------------------------------------ each rule's env covers its script


def rule_blocks() -> list[tuple[str, Path, Path]]:
    """(rule, conda env, adapter script) for every rule whose params name an adapter (job_params("<rule>")),
    from rules/*.smk; a `use rule A as B with:` rule runs in A's environment."""
    found, envs = [], {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"\n(?=(?:use )?rule\b)", text)[1:]:
            derived = re.match(r"use rule (\w+) as (\w+) with:", block)
            name = derived.group(2) if derived else re.match(r"rule (\w+)", block).group(1)
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            if conda:
                envs[name] = (smk.parent / conda.group(1)).resolve()
            elif derived:
                envs[name] = envs[derived.group(1)]
            adapter = re.search(r'job_params\(\s*"(\w+)"', block)
            if adapter:
                assert name in envs, f"{smk.name}: rule {name} runs a job but has no conda: environment"
                assert adapter.group(1) == name, f"{smk.name}: rule {name} runs {adapter.group(1)}.py, not {name}.py"
                found.append(
                    (name, envs[name], REPO / "workflow_scripts" / "embedding_film" / "adapters" / f"{name}.py")
                )
    return found


def imported_modules(script: Path, seen: set[Path] | None = None, top_level_only: bool = False) -> set[str]:
    """Top-level names of the third-party modules a script imports, following embedding_film.* modules
    (their module-level imports, which run on import)."""
    seen = seen if seen is not None else set()
    if script in seen:
        return set()
    seen.add(script)
    tree = ast.parse(script.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    modules: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.startswith("embedding_film."):
                local = module_file(name, REPO)
                if local is not None:
                    modules |= imported_modules(local, seen, top_level_only=True)
            elif name.split(".")[0] not in sys.stdlib_module_names:
                modules.add(name.split(".")[0])
    return modules


def closure(packages: set[str]) -> set[str]:
    """The packages plus everything they depend on (as installed in this venv)."""
    todo, done = list(packages), set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" in req:
                continue
            todo.append(norm(re.match(r"[A-Za-z0-9._-]+", req).group(0)))
    return done


def test_each_rule_env_provides_what_its_script_imports() -> None:
    dists = {mod: [norm(d) for d in ds] for mod, ds in metadata.packages_distributions().items()}
    problems = []
    rules = rule_blocks()
    assert {"train", "embed", "ood", "project", "frame", "animate", "loss_curve"} <= {r for r, _, _ in rules}
    for rule, env, script in rules:
        available = closure(set(env_pins(env)[1]))
        for module in sorted(imported_modules(script)):
            owners = dists.get(module)
            if owners is None:
                problems.append(f"{rule}: {script.name} imports {module}, which no installed package provides")
            elif not set(owners) & available:
                problems.append(f"{rule}: {script.name} imports {module} ({owners[0]}), not in {env.name}")
    assert not problems, "\n".join(problems)


def test_each_rule_runs_in_the_worker_of_its_env() -> None:
    """A warm worker preloads every adapter of its kind in one Python: the kind must be the rule's env."""
    from embedding_film.runtime.client import KIND_OF

    rules = rule_blocks()
    assert {rule for rule, _, _ in rules} == set(KIND_OF), "every rule that runs a job has a worker kind, and back"
    for rule, env, script in rules:
        assert script.is_file(), f"rule {rule} has no adapter {script.name}"
        assert KIND_OF[rule] == env.stem, f"rule {rule} runs in envs/{env.name} but in the {KIND_OF[rule]} worker"


def test_lint_asks_for_no_conda_env(tmp_path: Path) -> None:
    # `snakemake --lint` flags any rule without conda:/container:; tests/workflow/test_workflow.py checks it is clean.
    proc = snakemake(make_workdir(tmp_path), "--lint", check=False)
    assert "Specify a conda environment" not in proc.stdout + proc.stderr
