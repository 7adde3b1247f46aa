"""The README and the docs: every relative link resolves inside the repository, none leaves it, and the README
stays an entry point."""

from __future__ import annotations

import re

from salad_core.paths import REPO_ROOT

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def documents() -> list:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]


def test_every_relative_link_resolves_inside_the_repository():
    broken = []
    for doc in documents():
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address (none should appear) is checked below; anchors are not files
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.exists() or REPO_ROOT.resolve() not in path.parents:
                broken.append(f"{doc.relative_to(REPO_ROOT)}: {target}")
    assert broken == []


def test_no_document_points_outside_the_repository():
    outside = [f"{doc.relative_to(REPO_ROOT)}: {line.strip()[:80]}" for doc in documents()
               for line in doc.read_text().splitlines() if "../shared" in line or "](http" in line]
    assert outside == []


def test_the_readme_is_an_entry_point():
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    commands = [line for line in lines[:8] if line.startswith("bash scripts/")]
    assert commands == ["bash scripts/dashboard.sh   # install, then the dashboard on http://localhost:8501 (offline "
                        "default model)", "bash scripts/test.sh        # install, then the whole test suite"]


def test_no_document_is_left_unfinished():
    unfinished = [f"{doc.relative_to(REPO_ROOT)}:{n}" for doc in documents()
                  for n, line in enumerate(doc.read_text().splitlines(), 1)
                  if re.search(r"PLACEHOLDER|\bTODO\b|\bTBD\b|\bXXX\b", line)]
    assert unfinished == []
