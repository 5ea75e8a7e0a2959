"""Which cases pin each emulation: the paths where the harness computes something itself instead of a framework's
layer (`Block.emulations`: padding steps, subsampling, inserted zeros, divisor corrections, crop arithmetic, variance
reconciliation), and the corners of each.

Where both frameworks run the harness's own arithmetic they agree on whatever it computes, so only a check outside
it pins it (issue 18): the float64 reference, where the block's reference does not share that arithmetic, or an
expected shape or expected values. This module reads loaded cases (no framework is run) and says, for each
emulation and each of its corners, which points pin it; tests/tools/test_emulations.py holds the shipped cases to
covering all of them, and the manual lists them (xfw_harness.tools.manual, `<!-- generated: emulations -->`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from xfw_harness.blocks import Block, Emulation, Site
from xfw_harness.cases import Point


@dataclass
class Pins:
    """The points that pin one emulation of one block, as FILE::CASE[SWEEP] (every device and backend of a point
    runs its checks), over all and per corner."""

    block: Block
    emulation: Emulation
    pinning: list[Point] = field(default_factory=list)  # the points that pin it, in order
    corners: dict[str, list[str]] = field(default_factory=dict)  # corner name -> the addresses of its points

    @property
    def points(self) -> list[str]:
        """The addresses (Point.address) of the points that pin it."""
        return [point.address for point in self.pinning]

    def missing(self) -> list[str]:
        """What no point pins: the emulation itself, or each named corner."""
        where = f"{self.block.name}: emulation {self.emulation.name!r} ({self.emulation.checked_by})"
        if not self.points:
            return [f"{where}: no shipped case pins it"]
        return [f"{where}: no shipped case pins its corner {corner!r}"
                for corner, found in self.corners.items() if not found]


def runs_its_checks(point: Point) -> bool:
    """Whether a point's run holds the harness's builders to its checks on this machine: the harness's own builders
    (not `defaults: native`, which builds each framework's own layer and emulates nothing), torch against Keras on
    the CPU, and not a canary or a documented difference (whose checks are expected to fail)."""
    return (point.defaults == "harness" and point.compare_with == "frameworks"
            and (point.devices is None or "cpu" in point.devices) and point.expect_fails is None
            and point.expect_plant is None and point.expect_divergent is None and point.expect_refuses is None)


def pinned_by(point: Point, emulation: Emulation) -> bool:
    """Whether `point`'s own checks pin `emulation` (see Emulation.checked_by)."""
    if not runs_its_checks(point):
        return False
    if emulation.checked_by == "sample":  # a train-mode draw: only each framework's sample check sees it
        return point.sampled
    if point.sampled:  # its last layer's output is a random sample: no reference, no expected values
        return False
    if emulation.checked_by == "statistics":  # engine.training compares the running statistics in train mode
        return point.mode == "train"
    if emulation.checked_by == "framework":  # one side emulates, the other runs its own layer: any comparison
        return True
    if point.expect_output is not None:
        return True
    if emulation.checked_by == "shape":
        return point.expect_shape is not None
    return emulation.checked_by == "reference" and point.expect_reference is not False


def point_sites(point: Point) -> list[tuple[Block, Site]]:
    """Every layer's block and site of a point."""
    return [(layer.block, site) for layer, site in zip(point.layers, point.sites)]


def pins(points: Iterable[Point], blocks: Iterable[Block]) -> list[Pins]:
    """For every emulation of `blocks`, the points among `points` that pin it and each of its corners."""
    table = {(b.name, e.name): Pins(b, e, corners={c.name: [] for c in e.corners})
             for b in blocks for e in b.emulations}
    for point in points:
        for block, site in point_sites(point):
            for owner, emulation, at in block.emulations_at(site):
                entry = table.get((owner.name, emulation.name))
                if entry is None or not pinned_by(point, emulation):
                    continue
                if not any(p is point for p in entry.pinning):  # a network can hold the block twice
                    entry.pinning.append(point)
                for corner in emulation.corners:
                    if corner.applies(at) and point.address not in entry.corners[corner.name]:
                        entry.corners[corner.name].append(point.address)
    return list(table.values())


def unpinned(points: Iterable[Point], blocks: Iterable[Block]) -> list[str]:
    """One line for each emulation, or corner of one, that no point among `points` pins."""
    return [line for entry in pins(points, blocks) for line in entry.missing()]
