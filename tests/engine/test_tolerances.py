"""A point's tolerance (xfw_harness/engine/tolerances.py): the case's own `tolerance` as written, else the default at
the point's reduction length, scaled by the largest |expected| value of the comparison (issue 18: mutmut's changes
that dropped either survived the selected tests)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from xfw_harness.cases import Point
from xfw_harness.core.tolerance import Tolerance, default_tolerance
from xfw_harness.engine.tolerances import forward_reduction_length, point_tolerance

CONV = """
- name: conv
  block: conv2d
  params: {filters: 2, kernel_size: 3}
  input: {shape: [1, 4, 5, 5]}
  {extra}
"""


def test_the_case_s_own_tolerance_is_used_as_written(case_points: Callable[[str], list[Point]]) -> None:
    (point,) = case_points(CONV.replace("{extra}", "tolerance: {atol: 0.5, rtol: 0.25}"))
    tolerance = point_tolerance(point, np.full((1, 2, 3, 3), 1000.0))
    assert (tolerance.atol, tolerance.rtol) == (0.5, 0.25)
    assert tolerance == point.tolerance


def test_the_default_is_scaled_by_the_largest_expected_value(case_points: Callable[[str], list[Point]]) -> None:
    (point,) = case_points(CONV.replace("{extra}", ""))
    assert forward_reduction_length(point) == 4 * 3 * 3
    expected = np.array([[0.5, -250.0], [np.nan, 3.0]], np.float32)
    assert point_tolerance(point, expected) == default_tolerance("float32", 36, scale=250.0)
    assert point_tolerance(point, expected).atol == pytest.approx(250.0 * default_tolerance("float32", 36).atol)


def test_a_network_s_reduction_length_is_its_longest_sum(case_points: Callable[[str], list[Point]]) -> None:
    (point,) = case_points("""
- name: net
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 6, kernel_size: 3}}
    - {block: relu}
    - {block: conv2d, params: {filters: 2, kernel_size: 1}}
  input: {shape: [1, 4, 5, 5]}
""")
    assert forward_reduction_length(point) == max(4 * 9, 6 * 1)
    assert isinstance(point_tolerance(point, np.ones(3)), Tolerance)
