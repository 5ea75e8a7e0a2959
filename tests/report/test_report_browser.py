"""The report in a real browser: headless Chromium opens a report of a run with every kind of result, and the
page must render without console errors or network requests, show the totals of results.json, filter, sort and
open a failure's details with its pictures. A screenshot lands in reports/report-e2e.png.

Skipped, with the reason, where no Chromium can be driven, except where HARNESS_REQUIRE_BROWSER=1 (set by
.ci/run, which installs Chromium): there a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

import harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
from harness.cli import main
from harness.report.browser import browser_unavailable_reason, chromium, open_report
from harness.report.html import write_report
from harness.suite.results import read_results, results_document, summarise

PROJECT = Path(__file__).resolve().parents[2]
REASON = browser_unavailable_reason()
if REASON and os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"HARNESS_REQUIRE_BROWSER=1 but {REASON}")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"report browser test: {REASON}")

CASES = """\
- name: conv_ok
  block: conv2d
  params: {filters: 4, kernel_size: 3}
  input: {shape: [1, 3, 10, 10]}
  devices: [cpu]
  sweep: {strides: [1, 2]}
- name: conv_too_tight       # atol 0: summation order differs, so some seeds fail: pictures for the report
  block: conv2d
  params: {filters: 6, kernel_size: 3, padding: same}
  input: {shape: [1, 8, 12, 12]}
  tolerance: {atol: 0, rtol: 0}
  devices: [cpu]
  sweep: {input.seed: [0, 1, 2, 3, 4, 5]}
- name: dropout_train
  block: dropout
  params: {rate: 0.5}
  mode: train
  input: {shape: [16, 64]}
  devices: [cpu]
- name: gpu_only
  block: relu
  input: {shape: [1, 2, 4, 4]}
  devices: [gpu]
- name: broken
  block: conv2d
  params: {filters: 0, kernel_size: 3}
  input: {shape: [1, 2, 5, 5]}
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("report")
    (folder / "cases.yaml").write_text(textwrap.dedent(CASES), encoding="utf-8")
    main(["run", str(folder / "cases.yaml"), "--json", str(folder / "results.json"), "-q"])
    doc = read_results(folder / "results.json")
    # A baseline in which everything passed: the failures now are regressions.
    baseline = results_document([{**r, "status": "passed"} for r in doc["results"]])
    write_report(folder / "index.html", doc, baseline)
    return folder / "index.html", doc


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def visible_rows(page) -> int:
    return page.evaluate("[...document.querySelectorAll('#tests tbody tr.row')].filter(r => r.style.display !== 'none')"
                         ".length")


def page_totals(page) -> dict[str, int]:
    return {el.get_attribute("data-status"): int(el.inner_text()) for el in page.query_selector_all("[data-status]")
            if el.evaluate("e => e.tagName") == "B"}


def problems_with_totals(page, doc: dict) -> list[str]:
    """Where the page's totals and rows disagree with the results document."""
    shown, summary = page_totals(page), doc["summary"]
    problems = [f"{k}: page {shown.get(k)} vs results {summary[k]}" for k in summary if shown.get(k) != summary[k]]
    rows = page.evaluate("document.querySelectorAll('#tests tbody tr.row').length")
    if rows != len(doc["results"]):
        problems.append(f"{rows} rows vs {len(doc['results'])} results")
    return problems


def test_the_report_renders_with_the_totals_of_results_json(browser, report) -> None:
    path, doc = report
    page, problems = open_report(browser, path)
    assert {s for s in ("passed", "failed", "error", "skipped") if doc["summary"][s]} == {
        "passed", "failed", "error", "skipped"}, "the run should produce every kind of result"
    assert problems_with_totals(page, doc) == []
    assert problems == [], problems
    (PROJECT / "reports").mkdir(exist_ok=True)
    page.locator("details.failure").first.scroll_into_view_if_needed()
    page.screenshot(path=str(PROJECT / "reports" / "report-e2e.png"), full_page=False)


def test_the_totals_check_catches_a_report_that_lies(browser, report, tmp_path: Path) -> None:
    path, doc = report
    wrong = {**doc, "summary": {**doc["summary"], "passed": doc["summary"]["passed"] + 1}}
    write_report(tmp_path / "wrong.html", wrong)
    page, _ = open_report(browser, tmp_path / "wrong.html")
    assert problems_with_totals(page, doc) == [f"passed: page {doc['summary']['passed'] + 1} vs results "
                                               f"{doc['summary']['passed']}"]


def test_filtering_by_status_block_and_text(browser, report) -> None:
    path, doc = report
    page, problems = open_report(browser, path)
    counts = summarise(doc["results"])
    assert visible_rows(page) == counts["total"]
    page.select_option("#f-status", "failed")
    assert visible_rows(page) == counts["failed"] > 0
    assert page.inner_text("#shown") == f"{counts['failed']} of {counts['total']} tests shown"
    page.select_option("#f-status", "")
    page.select_option("#f-block", "dropout")
    assert visible_rows(page) == 1
    page.select_option("#f-block", "")
    page.fill("#filter", "strides=2")
    assert visible_rows(page) == 1
    page.fill("#filter", "")
    page.check("#f-changed")  # against the all-passing baseline: the failures and errors changed
    assert visible_rows(page) == counts["failed"] + counts["error"]
    assert problems == []


def test_sorting_by_max_rel_puts_the_largest_first(browser, report) -> None:
    path, _ = report
    page, problems = open_report(browser, path)
    page.click("#tests th[data-key='max_rel']")
    page.click("#tests th[data-key='max_rel']")  # second click: descending
    values = page.evaluate("[...document.querySelectorAll('#tests tbody tr.row td:nth-child(8)')].map(td => "
                           "td.textContent).filter(t => t !== '').map(Number)")
    assert values and values == sorted(values, reverse=True)
    assert problems == []


def test_a_failures_details_show_code_yaml_and_pictures(browser, report) -> None:
    path, doc = report
    page, problems = open_report(browser, path)
    failed = next(r for r in doc["results"] if r["status"] == "failed")
    box = page.locator(f"details.failure[data-id='{failed['id']}']")
    assert box.get_attribute("open") is not None  # the first failures are open
    text = box.inner_text()
    assert "values differ" in text and "conv_too_tight" in text and "tolerance:" in text
    assert "Where the outputs differ" in text and "Distribution of the differences" in text
    assert re.search(r"channel \d+", text)
    images = box.locator("img")
    assert images.count() >= 4
    assert all(images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(images.count()))
    assert box.locator("svg rect").count() >= 1  # the histogram's bars
    assert "regressed" in text
    # A passing test's details open on a click on its row, and say how to keep its pictures.
    page.locator("#tests tbody tr.row", has_text="conv_ok").first.click()
    detail = page.locator("#tests tr.open-detail").first
    assert "equal within" in detail.inner_text() and "--details all" in detail.inner_text()
    # A dropout test shows its zero fraction against the interval.
    page.locator("#tests tbody tr.row", has_text="dropout_train").first.click()
    assert page.locator("#tests tr.open-detail svg").count() >= 1
    assert problems == []
