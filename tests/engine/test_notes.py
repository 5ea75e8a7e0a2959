"""Issue 17: a conv with strides and dilation passed without a word that Keras's own Conv2D refuses that combination
and the harness computes it (stride 1, then every stride-th output). Each block says where it emulates what Keras
lacks (Block.notes); the result carries the notes, `xfw-harness run` prints them under the status line and the report
shows them in the test's details."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.cases import Point, load_file
from xfw_harness.cli import main
from xfw_harness.core.frameworks import BACKEND
from xfw_harness.engine.result import point_notes
from xfw_harness.report.html import unpack

STRIDE_DILATION = "Keras's own convolution refuses strides > 1 with dilation_rate > 1"


def point(tmp_path: Path, body: str) -> Point:
    path = tmp_path / "case.yaml"
    path.write_text("- name: c\n" + body + "  devices: [cpu]\n", encoding="utf-8")
    (entry,), _ = load_file(path)
    assert entry.error is None, entry.error
    return entry.points[0]


@pytest.mark.parametrize(("body", "expected"), [
    ("  block: conv2d\n  params: {filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}\n"
     "  input: {shape: [1, 2, 11, 11]}\n", [STRIDE_DILATION]),
    ("  block: conv1d\n  params: {filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}\n"
     "  input: {shape: [1, 2, 11]}\n", [STRIDE_DILATION]),
    ("  block: conv2d\n  params: {filters: 2, kernel_size: 3, strides: 2}\n  input: {shape: [1, 2, 11, 11]}\n", []),
    ("  block: conv2d\n  params: {filters: 2, kernel_size: 3, dilation_rate: 2}\n  input: {shape: [1, 2, 11, 11]}\n",
     []),
    ("  block: conv2d\n  params: {filters: 2, kernel_size: 3, padding: 1, padding_mode: reflect}\n"
     "  input: {shape: [1, 2, 7, 7]}\n", ["Keras has no padding_mode: the harness pads (reflect) itself"]),
    ("  block: depthwise_conv2d\n  params: {kernel_size: 3, strides: [2, 1]}\n"
     "  input: {shape: [1, 2, 9, 9], dtype: float64}\n", ["TensorFlow's depthwise CPU kernel in float64 and float16"]),
    ("  block: depthwise_conv2d\n  params: {kernel_size: 3, strides: 2, dilation_rate: 2}\n"
     "  input: {shape: [1, 2, 11, 11]}\n", []),  # Keras's DepthwiseConv2D takes both
    ("  block: max_pool2d\n  params: {pool_size: 2, dilation: 2}\n  input: {shape: [1, 2, 9, 9]}\n",
     ["Keras's pooling has no dilation"]),
    ("  block: max_pool2d\n  params: {pool_size: 2}\n  input: {shape: [1, 2, 9, 9]}\n", []),
    ("  block: upsampling2d\n  params: {size: 2, interpolation: bilinear, align_corners: true}\n"
     "  input: {shape: [1, 2, 4, 4]}\n", ["Keras's UpSampling2D has no align_corners"]),
    ("  block: upsampling2d\n  params: {size: 2, interpolation: bilinear}\n  input: {shape: [1, 2, 4, 4]}\n", []),
    ("  block: sequential\n  layers:\n    - {block: relu}\n"
     "    - {block: conv2d, params: {filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}}\n"
     "  input: {shape: [1, 2, 11, 11]}\n", [f"layers[1] (conv2d): {STRIDE_DILATION}"]),
    # a composite carries its nested layers' notes: a residual branch, a graph node
    ("  block: sequential\n  layers:\n    - block: residual\n      layers:\n"
     "        - {block: conv2d, params: {filters: 2, kernel_size: 3, padding: 2, dilation_rate: 2}}\n"
     "        - {block: conv2d, params: {filters: 2, kernel_size: 3, padding: 1, padding_mode: reflect}}\n"
     "  input: {shape: [1, 2, 11, 11]}\n",
     ["layers[0] (residual): conv2d: Keras has no padding_mode: the harness pads (reflect) itself"]),
    ("  block: graph\n  nodes:\n    - {name: a, block: relu}\n"
     "    - {name: b, block: max_pool2d, params: {pool_size: 2, dilation: 2}}\n"
     "  input: {shape: [1, 2, 9, 9]}\n", ["nodes[1] (max_pool2d): Keras's pooling has no dilation"]),
    ("  block: conv2d\n  defaults: native\n  params: {filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}\n"
     "  input: {shape: [1, 2, 11, 11]}\n", []),
])
def test_the_block_notes_what_the_harness_computes_itself(tmp_path: Path, body: str, expected: list[str]) -> None:
    notes = point_notes(point(tmp_path, body))
    assert len(notes) == len(expected) and all(n.startswith(e) for n, e in zip(notes, expected)), notes


def test_harness_run_prints_the_note_under_pass_and_the_report_shows_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.yaml").write_text(
        "- name: strided_dilated\n  block: conv2d\n  params: {filters: 2, kernel_size: 3, strides: 2, "
        "dilation_rate: 2}\n  input: {shape: [1, 2, 11, 11]}\n  devices: [cpu]\n", encoding="utf-8")
    assert main(["run", "--keras-backend", BACKEND, "cases.yaml", "--html", "report.html"]) == 0
    out = capsys.readouterr().out
    test_id = f"cases.yaml::strided_dilated[cpu-{BACKEND}]"
    assert re.search(rf"^PASS   {re.escape(test_id)}  max abs .*\n       note: {re.escape(STRIDE_DILATION)}", out,
                     re.M), out
    (row,) = unpack((tmp_path / "report.html").read_text())["rows"]
    assert [n[:len(STRIDE_DILATION)] for n in row["notes"]] == [STRIDE_DILATION]
    assert main(["run", "--keras-backend", BACKEND, "cases.yaml", "-q"]) == 0
    assert "note:" not in capsys.readouterr().out  # --quiet: a pass says nothing
