"""Shared fixtures: run a YAML case through the harness the way the CLI and the pytest plugin do."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable
from pathlib import Path

# onnx's C extension (nanobind) aborts the process if its module initialises twice. pytester's in-process runs
# restore sys.modules afterwards, so an onnx first imported inside one (the float64 reference imports it lazily) is
# dropped, and the next import runs it again: "Critical nanobind error: refusing to add duplicate key "Single" to
# enumeration ...FormalParameterOption", SIGABRT (tests/entry/test_pytest_plugin.py then tests/suite/test_backends.py
# did it). Imported here, before any in-process run, it stays.
import onnx.reference  # noqa: F401
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.cases import Point, RefusedPoint, load_file
from xfw_harness.engine import Result, run_point

_counter = itertools.count()


def load_points(yaml_text: str, directory: Path) -> list[Point]:
    """Every runnable point of the cases in `yaml_text` (written to a file in `directory`).

    Fails the test on a file error, a case error or a refused sweep point: a fixture case is meant to run.
    """
    path = directory / f"case_{next(_counter)}.yaml"
    path.write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    entries, err = load_file(path)
    assert err is None, f"case file error: {err}"
    assert entries, "no case in the YAML text"
    points: list[Point] = []
    for entry in entries:
        assert entry.error is None, f"case error: {entry.error}"
        for point in entry.points:
            assert not isinstance(point, RefusedPoint), f"refused sweep point: {point.error}"
            points.append(point)
    return points


@pytest.fixture
def run_case(tmp_path: Path) -> Callable[[str], list[Result]]:
    """`run_case(yaml_text) -> list[Result]`: every point of every case in the text, run on the CPU."""

    def run(yaml_text: str) -> list[Result]:
        return [run_point(point, "cpu") for point in load_points(yaml_text, tmp_path)]

    return run


@pytest.fixture
def case_points(tmp_path: Path) -> Callable[[str], list[Point]]:
    """`case_points(yaml_text) -> list[Point]`: the runnable points of the cases in the text, to run on any device."""

    return lambda yaml_text: load_points(yaml_text, tmp_path)
