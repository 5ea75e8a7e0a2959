"""Planning a run: case files found and loaded, each point put on the devices and Keras backends it runs on, as
`PlannedTest`s in a stable order; and running one planned test (here or in a backend's worker) with the report's
details. `xfw-harness run` and the pytest plugin both plan
and run through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xfw_harness.cases import CaseEntry, Point, RefusedPoint, sweep_id
from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import available_devices
from xfw_harness.core.verdicts import Status
from xfw_harness.engine import Result
from xfw_harness.suite.backends import COMPARED, backends_for, run_backends_comparison, run_on_backend, select_backends


def devices_for(point: Point) -> tuple[str, ...]:
    """The devices a point runs on: those the case names, else every device present. A `compare: devices` point is
    one test on the gpu device (it runs each framework on both: xfw_harness.engine.devices), skipped where there is
    none."""
    if point.compare_with == "devices":
        return ("gpu",)
    return point.devices or available_devices()


def error_result(entry_file: str, case: str, block: str, error: CaseError, sweep: dict | None = None) -> Result:
    """The result of a case (or a sweep point, or a file) that cannot run: an error with the loader's message."""
    sweep = sweep or {}
    point_id = sweep_id(sweep)
    rid = f"{entry_file}::{case}" + (f"[{point_id}]" if point_id else "")
    return Result(id=rid, file=entry_file, case=case, blocks=[block], sweep=sweep, device="-", backend="-",
                  status=Status.ERROR, message=str(error))


@dataclass(frozen=True)
class PlannedTest:
    """One test a run will make: a point on a device, or a case that cannot run (its error result)."""

    id: str
    point: Point | None = None
    device: str = "-"
    invalid: Result | None = None
    backend: str = "-"  # Keras's backend, or `backends` for a compare: backends test
    selected: tuple[str, ...] = ()  # the run's backends (what a compare: backends test compares)

    def run(self, details: str = "failed", timeout_s: float | None = None) -> Result:
        if self.invalid is not None:
            return self.invalid
        if self.backend == COMPARED:
            return run_backends_comparison(self.point, self.device, self.selected, timeout_s)
        return run_on_backend(self.point, self.device, self.backend, details, timeout_s)




def plan_tests(entries: Iterable[CaseEntry], device: str | None = None, match: str | None = None,
               backends: tuple[str, ...] | None = None) -> list[PlannedTest]:
    """Every test of `entries` (only on `device`, only ids containing `match`, when given), on each of `backends`
    (default: xfw_harness.suite.backends.select_backends()), in order, not run."""
    selected = backends if backends is not None else select_backends()
    planned: list[PlannedTest] = []
    for entry in entries:
        if entry.error is not None:
            result = error_result(entry.file, entry.name, entry.block, entry.error)
            if match is None or match in result.id:
                planned.append(PlannedTest(result.id, invalid=result))
            continue
        for point in entry.points:
            if isinstance(point, RefusedPoint):
                result = error_result(entry.file, entry.name, entry.block, point.error, point.sweep)
                if match is None or match in result.id:
                    planned.append(PlannedTest(result.id, invalid=result))
                continue
            for dev in devices_for(point):
                for backend in backends_for(point, selected):
                    test_id = point.test_id(dev, backend)
                    if (device is None or dev == device) and (match is None or match in test_id):
                        planned.append(PlannedTest(test_id, point, dev, backend=backend, selected=selected))
    return planned
