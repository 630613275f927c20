"""The front door stays a front door: the README is short, every relative link in it and in docs/ leads to a
file that exists (and an anchor that exists in it), and code and docs speak of the project, not of its
issue tracker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_the_readme_is_read_in_five_minutes() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#") and not target[1:]:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def test_code_and_docs_speak_of_the_project_not_of_issue_numbers() -> None:
    files = [*PAGES, *(ROOT / "workflow_scripts").rglob("*.py"), *(ROOT / "rules").glob("*.smk"), ROOT / "Snakefile"]
    files += [*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py"), ROOT / "config.yaml"]
    pattern = re.compile(r"\bissues? \d+\b(?!\s*(?:x|checkpoints?|images?|of))", re.I)
    found = [
        f"{f.relative_to(ROOT)}: {m.group(0)}"
        for f in files
        if f != Path(__file__).resolve()
        for m in pattern.finditer(f.read_text())
        if "label_issues" not in f.read_text()[max(0, m.start() - 7) : m.start()]
    ]
    assert not found, found
