"""Every relative link of the documentation leads to a file, and to a heading when it names one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def prose(text: str) -> str:
    """The text without code blocks and code spans, whose brackets are no links."""
    return re.sub(r"`[^`\n]*`", "", without_code_blocks(text))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces
    as hyphens, and a repeated one numbered."""
    seen: set[str] = set()
    text = without_code_blocks(page.read_text(encoding="utf-8"))
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, count = slug, 0
        while candidate in seen:
            count += 1
            candidate = f"{slug}-{count}"
        seen.add(candidate)
    return seen


def links() -> list[tuple[Path, str]]:
    return [
        (page, target)
        for page in PAGES
        for target in LINK.findall(prose(page.read_text(encoding="utf-8")))
        if not re.match(r"[a-z]+:", target)
    ]


@pytest.mark.parametrize(
    ("page", "target"), links(), ids=lambda value: value if isinstance(value, str) else value.name
)
def test_a_relative_link_leads_somewhere(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page

    assert destination.exists(), f"{page.relative_to(ROOT)}: no {path}"
    if anchor:
        assert anchor in anchors(destination), f"{page.relative_to(ROOT)}: no #{anchor} in {path}"


def test_the_documentation_has_links_to_check() -> None:
    assert len(links()) > 20
