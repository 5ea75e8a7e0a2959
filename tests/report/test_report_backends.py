"""The report with Keras's backends side by side: each result names its backend, documents count each backend
apart, shards of different backends merge, a baseline is matched backend by backend (and one from before backends
reads as TensorFlow), JUnit names the backend, and the page's static tables count each block on each backend. The
page's script (the table of points with a cell per backend, the backend filter) is tested in a real browser in
test_report_browser.py.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
from tests.report.fakes import on, result
from xfw_harness.report.html import render_report, unpack
from xfw_harness.suite.results import (
    changes_since,
    merge,
    point_id,
    read_results,
    results_document,
    write_json,
    write_junit,
)

P = "cases/x.yaml::c[s=1-cpu]"  # one point on one device; its tests' ids end in the backend
BAD = "cases/x.yaml::bad"  # a case that could not run: no device, no backend


def test_a_point_id_drops_the_backend_and_only_the_backend() -> None:
    for backend in ("tensorflow", "jax", "torch", "backends"):
        assert point_id(on(P, backend, "passed")) == P
    # A sweep value spelled like a backend stays: only the id's last part is the backend.
    assert point_id(result("cases/x.yaml::c[act=torch-cpu-jax]", "passed", backend="jax")) == \
        "cases/x.yaml::c[act=torch-cpu]"
    assert point_id(result(BAD, "error", "-", backend="-")) == BAD


def test_a_document_counts_each_backend_apart() -> None:
    doc = results_document([on(P, "torch", "error"), on(P, "tensorflow", "passed"), on(P, "jax", "failed"),
                            on(P, "backends", "passed"), result(BAD, "error", "-", backend="-")])
    by = doc["summary_by_backend"]
    assert list(by) == ["tensorflow", "jax", "torch", "backends", "-"]  # Keras's order, not the results'
    assert {b: (c["passed"], c["failed"], c["error"], c["total"]) for b, c in by.items()} == {
        "tensorflow": (1, 0, 0, 1), "jax": (0, 1, 0, 1), "torch": (0, 0, 1, 1), "backends": (1, 0, 0, 1),
        "-": (0, 0, 1, 1)}
    assert [r["backend"] for r in doc["results"]] == ["torch", "tensorflow", "jax", "backends", "-"]
    assert doc["environment"]["keras_backends"] == ["tensorflow", "jax", "torch", "backends"]


def test_shards_of_different_backends_merge_side_by_side() -> None:
    tf = results_document([on(P, "tensorflow", "passed")], label="tensorflow job")
    jax = results_document([on(P, "jax", "failed")], label="jax job")
    merged, duplicates = merge([tf, jax], ["tf.json", "jax.json"])
    assert duplicates == []  # the same point on two backends is two tests
    assert {r["backend"]: (r["status"], r["shard"]) for r in merged["results"]} == {
        "tensorflow": ("passed", 0), "jax": ("failed", 1)}
    assert merged["summary_by_backend"]["jax"]["failed"] == 1 and merged["summary_by_backend"]["tensorflow"][
        "passed"] == 1


def test_a_baseline_is_matched_backend_by_backend() -> None:
    baseline = results_document([on(P, "tensorflow", "passed"), on(P, "jax", "passed"), on(P, "torch", "failed")])
    now = results_document([on(P, "tensorflow", "passed"), on(P, "jax", "failed"), on(P, "torch", "passed"),
                            on(P, "backends", "passed")])
    assert changes_since(now, baseline) == {on(P, "jax", "x")["id"]: "regressed", on(P, "torch", "x")["id"]: "fixed",
                                            on(P, "backends", "x")["id"]: "new"}


def test_a_results_file_from_before_backends_reads_as_tensorflow(tmp_path: Path) -> None:
    legacy = [{k: v for k, v in r.items() if k not in ("backend", "case_yaml")}
              for r in (result(P, "passed"), result(BAD, "error", "-"))]
    (tmp_path / "old.json").write_text(json.dumps({"schema": 2, "shards": [{"label": "old", "environment": {}}],
                                                   "environment": {}, "summary": {}, "cases": {},
                                                   "results": legacy}), encoding="utf-8")
    old = read_results(tmp_path / "old.json")
    assert [(r["id"], r["backend"]) for r in old["results"]] == [(on(P, "tensorflow", "x")["id"], "tensorflow"),
                                                                 (BAD, "-")]
    assert old["summary_by_backend"]["tensorflow"]["passed"] == 1
    # As a baseline it matches today's TensorFlow test, not the JAX one.
    now = results_document([on(P, "tensorflow", "failed"), on(P, "jax", "passed")])
    assert changes_since(now, old) == {on(P, "tensorflow", "x")["id"]: "regressed", on(P, "jax", "x")["id"]: "new"}
    # A file that names its backends is read as written.
    write_json(tmp_path / "new.json", now)
    assert read_results(tmp_path / "new.json")["results"] == now["results"]


def test_junit_names_the_backend_in_the_classname_and_a_property(tmp_path: Path) -> None:
    doc = results_document([on(P, "jax", "failed", message="values differ"), on(P, "tensorflow", "passed")])
    write_junit(tmp_path / "junit.xml", doc)
    cases = list(ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    assert [(c.get("name"), c.get("classname"), c.find("properties/property[@name='backend']").get("value"))
            for c in cases] == [("c[s=1-cpu-jax]", "cases/x.yaml.jax", "jax"),
                                ("c[s=1-cpu-tensorflow]", "cases/x.yaml.tensorflow", "tensorflow")]
    assert [child.tag for child in cases[0]] == ["properties", "failure"]  # the schema's order


def block_cells(html: str) -> dict[tuple[str, str, str], str]:
    """The per-block table's counts: (block, backend, status) -> the cell's text."""
    table = re.search(r'<table id="blocks">.*?</table>', html, re.S).group(0)
    cells = {}
    for block, row in re.findall(r'<tr data-block="([^"]+)">(.*?)</tr>', table, re.S):
        for backend, status, text in re.findall(r'data-backend="([^"]+)" data-status="([^"]+)">([^<]*)<', row):
            cells[(block, backend, status)] = text
    return cells


def test_the_page_counts_each_block_on_each_backend_apart() -> None:
    d = "cases/x.yaml::d[cpu]"
    doc = results_document([on(P, "tensorflow", "passed"), on(P, "jax", "failed"), on(P, "torch", "passed"),
                            on(d, "tensorflow", "passed", block="conv2d"), on(d, "jax", "passed", block="conv2d"),
                            on(d, "torch", "error", block="conv2d")])
    html = render_report(doc)
    cells = block_cells(html)
    assert (cells[("relu", "tensorflow", "failed")], cells[("relu", "jax", "failed")]) == ("0", "1")
    assert (cells[("relu", "jax", "passed")], cells[("relu", "torch", "passed")]) == ("0", "1")
    assert (cells[("conv2d", "torch", "error")], cells[("conv2d", "tensorflow", "error")]) == ("1", "0")
    # The totals per backend, and each failure named with its backend.
    totals = re.search(r'<table id="backends">.*?</table>', html, re.S).group(0)
    assert re.search(r'<tr data-backend="jax">.*?data-status="failed">1<', totals)
    assert re.search(r'<tr data-backend="tensorflow">.*?data-status="failed">0<', totals)
    assert re.findall(r'<details class="failure" data-id="[^"]+" data-backend="([^"]+)"', html) == ["jax", "torch"]
    assert f'<summary>{P} <span class="bk">on jax</span></summary>' in html
    data = unpack(html)
    assert data["backends"] == ["tensorflow", "jax", "torch"]
    assert {(r["point"], r["backend"], r["status"]) for r in data["rows"]} >= {(P, "jax", "failed"),
                                                                              (P, "tensorflow", "passed")}


def test_the_block_counts_check_catches_a_page_that_mixes_the_backends(monkeypatch) -> None:
    """Planted: every backend's group counts every result (what grouping by backend guards against)."""
    import xfw_harness.report.html

    monkeypatch.setattr(xfw_harness.report.html, "by_backend", lambda rs: {"tensorflow": rs, "jax": rs})
    doc = results_document([on(P, "tensorflow", "passed"), on(P, "jax", "failed")])
    assert block_cells(render_report(doc))[("relu", "tensorflow", "failed")] == "1"  # where the check above looks


def summary_cells(results: list[dict]) -> dict[str, list[str]]:
    """`xfw-harness run`'s summary table as text: the first cell of each row -> the row's cells."""
    import io

    from rich.console import Console

    from xfw_harness.report.terminal import summary_table

    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(summary_table(results))
    rows = [[c.strip() for c in line.strip("│┃").split("│" if "│" in line else "┃")]
            for line in out.getvalue().splitlines() if line.startswith(("│", "┃"))]
    return {row[0]: row[1:] for row in rows}


def test_the_run_summary_puts_each_backend_in_its_own_column() -> None:
    cells = summary_cells([on(P, "torch", "error"), on(P, "tensorflow", "passed"), on(P, "jax", "failed"),
                           on("cases/x.yaml::d[cpu]", "jax", "passed"), result(BAD, "error", "-", backend="-")])
    assert cells["block"] == ["tensorflow", "jax", "torch", "not run (invalid)"]
    assert cells["relu"] == ["1 passed", "1 passed  1 failed", "1 error", "1 error"]
    assert cells["all"] == cells["relu"] and len(cells["time (s)"]) == 4
