"""The block catalogue: what `xfw-harness list` (and `--markdown`) and `xfw-harness new` print for each block, rendered
from the registry and shipped as xfw_harness/data/blocks.json, so that those commands answer without importing the
frameworks (the registry's modules define Keras layers and PyTorch modules at import: 4 to 5 s on the CI machine).

Rendered by the same functions that render from the registry (`render()`), so the shipped file says exactly what
the registry would: `make schema` writes it (`python -m xfw_harness.tools.catalogue`), and tests/tools/test_catalogue.py
fails while it is stale. Where the file is missing (a source tree that never generated it) the texts are rendered
from the registry (`entries()`); a name that is not a block gets the registry's own message, with its suggestion.

The module itself imports no framework: `render()` and `write()` import the registry when called, which only
generation and the fallback do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from xfw_harness.core.generated import write_generated

CATALOGUE_FILE = Path(__file__).resolve().parents[1] / "data" / "blocks.json"
MARKDOWN_HEAD = "| block | family | parameter | default | meaning |\n| --- | --- | --- | --- | --- |"


def list_text(block: Any) -> str:
    """A block as `xfw-harness list` prints it: name, family and doc, then each parameter's default, doc and range."""
    lines = [f"{block.name}  ({block.family})  {block.doc}"]
    for p in block.params:
        lines.append(f"    {p.name:18} default {p.describe_default():10} {p.doc}")
        lines.append(f"    {'':18} {'':18} allowed: {p.allowed()}")
    return "\n".join(lines)


def markdown_rows(block: Any) -> str:
    """A block's rows of the Markdown table (`xfw-harness list --markdown`; the manual's block reference)."""
    lines = [f"| `{block.name}` | {block.family} | | | {block.doc} |"]
    lines += [f"| | | `{p.name}` | {p.describe_default()} | {p.doc}; {p.allowed()} |" for p in block.params]
    return "\n".join(lines)


def marker_line(name: str, doc: str) -> str:
    """The pytest marker of a block's cases (`-m conv2d`), as `pytest --markers` lists it."""
    return f"{name}: harness cases that use the {name} block ({doc})"


def render() -> dict[str, Any]:
    """Every registered block's doc line (its pytest marker's text), `list`, `markdown` and `new` texts (`new_error`
    where `xfw-harness new` refuses it)."""
    from xfw_harness.blocks import all_blocks
    from xfw_harness.core.errors import CaseError
    from xfw_harness.tools.new import case_skeleton

    blocks: dict[str, Any] = {}
    for name, block in all_blocks().items():
        entry = {"doc": block.doc, "list": list_text(block), "markdown": markdown_rows(block)}
        try:
            entry["new"] = case_skeleton(name)
        except CaseError as e:
            entry["new_error"] = e.message
        blocks[name] = entry
    return {"about": "generated from the block registry by `make schema` (xfw_harness/tools/catalogue.py): do not edit",
            "blocks": blocks}


def catalogue_text() -> str:
    """The catalogue as the shipped file holds it."""
    return json.dumps(render(), indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def read() -> dict[str, dict[str, str]] | None:
    """The shipped catalogue's blocks, by name; None where there is no readable file."""
    try:
        return json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))["blocks"]
    except (OSError, ValueError, KeyError):
        return None


def entries() -> dict[str, dict[str, str]]:
    """Every block's texts: the shipped file's, or rendered from the registry where there is none."""
    return read() or render()["blocks"]


def main(argv: list[str] | None = None) -> int:
    """`python -m xfw_harness.tools.catalogue [FILE]`: write the catalogue (default: the shipped file)."""
    return write_generated(sys.argv[1:] if argv is None else argv, CATALOGUE_FILE, catalogue_text)


if __name__ == "__main__":
    sys.exit(main())
