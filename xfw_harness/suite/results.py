"""Results files: every result of a run with the environment it ran in, as strict JSON (read by the report), and
the same as JUnit XML for CI systems. Also merging shards (results files from other machines or CI jobs) and
comparing with a baseline run.

A results document:
    {"schema": 2,
     "shards": [{"label": ..., "environment": {...}}, ...],  # one per run that contributed
     "environment": {...},                                    # the first shard's, for a quick look
     "summary": {"passed": n, "failed": n, ...},
     "summary_by_backend": {"tensorflow": {"passed": n, ...}, "jax": {...}, ...},  # the same counts per backend
     "cases": {"FILE::CASE": "the case's YAML", ...},         # once per case, not once per test
     "results": [{"id": ..., "backend": ..., "status": ..., "verdicts": [...], "shard": 0, "details": {...}?}, ...]}

Each result names Keras's backend ("tensorflow", "jax", "torch"; "backends" for a `compare: backends` test; "-" for
a case that could not run), and its test id ends in it (`FILE::CASE[SWEEP-DEVICE-BACKEND]`): the same point on two
backends is two tests, kept apart when shards merge and matched apart against a baseline.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from xfw_harness.core.frameworks import BACKENDS
from xfw_harness.core.verdicts import STATUS_ORDER, Status

SCHEMA_VERSION = 2
COMPARED = "backends"  # the backend of a `compare: backends` test (xfw_harness.suite.backends.COMPARED)
NOT_RUN = "-"  # the backend of a case that could not run
# Results files written before Keras's backend became an axis (issue 16) name no backend: every test then ran on
# TensorFlow, the only backend the harness accepted, so a missing backend is read as "tensorflow" (see `upgraded`).
LEGACY_BACKEND = "tensorflow"


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    from xfw_harness.core.frameworks import available_devices, gpu_unavailable_reason, placement, versions

    env: dict[str, Any] = {**versions(), "python": platform.python_version(), "machine": platform.machine(),
                           "cpu": cpu_name(), "host": platform.node(),
                           "devices": list(available_devices()), "gpu_unavailable": gpu_unavailable_reason(),
                           "dtype_policy": "each case's input.dtype (default float32); no mixed precision",
                           "tf32": "off: PyTorch's and TensorFlow's TF32 disabled, JAX's matmul precision highest "
                                   "(xfw_harness.core.frameworks, in every backend's process)",
                           "seed": "each case's input.seed (default 0)",
                           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    env.update({k: v for k, v in _backend_libraries().items() if k not in env})
    if "gpu" in env["devices"]:
        env["gpu_placement"] = placement("gpu")
        try:
            import torch

            env["gpu_name"] = torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001 - the name is a nicety
            pass
    return env


def _backend_libraries() -> dict[str, str]:
    """The installed versions of each Keras backend's library (the other backends run in worker processes, which
    import them; this one reads the installed metadata only)."""
    from importlib import metadata

    found = {}
    for key, dists in (("tensorflow", ("tensorflow", "tensorflow-cpu")), ("jax", ("jax",)), ("jaxlib", ("jaxlib",))):
        for dist in dists:
            try:
                found[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def summarise(results: list[dict[str, Any]]) -> dict[str, int]:
    counts = {s: 0 for s in STATUS_ORDER}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    counts["total"] = len(results)
    return counts


def backend_of(result: dict[str, Any]) -> str:
    """A result's Keras backend; a result from before backends were an axis (no field) ran on TensorFlow."""
    return str(result.get("backend") or LEGACY_BACKEND)


def backend_order(backends: Any) -> list[str]:
    """The backends among `backends`, each once: Keras's in BACKENDS order, then the comparison, then the rest
    (a case that could not run, a backend this harness does not know) by name."""
    present = set(backends)
    rank = {b: i for i, b in enumerate((*BACKENDS, COMPARED))}
    return sorted(present, key=lambda b: (rank.get(b, len(rank)), b))


def by_backend(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Results grouped by Keras backend, in backend_order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(backend_of(r), []).append(r)
    return {b: groups[b] for b in backend_order(groups)}


def point_id(result: dict[str, Any]) -> str:
    """The test id without its backend: what one point on one device is called on every backend
    (`FILE::CASE[SWEEP-cpu-jax]` -> `FILE::CASE[SWEEP-cpu]`), so that the report can put the backends side by side."""
    rid, backend = result["id"], backend_of(result)
    for tail in (f"-{backend}]", f"[{backend}]"):
        if rid.endswith(tail):
            return rid[: -len(tail)] + ("]" if tail.startswith("-") else "")
    return rid


def upgraded(result: dict[str, Any]) -> dict[str, Any]:
    """A result read from a file, in today's form: one from before backends were an axis (no "backend") ran on
    TensorFlow (LEGACY_BACKEND), and its id gains the backend as today's ids end in it, so that a baseline written
    then still matches today's TensorFlow tests by id. A case that could not run has no device and no backend."""
    if "backend" in result:
        return result
    if result.get("device", NOT_RUN) == NOT_RUN:
        return {**result, "backend": NOT_RUN}
    rid = result["id"]
    return {**result, "backend": LEGACY_BACKEND, "id": rid[:-1] + f"-{LEGACY_BACKEND}]" if rid.endswith("]") else rid}


def by_block(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Results grouped by block, sorted by name: a network's result counts once for each block it uses."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        for block in dict.fromkeys(r.get("blocks") or ["?"]):
            groups.setdefault(block, []).append(r)
    return dict(sorted(groups.items()))


def strict_json(value: Any) -> Any:
    """`value` with non-finite floats as the strings "inf", "-inf", "nan": results files are strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def case_key(result: dict[str, Any]) -> str:
    return f"{result['file']}::{result['case']}"


def _documented(results: list[dict[str, Any]], shards: list[dict[str, Any]],
                cases: dict[str, str] | None = None) -> dict[str, Any]:
    cases = dict(cases or {})
    slim = []
    for r in results:
        r = dict(r)
        text = r.pop("case_yaml", "")
        if text:
            cases.setdefault(case_key(r), text)
        r.setdefault("shard", 0)
        slim.append(r)
    return strict_json({"schema": SCHEMA_VERSION, "shards": shards, "environment": shards[0]["environment"],
                        "summary": summarise(slim),
                        "summary_by_backend": {b: summarise(rs) for b, rs in by_backend(slim).items()},
                        "cases": cases, "results": slim})


def results_document(results: list[dict[str, Any]], label: str = "this run") -> dict[str, Any]:
    """Every result with the environment it ran in and the totals: what results files and the report hold."""
    env = {**environment(), "keras_backends": [b for b in backend_order(map(backend_of, results)) if b != NOT_RUN]}
    return _documented(results, [{"label": label, "environment": env}])


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def write_results(path: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    doc = results_document(results)
    write_json(path, doc)
    return doc


class ResultsFileError(Exception):
    """A results file that cannot be read or is not one; the message names the file."""


def read_results(path: Path) -> dict[str, Any]:
    """A results document from `path` (schema 1 files, from before shards, are read as one shard; results from
    before backends were an axis are `upgraded`)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsFileError(f"{path}: cannot read a results file: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ResultsFileError(f"{path}: not a harness results file (no 'results' list); write one with "
                               "`xfw-harness run --json FILE` or `pytest --harness-results FILE`")
    if doc.get("schema") == 1:
        doc = _documented(doc["results"], [{"label": str(path), "environment": doc.get("environment", {})}])
    elif doc.get("schema") != SCHEMA_VERSION:
        raise ResultsFileError(f"{path}: results schema {doc.get('schema')!r}; this harness reads 1 and "
                               f"{SCHEMA_VERSION}")
    if not all(isinstance(r, dict) and isinstance(r.get("id"), str) and "status" in r for r in doc["results"]):
        raise ResultsFileError(f"{path}: a result without an 'id' or a 'status'; not a harness results file")
    if any("backend" not in r for r in doc["results"]):  # written before backends were an axis
        doc = _documented([upgraded(r) for r in doc["results"]], doc["shards"], doc.get("cases"))
    return doc


def merge(docs: list[dict[str, Any]], labels: list[str]) -> tuple[dict[str, Any], list[str]]:
    """One document from several (shards of one suite run on different machines or CI jobs).

    A test id that appears in more than one shard is kept once, from the later shard; the ids are returned so
    that the caller can say so (shards of one suite are disjoint: a duplicate means overlapping runs). Ids end in
    the backend, so one point run on TensorFlow in one shard and on JAX in another is two tests, both kept.
    """
    shards: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    duplicates: list[str] = []
    cases: dict[str, str] = {}
    for doc, label in zip(docs, labels):
        offset = len(shards)
        for shard in doc["shards"]:
            shards.append({**shard, "label": label if len(doc["shards"]) == 1 else f"{label}: {shard['label']}"})
        cases.update(doc.get("cases", {}))
        for r in doc["results"]:
            if r["id"] in by_id:
                duplicates.append(r["id"])
            by_id[r["id"]] = {**r, "shard": offset + int(r.get("shard", 0))}
    return _documented(list(by_id.values()), shards, cases), duplicates


# What changed against a baseline run, per test id: "regressed" (passed before, fails or errors now), "fixed"
# (failed or errored before, passes now), "new" (not in the baseline). Unchanged tests are not listed. Matched by id,
# which ends in the backend: a JAX test is compared with the baseline's JAX test only (a baseline read from a file
# written before backends were an axis has its ids `upgraded` to TensorFlow's).
def changes_since(doc: dict[str, Any], baseline: dict[str, Any]) -> dict[str, str]:
    before = {r["id"]: r["status"] for r in baseline["results"]}
    bad = (Status.FAILED, Status.ERROR)
    changes = {}
    for r in doc["results"]:
        old, now = before.get(r["id"]), r["status"]
        if old is None:
            changes[r["id"]] = "new"
        elif old in (Status.PASSED, Status.DIVERGENT) and now in bad:
            changes[r["id"]] = "regressed"
        elif old in bad and now in (Status.PASSED, Status.DIVERGENT):
            changes[r["id"]] = "fixed"
    return changes


def write_junit(path: Path, doc: dict[str, Any]) -> None:
    """The results as JUnit XML (one testsuite per case file), for CI systems that display test results. Keras's
    backend is the last part of each testcase's classname (`cases/conv2d.yaml.jax`: CI systems that split
    classnames at the last dot show it as the class, grouping each file's tests by backend) and its `backend`
    property; the name (the id after the file) ends in it too."""
    root = ET.Element("testsuites", name="harness")
    suites: dict[str, ET.Element] = {}
    counts: dict[str, dict[str, int]] = {}
    for r in doc["results"]:
        suite = suites.get(r["file"])
        if suite is None:
            suite = suites[r["file"]] = ET.SubElement(root, "testsuite", name=r["file"])
            counts[r["file"]] = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        c = counts[r["file"]]
        c["tests"] += 1
        name = r["id"].split("::", 1)[-1]
        backend = backend_of(r)
        case = ET.SubElement(suite, "testcase", classname=f"{r['file']}.{backend}", name=name,
                             time=f"{r.get('duration_s', 0):.6f}")
        properties = ET.SubElement(case, "properties")  # before failure/skipped/system-out, as the JUnit schema has it
        if r["status"] == Status.DIVERGENT:  # a pass (a documented difference still there), marked as such
            ET.SubElement(properties, "property", name="harness_status", value="divergent")
        ET.SubElement(properties, "property", name="backend", value=backend)
        message = r.get("message", "")
        first_line = message.splitlines()[0] if message else r["status"]
        if r["status"] == Status.FAILED:
            c["failures"] += 1
            ET.SubElement(case, "failure", message=first_line).text = message
        elif r["status"] == Status.ERROR:
            c["errors"] += 1
            ET.SubElement(case, "error", message=first_line).text = message
        elif r["status"] == Status.SKIPPED:
            c["skipped"] += 1
            ET.SubElement(case, "skipped", message=first_line)
        elif message:
            ET.SubElement(case, "system-out").text = message
    for file, suite in suites.items():
        for k, v in counts[file].items():
            suite.set(k, str(v))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
