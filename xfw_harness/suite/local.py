"""Running one test in this process, on the Keras backend it imported: the test's result with the report's details.
A worker process running another backend (xfw_harness.suite.worker) runs its tests through here too."""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.timeout import default_timeout
from xfw_harness.engine import Result, run_point
from xfw_harness.suite.details import attach_details, wants_details


def run_test(point: Point, device: str, details: str = "failed", timeout_s: float | None = None) -> Result:
    """Run one point on one device (xfw_harness.engine.run_point) and keep the report's details where `details` asks
    ("failed", "all" or "none": xfw_harness.suite.details.DETAILS)."""
    result = run_point(point, device, timeout_s, keep_outputs=details != "none")
    if result.outputs is not None and wants_details(details, result.status):
        try:
            limit = default_timeout() if timeout_s is None else timeout_s
        except ValueError:  # a malformed $HARNESS_TIMEOUT: run_point has said so
            limit = 0
        attach_details(result, point, device, limit)
    result.outputs, result.compared = None, {}  # arrays: not carried further (a worker pickles the result)
    return result


def final_outputs(point: Point, device: str, timeout_s: float | None = None
                  ) -> tuple[Result, np.ndarray | None, np.ndarray | None]:
    """(result, PyTorch's final output, Keras's final output) of a point run as a frameworks comparison here;
    the outputs are None where the run did not get that far (the result says why)."""
    result = run_point(point, device, timeout_s, keep_outputs=True)
    outputs: Any = result.outputs
    result.outputs, result.compared = None, {}
    if outputs is None:
        return result, None, None
    return result, np.asarray(outputs[0][-1]), np.asarray(outputs[1][-1])
