"""The convolution family (xfw_harness/blocks/convolution.py): conv2d's padding_mode, depthwise_conv2d and
conv2d_transpose.

- Planted mistakes: each realistic wrong mapping, planted with monkeypatch, fails the case that the correct mapping
  passes, with the check and message that say what differs; where one framework is wrong, the float64 reference
  (the third opinion) sides with the other.
- The reference against both frameworks, in float64, on points that cover every construction path.
- params_from_torch: a PyTorch module read back into case params builds a module that computes the same output
  bit for bit, and the params run as a case.
- Native builders: only the written parameters, under each framework's names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import xfw_harness.blocks.conv_transpose as conv_transpose
import xfw_harness.blocks.conv_transpose_geometry as conv_transpose_geometry
import xfw_harness.blocks.conv_transpose_layers as conv_transpose_layers
import xfw_harness.blocks.convolution as convolution
import xfw_harness.blocks.keras_layers as keras_layers
from xfw_harness.blocks import Site, get_block
from xfw_harness.core.errors import Refusal
from xfw_harness.core.frameworks import keras, to_numpy, torch
from xfw_harness.core.layout import conv_transpose_kernel_to_keras, to_channels_first, to_channels_last
from xfw_harness.core.schema import normalise_params

CONV = get_block("conv2d")
DEPTHWISE = get_block("depthwise_conv2d")
TRANSPOSE = get_block("conv2d_transpose")


def _site(block: Any, params: dict[str, Any], in_shape: tuple[int, ...], dtype: str = "float32",
          written: frozenset[str] | None = None) -> Site:
    return Site(params=normalise_params(block.params, params), in_shape=in_shape, dtype=dtype, mode="eval",
                written=written)


def _failing(result: Any) -> list:
    return [v for v in result.verdicts if not v.passed]


def _verdict(result: Any, what: str) -> Any:
    return next(v for v in result.verdicts if v.what == what)


# --- planted mistakes ----------------------------------------------------------------------------------------

def reflect_as_symmetric(mp: pytest.MonkeyPatch) -> None:
    """Keras's (and numpy's) `symmetric` taken for PyTorch's `reflect`: it repeats the edge."""
    mp.setitem(keras_layers.KERAS_INDEX_MODES, "reflect", "symmetric")


def replicate_as_reflect(mp: pytest.MonkeyPatch) -> None:
    mp.setitem(keras_layers.KERAS_INDEX_MODES, "replicate", "reflect")


def circular_padded_with_zeros_in_keras(mp: pytest.MonkeyPatch) -> None:
    """Keras has no padding_mode: the hand port's ZeroPadding2D."""
    mp.setattr(keras_layers, "SpatialPadding",
               lambda padding, mode, dtype: keras.layers.ZeroPadding2D(padding, dtype=dtype))


def padding_mode_dropped_in_torch(mp: pytest.MonkeyPatch) -> None:
    """PyTorch's Conv2d left at padding_mode='zeros'."""
    original = type(CONV).torch_module

    def torch_module(self: Any, site: Site) -> torch.nn.Module:
        return original(self, dataclasses.replace(site, params={**site.params, "padding_mode": "zeros"}))

    mp.setattr(type(CONV), "torch_module", torch_module)


def depthwise_kernel_split_multiplier_first(mp: pytest.MonkeyPatch) -> None:
    """The [in*m, 1, kh, kw] rows split as (m, in): right shape, kernels given to the wrong channels."""
    def wrong(weight: np.ndarray, m: int) -> np.ndarray:
        rows, _, kh, kw = weight.shape
        return np.ascontiguousarray(weight.reshape(m, rows // m, kh, kw).transpose(2, 3, 1, 0))

    mp.setattr(convolution, "depthwise_kernel_to_keras", wrong)


def depthwise_kernel_hw_swapped(mp: pytest.MonkeyPatch) -> None:
    def wrong(weight: np.ndarray, m: int) -> np.ndarray:
        rows, _, kh, kw = weight.shape
        return np.ascontiguousarray(weight.reshape(rows // m, m, kh, kw).transpose(3, 2, 0, 1))

    mp.setattr(convolution, "depthwise_kernel_to_keras", wrong)


def transpose_kernel_in_out_swapped(mp: pytest.MonkeyPatch) -> None:
    """Conv2DTranspose's kernel taken for (kh, kw, in, out), like Conv2D's."""
    mp.setattr(conv_transpose, "conv_transpose_kernel_to_keras",
               lambda w: np.ascontiguousarray(np.transpose(w, (2, 3, 0, 1))))


def transpose_kernel_flipped(mp: pytest.MonkeyPatch) -> None:
    """"A transposed convolution is a convolution with the flipped kernel": flipped where neither framework flips."""
    mp.setattr(conv_transpose, "conv_transpose_kernel_to_keras",
               lambda w: np.ascontiguousarray(conv_transpose_kernel_to_keras(w)[::-1, ::-1]))


def _without_output_padding(framework: str) -> Callable[[pytest.MonkeyPatch], None]:
    def plant(mp: pytest.MonkeyPatch) -> None:
        cls = type(TRANSPOSE)
        original = getattr(cls, f"{framework}_module" if framework == "torch" else "keras_layer")

        def build(self: Any, site: Site) -> Any:
            return original(self, dataclasses.replace(site, params={**site.params, "output_padding": (0, 0)}))

        mp.setattr(cls, f"{framework}_module" if framework == "torch" else "keras_layer", build)

    return plant


def keras_same_ported_as_padding_1_output_padding_1(mp: pytest.MonkeyPatch) -> None:
    """The usual port of Keras's Conv2DTranspose(3, strides=2, padding='same') to PyTorch: padding=(k-1)//2,
    output_padding=stride-1. Same shape, but PyTorch crops its odd cell at the start, TensorFlow at the end."""
    cls = type(TRANSPOSE)
    original = cls.torch_module

    def torch_module(self: Any, site: Site) -> torch.nn.Module:
        p = site.params
        if p["padding"] != "same":
            return original(self, site)
        return torch.nn.ConvTranspose2d(site.in_shape[1], p["filters"], p["kernel_size"], stride=p["strides"],
                                        padding=tuple((k - 1) // 2 for k in p["kernel_size"]),
                                        output_padding=tuple(s - 1 for s in p["strides"]))

    mp.setattr(cls, "torch_module", torch_module)


def transposed_same_odd_cell_cropped_first(mp: pytest.MonkeyPatch) -> None:
    """The harness's own arithmetic for `same` wrong (odd cell at the start): PyTorch follows it, Keras computes
    TensorFlow's same itself."""
    original = conv_transpose_geometry.transposed_crop_1d

    def wrong(*args: Any) -> tuple[int, int]:
        before, after = original(*args)
        return (after, before) if args[4] == "same" and after >= 0 else (before, after)

    mp.setattr(conv_transpose_geometry, "transposed_crop_1d", wrong)


def transposed_zeros_not_inserted(mp: pytest.MonkeyPatch) -> None:
    """The stride dropped where Keras runs a strided, dilated transposed convolution as a stride-1 one."""
    mp.setattr(keras_layers.InsertZeros, "call", lambda self, x: x)
    mp.setattr(keras_layers.InsertZeros, "compute_output_shape", lambda self, shape: shape)


@dataclass
class Planted:
    id: str
    case: str
    plant: Callable[[pytest.MonkeyPatch], None]
    check: str
    message: str
    wrong_side: str | None = None  # "torch" or "keras": the side the reference must disagree with


REFLECT = """
- name: reflect_same_stride_2
  block: conv2d
  params: {filters: 4, kernel_size: 3, strides: 2, padding: same, padding_mode: reflect}
  input: {shape: [2, 3, 10, 9]}
"""
REPLICATE = """
- name: replicate_pair
  block: conv2d
  params: {filters: 4, kernel_size: [3, 2], padding: [2, 1], padding_mode: replicate}
  input: {shape: [2, 3, 7, 8]}
"""
CIRCULAR = """
- name: circular_dilated
  block: conv2d
  params: {filters: 3, kernel_size: 3, dilation_rate: 2, padding: 2, padding_mode: circular}
  input: {shape: [1, 2, 6, 7]}
"""
DEPTHWISE_M2 = """
- name: depthwise_m2
  block: depthwise_conv2d
  params: {kernel_size: 3, depth_multiplier: 2, padding: same}
  input: {shape: [2, 3, 8, 8]}
"""
TRANSPOSE_SQUARE = """
- name: transpose_in_eq_out
  block: conv2d_transpose
  params: {filters: 4, kernel_size: 3, strides: 2, padding: 1, output_padding: 1}
  input: {shape: [2, 4, 5, 5]}
"""
TRANSPOSE_SAME = """
- name: transpose_same_k3_s2
  block: conv2d_transpose
  params: {filters: 4, kernel_size: 3, strides: 2, padding: same}
  input: {shape: [2, 3, 5, 6]}
"""
TRANSPOSE_SAME_EVEN = """
- name: transpose_same_k2_s1
  block: conv2d_transpose
  params: {filters: 4, kernel_size: 2, padding: same}
  input: {shape: [2, 3, 5, 6]}
"""
TRANSPOSE_STRIDED_DILATED = """
- name: transpose_stride_2_dilation_2
  block: conv2d_transpose
  params: {filters: 3, kernel_size: 3, strides: 2, dilation_rate: 2, output_padding: 1, padding: 1}
  input: {shape: [1, 2, 5, 6]}
"""
VALUES = "values differ"

PLANTED = [
    Planted("reflect-as-keras-symmetric", REFLECT, reflect_as_symmetric, "values", VALUES, "keras"),
    Planted("replicate-as-reflect", REPLICATE, replicate_as_reflect, "values", VALUES, "keras"),
    Planted("circular-as-zeros-in-keras", CIRCULAR, circular_padded_with_zeros_in_keras, "values", VALUES, "keras"),
    Planted("padding-mode-dropped-in-torch", REFLECT, padding_mode_dropped_in_torch, "values", VALUES, "torch"),
    Planted("depthwise-kernel-split-m-first", DEPTHWISE_M2, depthwise_kernel_split_multiplier_first, "values",
            VALUES, "keras"),
    Planted("depthwise-kernel-hw-swapped", DEPTHWISE_M2, depthwise_kernel_hw_swapped, "values", VALUES, "keras"),
    Planted("transpose-kernel-in-out-swapped", TRANSPOSE_SQUARE, transpose_kernel_in_out_swapped, "values", VALUES,
            "keras"),
    Planted("transpose-kernel-flipped", TRANSPOSE_SQUARE, transpose_kernel_flipped, "values", VALUES, "keras"),
    Planted("output-padding-dropped-in-keras", TRANSPOSE_SQUARE, _without_output_padding("keras"), "shape",
            "shape mismatch: keras [2, 4, 9, 9] vs torch [2, 4, 10, 10]"),
    Planted("output-padding-dropped-in-torch", TRANSPOSE_SQUARE, _without_output_padding("torch"), "shape",
            "shape mismatch: keras [2, 4, 10, 10] vs torch [2, 4, 9, 9]"),
    Planted("keras-same-ported-as-padding-1-output-padding-1", TRANSPOSE_SAME,
            keras_same_ported_as_padding_1_output_padding_1, "values", VALUES, "torch"),
    Planted("transposed-same-odd-cell-cropped-first", TRANSPOSE_SAME_EVEN, transposed_same_odd_cell_cropped_first,
            "values", VALUES, "torch"),
    Planted("transposed-stride-dropped-with-dilation", TRANSPOSE_STRIDED_DILATED, transposed_zeros_not_inserted,
            "shape", "shape mismatch: keras [1, 3, 8, 9] vs torch [1, 3, 12, 14]"),
]


@pytest.mark.parametrize("planted", PLANTED, ids=[p.id for p in PLANTED])
def test_planted_mistake_is_caught(planted: Planted, run_case: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    (good,) = run_case(planted.case)
    assert good.status == "passed", f"the correct adapter fails:\n{good.message}"
    assert all(v.passed for v in good.verdicts)

    planted.plant(monkeypatch)
    (bad,) = run_case(planted.case)
    assert bad.status == "failed", f"{planted.id} not caught: {bad.status}\n{bad.message}"
    first = _failing(bad)[0]
    assert first.what == "keras vs torch", bad.message
    assert first.check == planted.check, bad.message
    assert planted.message in first.message, first.message
    if planted.check == "values":
        m = first.metrics  # far outside the tolerance, not a rounding that happens to cross it
        assert m["max_abs"] > 10 * (m["atol"] + m["rtol"] * abs(m["worst_expected"])), first.message
    if planted.wrong_side is not None:  # the third opinion names the wrong side
        right_side = {"torch": "keras", "keras": "torch"}[planted.wrong_side]
        assert not _verdict(bad, f"{planted.wrong_side} vs reference").passed, bad.message
        assert _verdict(bad, f"{right_side} vs reference").passed, bad.message


def test_transposed_kernel_with_the_conv_kernel_conversion_is_right() -> None:
    """Copying a ConvTranspose2d weight with conv2d's conversion is not a mistake: [in, out, kh, kw] through conv's
    (2, 3, 1, 0) is (kh, kw, out, in), Keras's Conv2DTranspose layout (xfw_harness.core.layout's docstring)."""
    weight = np.random.default_rng(0).standard_normal((3, 5, 3, 2))
    np.testing.assert_array_equal(convolution.conv_kernel_to_keras(weight), conv_transpose_kernel_to_keras(weight))


# --- refusals ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("block", "params", "in_shape", "dtype", "field", "says"), [
    ("conv2d", {"filters": 2, "kernel_size": 3, "padding": 4, "padding_mode": "reflect"}, (1, 1, 4, 9), "float32",
     "params.padding_mode", "padding 4, 4 on the 4 of the height"),
    ("conv2d", {"filters": 2, "kernel_size": 3, "padding": [1, 6], "padding_mode": "circular"}, (1, 1, 4, 5),
     "float32", "params.padding_mode", "wrapping around more than once"),
    ("conv2d_transpose", {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 2}, (1, 1, 4, 4),
     "float32", "params.output_padding", "must be smaller than stride or dilation"),
    ("conv2d_transpose", {"filters": 2, "kernel_size": 3, "padding": "same", "output_padding": [0, 1],
                          "strides": 2}, (1, 1, 4, 4), "float32", "params.output_padding", "numeric padding only"),
    ("conv2d_transpose", {"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (1, 1, 4, 4), "float64",
     "params.dilation_rate", "no CPU float64 kernel"),
    ("conv2d_transpose", {"filters": 2, "kernel_size": 3, "padding": 3}, (1, 1, 2, 2), "float32", "params.padding",
     "crops the whole 4x4 output"),
])
def test_refusals_name_the_parameter(block: str, params: dict, in_shape: tuple, dtype: str, field: str,
                                     says: str) -> None:
    b = get_block(block)
    with pytest.raises(Refusal) as info:
        b.output_shape(_site(b, params, in_shape, dtype))
    assert info.value.field == field and says in info.value.message, info.value.message


@pytest.mark.parametrize(("mode", "pad", "size"), [("reflect", 3, 4), ("circular", 4, 4), ("replicate", 9, 4)])
def test_the_largest_padding_pytorch_takes_is_accepted(mode: str, pad: int, size: int) -> None:
    """What PyTorch accepts the harness accepts (one more and PyTorch raises: the refusals above)."""
    site = _site(CONV, {"filters": 2, "kernel_size": 3, "padding": pad, "padding_mode": mode}, (1, 2, size, size))
    shape = CONV.output_shape(site)
    with torch.no_grad():
        out = torch.nn.Conv2d(2, 2, 3, padding=pad, padding_mode=mode)(torch.zeros(1, 2, size, size))
    assert tuple(out.shape) == shape
    if mode != "replicate":
        with pytest.raises(RuntimeError):
            torch.nn.Conv2d(2, 2, 3, padding=pad + 1, padding_mode=mode)(torch.zeros(1, 2, size, size))


def test_keras_pad_modes_are_not_pytorchs() -> None:
    """Why Padding2D gathers: keras.ops.pad's reflect is PyTorch's, its symmetric repeats the edge, and
    TensorFlow's backend has no edge (replicate) or wrap (circular) mode."""
    x = np.arange(5.0).reshape(1, 5, 1, 1)
    spec = [[0, 0], [2, 2], [0, 0], [0, 0]]
    reflect = to_numpy(keras.ops.pad(x, spec, mode="reflect"))[0, :, 0, 0]
    symmetric = to_numpy(keras.ops.pad(x, spec, mode="symmetric"))[0, :, 0, 0]
    torch_reflect = to_numpy(torch.nn.functional.pad(torch.from_numpy(x[:, :, :, 0]).permute(0, 2, 1), (2, 2),
                                                     mode="reflect"))[0, 0]
    np.testing.assert_array_equal(reflect, torch_reflect)
    np.testing.assert_array_equal(reflect, [2, 1, 0, 1, 2, 3, 4, 3, 2])
    np.testing.assert_array_equal(symmetric, [1, 0, 0, 1, 2, 3, 4, 4, 3])
    for mode in ("edge", "wrap"):
        with pytest.raises(ValueError, match="CONSTANT"):
            keras.ops.pad(x, spec, mode=mode)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding2d_is_pytorchs_padding(mode: str) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 6))
    pads = ((2, 4), (5, 1))
    got = to_channels_first(to_numpy(keras_layers.Padding2D(pads, mode, dtype="float64")(to_channels_last(x))))
    expected = torch.nn.functional.pad(torch.from_numpy(x), (5, 1, 2, 4), mode=mode).numpy()
    np.testing.assert_array_equal(got, expected)


STRIDED_1X1_TRANSPOSE = """
- name: strided_1x1
  block: conv2d_transpose
  params: {filters: 3, kernel_size: 1, strides: 2}
  input: {shape: [1, 2, 6, 7]}
  check: [forward, backward]
  sweep:
    padding: [same, 0]
"""

# The child: every point of the case, run again and again (a heap corruption shows late, as a crash of the process).
REPEAT = """
import sys
from xfw_harness.cases import load_file
from xfw_harness.engine import run_point
(entry,), _ = load_file(sys.argv[1])
for _ in range(int(sys.argv[2])):
    for point in entry.points:
        result = run_point(point, "cpu")
        assert result.status == "passed", result.message
print("survived")
"""


def test_a_strided_1x1_transposed_convolution_is_run_without_tensorflows_crashing_kernel(tmp_path: Path) -> None:
    """TensorFlow 2.21's oneDNN CPU kernels for the gradient of a Conv2DTranspose with a 1x1 kernel and a stride
    corrupt the heap on a batch of one (glibc aborts: "corrupted size vs. prev_size", "double free", segfaults):
    measured with the layer alone, 200 gradient steps crashed every time, and in `make mutation` 8 of 69 runs of the
    shipped cases died. The harness builds it as stride 1 on zero-inserted input (InsertZeros), which computes
    the same. A child process runs such a point's backward check 40 times (before the workaround it died within
    about 30) and must survive; the Keras layer must hold no strided Conv2DTranspose."""
    import subprocess
    import sys

    (tmp_path / "case.yaml").write_text(STRIDED_1X1_TRANSPOSE, encoding="utf-8")
    site = Site(params=normalise_params(get_block("conv2d_transpose").params,
                                        {"filters": 3, "kernel_size": 1, "strides": 2, "padding": "same"}),
                in_shape=(1, 2, 6, 7), dtype="float32", mode="eval")
    layer = get_block("conv2d_transpose").keras_layer(site)
    convs = [sub for sub in getattr(layer, "layers", [layer]) if isinstance(sub, keras.layers.Conv2DTranspose)]
    assert [tuple(c.strides) for c in convs] == [(1, 1)]
    assert any(isinstance(sub, keras_layers.InsertZeros) for sub in layer.layers)
    child = subprocess.run([sys.executable, "-c", REPEAT, str(tmp_path / "case.yaml"), "40"], capture_output=True,
                           text=True, timeout=600)
    assert child.returncode == 0 and "survived" in child.stdout, (child.returncode, child.stderr[-2000:])


def test_insert_zeros_2d() -> None:
    x = np.arange(1.0, 7.0).reshape(1, 2, 3, 1)
    got = to_numpy(keras_layers.InsertZeros2D((2, 3), dtype="float64")(x))[0, :, :, 0]
    np.testing.assert_array_equal(got, [[1, 0, 0, 2, 0, 0, 3], [0] * 7, [4, 0, 0, 5, 0, 0, 6]])


@pytest.mark.parametrize("strides", [(3,), (2, 1, 3)])
def test_insert_zeros_and_subsample_of_any_rank(strides: tuple[int, ...]) -> None:
    """InsertZeros puts stride - 1 zeros between the cells of each spatial axis (3-D: one axis at a time, TensorFlow
    pads rank 6 at most); Subsample keeps every stride-th cell: its inverse."""
    x = np.random.default_rng(0).standard_normal((2, *(4, 3, 5)[:len(strides)], 3))
    got = to_numpy(keras_layers.InsertZeros(strides, dtype="float64")(x))
    want = np.zeros((2, *((n - 1) * s + 1 for n, s in zip(x.shape[1:-1], strides)), 3))
    want[(slice(None), *(slice(None, None, s) for s in strides))] = x
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(to_numpy(keras_layers.Subsample(strides, dtype="float64")(got)), x)


# --- the reference against both frameworks -------------------------------------------------------------------

REFERENCE_POINTS = """
- name: conv_modes
  block: conv2d
  params: {filters: 4, kernel_size: [3, 2], strides: [2, 1], padding: same, dilation_rate: [1, 2]}
  input: {shape: [2, 4, 7, 8], dtype: float64}
  expect: {reference: true}
  sweep:
    padding_mode: [zeros, reflect, replicate, circular]
    groups: [1, 2]
- name: depthwise
  block: depthwise_conv2d
  params: {kernel_size: 3, depth_multiplier: 2, strides: 2, dilation_rate: 2}
  input: {shape: [1, 3, 9, 10], dtype: float64}
  expect: {reference: true}
  sweep:
    padding: [1, same]
- name: transpose
  block: conv2d_transpose
  params: {filters: 3, kernel_size: [3, 2]}
  input: {shape: [2, 2, 4, 5], dtype: float64}
  expect: {reference: true}
  sweep:
    strides: [1, 2, 3]
    padding: [1, same]
- name: transpose_output_padding_past_the_stride
  block: conv2d_transpose
  params: {filters: 3, kernel_size: 3, strides: [1, 2], dilation_rate: 3, output_padding: 2}
  input: {shape: [1, 2, 4, 5]}
  expect: {reference: true}
"""


def test_reference_agrees_with_both_frameworks(run_case: Callable) -> None:
    """`expect: {reference: true}` checks both frameworks against the float64 reference (ONNX's Pad, Conv with
    auto_pad SAME_UPPER, ConvTranspose, and the NumPy crop where onnx.reference's ConvTranspose fails)."""
    results = run_case(REFERENCE_POINTS)
    assert len(results) == 8 + 2 + 6 + 1
    for result in results:
        assert result.status == "passed", result.message
        assert {"torch vs reference", "keras vs reference"} <= {v.what for v in result.verdicts}, result.id


def test_reference_matches_torch_in_float64_to_rounding() -> None:
    """Measured: the reference and PyTorch's float64 agree to 6e-15 on every shipped point; here a few paths."""
    rng = np.random.default_rng(2)
    cases = [
        (CONV, {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "padding_mode": "reflect"},
         (2, 3, 8, 7)),
        (CONV, {"filters": 2, "kernel_size": [2, 3], "padding": [1, 2], "padding_mode": "circular", "groups": 2},
         (1, 4, 5, 6)),
        (DEPTHWISE, {"kernel_size": 3, "depth_multiplier": 3, "padding": "same", "padding_mode": "replicate"},
         (1, 2, 6, 6)),
        (TRANSPOSE, {"filters": 3, "kernel_size": 2, "padding": "same"}, (1, 2, 5, 4)),
        (TRANSPOSE, {"filters": 3, "kernel_size": 3, "dilation_rate": 3, "output_padding": 2}, (1, 2, 4, 4)),
    ]
    for block, params, in_shape in cases:
        site = _site(block, params, in_shape)
        torch.manual_seed(0)
        module = block.torch_module(site).double()
        x = rng.standard_normal(in_shape)
        with torch.no_grad():
            expected = to_numpy(module(torch.from_numpy(x)))
        weights = {k: to_numpy(v) for k, v in block.torch_parameters(module).items()}
        got = block.reference(site, x, weights)
        assert got.shape == expected.shape == block.output_shape(site)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


# --- params_from_torch ---------------------------------------------------------------------------------------

ROUND_TRIPS = [
    ("conv2d", lambda: torch.nn.Conv2d(3, 4, 3), (2, 3, 8, 9)),
    ("conv2d", lambda: torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2,
                                       bias=False, padding_mode="reflect"), (1, 4, 9, 8)),
    ("conv2d", lambda: torch.nn.Conv2d(3, 4, 4, padding="same", padding_mode="circular"), (1, 3, 7, 6)),
    ("conv2d", lambda: torch.nn.Conv2d(3, 4, 3, stride=2, padding="valid"), (1, 3, 7, 6)),
    ("depthwise_conv2d", lambda: torch.nn.Conv2d(3, 6, 3, padding=1, groups=3, padding_mode="replicate"),
     (2, 3, 6, 7)),
    ("depthwise_conv2d", lambda: torch.nn.Conv2d(4, 4, (2, 3), stride=2, dilation=2, groups=4), (1, 4, 9, 9)),
    ("conv2d_transpose", lambda: torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
     (2, 3, 5, 6)),
    ("conv2d_transpose", lambda: torch.nn.ConvTranspose2d(2, 3, (3, 2), stride=(1, 2), dilation=(2, 1),
                                                          output_padding=(1, 0), bias=False), (1, 2, 4, 5)),
    ("conv2d_transpose", lambda: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2), (1, 4, 3, 4)),
    ("conv1d", lambda: torch.nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, padding_mode="reflect"),
     (2, 4, 11)),
    ("conv1d", lambda: torch.nn.Conv1d(3, 3, 4, padding="same", groups=3), (1, 3, 9)),
    ("conv3d", lambda: torch.nn.Conv3d(2, 4, (3, 1, 2), stride=(1, 2, 1), padding=(1, 0, 1), bias=False),
     (1, 2, 4, 5, 6)),
    ("conv1d_transpose", lambda: torch.nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1, groups=2), (2, 4, 5)),
    ("conv3d_transpose", lambda: torch.nn.ConvTranspose3d(2, 3, (2, 3, 2), stride=(2, 1, 2), output_padding=(1, 0, 0)),
     (1, 2, 3, 4, 3)),
]


@pytest.mark.parametrize(("block_name", "factory", "in_shape"), ROUND_TRIPS,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(ROUND_TRIPS)])
def test_params_from_torch_round_trip(block_name: str, factory: Callable, in_shape: tuple,
                                      tmp_path: Path, run_case: Callable) -> None:
    """module -> params -> the harness's module: identical output (float64, the same weights); and the params, as
    YAML, are a case that runs and passes."""
    block = get_block(block_name)
    torch.manual_seed(1)
    module = factory().double()
    params = block.params_from_torch(module, in_shape)
    assert yaml.safe_load(yaml.safe_dump(params)) == params  # plain YAML values
    site = _site(block, params, in_shape)
    rebuilt = block.torch_module(site).double()
    with torch.no_grad():
        for name, tensor in block.torch_parameters(rebuilt).items():
            tensor.copy_(getattr(module, name))
        x = torch.from_numpy(np.random.default_rng(3).standard_normal(in_shape))
        np.testing.assert_array_equal(to_numpy(rebuilt(x)), to_numpy(module(x)))
    assert block.output_shape(site) == tuple(module(x).shape)
    case = yaml.safe_dump([{"name": "ported", "block": block_name, "params": params,
                            "input": {"shape": list(in_shape)}}])
    (result,) = run_case(case)
    assert result.status == "passed", result.message


@pytest.mark.parametrize(("block_name", "module", "field", "says"), [
    ("conv2d", torch.nn.Conv2d(3, 6, 3, groups=3), "groups", "read it as depthwise_conv2d"),
    ("depthwise_conv2d", torch.nn.Conv2d(4, 4, 3, groups=2), "groups", "read it as conv2d"),
    ("conv1d_transpose", torch.nn.ConvTranspose2d(4, 4, 3), "module", "ConvTranspose2d is not a ConvTranspose1d"),
    ("conv3d", torch.nn.Conv3d(4, 4, 3), "in_channels", "(channels-first, rank 5)"),
    ("conv2d", torch.nn.ConvTranspose2d(4, 4, 3), "module", "ConvTranspose2d is not a Conv2d"),
    ("conv2d_transpose", torch.nn.Conv2d(4, 4, 3), "module", "Conv2d is not a ConvTranspose2d"),
    ("conv2d", torch.nn.Conv2d(3, 4, 3), "in_channels", "cannot take an input of shape [1, 5, 8, 8]"),
])
def test_params_from_torch_refusals_name_the_attribute(block_name: str, module: torch.nn.Module, field: str,
                                                       says: str) -> None:
    with pytest.raises(Refusal) as info:
        get_block(block_name).params_from_torch(module, (1, 5, 8, 8) if field == "in_channels" else (1, 4, 8, 8))
    assert info.value.field == field and says in info.value.message, info.value.message


def test_exactly_one_block_reads_each_conv2d() -> None:
    for module in (torch.nn.Conv2d(3, 6, 3, groups=3), torch.nn.Conv2d(3, 6, 3), torch.nn.Conv2d(1, 4, 3),
                   torch.nn.Conv2d(4, 4, 3, groups=2)):
        readers = []
        for block in (CONV, DEPTHWISE):
            try:
                block.params_from_torch(module, (1, module.in_channels, 8, 8))
                readers.append(block.name)
            except Refusal:
                pass
        assert len(readers) == 1, (module, readers)


# --- native builders -----------------------------------------------------------------------------------------

def _native(block: Any, params: dict[str, Any], in_shape: tuple = (1, 3, 8, 8)) -> tuple[Any, Any]:
    site = _site(block, params, in_shape, "float32", written=frozenset(params))
    return block.native_torch_module(site), block.native_keras_layer(site)


def test_native_conv2d_passes_only_what_was_written() -> None:
    t, k = _native(CONV, {"filters": 4, "kernel_size": 3})
    assert (t.stride, t.padding, t.dilation, t.groups, t.padding_mode) == ((1, 1), (0, 0), (1, 1), 1, "zeros")
    assert k.get_config()["padding"] == "valid"
    t, k = _native(CONV, {"filters": 4, "kernel_size": 3, "padding": 1, "strides": 2})
    assert t.padding == (1, 1) and t.stride == (2, 2)
    assert k.get_config()["padding"] == "same" and k.get_config()["strides"] == (2, 2)  # the hand port of 1
    t, k = _native(CONV, {"filters": 4, "kernel_size": [5, 3], "padding": [2, 1], "padding_mode": "zeros"})
    assert k.get_config()["padding"] == "same" and t.padding == (2, 1)
    t, k = _native(CONV, {"filters": 6, "kernel_size": 3, "padding": 0, "groups": 3, "use_bias": False})
    assert k.get_config()["padding"] == "valid" and k.get_config()["groups"] == 3 and not k.get_config()["use_bias"]
    assert t.groups == 3 and t.bias is None


def test_native_keras_refuses_what_it_cannot_write() -> None:
    for params, field in (({"filters": 4, "kernel_size": 3, "padding": [1, 2]}, "params.padding"),
                          ({"filters": 4, "kernel_size": 3, "padding": 1, "padding_mode": "reflect"},
                           "params.padding_mode")):
        site = _site(CONV, params, (1, 3, 8, 8), "float32", written=frozenset(params))
        with pytest.raises(Refusal) as info:
            CONV.native_keras_layer(site)
        assert info.value.field == field, info.value.message
    site = _site(CONV, {"filters": 4, "kernel_size": 3, "padding": 1, "padding_mode": "reflect"}, (1, 3, 8, 8),
                 written=frozenset({"filters", "kernel_size", "padding", "padding_mode"}))
    assert CONV.native_torch_module(site).padding_mode == "reflect"
    site = _site(TRANSPOSE, {"filters": 4, "kernel_size": 3, "padding": "same"}, (1, 3, 8, 8),
                 written=frozenset({"filters", "kernel_size", "padding"}))
    with pytest.raises(Refusal, match="no padding='same'"):
        TRANSPOSE.native_torch_module(site)


def test_native_depthwise_and_transpose() -> None:
    t, k = _native(DEPTHWISE, {"kernel_size": 3, "depth_multiplier": 2, "padding": "same"})
    assert (t.in_channels, t.out_channels, t.groups, t.padding) == (3, 6, 3, "same")
    assert isinstance(k, keras.layers.DepthwiseConv2D) and k.depth_multiplier == 2 and k.padding == "same"
    t, k = _native(TRANSPOSE, {"filters": 5, "kernel_size": 3, "strides": 2, "padding": 1, "output_padding": 1})
    assert (t.padding, t.output_padding, t.stride) == ((1, 1), (1, 1), (2, 2))
    config = k.get_config()
    assert (config["padding"], config["output_padding"], config["strides"]) == ("same", (1, 1), (2, 2))
    t, k = _native(TRANSPOSE, {"filters": 5, "kernel_size": 3})
    assert t.padding == (0, 0) and k.get_config()["output_padding"] is None  # each framework's default


NATIVE = """
# The usual hand port of PyTorch's ConvTranspose2d(3, stride=2, padding=1, output_padding=1) is Keras's
# Conv2DTranspose(3, strides=2, padding='same', output_padding=1): the same shape, shifted by one cell.
- name: transpose_hand_port
  block: conv2d_transpose
  defaults: native
  params: {filters: 4, kernel_size: 3, strides: 2, padding: 1, output_padding: 1}
  input: {shape: [1, 3, 5, 5]}
  expect: {divergent: "TensorFlow crops the odd cell at the end, PyTorch's padding=1 at the start"}
# At stride 1 with an odd kernel, padding k//2 is Keras's same: the hand port is right.
- name: conv_hand_port_stride_1
  block: conv2d
  defaults: native
  params: {filters: 4, kernel_size: 3, padding: 1}
  input: {shape: [1, 3, 8, 8]}
# Keras refuses strides with dilation: the hand port does not build.
- name: conv_hand_port_stride_and_dilation
  block: conv2d
  defaults: native
  params: {filters: 4, kernel_size: 3, strides: 2, dilation_rate: 2}
  input: {shape: [1, 3, 9, 9]}
  expect: {divergent: "Keras's Conv2D refuses strides > 1 with dilation_rate > 1", refuses: "dilation_rate > 1"}
"""


def test_native_cases(run_case: Callable) -> None:
    shifted, same, refused = run_case(NATIVE)
    assert (shifted.status, same.status, refused.status) == ("divergent", "passed", "divergent"), \
        [r.message for r in (shifted, same, refused)]
    assert not _verdict(shifted, "keras vs torch").passed
    assert _verdict(shifted, "keras vs torch").check == "values"
    assert _verdict(same, "keras vs torch").passed
    assert "Keras refuses the hand port" in _verdict(refused, "keras vs torch").message


def test_grouped_conv_transpose_saves_and_loads(tmp_path: Path) -> None:
    """The harness's GroupedConvTranspose (conv2d_transpose with groups in Keras) inside a .keras file: reloaded
    with its class as a custom object, it has its kernel (g, kh, kw, out/g, in/g) and computes the same."""
    site = _site(get_block("conv2d_transpose"), {"filters": 6, "kernel_size": 3, "strides": 2, "padding": 1,
                                                 "groups": 3}, (1, 3, 4, 5), dtype="float64")
    layer = get_block("conv2d_transpose").keras_layer(site)
    x = np.random.default_rng(4).standard_normal((1, 4, 5, 3))
    model = keras.Sequential([keras.Input((4, 5, 3), dtype="float64"), layer])
    path = tmp_path / "grouped.keras"
    model.save(path)
    loaded = keras.models.load_model(
        path, custom_objects={"GroupedConvTranspose": conv_transpose_layers.GroupedConvTranspose})
    grouped = [w for w in loaded.weights if w.path.endswith("kernel")]
    assert [tuple(w.shape) for w in grouped] == [(3, 3, 3, 2, 1)]
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))
