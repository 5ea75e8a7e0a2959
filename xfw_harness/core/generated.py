"""Files generated from the code and shipped with it (xfw_harness/data/: the case file's JSON Schema, the block
catalogue): each generator's `python -m ...` writes its file through `write_generated`, and a test fails while the
shipped copy differs from what the code renders now."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def write_generated(args: list[str], default: Path, render: Callable[[], str]) -> int:
    """Write `render()` to the path in `args` (a generator's command-line arguments) or to `default`."""
    out = Path(args[0]) if args else default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(), encoding="utf-8")
    print(f"wrote {out}")
    return 0
