"""The README is the user's manual: its block table must be the registry's."""

import re
from pathlib import Path

from harness.blocks.registry import all_blocks
from harness.cli import markdown_block_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_block_table_matches_registry() -> None:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- BLOCK TABLE START -->\n(.*?)\n<!-- BLOCK TABLE END -->", text, flags=re.S)
    assert m, "README.md lost its BLOCK TABLE markers"
    assert m.group(1) == markdown_block_table(all_blocks()), "README block table is stale: run `make readme`"


def test_every_block_has_shipped_cases() -> None:
    cases = "\n".join(p.read_text(encoding="utf-8") for p in (README.parent / "cases").rglob("*.yaml"))
    missing = [name for name in all_blocks() if not re.search(rf"block: {name}\b", cases)]
    assert not missing, f"blocks without a shipped case: {missing}"
