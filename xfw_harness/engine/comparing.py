"""Every comparison the engine makes goes through `compare` here: the comparator's (xfw_harness.core.compare.compare,
pure: arrays in, verdict out), with a canary's planted difference (xfw_harness.engine.plants) put into the arrays of
the comparison it names before the comparator sees them, and the arrays of the comparisons that failed kept for the
report's pictures (a failed gradient, optimiser update, running statistic or float64-reference comparison is drawn
from its own arrays, not from the final outputs). Nothing is kept unless run_point asks
(`keeping_failed_arrays`, for a test whose details the report shows), and then only the first failed comparison of
each name: a passing suite keeps none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from xfw_harness.core.compare import compare as compare_arrays
from xfw_harness.core.tolerance import Tolerance
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine.plants import plant_arrays

# What run_point is keeping now: a failed verdict's `what` -> (actual, expected), channels-first as compared.
_KEPT: ContextVar[dict[str, tuple[np.ndarray, np.ndarray]] | None] = ContextVar("kept_arrays", default=None)


@contextmanager
def keeping_failed_arrays() -> Iterator[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Keep, in the dict yielded, the arrays of every comparison that fails inside the block."""
    kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    token = _KEPT.set(kept)
    try:
        yield kept
    finally:
        _KEPT.reset(token)


def compare(actual: Any, expected: Any, tolerance: Tolerance, what: str = "actual vs expected",
            names: tuple[str, str] = ("actual", "expected"), *, kind: VerdictKind) -> Verdict:
    """xfw_harness.core.compare.compare of the arrays as planted (xfw_harness.engine.plants: as given but in a
    planting canary's planted comparison), keeping the arrays of a failed comparison where they are being kept."""
    actual, expected, planted = plant_arrays(actual, expected, what, names)
    verdict = compare_arrays(actual, expected, tolerance, what, names, kind=kind)
    verdict.planted = planted
    kept = _KEPT.get()
    if kept is not None and not verdict.passed and verdict.what not in kept:
        kept[verdict.what] = (np.array(actual, copy=True), np.array(expected, copy=True))
    return verdict
