"""The HTML report: one self-contained file (no network, no external CSS or JS) built from a results document.

This is the foundation's report: totals, environment, a table per block and every test with its verdict.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jinja2

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("harness", "templates"),
                          autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)


def _fmt(x: Any) -> str:
    return "" if x is None else f"{x:.2e}" if isinstance(x, float) else str(x)


def _shapes_text(shapes: dict[str, list[int]]) -> str:
    """input -> output, channels-first; both frameworks' output shapes when they differ."""
    if not shapes:
        return ""
    dims = {k: "x".join(map(str, v)) for k, v in shapes.items()}
    out = dims["torch"] if dims["torch"] == dims["keras"] else f"torch {dims['torch']} / keras {dims['keras']}"
    return f"{dims['input']} \u2192 {out}"


def write_report(path: Path, doc: dict[str, Any]) -> None:
    results = doc["results"]
    per_block: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        for block in dict.fromkeys(r["blocks"] or ["?"]):
            per_block[block][r["status"]] += 1
    rows = []
    for r in results:
        m = r["verdicts"][0]["metrics"] if r["verdicts"] else {}
        rows.append({**r, "max_abs": _fmt(m.get("max_abs")), "max_rel": _fmt(m.get("max_rel")),
                     "sweep_text": ", ".join(f"{k}={json.dumps(v)}" for k, v in r["sweep"].items()),
                     "shape_text": _shapes_text(r["shapes"])})
    html = _ENV.get_template("report.html").render(
        env=doc["environment"], summary=doc["summary"], per_block=dict(sorted(per_block.items())), rows=rows,
        failures=[r for r in rows if r["status"] in ("failed", "error")])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
