"""`xfw-harness check FILE...`: every bad case of every file reported with its file, case and field, exit status 1; a
valid file 0 and a one-line summary; nothing run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xfw_harness.cli import main
from xfw_harness.tools.check import check_paths

GOOD = """
- name: good_conv
  block: conv2d
  params: {filters: 4, kernel_size: 3}
  input: {shape: [1, 3, 8, 8]}
  sweep:
    strides: [1, 2]
"""

# Four planted mistakes in one file, each in its own case, around a valid one: each must be reported.
BAD = """
- name: unknown_block
  block: conv2dd
  input: {shape: [1, 3, 8, 8]}
- name: text_epsilon
  block: batch_norm2d
  params: {epsilon: 1e-5}
  input: {shape: [2, 3, 4, 4]}
- name: still_good
  block: relu
  input: {shape: [1, 3]}
- name: unknown_key
  block: relu
  inputs: {shape: [1, 3]}
- name: kernel_too_large_at_one_point
  block: conv2d
  params: {filters: 2}
  input: {shape: [1, 3, 5, 5]}
  sweep:
    kernel_size: [3, 9]
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_valid_file_passes_with_a_one_line_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _write(tmp_path, "good.yaml", GOOD)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["1 file, 1 case, 2 sweep points: all valid"]


def test_every_bad_case_is_reported_with_its_file_case_and_field(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    bad = _write(tmp_path, "bad.yaml", BAD)
    _write(tmp_path, "good.yaml", GOOD)
    assert main(["check", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    invalid = [line for line in lines if line.startswith("INVALID")]
    assert len(invalid) == 4, lines
    expected = {  # case -> (field, a piece of what is allowed)
        "unknown_block": ("block", "did you mean 'conv2d'"),
        "text_epsilon": ("params.epsilon", "write 1.0e-5"),
        "unknown_key": ("inputs", "did you mean 'input'"),
        "kernel_too_large_at_one_point": ("params.kernel_size", "at sweep point kernel_size=9"),
    }
    for case, (field, allowed) in expected.items():
        line = next(line for line in invalid if f"case '{case}'" in line)
        assert bad.name in line and allowed in line, line
        assert f"field '{field}'" in line or not field, line
    assert lines[-1] == "4 errors in 2 files, 6 cases"


def test_a_file_that_is_not_a_case_file_does_not_hide_the_others(tmp_path: Path) -> None:
    _write(tmp_path, "a_not_yaml.yaml", "- name: [unclosed\n")
    _write(tmp_path, "b_mapping.yaml", "name: x\n")
    _write(tmp_path, "c_bad.yaml", BAD)
    report = check_paths([tmp_path])
    messages = [str(e) for e in report.errors]
    assert report.files == 3 and len(messages) == 6, messages
    assert any("a_not_yaml.yaml" in m and "invalid YAML at line" in m for m in messages)
    assert any("b_mapping.yaml" in m and "YAML list of cases" in m for m in messages)


def test_nothing_runs_a_case_that_would_fail_when_run_is_valid(tmp_path: Path) -> None:
    """Golden values that are wrong fail `xfw-harness run`; a check, which runs nothing, finds the case valid."""
    path = _write(tmp_path, "wrong_golden.yaml", """
        - name: relu_wrong_golden
          block: relu
          input: {fill: values, values: [[-1.5, 0.0, 2.5]]}
          expect: {output: [[-1.5, 0.0, 2.5]]}
        """)
    report = check_paths([path])
    assert report.errors == [] and report.points == 1


def test_a_missing_file_is_an_error_and_no_file_at_all_is_bad_usage(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    assert main(["check", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read the file" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty")]) == 2
    assert "no YAML case files" in capsys.readouterr().out
