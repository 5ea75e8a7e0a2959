"""What the report shows of a test beyond its numbers: pictures of the torch-vs-keras difference
(harness.suite.figures) and the PyTorch and Keras programs (harness.tools.show). Made where the outputs exist, at run
time, and kept in the results file, so that a report merged from shards run elsewhere still shows them; made only
for the tests that ask (failed ones by default): a passing suite of thousands of tests carries none.
"""

from __future__ import annotations

from typing import Any

from harness.cases import Point
from harness.core.timeout import Deadline, TimedOut
from harness.core.verdicts import Status
from harness.engine import Result
from harness.suite.choices import DETAILS  # noqa: F401  (read from here too)
from harness.suite.figures import comparison_pictures
from harness.tools.show import point_code


def wants_details(details: str, status: Status) -> bool:
    """Whether a result of `status` keeps its details under the `details` setting (one of DETAILS)."""
    return details == "all" or (details == "failed" and status == Status.FAILED)


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
            with Deadline(timeout_s):
                details["pictures"] = comparison_pictures(torch_outs[-1], keras_outs[-1],
                                                          result.verdicts[0].metrics.get("atol"))
        except (Exception, TimedOut) as e:  # noqa: BLE001
            details["pictures_error"] = f"{type(e).__name__}: {e}"
    try:
        with Deadline(timeout_s):
            details["code"] = point_code(point, device)
    except (Exception, TimedOut) as e:  # noqa: BLE001
        details["code_error"] = f"{type(e).__name__}: {e}"
    result.details = details
