"""The report answers "where do they differ?" in a real browser (headless Chromium, as test_report_browser.py): a
report of a real run with a known difference, a failed golden value and a passing bfloat16 conv shows the section
of known differences (without its script too), the error/tolerance column, and the heatmaps of the comparison that
failed, labelled with its arrays. Each check is also shown to catch a report that lies. Screenshot:
reports/report-differences.png.

Skipped, with the reason, where no Chromium can be driven, except where HARNESS_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
from tests.conftest import load_points
from xfw_harness.report.browser import browser_unavailable_reason, chromium, open_report
from xfw_harness.report.html import write_report
from xfw_harness.suite.figures import comparison_pictures
from xfw_harness.suite.local import run_test
from xfw_harness.suite.results import results_document

PROJECT = Path(__file__).resolve().parents[2]
REASON = browser_unavailable_reason()
if REASON and os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"HARNESS_REQUIRE_BROWSER=1 but {REASON}")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"report browser test: {REASON}")

WHY = "planted for the report's test: default negative_slope, PyTorch 0.01, Keras 0.3"
CASES = f"""\
- name: golden_wrong         # relu(2.5) is 2.5, not 2: torch and keras agree, both fail against expect.output
  block: relu
  input: {{fill: values, values: [[-1.5, 0.0, 2.5]]}}
  expect:
    output: [[0.0, 0.0, 2.0]]
- name: conv_bf16            # passes, with a max rel that reads like an error and an error/tolerance below 1
  block: conv2d
  params: {{filters: 4, kernel_size: 3}}
  input: {{shape: [1, 3, 10, 10], dtype: bfloat16}}
- name: slope
  block: leaky_relu
  defaults: native
  input: {{shape: [1, 2, 4, 4]}}
  expect:
    divergent: "{WHY}"
    reference: true
"""


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("cases")
    return results_document([run_test(p, "cpu").to_dict() for p in load_points(CASES, folder)])


@pytest.fixture(scope="module")
def report(doc: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "index.html"
    write_report(path, doc)
    return path


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def by_case(doc: dict, name: str) -> dict:
    return next(r for r in doc["results"] if r["case"] == name)


def test_the_run_gives_what_the_page_is_checked_on(doc: dict) -> None:
    assert [by_case(doc, n)["status"] for n in ("golden_wrong", "conv_bf16", "slope")] == [
        "failed", "passed", "divergent"]
    assert by_case(doc, "conv_bf16")["verdicts"][0]["metrics"]["max_rel"] > 0.01  # bfloat16: a large-looking max rel


def test_known_differences_show_reason_reference_side_worst_element_and_backend(browser, report, doc) -> None:
    page, problems = open_report(browser, report)
    slope = by_case(doc, "slope")
    m = slope["verdicts"][0]["metrics"]
    section = page.locator("section.known")
    assert section.count() == 1 and section.get_attribute("data-case").endswith("::slope")
    row = section.locator("table.known-tests tbody tr")
    assert row.count() == 1
    assert section.locator("p.reason").inner_text() == WHY
    assert row.locator("td.side").inner_text() == "the reference agrees with torch; keras differs"
    worst = row.locator("td.worst").inner_text()
    assert f"at {m['worst_index']}" in worst and "keras" in worst and "torch" in worst
    assert f"{m['worst_actual']:.6g}" in worst and f"{m['worst_expected']:.6g}" in worst
    assert row.locator("td.backends .bk").all_inner_texts() == [slope["backend"]]
    assert page.inner_text("#known-differences") == "Known differences (1)"
    assert problems == []


def test_the_section_reads_without_javascript(browser, report) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(report.resolve().as_uri())
    assert page.locator("section.known td.side").inner_text() == "the reference agrees with torch; keras differs"
    assert page.locator("#tests tbody td#loading").count() == 1  # the script did not run
    context.close()


def table_ratio(page, case: str) -> tuple[str, str]:
    """The err/tol column and the figure under the status of the row of `case`."""
    row = page.locator("#tests tbody tr.row", has_text=f"::{case}[")
    return row.locator("td.tolerance_ratio").inner_text(), row.locator("td.st small").inner_text()


def test_error_over_tolerance_is_shown_where_max_rel_was(browser, report, doc) -> None:
    page, problems = open_report(browser, report)
    conv = by_case(doc, "conv_bf16")
    ratio = conv["verdicts"][0]["metrics"]["tolerance_ratio"]
    assert 0 < ratio <= 1
    shown = page.evaluate(f"fmt({ratio})")
    assert table_ratio(page, "conv_bf16") == (shown, shown)
    assert float(table_ratio(page, "golden_wrong")[0]) > 1
    assert "over" in page.locator("#tests tbody tr.row", has_text="::golden_wrong[").locator(
        "td.tolerance_ratio").get_attribute("class")
    # Per block: conv2d passed within tolerance, relu's golden value did not.
    conv_cell = page.locator("#blocks tr[data-block='conv2d'] td.ratio")
    assert float(conv_cell.inner_text()) == pytest.approx(ratio, rel=1e-2) and "over" not in conv_cell.get_attribute(
        "class")
    assert "over" in page.locator("#blocks tr[data-block='relu'] td.ratio").get_attribute("class")
    # Sorting by it puts the largest first.
    page.click("#tests th[data-key='tolerance_ratio']")
    page.click("#tests th[data-key='tolerance_ratio']")
    values = page.evaluate("[...document.querySelectorAll('#tests tbody tr.row td.tolerance_ratio')].map(td => "
                           "Number(td.textContent))")
    assert values == sorted(values, reverse=True) and len(values) == 3
    assert problems == []


def test_a_results_file_without_the_ratio_still_renders_with_the_column_blank(browser, doc, tmp_path: Path) -> None:
    def without(v: dict) -> dict:
        return {**v, "metrics": {k: x for k, x in v["metrics"].items() if k != "tolerance_ratio"}}

    old = {**doc, "results": [{**r, "verdicts": [without(v) for v in r["verdicts"]]} for r in doc["results"]]}
    write_report(tmp_path / "old.html", old)
    page, problems = open_report(browser, tmp_path / "old.html")
    row = page.locator("#tests tbody tr.row", has_text="::conv_bf16[")
    assert row.locator("td.tolerance_ratio").inner_text() == "" and row.locator("td.st small").count() == 0
    assert row.locator("td.max_rel").inner_text() != ""  # what the file does hold is still shown
    assert page.locator("#blocks td.ratio").all_inner_texts() == ["", "", ""]
    assert problems == []


def heatmap_labels(page, case: str) -> tuple[str | None, list[str]]:
    box = page.locator("details.failure", has_text=f"::{case}[")
    maps = box.locator(".heatmaps")
    return maps.get_attribute("data-what"), maps.locator("table.maps tr").first.locator("th").all_inner_texts()


def test_the_heatmaps_of_a_failed_golden_value_are_of_that_comparison(browser, report) -> None:
    page, problems = open_report(browser, report)
    what, labels = heatmap_labels(page, "golden_wrong")
    assert what == "torch vs expected"
    assert labels == ["", "PyTorch", "expected (expect.output)", "|torch \u2212 expected|"]
    box = page.locator("details.failure", has_text="::golden_wrong[")
    assert "Where the outputs differ: torch vs expected" in box.inner_text()
    assert box.locator(".maps .muted", has_text="0 \u2026 0.500").count() == 1  # the difference's scale: 2.5 vs 2
    assert "|torch \u2212 expected| (log scale)" in box.locator("svg").last.text_content()
    box.locator(".heatmaps").scroll_into_view_if_needed()
    (PROJECT / "reports").mkdir(exist_ok=True)
    page.screenshot(path=str(PROJECT / "reports" / "report-differences.png"), full_page=False)
    assert problems == []


def test_the_label_check_catches_pictures_of_the_wrong_comparison(browser, doc, tmp_path: Path) -> None:
    # Planted: what the report drew before, PyTorch against Keras (all zero) under a failed golden value.
    zero = np.array([[0.0, 0.0, 2.5]])
    wrong = [{**r, "details": {**r["details"], "pictures": comparison_pictures(zero, zero, 1e-6)}}
             if r["case"] == "golden_wrong" else r for r in doc["results"]]
    write_report(tmp_path / "wrong.html", {**doc, "results": wrong})
    page, _ = open_report(browser, tmp_path / "wrong.html")
    what, labels = heatmap_labels(page, "golden_wrong")
    assert what != "torch vs expected" and "expected (expect.output)" not in labels


def test_the_section_and_ratio_checks_catch_a_report_that_lies(browser, doc, tmp_path: Path) -> None:
    # Planted: the reference verdicts of the known difference flipped, and the conv's ratio over its tolerance.
    def lie(r: dict) -> dict:
        if r["case"] == "slope":
            return {**r, "verdicts": [{**v, "passed": not v["passed"]} if v["kind"] == "reference" else v
                                      for v in r["verdicts"]]}
        if r["case"] == "conv_bf16":
            first = {**r["verdicts"][0], "metrics": {**r["verdicts"][0]["metrics"], "tolerance_ratio": 5}}
            return {**r, "verdicts": [first, *r["verdicts"][1:]]}
        return r

    write_report(tmp_path / "lies.html", {**doc, "results": [lie(r) for r in doc["results"]]})
    page, _ = open_report(browser, tmp_path / "lies.html")
    assert page.locator("section.known td.side").inner_text() == "the reference agrees with keras; torch differs"
    assert table_ratio(page, "conv_bf16") == ("5", "5")
    assert "over" in page.locator("#blocks tr[data-block='conv2d'] td.ratio").get_attribute("class")
