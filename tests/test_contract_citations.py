"""Code cites the project's own contract (docs/contract.md) by section, and only sections that
exist; nothing cites a document the repository does not have."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    path
    for folder in ("clerk_guard", "tests", "examples", "bench")
    for path in (ROOT / folder).rglob("*.py")
]


def _sections() -> set[str]:
    text = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    return set(re.findall(r"^## (\d+)\. ", text, flags=re.MULTILINE))


def test_citations_name_existing_sections():
    """Every "contract §N" in the code names a numbered section of docs/contract.md."""
    sections = _sections()
    assert {"1", "5", "8"} <= sections
    cited = {
        (path.relative_to(ROOT).as_posix(), number)
        for path in SOURCES
        for number in re.findall(r"contract §(\d+)", path.read_text(encoding="utf-8"))
    }
    assert cited, "the code cites the contract somewhere"
    assert [entry for entry in cited if entry[1] not in sections] == []


def test_nothing_cites_an_outside_design_document():
    """No source file cites DESIGN: the contract the code follows is in the repository."""
    marker = "DESIGN" + " §"
    assert [p for p in SOURCES if marker in p.read_text(encoding="utf-8")] == []
