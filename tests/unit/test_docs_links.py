"""README.md is a short front door, and every relative link in it and under docs/ leads somewhere."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 160

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def prose_of(text: str) -> str:
    """The text without code blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchor_of(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")


def anchors_in(page: Path) -> set[str]:
    anchors: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        anchor, n = anchor_of(heading), 1
        unique = anchor
        while unique in anchors:  # GitHub numbers repeated headings: name, name-1, name-2, ...
            unique, n = f"{anchor}-{n}", n + 1
        anchors.add(unique)
    return anchors


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose_of(page.read_text())) if not re.match(r"[a-z]+:", t)]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no file {destination.relative_to(ROOT)}")
        elif anchor and destination.suffix == ".md" and anchor not in anchors_in(destination):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file_and_heading(page):
    assert broken_links(page) == [], f"broken links in {page.relative_to(ROOT)}"


def test_readme_links_the_docs_pages():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
    unlinked = [p.name for p in (ROOT / "docs").glob("*.md") if p.resolve() not in linked]
    assert unlinked == [], "README.md should link every page in docs/"


def test_readme_is_a_short_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") : lines.index("```")]
    assert lines[0].startswith("# ") and lines[1:3] == ["", "```sh"], "commands first, after the title"
    assert [line.split()[:2] for line in block[1:]] == [["make", "run"], ["make", "test"]]


def test_the_anchor_of_a_heading_follows_github():
    assert anchor_of("What `make run` shows") == "what-make-run-shows"
    assert anchor_of("Your own cluster (kind or real)") == "your-own-cluster-kind-or-real"
    assert anchor_of("Webhook TLS and address") == "webhook-tls-and-address"
