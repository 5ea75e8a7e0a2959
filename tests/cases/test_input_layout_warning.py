"""Issue 17: an input written channels-last by mistake ([2, 28, 28, 3] for a batch of RGB images) ran as 28 channels
of 28x3 without a word, since both frameworks agree on that. It now warns (xfw_harness.cases.hints), naming the file,
the case, the shape and the channels-first shape likely meant; pytest lists it in its warnings summary and
`xfw-harness run` prints it. The rule must stay quiet on real channels-first inputs, the shipped cases' included."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.cases import find_case_files, load_file
from xfw_harness.core.errors import InputLayoutWarning
from xfw_harness.core.frameworks import BACKEND

pytest_plugins = ["pytester"]
PROJECT = Path(__file__).resolve().parents[2]

MISTAKE = """\
- name: mnist_nhwc
  block: conv2d
  params: {filters: 4, kernel_size: 3}
  input: {shape: [2, 28, 28, 3]}
  devices: [cpu]
"""


def case(block: str, shape: list[int], params: str = "{}") -> str:
    return f"- name: c\n  block: {block}\n  params: {params}\n  input: {{shape: {shape}}}\n  devices: [cpu]\n"


def layout_warnings(path: Path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries, error = load_file(path)
    assert error is None and all(e.error is None for e in entries), (error, [e.error for e in entries])
    return [str(w.message) for w in caught if issubclass(w.category, InputLayoutWarning)]


@pytest.mark.parametrize(("block", "params", "shape", "meant"), [
    ("conv2d", "{filters: 4, kernel_size: 3}", [2, 28, 28, 3], [2, 3, 28, 28]),
    ("max_pool2d", "{pool_size: 2}", [2, 32, 32, 3], [2, 3, 32, 32]),
    ("conv2d", "{filters: 4, kernel_size: 1}", [2, 32, 32, 1], [2, 1, 32, 32]),
    ("batch_norm2d", "{}", [4, 224, 160, 3], [4, 3, 224, 160]),
    ("conv1d", "{filters: 4, kernel_size: 3}", [2, 100, 3], [2, 3, 100]),
])
def test_a_channels_last_input_warns_with_the_shape_meant(tmp_path: Path, block: str, params: str, shape: list[int],
                                                          meant: list[int]) -> None:
    path = tmp_path / "nhwc.yaml"
    path.write_text(case(block, shape, params), encoding="utf-8")
    (message,) = layout_warnings(path)
    assert message.startswith(f"{path.name}: case 'c': input shape {shape} looks channels-last") or \
        message.startswith(f"{path}: case 'c': input shape {shape} looks channels-last"), message
    assert f"{block} reads axis 1 as the channels" in message and f"runs as {shape[1]} channels" in message
    assert message.endswith(f"if the data has {shape[-1]} channel{'s' * (shape[-1] > 1)}, write {meant}")


def test_a_swept_shape_names_its_sweep_point(tmp_path: Path) -> None:
    path = tmp_path / "swept.yaml"
    path.write_text("- name: s\n  block: conv2d\n  params: {filters: 2, kernel_size: 3}\n"
                    "  input: {shape: [2, 3, 9, 9]}\n  devices: [cpu]\n"
                    "  sweep: {input.shape: [[2, 3, 28, 28], [2, 28, 28, 3]]}\n", encoding="utf-8")
    (message,) = layout_warnings(path)
    assert "case 's' (at sweep point input.shape=2x28x28x3): input shape [2, 28, 28, 3]" in message


@pytest.mark.parametrize(("block", "params", "shape"), [
    ("conv2d", "{filters: 4, kernel_size: 3}", [2, 3, 28, 28]),  # channels-first, as meant
    ("conv2d", "{filters: 4, kernel_size: 3}", [8, 512, 6, 3]),  # a small spatial axis before the last: real NCHW
    ("conv2d", "{filters: 4, kernel_size: 3}", [2, 28, 28, 4]),  # last axis not an image's channel count
    ("relu", "{}", [2, 28, 28, 3]),  # any rank, no channel axis: the layout changes nothing
    ("permute", "{dims: [0, 3, 1, 2]}", [2, 28, 28, 3]),  # takes any layout: a model that permutes NHWC itself
])
def test_no_warning_where_the_input_is_not_an_image_written_channels_last(tmp_path: Path, block: str, params: str,
                                                                          shape: list[int]) -> None:
    path = tmp_path / "fine.yaml"
    path.write_text(case(block, shape, params), encoding="utf-8")
    assert layout_warnings(path) == []


def test_no_shipped_case_warns() -> None:
    for path in find_case_files([PROJECT / "cases"]):
        assert layout_warnings(path) == [], path


def test_pytest_lists_the_warning_in_its_summary(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", nhwc_cases=MISTAKE)
    result = pytester.runpytest_inprocess("nhwc_cases.yaml", "--collect-only", "-q", "--keras-backend", BACKEND)
    out = result.stdout.str()
    assert "warnings summary" in out and "InputLayoutWarning: nhwc_cases.yaml: case 'mnist_nhwc': input shape " \
        "[2, 28, 28, 3] looks channels-last" in out and "write [2, 3, 28, 28]" in out, out


def test_harness_run_prints_the_warning(tmp_path: Path) -> None:
    (tmp_path / "nhwc.yaml").write_text(textwrap.dedent(MISTAKE), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "xfw_harness", "run", "nhwc.yaml", "--keras-backend", BACKEND],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "InputLayoutWarning: nhwc.yaml: case 'mnist_nhwc': input shape [2, 28, 28, 3] looks channels-last" in \
        proc.stderr and "write [2, 3, 28, 28]" in proc.stderr, proc.stderr
