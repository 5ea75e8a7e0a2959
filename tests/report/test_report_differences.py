"""The report answers "where do they differ?" (issue 17): the static section of known differences, error/tolerance
(the comparator's tolerance_ratio) instead of raw max rel per block, and the pictures of the comparison that failed.
The page's script is checked in a real browser in test_report_browser_differences.py."""

from __future__ import annotations

import html as htmllib
import re

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
from tests.report.fakes import on, result
from xfw_harness.engine import backward
from xfw_harness.report.differences import known_differences
from xfw_harness.report.html import render_report, unpack
from xfw_harness.suite.local import run_test
from xfw_harness.suite.results import results_document

WHY = "default negative_slope: PyTorch 0.01, Keras 0.3"
POINT = "cases/k.yaml::slope[cpu]"


def verdict(what: str, kind: str, passed: bool, **metrics: object) -> dict:
    return {"what": what, "kind": kind, "passed": passed, "check": "ok" if passed else "values",
            "message": "equal within" if passed else "values differ", "metrics": metrics}


def differs(worst: list[int], keras: float, torch: float, ratio: float) -> dict:
    """The failing keras-vs-torch verdict of a known difference, as the comparator writes it."""
    return verdict("keras vs torch", "forward", False, shape_keras=[1, 4], shape_torch=[1, 4], max_abs=0.5,
                   max_rel=29.0, tolerance_ratio=ratio, worst_index=worst, worst_actual=keras, worst_expected=torch)


def side(torch_ok: bool, keras_ok: bool) -> list[dict]:
    return [verdict("torch vs reference", "reference", torch_ok), verdict("keras vs reference", "reference", keras_ok)]


def divergent(backend: str, sides: list[dict], message_side: str = "the reference agrees with torch; keras differs",
              point: str = POINT, why: str = WHY) -> dict:
    r = on(point, backend, "divergent", file=point.split("::")[0], case=point.split("::")[1].split("[")[0],
           block="leaky_relu",
           message=f"known difference (expect.divergent): {why}\n{message_side}\n[keras vs torch] values differ")
    r["verdicts"] = [differs([0, 3], -0.697509, -0.0232503, 2.54e5), *sides]
    return r


def section(html: str) -> str:
    """The known-differences section's text, tags dropped."""
    m = re.search(r'<h2 id="known-differences">(.*?)<h2 id="per-block">', html, re.S)
    assert m, "no known-differences section"
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(1))))


def test_known_differences_are_listed_by_case_with_reason_side_worst_element_and_backends() -> None:
    other = "cases/k.yaml::gelu[cpu]"
    doc = results_document([
        divergent("tensorflow", side(True, False)), divergent("jax", side(True, False)),
        on(POINT, "torch", "passed", file="cases/k.yaml", case="slope"),
        divergent("tensorflow", side(False, True), point=other, why="tanh approximation by default",
                  message_side="the reference agrees with keras; torch differs"),
        result("cases/k.yaml::fine[cpu-tensorflow]", "passed", file="cases/k.yaml", case="fine"),
    ])
    text = section(render_report(doc))
    assert text.startswith("Known differences (3)")
    slope, gelu = text.split("cases/k.yaml::slope 2 tests")[1].split("cases/k.yaml::gelu 1 test")
    assert WHY in slope and "the reference agrees with torch; keras differs" in slope
    assert "[keras vs torch] at [0, 3]: keras -0.697509, torch -0.0232503" in slope
    assert "tensorflow jax elsewhere: torch: passed" in slope  # one row: the same finding on both backends
    assert "2.54e+05" in slope
    assert "tanh approximation by default" in gelu and "the reference agrees with keras; torch differs" in gelu
    assert "fine" not in text


def test_the_side_is_read_from_the_reference_verdicts_not_from_the_words_of_the_message() -> None:
    # Planted: a message claiming torch while the verdicts say keras agrees with the reference.
    r = divergent("tensorflow", side(False, True), message_side="the reference agrees with torch; keras differs")
    (case,) = known_differences([r])
    assert case["rows"][0]["side"] == "the reference agrees with keras; torch differs"
    # No reference computed: said so, not guessed.
    assert known_differences([divergent("tensorflow", [])])[0]["rows"][0]["side"] is None
    assert "not computed" in section(render_report(results_document([divergent("tensorflow", [])])))


def test_different_findings_on_two_backends_are_two_rows() -> None:
    jax = divergent("jax", side(True, False))
    jax["verdicts"][0] = differs([1, 2], -0.5, -0.01, 1e5)
    (case,) = known_differences([divergent("tensorflow", side(True, False)), jax])
    assert [row["backends"] for row in case["rows"]] == [["tensorflow"], ["jax"]]


def test_without_known_differences_there_is_no_section() -> None:
    assert 'id="known-differences"' not in render_report(results_document([result("a[cpu]", "passed")]))


def block_cell(html: str, block: str) -> str:
    """The err/tol cell of `block`'s row (tensorflow) in the per-block table."""
    row = re.search(rf'<tr data-block="{block}">(.*?)</tr>', html, re.S)
    assert row, block
    cell = re.search(r'<td class="num ratio([^"]*)" data-backend="tensorflow">([^<]*)</td>', row.group(1))
    assert cell, row.group(1)
    return cell.group(2) + (" (over)" if "over" in cell.group(1) else "")


def with_forward(r: dict, **metrics: object) -> dict:
    r["verdicts"] = [verdict("keras vs torch", "forward", r["status"] == "passed", max_abs=0.01, **metrics)]
    return r


def test_per_block_shows_the_worst_error_over_tolerance_not_max_rel() -> None:
    # bfloat16 values near zero: max rel 2.77 on a pass, which read as an error; error/tolerance says 0.4.
    doc = results_document([
        with_forward(result("a[cpu-tensorflow]", "passed", block="conv2d"), max_rel=2.77, tolerance_ratio=0.4),
        with_forward(result("b[cpu-tensorflow]", "passed", block="conv2d"), max_rel=1e-3, tolerance_ratio=0.125),
        with_forward(result("c[cpu-tensorflow]", "failed", block="dense"), max_rel=1e-4, tolerance_ratio=3.5),
        with_forward(result("d[cpu-tensorflow]", "failed", block="gelu"), max_rel=1.0, tolerance_ratio=float("inf")),
        with_forward(result("e[cpu-tensorflow]", "passed", block="relu"), max_rel=0.5),  # an old file: no ratio
    ])
    page = render_report(doc)
    assert block_cell(page, "conv2d") == "0.4"
    assert block_cell(page, "dense") == "3.5 (over)"
    assert block_cell(page, "gelu") == "inf (over)"
    assert block_cell(page, "relu") == ""
    assert "2.77" not in page.split('<table id="blocks">')[1].split("</table>")[0]
    rows = {r["id"]: r for r in unpack(page)["rows"]}
    assert rows["a[cpu-tensorflow]"]["tolerance_ratio"] == 0.4 and rows["e[cpu-tensorflow]"]["tolerance_ratio"] is None


# --- pictures of the comparison that failed --------------------------------------------------------------------

CASES = """\
- name: golden_wrong
  block: relu
  input: {fill: values, values: [[-1.5, 0.0, 2.5]]}
  expect:
    output: [[0.0, 0.0, 2.0]]
- name: shape_wrong
  block: relu
  input: {shape: [1, 2, 4, 4]}
  expect: {shape: [1, 2, 4, 5]}
- name: fine
  block: relu
  input: {shape: [1, 2, 4, 4]}
"""


def test_the_pictures_are_of_the_comparison_that_failed(case_points) -> None:
    golden, shape, fine = (run_test(p, "cpu", "all") for p in case_points(CASES))
    assert golden.status == shape.status == "failed" and fine.status == "passed"
    pics = golden.details["pictures"]
    # torch and keras agree (relu): a torch-vs-keras picture would be all zero. The failing comparison's is not.
    assert pics["what"] == "torch vs expected" and pics["heatmaps"]["names"] == ["torch", "expected"]
    assert pics["heatmaps"]["channels"][0]["max_abs"] == 0.5
    assert pics["histogram"]["nonzero"] == 1 and pics["histogram"]["zeros"] == 2
    assert "pictures_note" not in golden.details
    # An expected shape has no arrays to draw: the final outputs stand in, and the page says so.
    assert shape.details["pictures"]["what"] == "keras vs torch"
    assert shape.details["pictures_note"].startswith("[expected shape] failed")
    # A pass (details all): its headline comparison, keras against torch.
    assert fine.details["pictures"]["heatmaps"]["names"] == ["keras", "torch"]
    assert "pictures_note" not in fine.details


def test_a_failed_gradient_is_pictured_from_the_gradients(case_points, monkeypatch) -> None:
    """The headline of a failed gradient is "grad input": its pictures are of the two input gradients (kept by
    xfw_harness.engine.comparing), not of the final outputs, which agree. Planted: Keras's input gradient off by 0.75
    at one element."""
    real = backward.keras_pass

    def planted(*args, **kwargs):
        out, grads = real(*args, **kwargs)
        first = np.array(grads[0], copy=True)
        first.flat[5] += 0.75
        return out, [first, *grads[1:]]

    monkeypatch.setattr(backward, "keras_pass", planted)
    (point,) = case_points("- name: g\n  block: relu\n  input: {shape: [1, 2, 4, 4]}\n  check: [forward, backward]\n")
    res = run_test(point, "cpu", "failed")
    assert res.status == "failed" and res.headline.what == "grad input", res.message
    pics = res.details["pictures"]
    assert pics["what"] == "grad input" and pics["heatmaps"]["names"] == ["keras", "torch"]
    assert max(c["max_abs"] for c in pics["heatmaps"]["channels"]) == pytest.approx(0.75, rel=1e-6)  # float32
    assert pics["histogram"]["nonzero"] == 1 and "pictures_note" not in res.details
