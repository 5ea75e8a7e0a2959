"""Test addresses: `FILE::CASE` and `FILE::CASE[SWEEP-ID]`, as in pytest's test ids, resolved to the points they name.

`xfw-harness show` takes one, so that a test id copied from a failure shows that test's point. SWEEP-ID is the case's
sweep id (`strides=2-padding=same`), with or without the test id's device suffix (`-cpu`, `-gpu`).
"""

from __future__ import annotations

from pathlib import Path

from xfw_harness.cases.loader import load_file
from xfw_harness.cases.model import CaseEntry, Point, RefusedPoint, display_path
from xfw_harness.core.backend_choice import DEVICES
from xfw_harness.core.errors import CaseError, did_you_mean

EXAMPLE_ADDRESS = "cases/conv2d.yaml::stride_padding_grid[strides=2-padding=same-input.shape=2x3x28x28]"


def _split_address(address: str) -> tuple[str, str, str | None]:
    """(file, case, sweep id or None) of `FILE::CASE` or `FILE::CASE[SWEEP-ID]`; CaseError for anything else."""
    if "::" not in address:
        raise CaseError(f"{address!r}: expected FILE::CASE or FILE::CASE[SWEEP-ID], e.g. {EXAMPLE_ADDRESS}")
    file, case = address.rsplit("::", 1)
    point_id = None
    if case.endswith("]") and "[" in case:
        case, point_id = case[:-1].split("[", 1)
    if not file or not case:
        raise CaseError(f"{address!r}: expected FILE::CASE or FILE::CASE[SWEEP-ID]")
    return file, case, point_id


def address_device(address: str) -> str | None:
    """The device a test id's bracket ends in (`FILE::CASE[SWEEP-ID-gpu]`, `FILE::CASE[gpu]`), or None."""
    try:
        _, _, point_id = _split_address(address)
    except CaseError:
        return None
    return next((dev for dev in DEVICES if point_id is not None and (point_id == dev or point_id.endswith(f"-{dev}"))),
                None)


def _point_ids(point: Point | RefusedPoint) -> set[str]:
    """The ids a point answers to: its sweep id, and the test ids' bracket (sweep id and device)."""
    sid = point.sweep_id
    return {sid, *("-".join(filter(None, [sid, dev])) for dev in DEVICES)}


def find_points(spec: str) -> list[Point]:
    """The points `FILE::CASE` (all of the case's runnable points) or `FILE::CASE[SWEEP-ID]` (one) names.

    SWEEP-ID is as in test ids (`strides=2-padding=same`, a device suffix such as `-cpu` allowed). Raises a
    CaseError naming the file and the case, with close names, when either is not there or the case is invalid.
    """
    file, case, point_id = _split_address(spec)
    path = Path(file)
    if not path.is_file():
        raise CaseError("no such case file" + (" (it is a folder)" if path.is_dir() else ""), file=file)
    entries, error = load_file(path)
    if error is not None:
        raise error
    by_name: dict[str, CaseEntry] = {entry.name: entry for entry in entries}
    display = entries[0].file if entries else display_path(path)
    if case not in by_name:
        names = list(by_name)
        raise CaseError(f"no case named {case!r}{did_you_mean(case, names)}; the file's cases: "
                        f"{', '.join(names) or 'none'}", file=display, case=case)
    entry = by_name[case]
    if entry.error is not None:
        raise entry.error
    if point_id is None:
        points = [p for p in entry.points if isinstance(p, Point)]
        if not points:
            refused = next(p for p in entry.points if isinstance(p, RefusedPoint))
            raise refused.error
        return points
    for p in entry.points:
        if point_id in _point_ids(p):
            if isinstance(p, RefusedPoint):
                raise p.error
            return [p]
    ids = [p.sweep_id for p in entry.points]
    listed = ", ".join(ids[:12]) + (f", ... ({len(ids)} in all)" if len(ids) > 12 else "")
    raise CaseError(f"no sweep point [{point_id}]{did_you_mean(point_id, ids)}; its points: {listed or '(none)'}",
                    file=display, case=case)
