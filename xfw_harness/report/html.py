"""The HTML report: one self-contained file (no network, no external CSS or JS) built from a results document.

What is static HTML (readable without JavaScript): totals, the totals per Keras backend, regressions against a
baseline, the known differences (xfw_harness.report.differences), the environment of each shard, a table per block with
a column group per backend and each backend's worst error/tolerance (the comparator's `tolerance_ratio`: <= 1
passes, comparable across dtypes where max rel is not). What the page's own
script (templates/report.js) draws from an embedded, gzip-compressed JSON blob: the table of every test point with
each backend's result side by side (sortable, filterable by status, block, device and backend, and to the points
where the backends disagree) and each test's details (its backend, how the other backends did, message, metrics,
the case's YAML, the generated PyTorch and Keras code, heatmaps and histogram), built only when opened, so a report
of thousands of tests stays small and opens quickly (figures in docs/performance.md).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jinja2

from xfw_harness.core.verdicts import STATUS_ORDER, Status, headline
from xfw_harness.report.differences import known_differences
from xfw_harness.suite.results import (
    NOT_RUN,
    backend_of,
    backend_order,
    by_backend,
    by_block,
    case_key,
    changes_since,
    point_id,
    summarise,
)

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("xfw_harness.report", "templates"),
                          autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)



def ratio_text(x: Any) -> str:
    """An error/tolerance as the page writes it: 3 significant digits, "inf", or nothing where there is none."""
    x = _ratio(x) if x is not None else None
    return "" if x is None else ("inf" if x == float("inf") else f"{x:.3g}")


_ENV.filters["ratio"] = ratio_text

# Keys of a verdict's metrics that the table of details repeats elsewhere (shapes) or that say nothing alone.
_DROPPED_METRICS = ("shape_torch", "shape_keras", "shape_expected", "shape_actual")


def _num(x: Any) -> float | str | None:
    return x if isinstance(x, (int, float, str)) or x is None else None


def _headline(r: dict[str, Any]) -> dict[str, Any]:
    """max abs / max rel / tolerance_ratio (error / tolerance) of the headline verdict
    (xfw_harness.core.verdicts.headline: the torch-vs-keras one of a pass, the comparison that failed otherwise), and
    its name. A results file written before the comparator gave the ratio has none: None."""
    verdicts = r.get("verdicts", [])
    i = headline(r.get("status", ""), verdicts)
    m = verdicts[i].get("metrics", {}) if i is not None else {}
    return {"max_abs": _num(m.get("max_abs")), "max_rel": _num(m.get("max_rel")),
            "tolerance_ratio": _num(m.get("tolerance_ratio")),
            "headline": verdicts[i].get("what", "") if i is not None else ""}


def _row(r: dict[str, Any], changes: dict[str, str], case_index: dict[str, int]) -> dict[str, Any]:
    verdicts = [{**v, "metrics": {k: m for k, m in v.get("metrics", {}).items() if k not in _DROPPED_METRICS}}
                for v in r.get("verdicts", [])]
    row = {"id": r["id"], "point": point_id(r), "backend": backend_of(r), "status": r["status"],
           "blocks": r.get("blocks") or ["?"], "device": r.get("device", "-"),
           "sweep": r.get("sweep", {}), "params": r.get("params", ""), "shapes": r.get("shapes", {}),
           "placement": r.get("placement", {}),
           "message": r.get("message", ""), "verdicts": verdicts, "duration_s": r.get("duration_s", 0),
           "shard": r.get("shard", 0), "case": case_index.get(case_key(r)) if "file" in r else None,
           **_headline(r)}
    if r["id"] in changes:
        row["change"] = changes[r["id"]]
    if r.get("details"):
        row["details"] = r["details"]
    if r.get("notes"):  # what the harness computed itself where Keras has no layer (xfw_harness.engine.result)
        row["notes"] = r["notes"]
    # a failed network's per-layer error curves (xfw_harness.engine.localize): small, always kept
    if r.get("localization"):
        row["localization"] = r["localization"]
    return row


def _ratio(x: Any) -> float | None:
    """An error/tolerance as a number (results files write an infinite one as "inf"); None where there is none."""
    if isinstance(x, (int, float)):
        return float(x)
    return float("inf") if x == "inf" else None


def _counts(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The count of each status, the worst error/tolerance (tolerance_ratio) of the tests that passed or failed a
    comparison of values (None where no result carries one: results files from before it), and the seconds taken."""
    ratios = [x for r in results if r["status"] in (Status.PASSED, Status.FAILED)
              and (x := _ratio(_headline(r)["tolerance_ratio"])) is not None]
    return {**summarise(results), "worst_ratio": max(ratios) if ratios else None,
            "time_s": sum(float(r.get("duration_s") or 0) for r in results)}


def _per_block(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per block: the counts of all its tests, and per backend (each backend's own `_counts`)."""
    return {block: {**_counts(rs), "backends": {b: _counts(brs) for b, brs in by_backend(rs).items()}}
            for block, rs in by_block(results).items()}


def _shown_statuses(results: list[dict[str, Any]]) -> list[str]:
    """The statuses the per-block table gives a column in each backend's group: passed and failed always, the
    others where some test has them (five columns per backend would make the table too wide to read)."""
    present = {r["status"] for r in results}
    return [s for s in STATUS_ORDER if s in (Status.PASSED, Status.FAILED) or s in present]


def speed_rows(bench: dict[str, Any]) -> list[dict[str, Any]]:
    """Per case and device, PyTorch's and Keras's median forward time from a pytest-benchmark JSON file
    (`make bench`), and which is faster by what factor."""
    times: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    where: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for b in bench.get("benchmarks", []):
        info = b.get("extra_info", {})
        if {"case", "framework", "device"} <= set(info):
            times[(info["case"], info["device"])][info["framework"]] = float(b["stats"]["median"])
            where[(info["case"], info["device"])][info["framework"]] = info.get("ran_on", info["device"])
    rows = []
    for (case, device), t in sorted(times.items()):
        if {"torch", "keras"} <= set(t):
            faster = "torch" if t["torch"] <= t["keras"] else "keras"
            slower = "keras" if faster == "torch" else "torch"
            rows.append({"case": case, "device": device, "ran_on": where[(case, device)],
                         "torch_ms": t["torch"] * 1e3, "keras_ms": t["keras"] * 1e3,
                         "faster": faster, "factor": t[slower] / t[faster] if t[faster] > 0 else float("inf")})
    return rows


def bench_facts(bench: dict[str, Any]) -> dict[str, Any]:
    """The overhead and memory figures that benchmarks/test_overhead.py and test_memory.py record."""
    facts: dict[str, Any] = {}
    for b in bench.get("benchmarks", []):
        info = b.get("extra_info", {})
        for key in ("ratio", "harness_s", "bare_s", "tests", "peak_rss_mb", "peak_mb_small", "peak_mb_large",
                    "tests_small", "tests_large"):
            if key in info:
                facts[key] = info[key]
    return facts


def pack(data: Any) -> str:
    """JSON, gzip-compressed, base64: the page unpacks it with the browser's own DecompressionStream."""
    raw = json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def unpack(html: str) -> Any:
    """The data `pack` put into a rendered report (for tools and tests that read a report back)."""
    import re

    blob = re.search(r'<script id="data" type="application/octet-stream">([A-Za-z0-9+/=]*)</script>', html)
    if blob is None:
        raise ValueError("not an xfw-harness report: no packed data")
    return json.loads(gzip.decompress(base64.b64decode(blob.group(1))))


def render_report(doc: dict[str, Any], baseline: dict[str, Any] | None = None, title: str | None = None,
                  bench: dict[str, Any] | None = None) -> str:
    """The report's HTML for a results document (what changed since `baseline`, and the speed table of a
    pytest-benchmark file `bench`, when given)."""
    results = doc["results"]
    changes = changes_since(doc, baseline) if baseline is not None else {}
    cases = doc.get("cases", {})
    case_names = sorted(cases)
    case_index = {name: i for i, name in enumerate(case_names)}
    # The table's backend columns: Keras's backends (and the comparison); a case that could not run spans them all.
    backends = [b for b in backend_order(backend_of(r) for r in results) if b != NOT_RUN] or (
        [NOT_RUN] if results else [])
    data = {"rows": [_row(r, changes, case_index) for r in results],
            "cases": [[name, cases[name]] for name in case_names],
            "shards": [s["label"] for s in doc["shards"]],
            "backends": backends}
    change_counts = Counter(changes.values())
    failing = [r for r in results if r["status"] in (Status.FAILED, Status.ERROR)]
    return _ENV.get_template("report.html").render(
        title=title or "PyTorch vs Keras equivalence report", summary=doc["summary"], statuses=STATUS_ORDER,
        shards=doc["shards"], env_keys=list(dict.fromkeys(k for s in doc["shards"] for k in s["environment"])),
        per_block=_per_block(results), block_statuses=_shown_statuses(results),
        backends=backends,
        per_backend={b: _counts(rs) for b, rs in by_backend(results).items()},
        failing=[(r["id"], point_id(r), backend_of(r)) for r in failing], baseline=baseline is not None,
        known=known_differences(results),
        regressed=sorted(i for i, c in changes.items() if c == "regressed"),
        fixed=sorted(i for i, c in changes.items() if c == "fixed"), change_counts=change_counts,
        speed=speed_rows(bench or {}), bench_facts=bench_facts(bench or {}),
        bench_machine=(bench or {}).get("machine_info", {}), packed=pack(data))


def write_report(path: Path, doc: dict[str, Any], baseline: dict[str, Any] | None = None,
                 bench: dict[str, Any] | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(doc, baseline, bench=bench), encoding="utf-8")
