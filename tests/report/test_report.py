"""The report's data path: pictures (xfw_harness.suite.figures), results documents (merging shards, baselines, JUnit
XML) and the HTML page's static parts and packed data. The page's script is tested in a real browser in
test_report_browser.py.
"""

from __future__ import annotations

import base64
import io
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
from tests.report.fakes import result
from xfw_harness.cli import main
from xfw_harness.report.html import render_report, unpack
from xfw_harness.suite.figures import MAX_CHANNELS, MAX_SIDE, comparison_pictures, error_histogram, heatmaps
from xfw_harness.suite.local import run_test
from xfw_harness.suite.results import (
    ResultsFileError,
    changes_since,
    merge,
    read_results,
    results_document,
    summarise,
    write_json,
    write_junit,
)


def png_size(b64: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(b64))).size


# --- pictures ------------------------------------------------------------------------------------------------

def test_heatmaps_show_the_worst_channels_first_of_the_sample_with_the_worst_element() -> None:
    rng = np.random.default_rng(0)
    t = rng.standard_normal((2, 12, 5, 7)).astype(np.float32)
    k = t.copy()
    k[1, 9, 2, 3] += 0.5  # the worst: sample 1, channel 9
    k[1, 4, 0, 0] += 0.1
    k[0, 2, 1, 1] += 0.3  # another sample: not shown
    h = heatmaps(t, k)
    assert h["sample"] == 1 and h["n_channels"] == 12 and h["label"] == "channel"
    assert [c["index"] for c in h["channels"][:2]] == [9, 4]
    assert len(h["channels"]) == MAX_CHANNELS
    first = h["channels"][0]
    assert first["max_abs"] == pytest.approx(0.5, rel=1e-6)
    # One pixel per element: width is the columns, height the rows.
    assert png_size(first["a"]) == (7, 5) and png_size(first["diff"]) == (7, 5)


def test_large_planes_are_reduced_by_block_max_so_no_error_disappears() -> None:
    t = np.zeros((1, 1, 300, 200), np.float32)
    k = t.copy()
    k[0, 0, 151, 77] = 1e-3  # one bad element in a plane far larger than MAX_SIDE
    c = heatmaps(t, k)["channels"][0]
    f = c["reduced_by"]
    assert f == -(-300 // MAX_SIDE) and (c["rows"], c["cols"]) == (-(-300 // f), -(-200 // f))
    diff = np.asarray(Image.open(io.BytesIO(base64.b64decode(c["diff"]))).convert("L"), dtype=float)
    assert diff.shape == (c["rows"], c["cols"])
    # The block holding the bad element is the brightest pixel; every other block is dark (zero error).
    assert np.unravel_index(int(np.argmax(diff)), diff.shape) == (151 // f, 77 // f)
    assert (diff > diff.min()).sum() == 1


def test_dense_outputs_are_one_plane_of_samples_by_features() -> None:
    t = np.arange(20, dtype=np.float32).reshape(2, 10)
    h = heatmaps(t, t + 1e-6)
    assert h["label"] == "samples x features" and h["sample"] is None
    assert png_size(h["channels"][0]["b"]) == (10, 2)


def test_histogram_counts_every_difference_and_the_exact_zeros_apart() -> None:
    t = np.zeros(1000)
    k = t.copy()
    k[:300] = np.logspace(-9, -3, 300)
    hist = error_histogram(t, k, atol=1e-6)
    assert hist["zeros"] == 700 and hist["nonzero"] == 300 and sum(hist["counts"]) == 300
    assert hist["log10_edges"][0] == pytest.approx(-9) and hist["log10_edges"][-1] == pytest.approx(-3)
    assert hist["log10_atol"] == pytest.approx(-6)


def test_non_finite_values_and_mismatched_shapes_do_not_break_the_pictures() -> None:
    t = np.array([[1.0, np.nan, np.inf, 2.0]])
    assert comparison_pictures(t, t.copy(), 1e-6)["histogram"]["zeros"] == 2
    assert comparison_pictures(np.zeros((1, 3)), np.zeros((1, 4)), 1e-6) == {}


# --- details kept by the runner -------------------------------------------------------------------------------

TIGHT = """\
- name: tight
  block: conv2d
  params: {filters: 3, kernel_size: 3}
  input: {shape: [1, 4, 8, 8]}
  tolerance: {atol: 0, rtol: 0}
  sweep: {input.seed: [0, 1, 2, 3]}
- name: fine
  block: relu
  input: {shape: [1, 2, 4, 4]}
- name: drop
  block: dropout
  params: {rate: 0.5}
  mode: train
  input: {shape: [8, 64]}
"""


def tight_results(case_points, details: str) -> list:
    results = [run_test(p, "cpu", details) for p in case_points(TIGHT)]
    # A conv at atol=0 fails on some seeds (summation order), not necessarily all: use what the run gives.
    assert any(r.status == "failed" for r in results), [r.message for r in results]
    return results


def test_failed_tests_keep_pictures_by_default_and_passing_ones_only_when_asked(case_points) -> None:
    for r in tight_results(case_points, "failed"):
        assert (r.details is not None) == (r.status == "failed"), r.id
        if r.details:
            assert r.details["pictures"]["heatmaps"]["channels"]
    every = tight_results(case_points, "all")
    assert all(r.details is not None for r in every)
    assert "pictures" not in next(r for r in every if r.case == "drop").details  # dropout samples differ by design
    assert all(r.details is None for r in tight_results(case_points, "none"))


def test_a_picture_that_cannot_be_drawn_never_changes_the_verdict(case_points, monkeypatch) -> None:
    import xfw_harness.suite.details

    def broken(*args, **kwargs):
        raise RuntimeError("no canvas")

    monkeypatch.setattr(xfw_harness.suite.details, "comparison_pictures", broken)
    results = tight_results(case_points, "all")
    assert {r.status for r in results} == {"passed", "failed"}
    assert all(r.details["pictures_error"] == "RuntimeError: no canvas" for r in results if r.case != "drop")


# --- results documents ---------------------------------------------------------------------------------------

def test_a_document_keeps_each_cases_yaml_once() -> None:
    doc = results_document([result("a[cpu]", "passed"), result("a[gpu]", "passed", "gpu")])
    assert doc["cases"] == {"cases/x.yaml::c": "name: c\n"}
    assert all("case_yaml" not in r for r in doc["results"])
    assert doc["summary"]["passed"] == 2 and doc["summary"]["total"] == 2


def test_shards_merge_into_one_document_with_every_environment() -> None:
    cpu = results_document([result("a[cpu]", "passed"), result("b[cpu]", "failed")], label="cpu job")
    gpu = results_document([result("a[gpu]", "passed", "gpu"), result("b[gpu]", "passed", "gpu")], label="gpu job")
    gpu["shards"][0]["environment"]["host"] = "gpu-box"
    merged, duplicates = merge([cpu, gpu], ["cpu.json", "gpu.json"])
    assert duplicates == []
    assert merged["summary"] == summarise(cpu["results"] + gpu["results"])
    assert [s["label"] for s in merged["shards"]] == ["cpu.json", "gpu.json"]
    assert {r["id"]: r["shard"] for r in merged["results"]} == {"a[cpu]": 0, "b[cpu]": 0, "a[gpu]": 1, "b[gpu]": 1}
    # Merging a merged document keeps its shards apart.
    again, _ = merge([merged], ["all.json"])
    assert len(again["shards"]) == 2 and again["summary"] == merged["summary"]


def test_overlapping_shards_are_reported_and_the_later_result_kept() -> None:
    first = results_document([result("a[cpu]", "failed")])
    second = results_document([result("a[cpu]", "passed")])
    merged, duplicates = merge([first, second], ["1.json", "2.json"])
    assert duplicates == ["a[cpu]"]
    assert [r["status"] for r in merged["results"]] == ["passed"] and merged["summary"]["total"] == 1


def test_changes_since_a_baseline() -> None:
    baseline = results_document([result("same", "passed"), result("breaks", "passed"), result("heals", "failed"),
                                 result("gone", "passed")])
    now = results_document([result("same", "passed"), result("breaks", "error"), result("heals", "passed"),
                            result("added", "failed")])
    assert changes_since(now, baseline) == {"breaks": "regressed", "heals": "fixed", "added": "new"}


def test_junit_xml_counts_and_messages(tmp_path: Path) -> None:
    doc = results_document([result("cases/x.yaml::c[cpu]", "passed"),
                            result("cases/x.yaml::d[cpu]", "failed", message="values differ\nmore"),
                            result("cases/y.yaml::e[gpu]", "skipped", "gpu", file="cases/y.yaml", message="no gpu"),
                            result("cases/y.yaml::f", "error", "-", file="cases/y.yaml", message="bad field")])
    write_junit(tmp_path / "junit.xml", doc)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert {k: (s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped")) for k, s in suites.items()} == {
        "cases/x.yaml": ("2", "1", "0", "0"), "cases/y.yaml": ("2", "0", "1", "1")}
    failure = root.find(".//testcase[@name='d[cpu]']/failure")
    assert failure.get("message") == "values differ" and failure.text == "values differ\nmore"


def test_results_files_that_are_not_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "b.json").write_text('{"results": 3}', encoding="utf-8")
    (tmp_path / "c.json").write_text('{"schema": 99, "results": []}', encoding="utf-8")
    for name, words in (("a.json", "cannot read"), ("b.json", "not a harness results file"), ("c.json", "schema 99")):
        with pytest.raises(ResultsFileError, match=words) as e:
            read_results(tmp_path / name)
        assert name in str(e.value)


def test_schema_1_files_from_before_shards_still_read(tmp_path: Path) -> None:
    old = {"schema": 1, "environment": {"torch": "2.13.0"}, "summary": {},
           "results": [{k: v for k, v in result("a", "passed").items() if k not in ("case_yaml", "backend")}]}
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    doc = read_results(tmp_path / "old.json")
    assert doc["shards"][0]["environment"] == {"torch": "2.13.0"} and doc["summary"]["passed"] == 1


# --- the page ------------------------------------------------------------------------------------------------

def test_the_page_is_self_contained_and_its_totals_are_the_documents() -> None:
    doc = results_document([result("a[cpu]", "passed"), result("b[cpu]", "failed"), result("c[cpu]", "error"),
                            result("d[gpu]", "skipped", "gpu")])
    html = render_report(doc)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the report must not load anything"
    assert "<link" not in html and "@import" not in html
    for status, n in (("total", 4), ("passed", 1), ("failed", 1), ("error", 1), ("skipped", 1), ("divergent", 0)):
        assert re.search(rf'<b data-status="{status}">{n}</b>', html), status
    data = unpack(html)
    assert [r["id"] for r in data["rows"]] == ["a[cpu]", "b[cpu]", "c[cpu]", "d[gpu]"]
    assert data["cases"] == [["cases/x.yaml::c", "name: c\n"]] and data["rows"][0]["case"] == 0


def test_text_from_cases_cannot_inject_markup() -> None:
    evil = result("x[cpu]", "failed", message="</script><script>alert(1)</script>", case="<img src=x onerror=1>")
    html = render_report(results_document([evil]))
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert unpack(html)["rows"][0]["message"] == "</script><script>alert(1)</script>"


def test_a_baseline_marks_regressions_in_the_page() -> None:
    baseline = results_document([result("a[cpu]", "passed"), result("b[cpu]", "failed")])
    now = results_document([result("a[cpu]", "failed"), result("b[cpu]", "passed")])
    html = render_report(now, baseline)
    assert re.search(r"1 regressed</span>", html) and re.search(r"1 fixed</span>", html)
    assert {r["id"]: r.get("change") for r in unpack(html)["rows"]} == {"a[cpu]": "regressed", "b[cpu]": "fixed"}


# --- the command line ------------------------------------------------------------------------------------------

CASES = """\
- name: ok
  block: relu
  input: {shape: [1, 2, 4, 4]}
  devices: [cpu]
- name: tight
  block: conv2d
  params: {filters: 3, kernel_size: 3}
  input: {shape: [1, 4, 8, 8]}
  tolerance: {atol: 0, rtol: 0}
  devices: [cpu]
  sweep: {input.seed: [0, 1, 2, 3]}
"""


def test_report_command_merges_shards_and_writes_all_three_files(tmp_path: Path, capsys) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(textwrap.dedent(CASES), encoding="utf-8")
    # Shards as CI might run them: one job per backend for some cases (TensorFlow here, the torch backend in a
    # worker), another job for the rest.
    assert main(["run", str(cases), "-k", "ok", "--keras-backend", "tensorflow", "--keras-backend", "torch",
                 "--json", str(tmp_path / "one.json"), "-q"]) == 0
    main(["run", str(cases), "-k", "tight", "--keras-backend", "tensorflow", "--json", str(tmp_path / "two.json"),
          "-q"])
    capsys.readouterr()
    out_dir = tmp_path / "merged"
    assert main(["report", str(tmp_path / "one.json"), str(tmp_path / "two.json"), "-o", str(out_dir)]) == 0
    out = capsys.readouterr().out
    merged = read_results(out_dir / "results.json")
    assert merged["summary"]["total"] == 6 and len(merged["shards"]) == 2
    assert {b: c["total"] for b, c in merged["summary_by_backend"].items()} == {"tensorflow": 5, "torch": 1}
    assert f"6 tests from 2 results file(s): {merged['summary']['passed']} passed" in out
    rows = unpack((out_dir / "index.html").read_text(encoding="utf-8"))["rows"]
    assert sorted(r["backend"] for r in rows if "::ok[" in r["id"]) == ["tensorflow", "torch"]
    assert len(rows) == 6
    junit = ET.parse(out_dir / "junit.xml").getroot()
    assert {c.get("classname").rsplit(".", 1)[1] for c in junit.iter("testcase")} == {"tensorflow", "torch"}


def test_report_command_refuses_a_file_that_is_not_results(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.json").write_text("[]", encoding="utf-8")
    assert main(["report", str(tmp_path / "x.json"), "-o", str(tmp_path / "out")]) == 2
    assert "x.json: not a harness results file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_writes_junit_and_a_report_with_a_baseline(tmp_path: Path, capsys) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(textwrap.dedent(CASES), encoding="utf-8")
    baseline = results_document([result("cases.yaml::ok[cpu]", "passed")])
    write_json(tmp_path / "base.json", baseline)
    main(["run", str(cases), "--junit", str(tmp_path / "j.xml"), "--html", str(tmp_path / "r.html"),
          "--baseline", str(tmp_path / "base.json"), "--keras-backend", "tensorflow", "-q"])
    out = capsys.readouterr().out
    assert "harness: results per block" in out and "junit: " in out
    assert ET.parse(tmp_path / "j.xml").getroot().find(".//testcase") is not None
    rows = unpack((tmp_path / "r.html").read_text(encoding="utf-8"))["rows"]
    assert {r.get("change") for r in rows} == {"new"}  # the baseline's id has no folder: every test is new


def test_progress_bar_on_a_terminal_plain_lines_elsewhere(tmp_path: Path) -> None:
    from rich.console import Console

    from xfw_harness.cases import load_paths
    from xfw_harness.cli import _run_all
    from xfw_harness.suite.collect import plan_tests

    cases = tmp_path / "cases.yaml"
    cases.write_text(textwrap.dedent(CASES), encoding="utf-8")
    tests = plan_tests(load_paths([cases])[0], backends=("tensorflow",))
    terminal = io.StringIO()
    results = _run_all(tests, "none", False, Console(file=terminal, force_terminal=True, width=120))
    assert len(results) == len(tests) == 5
    text = terminal.getvalue()
    assert "\x1b[" in text and "PASS" in text  # coloured lines printed above a live bar
    assert re.search(r"\d+/5", text), "the bar counts tests done out of the total"


# --- the speed table (make bench) -----------------------------------------------------------------------------

def bench_entry(case: str, framework: str, device: str, median: float, **extra) -> dict:
    return {"name": f"test_forward[{case}-{framework}-{device}]", "stats": {"median": median},
            "extra_info": {"case": case, "framework": framework, "device": device, **extra}}


BENCH = {"machine_info": {"cpu": {"brand_raw": "Test CPU"}},
         "benchmarks": [bench_entry("conv2d", "torch", "cpu", 0.002), bench_entry("conv2d", "keras", "cpu", 0.003),
                        bench_entry("relu", "torch", "cpu", 2e-5), bench_entry("relu", "keras", "cpu", 1e-5),
                        bench_entry("relu", "torch", "gpu", 1e-5),  # no keras counterpart: no row
                        {"name": "test_harness_overhead", "stats": {"median": 3.0},
                         "extra_info": {"ratio": 1.03, "harness_s": 3.1, "bare_s": 3.0, "tests": 305}}]}


def test_speed_rows_pair_the_frameworks_per_case_and_device() -> None:
    from xfw_harness.report.html import bench_facts, speed_rows

    rows = speed_rows(BENCH)
    assert [(r["case"], r["device"], r["faster"]) for r in rows] == [("conv2d", "cpu", "torch"),
                                                                    ("relu", "cpu", "keras")]
    assert rows[0]["factor"] == pytest.approx(1.5) and rows[1]["factor"] == pytest.approx(2.0)
    assert rows[0]["torch_ms"] == pytest.approx(2.0)
    assert bench_facts(BENCH)["ratio"] == 1.03


def test_the_report_shows_the_speed_table_when_given_a_benchmark_file(tmp_path: Path, capsys) -> None:
    doc = results_document([result("a[cpu]", "passed")])
    html = render_report(doc, bench=BENCH)
    table = re.search(r'<table id="speed-table">.*?</table>', html, re.S).group(0)
    assert table.count("<tr>") == 3 and "1.5x" in table and "2.0x" in table
    assert "1.03x the bare framework calls" in html and "Test CPU" in html
    assert 'id="speed-table"' not in render_report(doc)
    write_json(tmp_path / "r.json", doc)
    (tmp_path / "bench.json").write_text(json.dumps(BENCH), encoding="utf-8")
    assert main(["report", str(tmp_path / "r.json"), "-o", str(tmp_path / "out"), "--bench",
                 str(tmp_path / "bench.json")]) == 0
    assert 'id="speed-table"' in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert main(["report", str(tmp_path / "r.json"), "-o", str(tmp_path / "out2"), "--bench",
                 str(tmp_path / "missing.json")]) == 0
    assert "missing.json: cannot read the benchmark file" in capsys.readouterr().err
