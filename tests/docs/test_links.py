"""Markdown pages: every relative link reaches a file and, with an anchor, one of its headings."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "SECURITY.md", *(ROOT / "docs").glob("*.md")])
README_MAX_LINES = 300

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def prose_lines(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lowercase, spaces to '-', other punctuation dropped."""
    text = title.strip().lower().replace("`", "")
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = text.replace(" ", "-")
    return re.sub(r"[^\w\-]", "", text)


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page; repeated headings get -1, -2, ... as on GitHub."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    for line in prose_lines(page):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match["title"])
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def relative_links(page: Path) -> list[str]:
    """Targets of the page's Markdown links that are neither external nor inside code."""
    targets = []
    for line in prose_lines(page):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            target = match["target"]
            if not target.startswith(EXTERNAL):
                targets.append(target)
    return targets


def broken_links(page: Path) -> list[str]:
    """The page's relative links whose file or heading does not exist, with the reason."""
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_point_at_existing_files_and_headings(page: Path) -> None:
    assert broken_links(page) == []


def test_every_docs_page_is_checked() -> None:
    assert len(PAGES) > 2, "README.md, SECURITY.md and at least one page under docs/"


def test_readme_has_at_most_300_lines() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES


def test_slug_follows_github_rules() -> None:
    assert slug("Tenants, scopes and API keys") == "tenants-scopes-and-api-keys"
    assert slug("POST /readings?async=true") == "post-readingsasynctrue"
    assert slug("2026-11-25 — Idempotent writes") == "2026-11-25--idempotent-writes"
    assert slug("The `make run` stack") == "the-make-run-stack"


def test_broken_link_and_missing_heading_are_reported(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n", encoding="utf-8")
    page.write_text(
        "# Page\n[ok](other.md#a-section) [ok](#page) [gone](missing.md) [bad](other.md#nope)\n"
        "[bad](#nope) [web](https://example.com) `[code](missing.md)`\n"
        "```\n[fenced](missing.md)\n```\n",
        encoding="utf-8",
    )
    assert [reason.split(":")[0] for reason in broken_links(page)] == [
        "missing.md",
        "other.md#nope",
        "#nope",
    ]
