"""The manual's generated pages: the block reference (from the registry) and the catalogues of known differences
(cases/known_differences.yaml between PyTorch and Keras, cases/backend_differences.yaml between Keras's backends),
as Markdown.

Pure functions: text in, Markdown out. docs/hooks.py puts their output into the documentation site where a page
says `<!-- generated: NAME -->` (see `generated`) when `mkdocs build` runs (`make docs`), so no generated Markdown
is ever committed and the site cannot drift from the registry or the catalogue.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xfw_harness.blocks import all_blocks, get_block
from xfw_harness.cases import Point, load_paths
from xfw_harness.tools.emulations import Pins, pins

CATALOGUE = Path("cases") / "known_differences.yaml"  # relative to the project's root
BACKEND_CATALOGUE = Path("cases") / "backend_differences.yaml"  # Keras on one backend against the others


def generated(name: str, root: Path) -> str:
    """The Markdown that replaces `<!-- generated: NAME -->` in a page of the manual; `root` is the project's root."""
    if name == "block-reference":
        return block_reference(all_blocks())
    if name == "known-differences":
        return known_differences(root / CATALOGUE)
    if name == "backend-differences":
        return known_differences(root / BACKEND_CATALOGUE)
    if name == "emulations":
        points = [p for entry in load_paths([root / "cases"])[0] for p in entry.points if isinstance(p, Point)]
        return emulation_table(pins(points, all_blocks().values()))
    raise KeyError(f"no generated part called {name!r} (known: block-reference, known-differences, "
                   "backend-differences, emulations)")


# --- Markdown helpers ---------------------------------------------------------------------------------------------

def _inline(text: str) -> str:
    """Prose for a Markdown paragraph or table cell: code spans kept as written, and outside them the characters that
    Markdown would read as markup (emphasis, HTML, table cells, links) escaped."""
    parts = text.split("`")
    specials = "\\*_[]|"
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans at all
        parts, specials = [text], specials + "`"
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # inside a code span (python-markdown's tables do not split cells there)
            out.append(f"`{part}`")
            continue
        for char in specials:
            part = part.replace(char, "\\" + char)
        out.append(part.replace("&", "&amp;").replace("<", "&lt;"))
    return "".join(out).replace("\n", " ")


_cell = _inline  # a table cell: the same escapes (a `|` outside code is escaped)


def _preformatted(text: str) -> str:
    """`text` as it is, in a fenced block that no line of it can close."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{{ .text .docstring }}\n{text.rstrip()}\n{fence}"


# --- the block reference ------------------------------------------------------------------------------------------

def family_doc(block: Any) -> str:
    """The docstring of the module that defines `block`'s class: its family's exact semantics and how each framework
    is made to compute them."""
    module = sys.modules.get(type(block).__module__)
    return (getattr(module, "__doc__", None) or "").strip()


def _ranks(block: Any) -> str:
    ranks = block.ranks
    if ranks is None:
        return "any rank >= 2"
    return " or ".join(str(r) for r in ranks)


def _code_list(names: Any, none: str) -> str:
    names = list(names)
    return ", ".join(f"`{n}`" for n in names) if names else none


def _param_table(block: Any) -> str:
    if not block.params:
        return "No parameters."
    rows = ["| parameter | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for p in block.params:
        default = p.describe_default()
        default = "**required**" if default == "required" else f"`{default}`"
        rows.append(f"| `{p.name}` | {default} | {_cell(p.allowed())} | {_cell(p.doc)} |")
    return "\n".join(rows)


def _block_section(name: str, block: Any) -> str:
    facts = [
        f"- **Family:** {_inline(block.family)} ([semantics](#family-{block.family}))",
        f"- **Input ranks** (channels-first): {_ranks(block)}",
        f"- **Weights** (arrays a `weights` file may give, PyTorch layout): {_code_list(block.weight_names, 'none')}",
        "- **PyTorch classes `xfw-harness port` reads** (`torch.nn`): "
        + _code_list(block.torch_types, "none (not read from a PyTorch model)")
        + (f"; where no other block reads them: {_code_list(block.torch_fallback_types, '')}"
           if block.torch_fallback_types else ""),
    ]
    if block.nested:
        facts.append("- **Made of other blocks:** " + ", ".join(
            f"`{key}` ({'required' if required else 'optional'})" for key, required in block.nested.items())
            + ("; a case of it is a whole network" if block.holds_network else ""))
    facts += [f"- **Known difference** [`{d.entry}`](known-differences.md#{d.entry}): {_inline(d.summary)}"
              for d in block.known_differences]
    facts += [f"- **Emulation** [{e.name}](guarantees.md#emulations-and-the-cases-that-pin-them) (checked by the "
              f"{e.checked_by}): {_inline(e.summary)}" for e in block.emulations]
    return "\n\n".join([f"### `{name}` {{#{name}}}", _inline(block.doc), "\n".join(facts), _param_table(block)])


def block_reference(blocks: Mapping[str, Any]) -> str:
    """Every block of `blocks` (name -> Block, e.g. the registry's `all_blocks()`): a summary table, then one
    section per family with its semantics (the family module's docstring) and one section per block with its
    description, input ranks, weights, the PyTorch classes `xfw-harness port` reads and a parameter table."""
    families: dict[str, list[tuple[str, Any]]] = {}
    for name, block in sorted(blocks.items()):
        families.setdefault(block.family, []).append((name, block))
    out = [f"{len(blocks)} blocks in {len(families)} families.", "",
           "| block | family | description |", "| --- | --- | --- |"]
    for name, block in sorted(blocks.items()):
        out.append(f"| [`{name}`](#{name}) | [{_cell(block.family)}](#family-{block.family}) | {_cell(block.doc)} |")
    for family, members in sorted(families.items()):
        out += ["", f"## {_inline(family)} {{#family-{family}}}", "",
                "Blocks: " + ", ".join(f"[`{name}`](#{name})" for name, _ in members) + ".", "",
                "**Semantics, and how each framework is made to compute them** (the family module's docstring):", ""]
        docs = dict.fromkeys(family_doc(block) for _, block in members)  # one family may span modules
        for doc in docs:
            out += [_preformatted(doc or "(the module has no docstring)"), ""]
        for name, block in members:
            out += [_block_section(name, block), ""]
    return "\n".join(out).rstrip() + "\n"


# --- the emulations and the shipped cases that pin them ------------------------------------------------------------

def emulation_table(table: list[Pins]) -> str:
    """Each emulation (xfw_harness.tools.emulations): what the harness computes, what checks it, a shipped case that
    pins it and one for each of its corners."""
    rows = ["| block | emulation | what the harness computes | checked by | pinned by | corners |",
            "| --- | --- | --- | --- | --- | --- |"]
    for entry in table:
        corners = "<br>".join(f"{name}: `{found[0]}`" if found else f"{name}: **none**"
                              for name, found in entry.corners.items()) or "-"
        first = f"`{entry.points[0]}`" if entry.points else "**none**"
        rows.append(f"| [`{entry.block.name}`](blocks.md#{entry.block.name}) | {entry.emulation.name} | "
                    f"{_cell(entry.emulation.summary)} | {entry.emulation.checked_by} | {first} | {corners} |")
    return "\n".join(rows)


# --- the catalogue of known differences ---------------------------------------------------------------------------

@dataclass
class CatalogueEntry:
    """One case of cases/known_differences.yaml with the comment lines above it."""

    name: str
    case: dict[str, Any]  # as yaml.safe_load reads it
    line: int  # 1-based line of the case's first line in the file
    section: str  # the `# --- section ---` heading it sits under ("" if none)
    source: str = ""  # the `# source:` comment, continuation lines joined
    correct: str = ""  # the `# correct:` comment
    notes: list[str] = field(default_factory=list)  # other comment paragraphs above the case
    yaml_text: str = ""  # the case as written in the file

    @property
    def blocks(self) -> list[str]:
        """The blocks the case uses: its block, or a network's layers' blocks."""
        if self.is_network:
            return [str(layer.get("block")) for layer in self.case.get("layers") or [] if isinstance(layer, dict)]
        return [str(self.case.get("block"))]

    @property
    def is_network(self) -> bool:
        """Whether the case is a whole network (its block `holds_network`: sequential)."""
        name = self.case.get("block")
        return isinstance(name, str) and name in all_blocks() and get_block(name).holds_network

    @property
    def expect(self) -> dict[str, Any]:
        expect = self.case.get("expect")
        return expect if isinstance(expect, dict) else {}


def _comment_block(lines: list[str], start: int) -> list[str]:
    """The comment lines directly above line index `start` (no blank line between), top first, '#' removed."""
    block = []
    i = start - 1
    while i >= 0 and lines[i].lstrip().startswith("#"):
        block.append(lines[i].lstrip()[1:])
        i -= 1
    return block[::-1]


def _read_comments(entry: CatalogueEntry, comments: list[str]) -> None:
    """Fills `source`, `correct` and `notes` from the comment lines above a case: `# source: ...` and
    `# correct: ...` start a field that lines indented further (`#   ...`) continue; other lines are notes, one per
    paragraph (a field or an empty `#` line ends a paragraph)."""
    current = None  # "source", "correct", "note" or None
    for raw in comments:
        text = raw.strip()
        key = next((k for k in ("source", "correct") if text.startswith(k + ":")), None)
        if key:
            current = key
            setattr(entry, key, text[len(key) + 1:].strip())
        elif not text:
            current = None
        elif current in ("source", "correct") and raw.startswith("  "):
            setattr(entry, current, f"{getattr(entry, current)} {text}")
        elif current == "note":
            entry.notes[-1] += " " + text
        else:
            current = "note"
            entry.notes.append(text)


SECTION = re.compile(r"^\s*#\s*-{3,}\s*(?P<name>[^-].*?)\s*-*\s*$")  # `# --- activations -----`


def _section_heading(line: str) -> str | None:
    m = SECTION.match(line)
    return m.group("name") if m else None


def catalogue_entries(path: Path) -> list[CatalogueEntry]:
    """Every case of the catalogue, in file order: yaml.safe_load reads the cases, `yaml.compose` (the safe
    loader's node tree, which never builds objects) says on which lines each one sits, and the raw text gives the
    comments above it."""
    text = Path(path).read_text(encoding="utf-8")
    cases = yaml.safe_load(text) or []
    nodes = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(cases, list) or nodes is None or len(nodes.value) != len(cases):
        raise ValueError(f"{path}: expected a YAML list of cases")
    lines = text.splitlines()
    entries = []
    for case, node in zip(cases, nodes.value):
        first = node.start_mark.line  # 0-based; the line of the item's first key (after "- ")
        end = node.end_mark.line if node.end_mark.column else node.end_mark.line - 1
        while end > first and (not lines[end].strip() or lines[end].lstrip().startswith("#")):
            end -= 1  # the next entry's comments are not this entry's YAML
        section = next((h for h in map(_section_heading, reversed(lines[:first])) if h), "")
        entry = CatalogueEntry(name=str(case.get("name")), case=case, line=first + 1, section=section,
                               yaml_text="\n".join(lines[first:end + 1]))
        _read_comments(entry, _comment_block(lines, first))
        entries.append(entry)
    return entries


def _difference(entry: CatalogueEntry) -> str:
    expect = entry.expect
    if "divergent" in expect:
        text = f"**The difference** (`expect.divergent`): {_inline(str(expect['divergent']))}"
        if isinstance(expect.get("backends"), list):
            text += f" (on Keras's {', '.join(f'`{b}`' for b in expect['backends'])} backend only: `expect.backends`)"
        if "refuses" in expect:
            text += f"; Keras refuses the hand port with a message containing `{expect['refuses']}`"
        if expect.get("reference"):
            text += " (`expect.reference`: one framework must agree with the float64 reference)"
        return text
    if "fails" in expect:
        return (f"**No difference between the frameworks:** a canary (`expect.fails: {expect['fails']}`): both are "
                "reported to differ from the golden values the case writes, and the test passes only while they do.")
    return "**No difference:** no `expect.divergent`, so the test passes only while both frameworks agree."


def _correct(entry: CatalogueEntry) -> str:
    """The `# correct:` comment: the case's address as code, then any words after it."""
    if not entry.correct:
        return "(no `# correct:` comment)"
    address, _, rest = entry.correct.partition(" ")
    return f"`{address}`" + (f" {_inline(rest)}" if rest else "")


def _block_links(entry: CatalogueEntry, blocks_page: str) -> str:
    links = ", ".join(f"[`{b}`]({blocks_page}#{b})" for b in entry.blocks)
    return f"`{entry.case['block']}` of {links}" if entry.is_network else links


def known_differences(catalogue_path: Path, blocks_page: str = "blocks.md") -> str:
    """Every entry of the catalogue: a summary table, then per entry its block, description, `expect.divergent`
    text, the `# source:` and `# correct:` comments above it, any other comment, and the case as written."""
    entries = catalogue_entries(catalogue_path)
    path = Path(catalogue_path).as_posix()
    label = next((c.as_posix() for c in (CATALOGUE, BACKEND_CATALOGUE) if path.endswith(c.as_posix())),
                 Path(path).name)
    out = [f"{len(entries)} entries, in the order of `{label}`.", "",
           "| entry | block | description | correct translation |", "| --- | --- | --- | --- |"]
    for e in entries:
        out.append(f"| [`{e.name}`](#{e.name}) | {_block_links(e, blocks_page)} | "
                   f"{_cell(str(e.case.get('description', '')))} | {_correct(e)} |")
    section = None
    for e in entries:
        if e.section != section:
            section = e.section
            out += ["", f"### {_inline(section or 'other')}"]
        out += ["", f"#### `{e.name}` {{#{e.name}}}", "",
                f"- **Block:** {_block_links(e, blocks_page)}",
                f"- **Description:** {_inline(str(e.case.get('description', '')))}",
                f"- {_difference(e)}",
                f"- **Source:** {_inline(e.source) if e.source else '(no `# source:` comment)'}",
                f"- **Correct translation:** {_correct(e)}"]
        out += [f"- {_inline(note)}" for note in e.notes]
        out += ["", f'??? example "The case (line {e.line} of `{label}`)"', "",
                "    ```yaml", *("    " + line if line else "" for line in e.yaml_text.splitlines()), "    ```"]
    return "\n".join(out).rstrip() + "\n"
