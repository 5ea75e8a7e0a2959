"""The README is the front door: short, and every link in it leads somewhere (the manual is docs/, built by
`make docs`; its examples run in tests/docs/test_docs_examples.py)."""

import re
from pathlib import Path
from urllib.parse import unquote

from xfw_harness.blocks import all_blocks

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_LINES = 150


def _links(text: str) -> list[str]:
    """The targets of the Markdown links and images of `text`, outside code blocks and code spans."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines: move the detail into docs/ (the manual)"


def test_every_relative_link_of_the_readme_resolves() -> None:
    links = _links(README.read_text(encoding="utf-8"))
    assert any(link.startswith("docs/") for link in links), "the README should link to the manual's pages"
    broken = []
    for link in links:
        if re.match(r"[a-z][a-z0-9+.-]*:", link) or link.startswith("#"):
            continue  # an absolute URL, or an anchor of the README itself
        target = ROOT / unquote(link.split("#", 1)[0])
        if not target.exists():
            broken.append(link)
    assert not broken, f"README.md links to files that do not exist: {broken}"


def test_the_readme_links_every_page_of_the_manual_or_its_index() -> None:
    """A reader on GitHub finds each page from the README (the site's nav has them all too)."""
    linked = {Path(link.split("#", 1)[0]).name for link in _links(README.read_text(encoding="utf-8"))}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert not pages - linked, f"pages the README does not link: {sorted(pages - linked)}"


def test_the_readme_names_every_registered_block_and_their_number() -> None:
    """"What it covers" is the user's first answer to "is my layer supported?": every registered block is named there
    (written `name`, or `prefix_1d`/`2d`/`3d` for a family's ranks) and the count is the registry's."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## What it covers", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z0-9_]+)`", section))
    for stem, first, rest in re.findall(r"`([a-z0-9_]+_?)(1d|2d)`((?:/`[123]d`)+)", section):
        named |= {stem + first, *(stem + rank for rank in re.findall(r"[123]d", rest))}
    blocks = set(all_blocks())
    assert not blocks - named, f"blocks the README does not name: {sorted(blocks - named)}"
    others = named - blocks - {"2d", "3d", "same"}  # the rank shorthand, TensorFlow's `same`
    assert not others, f"the README names blocks that are not registered: {sorted(others)}"
    assert f"{len(blocks)} blocks" in section
