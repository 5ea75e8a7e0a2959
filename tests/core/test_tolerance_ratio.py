"""The comparator's `tolerance_ratio` metric (xfw_harness/core/compare.py): error / tolerance, the largest over the
elements of |a - b| / (atol + rtol * |b|). It must say what the decision says (<= 1 exactly when the comparison
passes), where max rel and a ratio of maxima do not."""

from __future__ import annotations

import numpy as np
import pytest

from xfw_harness.core.compare import compare
from xfw_harness.core.tolerance import Tolerance
from xfw_harness.core.verdicts import VerdictKind


def judged(a: list[float] | np.ndarray, b: list[float] | np.ndarray, atol: float, rtol: float):  # noqa: ANN201
    return compare(np.asarray(a, np.float64), np.asarray(b, np.float64), Tolerance(atol=atol, rtol=rtol),
                   kind=VerdictKind.FORWARD)


def test_a_pass_near_zero_has_max_rel_above_one_but_tolerance_ratio_below() -> None:
    # bfloat16-like: expected 1e-3, off by 2e-3, inside atol 0.01: passes, yet max rel reads 2 (an "error").
    v = judged([3e-3, 1.0], [1e-3, 1.0], atol=0.01, rtol=0.01)
    assert v.passed
    assert v.metrics["max_rel"] == pytest.approx(2.0)
    assert v.metrics["tolerance_ratio"] == pytest.approx(2e-3 / (0.01 + 0.01 * 1e-3))
    assert v.metrics["tolerance_ratio"] <= 1


def test_tolerance_ratio_is_elementwise_where_a_ratio_of_maxima_would_pass_a_failure() -> None:
    # Planted: the largest difference (at a large expected value) is allowed by rtol; a small one at an expected 0
    # is not. max abs / (atol + rtol * |b at the worst abs|) reads 0.999 and would call it a pass.
    a, b = [100.0 + 0.999, 2e-6], [100.0, 0.0]
    v = judged(a, b, atol=1e-6, rtol=0.01)
    naive = v.metrics["max_abs"] / (1e-6 + 0.01 * abs(b[int(np.argmax(np.abs(np.subtract(a, b))))]))
    assert naive < 1  # the naive ratio disagrees with the decision...
    assert not v.passed and v.metrics["n_bad"] == 1
    assert v.metrics["tolerance_ratio"] == pytest.approx(2.0)  # ...the tolerance_ratio does not


def test_the_boundary_itself_passes_at_exactly_one_and_the_next_float_fails() -> None:
    allowed = 0.5 + 0.25 * 2.0  # atol + rtol * |b|, exact in binary
    at = judged([2.0 + allowed], [2.0], atol=0.5, rtol=0.25)
    assert at.passed and at.metrics["tolerance_ratio"] == 1.0
    over = judged([np.nextafter(2.0 + allowed, np.inf)], [2.0], atol=0.5, rtol=0.25)
    assert not over.passed and over.metrics["tolerance_ratio"] > 1.0


def test_nothing_allowed_equal_is_zero_and_unequal_is_infinite() -> None:
    assert judged([0.0, 1.0], [0.0, 1.0], atol=0.0, rtol=0.0).metrics["tolerance_ratio"] == 0.0
    v = judged([1e-30, 1.0], [0.0, 1.0], atol=0.0, rtol=1e-3)
    assert not v.passed and v.metrics["tolerance_ratio"] == float("inf")


def test_same_infinities_use_no_tolerance() -> None:
    v = judged([np.inf, 1.0], [np.inf, 1.0], atol=1e-6, rtol=1e-6)
    assert v.passed and v.metrics["tolerance_ratio"] == 0.0


@pytest.mark.parametrize("seed", range(20))
def test_tolerance_ratio_at_most_one_exactly_when_the_comparison_passes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    b = rng.standard_normal(50) * 10.0 ** rng.integers(-6, 3, 50)
    b[rng.random(50) < 0.1] = 0.0
    atol, rtol = [(0.0, 1e-3), (1e-4, 0.0), (1e-5, 1e-5), (0.0, 0.0)][seed % 4]
    # errors scattered around the tolerance, some exactly on it
    allowed = atol + rtol * np.abs(b)
    a = b + allowed * rng.choice([0.0, 0.5, 1.0, 1.0 + 1e-9, 3.0], 50) * rng.choice([-1.0, 1.0], 50)
    v = judged(a, b, atol, rtol)
    assert (v.metrics["tolerance_ratio"] <= 1.0) == v.passed, (v.metrics["tolerance_ratio"], v.message)
    per_element = [judged([x], [y], atol, rtol) for x, y in zip(a, b)]
    assert v.metrics["tolerance_ratio"] == max(e.metrics["tolerance_ratio"] for e in per_element)
    assert all((e.metrics["tolerance_ratio"] <= 1.0) == e.passed for e in per_element)
