"""A canary's planted difference (`expect.plant`, xfw_harness.cases.model.Plant) put into the one comparison it
names, so that the check comparing it must report it: the suite then fails when that check goes soft (a gradient,
an optimiser update, a running statistic, the float64 reference, a device or backend comparison, NaN/Inf of either
sign in either array, a dropout sample's rate), not only a unit test.

run_point (and the backends comparison, xfw_harness.suite.backends) runs a point `planting` its plant; every array
comparison goes through xfw_harness.engine.comparing.compare, which asks `plant_arrays` for the arrays to compare,
and every dropout sample's check through `check_sample` here. The comparator itself stays pure and never sees a
plant: it is handed the planted array like any other. A verdict whose comparison received the plant says so
(`Verdict.planted`): the judge's canary rule (xfw_harness.engine.judge) reads it. Only a canary has a plant (the
loader refuses a plant without expect.fails), so no plant can ever change a real test's outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from xfw_harness.blocks import Site
from xfw_harness.cases import Plant, Point
from xfw_harness.core.compare import format_shape
from xfw_harness.core.errors import CaseError
from xfw_harness.core.verdicts import Verdict

REFERENCE = "reference"  # `in: reference`: the float64 reference itself, before both comparisons with it
_PLANT: ContextVar[Plant | None] = ContextVar("plant", default=None)


@contextmanager
def planting(point: Point) -> Iterator[None]:
    """Run the block with `point`'s plant (none for a point that is not a planting canary) in force."""
    token = _PLANT.set(point.expect_plant)
    try:
        yield
    finally:
        _PLANT.reset(token)


def plant_arrays(actual: Any, expected: Any, what: str, names: tuple[str, str], *,
                 exact: bool = True) -> tuple[Any, Any, str | None]:
    """(actual, expected, what was planted): the two arrays of comparison `what`, the one named by the plant's
    side changed where the plant is in force and names this comparison; else as given, and None. `exact`: the
    planted array in float64, so that the planted number lands as written (the comparator computes in float64
    anyway); else in its own dtype (a sample's check reads the dtype's rounding)."""
    plant = _PLANT.get()
    if plant is None or plant.what != what:
        return actual, expected, None
    if plant.side not in names:
        raise CaseError(f"got {plant.side!r}; {what!r} compares {names[0]!r} and {names[1]!r}: allowed: "
                        f"{', '.join(dict.fromkeys(names))}", field="expect.plant.side")
    arrays = [actual, expected]
    i = names.index(plant.side)
    arr = np.array(arrays[i], dtype=np.float64 if exact else None, copy=True)
    if plant.at is not None and (len(plant.at) > arr.ndim or any(j >= n for j, n in zip(plant.at, arr.shape))):
        raise CaseError(f"got {list(plant.at)}; {what!r} compares arrays of shape {format_shape(arr.shape)} "
                        "(channels-first): allowed: the index of one of their elements, or its leading part",
                        field="expect.plant.at")
    where = plant.at if plant.at is not None else ...
    if plant.change == "value":
        arr[where] = plant.amount
    elif plant.change == "plus":
        arr[where] += plant.amount
    else:
        arr[where] *= plant.amount
    arrays[i] = arr
    return arrays[0], arrays[1], plant.describe()


def plant_reference(reference: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(the float64 reference as planted, what was planted): a plant `in: reference` (side: reference) changes the
    reference itself, before either framework is held to it (xfw_harness.engine.third_opinion): a wrong reference
    that both frameworks must then be found to disagree with."""
    plant = _PLANT.get()
    if plant is None or plant.what != REFERENCE:
        return reference, None
    planted, _, what = plant_arrays(reference, reference, REFERENCE, (REFERENCE, REFERENCE))
    return planted, what


def check_sample(block: Any, site: Site, x: np.ndarray, y: np.ndarray, what: str) -> Verdict:
    """`block.check_sample(site, x, y, what)` (a stochastic block's check of one sample: its arrays are the input
    and the output), of the arrays as planted where the plant names this check: a sample with more of its outputs
    dropped than the rate allows, say."""
    x, y, planted = plant_arrays(x, y, what, ("input", "output"), exact=False)
    verdict = block.check_sample(site, x, y, what)
    verdict.planted = planted
    return verdict
