"""Canaries (`expect.fails`): cases that must fail. A canary passes only when every comparison with its expectation
fails the named check and every other comparison passes; anything else fails it, with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xfw_harness.blocks.convolution as convolution
import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.cases import load_file

OFF = """
- name: planted
  block: relu
  input: {fill: values, values: [[-1, 1]]}
  expect: {output: [[0, 1.001]], fails: FAILS}
"""


def test_a_canary_passes_when_the_planted_difference_is_reported(run_case) -> None:  # noqa: ANN001
    (result,) = run_case(OFF.replace("FAILS", "values"))
    assert result.status == "passed"
    assert result.message.startswith("canary: the planted difference was reported (values), as expected")
    assert [(v.what, v.passed) for v in result.verdicts] == [("keras vs torch", True), ("torch vs expected", False),
                                                            ("keras vs expected", False), ("torch vs reference", True),
                                                            ("keras vs reference", True)]
    # The message shows the planted comparisons (the expectation's), not the frameworks' agreement beside them
    # (mutmut: a canary that took the other verdicts for the planted ones still passed here).
    assert [line.partition("]")[0] + "]" for line in result.message.splitlines()[1:] if line.startswith("[")] == [
        "[torch vs expected]", "[keras vs expected]"]


def test_a_canary_whose_expectation_holds_fails(run_case) -> None:  # noqa: ANN001
    (result,) = run_case(OFF.replace("1.001", "1").replace("FAILS", "values"))
    assert result.status == "failed"
    assert result.message.startswith("canary: expect.fails is values: every comparison with the expectation must "
                                     "fail that check, and the others pass; the harness said otherwise")
    assert "[torch vs expected] equal within" in result.message


def test_a_canary_that_fails_another_check_fails(run_case) -> None:  # noqa: ANN001
    (result,) = run_case(OFF.replace("FAILS", "nonfinite"))
    assert result.status == "failed" and "[torch vs expected] values differ" in result.message


def test_a_canary_fails_when_the_frameworks_disagree(run_case, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(convolution, "conv_kernel_to_keras", lambda w: np.ascontiguousarray(w.transpose(3, 2, 1, 0)))
    (result,) = run_case("""
        - name: shape_canary
          block: conv2d
          params: {filters: 2, kernel_size: 3}
          input: {shape: [1, 2, 6, 6]}
          expect: {shape: [1, 4, 4, 2], fails: shape}
        """)
    assert result.status == "failed" and "[keras vs torch] values differ" in result.message


@pytest.mark.parametrize(("expect", "says"), [
    ("{output: [[0, 1]], fails: value}",
     "field 'expect.fails': got 'value'; allowed: shape, nonfinite, values, sample"),
    ("{fails: values}", "field 'expect.fails': a canary needs expect.shape, expect.output or expect.plant"),
    # expect.plant: only in a canary, and each field's form
    ("{plant: {in: keras vs torch, side: keras, plus: 1.0}}", "field 'expect.plant': a plant is only read in a canary"),
    ("{plant: [keras vs torch], fails: values}", "field 'expect.plant': got ['keras vs torch']; allowed: a mapping"),
    ("{plant: {in: keras vs torch, side: keras, pluss: 1.0}, fails: values}",
     "field 'expect.plant.pluss': unknown key 'pluss' (did you mean 'plus'?); allowed: in, side, at, value, plus, "
     "times"),
    ("{plant: {side: keras, plus: 1.0}, fails: values}", "field 'expect.plant.in': got None; allowed: the name of one"),
    ("{plant: {in: keras vs torch, plus: 1.0}, fails: values}", "field 'expect.plant.side': got None; allowed: the"),
    ("{plant: {in: keras vs torch, side: keras, at: [0, -1], plus: 1.0}, fails: values}",
     "field 'expect.plant.at': got [0, -1]; allowed: an element's channels-first index"),
    ("{plant: {in: keras vs torch, side: keras, plus: 1.0, times: 2.0}, fails: values}",
     "field 'expect.plant': has plus, times; allowed: exactly one of value"),
    ("{plant: {in: keras vs torch, side: keras}, fails: values}", "field 'expect.plant': has none; allowed: exactly"),
    ("{plant: {in: keras vs torch, side: keras, plus: .inf}, fails: values}",
     "field 'expect.plant.plus': got inf; allowed: a finite number"),
    ("{plant: {in: keras vs torch, side: keras, value: '1e-5'}, fails: values}",
     "field 'expect.plant.value': got '1e-5'; allowed: a number (.nan, .inf and -.inf too)"),
    ("{output: [[0, 1]], fails: sample}", "field 'expect.fails': fails: sample is the check of a dropout sample"),
    ("{output: [[0, 1]], fails: [values]}", "field 'expect.fails': got ['values']"),
])
def test_a_malformed_canary_is_an_invalid_case(tmp_path: Path, expect: str, says: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"- name: c\n  block: relu\n  input: {{shape: [1, 2]}}\n  expect: {expect}\n", encoding="utf-8")
    (entry,), error = load_file(path)
    assert error is None and says in str(entry.error) and "case 'c'" in str(entry.error)


PLANTED = """
- name: planted
  block: relu
  input: {fill: values, values: [[-1, 1]]}
  expect: {plant: PLANT, fails: FAILS}
"""


def test_a_plant_goes_into_the_one_comparison_it_names(run_case) -> None:  # noqa: ANN001
    (result,) = run_case(PLANTED.replace("PLANT", "{in: keras vs torch, side: torch, at: [0, 1], value: -.inf}")
                         .replace("FAILS", "nonfinite"))
    assert result.status == "passed", result.message
    assert [(v.what, v.passed, v.check, v.planted) for v in result.verdicts][0] == (
        "keras vs torch", False, "nonfinite", "keras vs torch: torch's [0, 1] value -inf")
    assert "torch=-inf" in result.verdicts[0].message
    # The frameworks' own outputs are left alone: the third opinion (asked because keras vs torch failed) agrees.
    assert [(v.what, v.passed, v.planted) for v in result.verdicts[1:]] == [
        ("torch vs reference", True, None), ("keras vs reference", True, None)]


@pytest.mark.parametrize(("plant", "fails", "status", "says"), [
    ("{in: keras vs torch, side: keras, at: [0, 1], plus: 1.0e-3}", "nonfinite", "failed",
     "[keras vs torch] values differ"),  # reported, but by another check
    ("{in: keras vs torch, side: keras, at: [0, 1], plus: 1.0e-9}", "values", "failed",
     "[keras vs torch] equal within"),  # too small to report
    ("{in: grad input, side: keras, plus: 1.0}", "values", "failed",
     "(the planted comparison 'grad input' was never made: a check skipped, or expect.plant.in misspelt)"),
    ("{in: keras vs torch, side: ker, plus: 1.0}", "values", "error",
     "field 'expect.plant.side': got 'ker'; 'keras vs torch' compares 'keras' and 'torch': allowed: keras, torch"),
    ("{in: keras vs torch, side: keras, at: [0, 2], plus: 1.0}", "values", "error",
     "field 'expect.plant.at': got [0, 2]; 'keras vs torch' compares arrays of shape [1, 2] (channels-first)"),
    ("{in: keras vs torch, side: keras, at: [0, 0, 0], plus: 1.0}", "values", "error", "field 'expect.plant.at'"),
])
def test_a_planting_canary_fails_or_errors_with_the_reason(run_case, plant: str, fails: str, status: str,  # noqa: ANN001
                                                          says: str) -> None:
    (result,) = run_case(PLANTED.replace("PLANT", plant).replace("FAILS", fails))
    assert result.status == status and says in result.message, result.message
    if status == "error":
        assert "case 'planted'" in result.message
