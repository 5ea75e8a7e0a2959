"""Running one drawn case for `xfw-harness fuzz`: the loader and the runner, as for any case file.

Each drawn case is a plain case mapping, loaded by the loader (xfw_harness.cases.load_case) and run by the runner
(xfw_harness.engine.run_point) exactly like a case file's: there is no second runner, and what the fuzzer reports is
what `xfw-harness run` would report for the written case.
- A case the loader refuses (a Refusal or CaseError: groups that do not divide the channels, a kernel larger than
  the padded input, ...) is "invalid", with its field, never a divergence.
- A case in which a layer's frameworks differ for a documented framework reason (Block.known_difference names its
  entry of cases/known_differences.yaml: TensorFlow's float64 GELU, ...) is "known", with its entry, and not run,
  like an invalid one: otherwise every search of such a block would stop at that one difference. `--include-known`
  runs them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfw_harness.cases import Point, load_case
from xfw_harness.engine import run_point

FUZZ_FILE = "<fuzz>"  # the file name drawn cases are loaded under (messages name it)


@dataclass
class Outcome:
    """One drawn case: its status ("invalid" when the loader refused it, "known" when it was not run for a
    catalogued difference, else the runner's), message, and the refused field or the catalogue entry."""

    status: str
    message: str = ""
    field: str | None = None
    known: str | None = None  # the catalogue entry a layer's known_difference names (run or not)


def known_difference(point: Point) -> str | None:
    """The first cases/known_differences.yaml entry that a layer of the loaded point declares for its site
    (Block.known_difference; a composite block answers for its nested layers), or None."""
    for layer, site in zip(point.layers, point.sites):
        if (name := layer.block.known_difference(site)) is not None:
            return name
    return None


def run_case(case: dict[str, Any], device: str = "cpu", include_known: bool = False) -> Outcome:
    """Load a case mapping as a case file's and run its one point (a drawn case has no sweep); a point with a
    catalogued difference is not run unless `include_known`."""
    entry = load_case(FUZZ_FILE, 0, case, Path.cwd(), set())
    if entry.error is not None:
        return Outcome("invalid", entry.error.message, entry.error.field)
    point = entry.points[0]
    if not isinstance(point, Point):
        return Outcome("invalid", point.error.message, point.error.field)
    known = known_difference(point)
    if known is not None and not include_known:
        return Outcome("known", f"a catalogued difference: {known} (cases/known_differences.yaml)", known=known)
    result = run_point(point, device)
    return Outcome(result.status, result.message, known=known)
