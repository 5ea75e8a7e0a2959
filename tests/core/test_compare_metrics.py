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
