"""Results files: every result of a run with the environment it ran in, as JSON (read by the report)."""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def environment() -> dict[str, Any]:
    from harness.frameworks import available_devices, gpu_unavailable_reason, placement, versions

    env: dict[str, Any] = {**versions(), "python": platform.python_version(), "machine": platform.machine(),
                           "processor": platform.processor() or platform.machine(),
                           "devices": list(available_devices()), "gpu_unavailable": gpu_unavailable_reason(),
                           "tf32": "off in both frameworks",
                           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if "gpu" in env["devices"]:
        env["gpu_placement"] = placement("gpu")
    return env


def summarise(results: list[dict[str, Any]]) -> dict[str, int]:
    counts = {s: 0 for s in ("passed", "failed", "error", "skipped")}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    counts["total"] = len(results)
    return counts


def strict_json(value: Any) -> Any:
    """`value` with non-finite floats as the strings "inf", "-inf", "nan": results files are strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def results_document(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Every result with the environment it ran in and the totals: what results files and the report hold."""
    return strict_json({"schema": SCHEMA_VERSION, "environment": environment(), "summary": summarise(results),
                        "results": results})


def write_results(path: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    doc = results_document(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return doc


def read_results(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
