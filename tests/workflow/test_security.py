"""Nothing unsafe is loaded, and config paths cannot escape results/{run}/."""

import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, make_workdir, snakemake

# Where a pattern may appear (the opt-in path for pickled checkpoints goes through transformers'
# from_pretrained with use_safetensors=None, not through any of these).
# The tests of that opt-in path write a pickle-only checkpoint on purpose and load it with the setting on.
ALLOWED: dict[str, set[str]] = {
    "pickle": {"tests/film/test_models.py"},
    "allow_pickle=True": {"tests/film/test_models.py"},
}
PATTERNS = {
    "pickle": re.compile(r"import pickle|from pickle|pickle\.loads?\(|joblib\.load\("),
    "torch.load(": re.compile(r"torch\.load\("),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "trust_remote_code=True": re.compile(r"trust_remote_code\s*=\s*True"),
}


def code_files() -> list[Path]:
    """Every source file of the project (tracked or new, not git-ignored), this test excluded."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = [REPO / f for f in listed if f == "Snakefile" or Path(f).suffix in {".py", ".smk", ".yaml", ".sh"}]
    return [f for f in files if f.is_file() and f.name != "test_security.py"]


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_no_unsafe_loading_in_the_code_base(name: str) -> None:
    hits = []
    for path in code_files():
        rel = path.relative_to(REPO).as_posix()
        if rel in ALLOWED.get(name, set()):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if PATTERNS[name].search(line):
                hits.append(f"{rel}:{number}: {line.strip()}")
    assert not hits, f"{name} found outside the opt-in path:\n" + "\n".join(hits)


def test_the_scan_would_catch_a_violation(tmp_path: Path) -> None:
    line = "state = torch.load(path)  # trust_remote_code=True"
    assert PATTERNS["torch.load("].search(line) and PATTERNS["trust_remote_code=True"].search(line)


@pytest.mark.parametrize("run", ["../escape", "a/b", ".hidden", "/abs"])
def test_run_names_that_leave_results_are_refused(tmp_path: Path, run: str) -> None:
    workdir = make_workdir(tmp_path, {"run": run})
    proc = snakemake(workdir, "-n", "--configfile", "test.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "does not match" in out and "run" in out
    assert not (tmp_path.parent / "escape").exists()
