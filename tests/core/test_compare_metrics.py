"""What the comparator's verdicts carry beyond pass/fail, as the report and the messages read it (issue 18: mutants
of xfw_harness/core/compare.py that changed these survived the tests that only checked pass/fail)."""

from __future__ import annotations

import numpy as np

from xfw_harness.core.compare import compare, compared_names
from xfw_harness.core.tolerance import Tolerance
from xfw_harness.core.verdicts import VerdictKind

TOL = Tolerance(atol=1e-6, rtol=1e-6)


def test_the_compared_arrays_are_named_in_the_verdict_s_metrics() -> None:
    """The report labels a failed comparison's pictures with its two arrays' names, read back from the metrics, in
    the order actual, expected, whatever the verdict (a pass, a shape mismatch, a value failure)."""
    a = np.zeros((2, 3))
    for expected in (a.copy(), np.zeros((3, 2)), a + 1.0):
        v = compare(a, expected, TOL, names=("keras", "torch"), kind=VerdictKind.FORWARD)
        assert compared_names(v.metrics) == ("keras", "torch")
    v = compare(a, a + 1.0, TOL, names=("grad keras", "grad torch"), kind=VerdictKind.GRADIENT)
    assert compared_names(v.metrics) == ("grad keras", "grad torch")


def test_metrics_that_name_other_than_two_arrays_have_no_compared_names() -> None:
    assert compared_names({}) is None
    assert compared_names({"max_abs": 1.0, "n": 3}) is None
    assert compared_names({"shape_keras": [1]}) is None  # one array: not a comparison's
    assert compared_names({"shape_a": [1], "shape_b": [1], "shape_c": [1]}) is None
    assert compared_names({"n": 1, "shape_a": [1], "x_shape_b": [2], "shape_b": [1]}) == ("a", "b")


def test_a_comparison_not_named_is_actual_vs_expected() -> None:
    v = compare(np.zeros(2), np.ones(2), TOL, kind=VerdictKind.GOLDEN)
    assert v.what == "actual vs expected" and compared_names(v.metrics) == ("actual", "expected")
    assert "actual [2] vs expected [3]" in compare(np.zeros(2), np.zeros(3), TOL, kind=VerdictKind.GOLDEN).message


def test_a_shape_mismatch_is_a_failure_the_results_file_can_say() -> None:
    v = compare(np.zeros((2, 3)), np.zeros((3, 2)), TOL, kind=VerdictKind.FORWARD)
    assert v.passed is False and v.to_dict()["passed"] is False


def test_an_empty_comparison_reports_no_error() -> None:
    """Nothing compared, nothing off: every figure the report shows is 0, none is made up."""
    m = compare(np.zeros((0, 3)), np.zeros((0, 3)), TOL, kind=VerdictKind.FORWARD).metrics
    assert (m["max_abs"], m["max_rel"], m["tolerance_ratio"], m["pct_bad"], m["n_bad"]) == (0.0, 0.0, 0.0, 0.0, 0)
    assert (m["worst_index"], m["worst_actual"], m["worst_expected"]) == ([], None, None)


def test_expected_zeros_and_zero_tolerances_raise_no_numpy_warning() -> None:
    """A difference from an expected 0 (infinitely relative), a 0 against a 0, nothing allowed: the figures are
    inf or 0 as documented, and no RuntimeWarning reaches the user's pytest output."""
    import warnings

    actual = np.array([1.0, 0.0, 2.0, np.inf])
    expected = np.array([0.0, 0.0, 2.0, np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = compare(actual, expected, Tolerance(0.0, 0.0), kind=VerdictKind.FORWARD)
        also = compare(actual, expected, TOL, kind=VerdictKind.FORWARD)
    assert v.metrics["max_rel"] == np.inf and v.metrics["tolerance_ratio"] == np.inf and v.metrics["n_bad"] == 1
    assert also.metrics["max_rel"] == np.inf and also.metrics["tolerance_ratio"] == 1e6


def test_a_values_failure_says_what_where_and_how_much_on_four_lines() -> None:
    actual = np.array([[1.0, 2.0], [3.0, 4.5]])
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    v = compare(actual, expected, Tolerance(1e-3, 0.0, "case"), "keras vs torch", ("keras", "torch"),
                kind=VerdictKind.FORWARD)
    assert v.message.split("\n") == [
        "values differ: 1 of 4 elements (25%) outside atol=0.001, rtol=0 (case)",
        "shapes: keras [2, 2], torch [2, 2] (channels-first)",
        "max abs error 0.5, max rel error 0.125",
        "worst element at [1, 1]: keras=4.5, torch=4"]
