"""The one file per rule that stands for its code among a job's inputs (workflow_scripts/embedding_film/runtime/code_inputs.py,
code_digest): written when missing, left alone (its mtime too) while the rule's code is the same, rewritten when
one of the rule's files changes, and never for a module the rule does not import; no file is read while none of
the package's files changed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from embedding_film.runtime import code_inputs as module
from embedding_film.runtime.code_inputs import code_digest, code_inputs, tree_state

OLD = 1_000_000_000_000_000_000  # ns: 2001, older than anything the tests write


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A tiny embedding_film: two rules' adapters, one library module each, and one they share."""
    package = tmp_path / "embedding_film"
    for folder in ("", "adapters", "film"):
        (package / folder).mkdir(exist_ok=True)
        (package / folder / "__init__.py").write_text("")
    (package / "adapters" / "one.py").write_text("from embedding_film.film import first, shared\n")
    (package / "adapters" / "two.py").write_text("from embedding_film.film import second, shared\n")
    for name in ("first", "second", "shared"):
        (package / "film" / f"{name}.py").write_text(f"NAME = {name!r}\n")
    return tmp_path


@pytest.fixture(autouse=True)
def each_call_a_new_parse() -> None:
    """A Snakemake parse finds the package's state once (tree_state is cached); each call here stands for one."""
    tree_state.cache_clear()
    module.imported_modules.cache_clear()
    yield
    tree_state.cache_clear()


def lines(root: Path, rule: str) -> list[str]:
    return [
        f"{hashlib.sha256(Path(p).read_bytes()).hexdigest()}  {Path(p).relative_to(root)}"
        for p in code_inputs(rule, root)
    ]


def age(path: Path) -> None:
    os.utime(path, ns=(OLD, OLD))


def test_it_is_written_when_missing_and_lists_the_rules_code_with_its_hashes(root: Path, tmp_path: Path) -> None:
    path = Path(code_digest("one", root, tmp_path / "digests"))
    assert path == tmp_path / "digests" / "one.txt"
    assert path.read_text().splitlines() == lines(root, "one")
    assert [line.split("  ")[1] for line in lines(root, "one")] == [
        "embedding_film/adapters/one.py",
        "embedding_film/film/first.py",
        "embedding_film/film/shared.py",
    ]
    assert not list(path.parent.glob("*.tmp"))


def test_a_new_file_takes_the_newest_code_files_mtime(root: Path, tmp_path: Path) -> None:
    """A new or cleaned .snakemake/ makes no job stale that the code files themselves would not."""
    for p in code_inputs("one", root):
        age(Path(p))
    os.utime(root / "embedding_film" / "film" / "first.py", ns=(OLD + 5, OLD + 5))
    assert Path(code_digest("one", root, tmp_path / "digests")).stat().st_mtime_ns == OLD + 5


def test_it_is_not_rewritten_while_the_code_is_the_same(root: Path, tmp_path: Path) -> None:
    path = Path(code_digest("one", root, tmp_path / "digests"))
    age(path)
    (root / "embedding_film" / "film" / "first.py").touch()  # a newer mtime, the same content
    tree_state.cache_clear()
    assert Path(code_digest("one", root, tmp_path / "digests")) == path
    assert path.stat().st_mtime_ns == OLD


@pytest.mark.parametrize("changed", ["adapters/one.py", "film/first.py", "film/shared.py"])
def test_it_is_rewritten_when_one_of_the_rules_files_changes(root: Path, tmp_path: Path, changed: str) -> None:
    path = Path(code_digest("one", root, tmp_path / "digests"))
    age(path)
    with (root / "embedding_film" / changed).open("a") as handle:
        handle.write("CHANGED = True\n")
    tree_state.cache_clear()
    code_digest("one", root, tmp_path / "digests")
    assert path.stat().st_mtime_ns > OLD
    assert path.read_text().splitlines() == lines(root, "one")


def test_a_module_the_rule_does_not_import_leaves_its_file_alone(root: Path, tmp_path: Path) -> None:
    one, two = (Path(code_digest(rule, root, tmp_path / "digests")) for rule in ("one", "two"))
    age(one)
    age(two)
    (root / "embedding_film" / "film" / "second.py").write_text("NAME = 'changed'\n")
    tree_state.cache_clear()
    for rule in ("one", "two"):
        code_digest(rule, root, tmp_path / "digests")
    assert one.stat().st_mtime_ns == OLD
    assert two.stat().st_mtime_ns > OLD


def test_no_file_is_read_while_none_of_the_packages_files_changed(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Snakemake run whose package is as the last run found it reads no module (each rule's file is right);
    any file of the package written since, even one no rule imports, makes it check again."""
    path = Path(code_digest("one", root, tmp_path / "digests"))
    tree_state.cache_clear()

    def unread(*args: object) -> None:
        raise AssertionError("a module was read")

    monkeypatch.setattr(module, "code_inputs", unread)
    assert Path(code_digest("one", root, tmp_path / "digests")) == path
    (root / "embedding_film" / "film" / "unused.py").write_text("X = 1\n")
    tree_state.cache_clear()
    with pytest.raises(AssertionError, match="a module was read"):
        code_digest("one", root, tmp_path / "digests")
    monkeypatch.undo()
    assert Path(code_digest("one", root, tmp_path / "digests")) == path
