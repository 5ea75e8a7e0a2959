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
                                                            ("keras vs expected", False)]
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
    ("{output: [[0, 1]], fails: value}", "field 'expect.fails': got 'value'; allowed: shape, nonfinite, values"),
    ("{fails: values}", "field 'expect.fails': a canary needs expect.shape or expect.output"),
    ("{output: [[0, 1]], fails: [values]}", "field 'expect.fails': got ['values']"),
])
def test_a_malformed_canary_is_an_invalid_case(tmp_path: Path, expect: str, says: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"- name: c\n  block: relu\n  input: {{shape: [1, 2]}}\n  expect: {expect}\n", encoding="utf-8")
    (entry,), error = load_file(path)
    assert error is None and says in str(entry.error) and "case 'c'" in str(entry.error)
