"""The report in a real browser: headless Chromium opens a report of a run on every installed Keras backend with every
kind of result, and the page must render without console errors or network requests, show the totals of
results.json, put each backend's result of a point side by side (a test failing on one backend only visible as
such), filter (by backend too), sort and open a failure's details with its backend and pictures. Screenshots land
in reports/report-e2e.png and reports/report-backends.png.

Skipped, with the reason, where no Chromium can be driven, except where HARNESS_REQUIRE_BROWSER=1 (set by
.ci/run, which installs Chromium): there a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
from xfw_harness.cli import main
from xfw_harness.core.frameworks import installed_backends
from xfw_harness.report.browser import browser_unavailable_reason, chromium, open_report
from xfw_harness.report.html import write_report
from xfw_harness.suite.results import point_id, read_results, results_document, summarise

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
- name: jax_only_planted     # a known difference claimed on jax that is not there: fails on jax only, passes elsewhere
  block: relu
  input: {shape: [1, 2, 4, 4]}
  devices: [cpu]
  expect: {divergent: "planted for the report's test: no such difference", backends: [jax]}
- name: relu_backends
  block: relu
  input: {shape: [1, 2, 4, 4]}
  devices: [cpu]
  compare: backends
"""
PLANTED = "jax_only_planted"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("report")
    (folder / "cases.yaml").write_text(textwrap.dedent(CASES), encoding="utf-8")
    main(["run", str(folder / "cases.yaml"), "--json", str(folder / "results.json"), "--keras-backend", "all", "-q"])
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
    """The rows (test points) shown."""
    return page.evaluate("[...document.querySelectorAll('#tests tbody tr.row')].filter(r => r.style.display !== 'none')"
                         ".length")


def points(results: list[dict]) -> dict[str, dict[str, str]]:
    """Per test point (the id without its backend), the status on each backend: what the table's rows show."""
    table: dict[str, dict[str, str]] = {}
    for r in results:
        table.setdefault(point_id(r), {})[r["backend"]] = r["status"]
    return table


def row_statuses(page, text: str) -> dict[str, str]:
    """The status cells of the (first) row whose test contains `text`: backend -> status."""
    row = page.locator("#tests tbody tr.row", has_text=text).first
    return {c.get_attribute("data-backend"): c.get_attribute("data-status")
            for c in row.locator("td.st[data-status]").all()}


def page_totals(page) -> dict[str, int]:
    return {el.get_attribute("data-status"): int(el.inner_text()) for el in page.query_selector_all("[data-status]")
            if el.evaluate("e => e.tagName") == "B"}


def problems_with_totals(page, doc: dict) -> list[str]:
    """Where the page's totals and rows disagree with the results document."""
    shown, summary = page_totals(page), doc["summary"]
    problems = [f"{k}: page {shown.get(k)} vs results {summary[k]}" for k in summary if shown.get(k) != summary[k]]
    cells = page.evaluate("document.querySelectorAll('#tests tbody td.st[data-status]').length")
    if cells != len(doc["results"]):
        problems.append(f"{cells} status cells vs {len(doc['results'])} results")
    rows = page.evaluate("document.querySelectorAll('#tests tbody tr.row').length")
    if rows != len(points(doc["results"])):
        problems.append(f"{rows} rows vs {len(points(doc['results']))} test points")
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
    assert visible_rows(page) == len(points(doc["results"]))
    page.select_option("#f-status", "failed")
    assert visible_rows(page) == sum("failed" in p.values() for p in points(doc["results"]).values()) > 0
    assert page.inner_text("#shown").startswith(f"{counts['failed']} of {counts['total']} tests shown")
    page.select_option("#f-status", "")
    page.select_option("#f-block", "dropout")
    assert visible_rows(page) == 1  # one point, on every backend
    page.select_option("#f-block", "")
    page.fill("#filter", "strides=2")
    assert visible_rows(page) == 1
    page.fill("#filter", "")
    page.check("#f-changed")  # against the all-passing baseline: the points with a failure or error changed
    assert visible_rows(page) == sum(any(s in ("failed", "error") for s in p.values())
                                     for p in points(doc["results"]).values())
    assert problems == []


def test_sorting_by_max_rel_puts_the_largest_first(browser, report) -> None:
    path, _ = report
    page, problems = open_report(browser, path)
    page.click("#tests th[data-key='max_rel']")
    page.click("#tests th[data-key='max_rel']")  # second click: descending
    values = page.evaluate("[...document.querySelectorAll('#tests tbody tr.row td.max_rel')].map(td => "
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


def shown_points(page) -> dict[str, dict[str, str]]:
    """What the table shows: per row (test point), each status cell's backend and status."""
    return page.evaluate("Object.fromEntries([...document.querySelectorAll('#tests tbody tr.row')].map(tr => "
                         "[tr.dataset.point, Object.fromEntries([...tr.querySelectorAll('td.st[data-status]')]"
                         ".map(td => [td.dataset.backend, td.dataset.status]))]))")


def disagreeing(table: dict[str, dict[str, str]]) -> int:
    """Points whose Keras backends (not a compare: backends test, not a case that could not run) differ."""
    return sum(len({s for b, s in p.items() if b not in ("backends", "-")}) > 1 for p in table.values())


def test_each_backends_result_of_a_point_sits_side_by_side(browser, report) -> None:
    path, doc = report
    if "jax" not in installed_backends():
        pytest.skip("the planted jax-only failure needs JAX installed")
    page, problems = open_report(browser, path)
    assert shown_points(page) == points(doc["results"])
    # A test that passes on TensorFlow and fails on JAX is visible as such at a glance: its row, marked.
    assert row_statuses(page, PLANTED) == {b: "failed" if b == "jax" else "passed" for b in installed_backends()}
    assert "disagree" in page.locator("#tests tbody tr.row", has_text=PLANTED).get_attribute("class")
    assert list(row_statuses(page, "relu_backends")) == ["backends"]
    # Filtering by backend: JAX's failures only, counted as JAX's tests.
    page.select_option("#f-backend", "jax")
    page.select_option("#f-status", "failed")
    jax_failed = [r for r in doc["results"] if r["backend"] == "jax" and r["status"] == "failed"]
    assert visible_rows(page) == len(jax_failed) > 0
    assert page.inner_text("#shown").startswith(f"{len(jax_failed)} of {len(doc['results'])} tests shown")
    # With a backend chosen, the numbers are that backend's (not the worst over the backends).
    page.select_option("#f-status", "")
    assert page.evaluate("[...document.querySelectorAll('#tests tbody tr.row')].filter(tr => tr.style.display !== "
                         "'none').filter(tr => tr.querySelector('td.max_rel').textContent !== fmt(DATA.rows.find(r => "
                         "r.point === tr.dataset.point && r.backend === 'jax').max_rel)).length") == 0
    page.select_option("#f-backend", "")
    page.check("#f-disagree")
    assert visible_rows(page) == disagreeing(points(doc["results"])) > 0
    # The JAX cell opens JAX's details, which name the backend and say how the others did.
    page.locator("#tests tbody tr.row", has_text=PLANTED).locator("td.st[data-backend='jax']").click()
    text = page.locator("#tests tr.open-detail[data-backend='jax']").inner_text()
    assert "Keras on jax: failed" in text and "tensorflow: passed" in text and "expect.divergent" in text
    # So does the list of failures.
    jax_id = next(r["id"] for r in jax_failed if PLANTED in r["id"])
    box = page.locator(f"details.failure[data-id='{jax_id}']")
    assert box.locator("summary").inner_text().endswith("jax_only_planted[cpu] on jax")
    if box.get_attribute("open") is None:  # the first ten are open
        box.locator("summary").click()
    box.locator(".detail h3").wait_for()  # drawn on the toggle event, after the click returns
    assert "Keras on jax: failed" in box.inner_text()
    page.locator("#all-tests").scroll_into_view_if_needed()
    (PROJECT / "reports").mkdir(exist_ok=True)
    page.screenshot(path=str(PROJECT / "reports" / "report-backends.png"), full_page=False)
    assert problems == []


def test_the_side_by_side_check_catches_a_report_that_swaps_backends(browser, report, tmp_path: Path) -> None:
    path, doc = report
    if "jax" not in installed_backends():
        pytest.skip("the planted jax-only failure needs JAX installed")
    swap = {"tensorflow": "jax", "jax": "tensorflow"}  # planted: the page files TensorFlow's result under JAX
    lying = [{**r, "backend": swap.get(r["backend"], r["backend"])} if PLANTED in r["id"] else r
             for r in doc["results"]]
    write_report(tmp_path / "swapped.html", {**doc, "results": lying})
    page, _ = open_report(browser, tmp_path / "swapped.html")
    shown = shown_points(page)
    assert shown != points(doc["results"])
    assert next(v for k, v in shown.items() if PLANTED in k)["jax"] == "passed"
