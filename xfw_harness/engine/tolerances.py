"""A point's default tolerance: `xfw_harness.core.tolerance` at the point's reduction length (the most terms one output
element of any of its layers sums), or the case's own `tolerance`."""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.tolerance import Tolerance, tolerance_for


def forward_reduction_length(point: Point) -> int:
    """The most terms one output element of any layer sums: K of the point's default tolerance."""
    return max(layer.block.reduction_length(site) for layer, site in zip(point.layers, point.sites))


def point_tolerance(point: Point, expected: np.ndarray | Any) -> Tolerance:
    """The point's tolerance for a comparison against `expected` (tolerance_for at the point's K)."""
    return tolerance_for(point.input.dtype, forward_reduction_length(point), expected, point.tolerance)
