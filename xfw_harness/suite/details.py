"""What the report shows of a test beyond its numbers: pictures of the comparison its headline shows (the one that
failed: keras against the case's expected values for a failed golden value; keras against torch for a pass)
(xfw_harness.suite.figures) and the PyTorch and Keras programs (xfw_harness.tools.show). Made where the outputs exist,
at run time, and kept in the results file, so that a report merged from shards run elsewhere still shows them; made only
for the tests that ask (failed ones by default): a passing suite of thousands of tests carries none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.compare import compared_names
from xfw_harness.core.timeout import Deadline, TimedOut
from xfw_harness.core.verdicts import Status
from xfw_harness.engine import Result
from xfw_harness.suite.choices import DETAILS  # noqa: F401  (read from here too)
from xfw_harness.suite.figures import comparison_pictures
from xfw_harness.tools.show import point_code


def wants_details(details: str, status: Status) -> bool:
    """Whether a result of `status` keeps its details under the `details` setting (one of DETAILS)."""
    return details == "all" or (details == "failed" and status == Status.FAILED)


def compared_arrays(result: Result, point: Point, torch_out: Any, keras_out: Any
                    ) -> tuple[Any, Any, tuple[str, str], str, str | None]:
    """The two arrays of the comparison the result's headline shows (xfw_harness.core.verdicts.headline: the one that
    failed), their names and the comparison's name: a failed comparison's own arrays (result.compared: a gradient,
    an update, the float64 reference), else the outputs at hand; and a note when that comparison's arrays are not
    there (an expected shape, a verdict made without compare): then the final outputs, keras against torch, stand in.
    The comparator names its arrays in its metrics, `shape_<actual>` then `shape_<expected>`."""
    at_hand = {"torch": torch_out, "keras": keras_out}
    if point.expect_output is not None:
        at_hand["expected"] = np.asarray(point.expect_output)
    v = result.headline
    if v is not None:
        names = compared_names(v.metrics)
        if names is not None and v.what in result.compared and "max_abs" in v.metrics:
            return (*result.compared[v.what], (names[0], names[1]), v.what, None)
        if names is not None and all(n in at_hand for n in names) and "max_abs" in v.metrics:
            return at_hand[names[0]], at_hand[names[1]], (names[0], names[1]), v.what, None
    note = (f"[{v.what}] failed, whose arrays are not kept for pictures: these are of the final outputs, keras vs "
            "torch" if v is not None and not v.passed else None)
    return keras_out, torch_out, ("keras", "torch"), "keras vs torch", note


def attach_details(result: Result, point: Point, device: str, timeout_s: float) -> None:
    """Add the details of a result run with `keep_outputs` (which it then drops). Pictures and code are aids: if one
    cannot be made (or takes longer than `timeout_s`), the report says why, and the verdict stands."""
    outputs, result.outputs = result.outputs, None
    if outputs is None:
        return
    torch_outs, keras_outs = outputs
    details: dict[str, Any] = {}
    if not point.sampled:  # two dropout samples differ by design: their difference is no picture of a mistake
        try:
            a, b, names, what, note = compared_arrays(result, point, torch_outs[-1], keras_outs[-1])
            atol = next((v.metrics.get("atol") for v in result.verdicts if v.what == what), None)
            with Deadline(timeout_s):
                details["pictures"] = comparison_pictures(a, b, atol, names, what)
            if note:
                details["pictures_note"] = note
        except (Exception, TimedOut) as e:  # noqa: BLE001
            details["pictures_error"] = f"{type(e).__name__}: {e}"
    try:
        with Deadline(timeout_s):
            details["code"] = point_code(point, device)
    except (Exception, TimedOut) as e:  # noqa: BLE001
        details["code_error"] = f"{type(e).__name__}: {e}"
    result.details = details
