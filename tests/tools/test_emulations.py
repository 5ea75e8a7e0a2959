"""Every emulation is pinned by the shipped cases (issue 18): wherever the harness computes something itself instead of
a framework's layer (`Block.emulations`), a shipped case checks it from outside the harness's arithmetic (the float64
reference, or an expected shape or output) at each corner the block names; xfw_harness/tools/emulations.py.

The reference-checked ones are also run: the shipped case that pins each must really compute the reference there, and
both frameworks must agree with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from tests.helpers import shipped_points
from xfw_harness.blocks import CHECKED_BY, Corner, Emulation, all_blocks, get_block
from xfw_harness.cases import Point
from xfw_harness.core.verdicts import VerdictKind
from xfw_harness.engine import run_point
from xfw_harness.tools.emulations import pinned_by, pins, unpinned
from xfw_harness.tools.manual import emulation_table

POINTS = shipped_points()
TABLE = pins(POINTS, all_blocks().values())

TRANSPOSE_SAME_STRIDE_2 = """
- name: same_k1_s2
  block: conv2d_transpose
  params: {filters: 2, kernel_size: 1, strides: 2, padding: same}
  input: {shape: [1, 2, 3, 4]}
  {expect}
"""


def test_every_emulation_is_declared_with_a_name_a_check_and_named_corners() -> None:
    for block in all_blocks().values():
        names = [e.name for e in block.emulations]
        assert len(names) == len(set(names)), f"{block.name}: two emulations share a name: {names}"
        for e in block.emulations:
            assert e.checked_by in CHECKED_BY, f"{block.name}.{e.name}: checked_by {e.checked_by!r}"
            assert e.summary, f"{block.name}.{e.name}: no summary"
            corners = [c.name for c in e.corners]
            assert len(corners) == len(set(corners)), f"{block.name}.{e.name}: corners {corners}"


def test_the_shipped_cases_pin_every_emulation_and_each_of_its_corners() -> None:
    missing = unpinned(POINTS, all_blocks().values())
    assert not missing, "\n".join(missing)


def test_the_inventory_is_not_empty() -> None:
    """The blocks declare their emulations (a registry that lost them would pass the test above vacuously)."""
    assert len(TABLE) >= 5
    assert {"conv2d_transpose"} <= {entry.block.name for entry in TABLE}


def test_every_note_beside_a_pass_is_a_declared_emulation() -> None:
    """What a block says it computes itself (`notes`, printed beside a pass) is in its inventory: wherever a shipped
    case's layer has a note, an emulation of that layer (or of a layer nested in it) applies."""
    silent = []
    for point in POINTS:
        for layer, site in zip(point.layers, point.sites):
            if layer.block.notes(site) and not layer.block.emulations_at(site):
                silent.append(f"{point.test_id('cpu')}: {layer.block.name}: {layer.block.notes(site)[0]}")
    assert not silent, "\n".join(silent[:10])


# --- the check catches what is not pinned -----------------------------------------------------------------------

def _with_emulation(monkeypatch: pytest.MonkeyPatch, block: str, emulation: Emulation) -> None:
    cls = type(get_block(block))
    monkeypatch.setattr(cls, "emulations", (*cls.emulations, emulation))


def test_an_emulation_that_no_case_reaches_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_emulation(monkeypatch, "conv2d_transpose", Emulation("nowhere", "planted", lambda s: False, "reference"))
    missing = unpinned(POINTS, [get_block("conv2d_transpose")])
    assert missing == ["conv2d_transpose: emulation 'nowhere' (reference): no shipped case pins it"]


def test_a_corner_that_no_case_reaches_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    corner = Corner("a 1000-wide input", lambda s: 1000 in s.in_shape)
    _with_emulation(monkeypatch, "conv2d_transpose",
                    Emulation("everywhere", "planted", lambda s: True, "reference", (corner,)))
    missing = unpinned(POINTS, [get_block("conv2d_transpose")])
    assert missing == ["conv2d_transpose: emulation 'everywhere' (reference): no shipped case pins its corner "
                       "'a 1000-wide input'"]


@pytest.mark.parametrize(("expect", "checked_by", "pinned"), [
    ("", "reference", True),  # the reference runs at every point by default
    ("expect: {reference: false}", "reference", False),  # only on a disagreement: both sides agreeing, never
    ("", "shape", False),  # the reference reads the harness's own arithmetic: only an expected shape pins it
    ("expect: {shape: [1, 2, 6, 8]}", "shape", True),
    ("expect: {shape: [1, 2, 6, 8]}", "output", False),
    ("expect: {fails: shape, shape: [1, 2, 6, 9]}", "shape", False),  # a canary checks the check, not the path
    ("defaults: native", "reference", False),  # each framework's own layers: the harness emulates nothing
    ("mode: train", "statistics", True),  # the running statistics are compared after train-mode steps
    ("", "statistics", False),  # eval mode: no running statistics compared
    ("mode: train", "sample", False),  # not a sampled point: no sample check
    ("expect: {reference: false}", "framework", True),  # the other side's own layer: any comparison of the two
    ("defaults: native", "framework", False),
])
def test_what_pins_an_emulation(case_points: Callable[[str], list[Point]], expect: str, checked_by: str,
                                pinned: bool) -> None:
    (point,) = case_points(TRANSPOSE_SAME_STRIDE_2.replace("{expect}", expect))
    emulation = Emulation("planted", "planted", lambda s: True, checked_by)
    assert pinned_by(point, emulation) is pinned


def test_a_sampled_point_pins_only_what_its_sample_check_sees(case_points: Callable[[str], list[Point]]) -> None:
    (point,) = case_points("- {name: d, block: dropout, params: {rate: 0.5}, mode: train, input: {shape: [4, 100]}}")
    assert point.sampled
    assert pinned_by(point, Emulation("planted", "planted", lambda s: True, "sample"))
    for kind in ("reference", "shape", "output", "statistics", "framework"):
        assert not pinned_by(point, Emulation("planted", "planted", lambda s: True, kind)), kind


# --- the reference really runs where it pins an emulation ----------------------------------------------------------

REFERENCE_PINNED = [entry for entry in TABLE if entry.emulation.checked_by == "reference" and entry.pinning]


@pytest.mark.parametrize("entry", REFERENCE_PINNED, ids=lambda e: f"{e.block.name}.{e.emulation.name}")
def test_the_reference_runs_where_it_pins_an_emulation(entry) -> None:
    """The smallest shipped point that pins the emulation computes the float64 reference, and both frameworks agree
    with it (a block whose reference refuses that site would leave the emulation unchecked)."""
    point = min(entry.pinning, key=lambda p: math.prod(p.input.shape))
    result = run_point(point, "cpu")
    checked = [v for v in result.verdicts if v.kind == VerdictKind.REFERENCE]
    assert checked and all(v.passed for v in checked), (point.test_id("cpu"), [v.message for v in checked])
    assert {v.what for v in checked} >= {"torch vs reference", "keras vs reference"}, [v.what for v in checked]


def test_the_manual_lists_every_emulation_and_a_case_for_each_corner() -> None:
    table = emulation_table(TABLE)
    for entry in TABLE:
        assert f"| {entry.emulation.name} |" in table
    assert "**none**" not in table
