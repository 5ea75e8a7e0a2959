"""Planted mistakes: for each thing the harness claims to check, a realistic case that passes with the correct
adapter and fails, naming what differs, when the mistake is planted (with monkeypatch) into a block, a layout
conversion, the padding arithmetic, the runner or the case itself. A test here fails both ways: if the harness
stopped catching the mistake, or if the correct adapter stopped passing.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import xfw_harness.blocks.convolution as convolution
import xfw_harness.blocks.convolution_geometry as convolution_geometry
import xfw_harness.blocks.dense as dense
import xfw_harness.blocks.pooling as pooling
import xfw_harness.engine.run as runner  # the runner's own names, which the planted mistakes replace
from xfw_harness.blocks import get_block
from xfw_harness.core.frameworks import keras, to_numpy, torch
from xfw_harness.core.layout import dense_kernel_to_keras
from xfw_harness.core.spatial import resolve_padding


def _cls(name: str) -> type:
    return type(get_block(name))


def _flow(values: np.ndarray) -> str:
    """A YAML flow sequence of an array (exactly representable floats)."""
    return repr(np.asarray(values, dtype=np.float64).tolist())


@dataclass
class Planted:
    id: str
    case: str  # YAML text of one case
    plant: Callable[[pytest.MonkeyPatch], None]
    check: str  # the failing verdict's check
    message: str  # ... and a part of its message
    what: str = "keras vs torch"  # ... and what it compared


# --- the mistakes --------------------------------------------------------------------------------------------

def conv_kernel_hw_swapped(mp: pytest.MonkeyPatch) -> None:
    """(3, 2, 1, 0): swaps kh and kw. A square kernel keeps its shape."""
    mp.setattr(convolution, "conv_kernel_to_keras", lambda w: np.ascontiguousarray(w.transpose(3, 2, 1, 0)))


def conv_kernel_reshaped(mp: pytest.MonkeyPatch) -> None:
    """A reshape to Keras's kernel shape instead of a transpose: right shape, scrambled values."""
    mp.setattr(convolution, "conv_kernel_to_keras",
               lambda w: np.ascontiguousarray(w.reshape(w.shape[2], w.shape[3], w.shape[1], w.shape[0])))


def conv_kernel_in_out_swapped(mp: pytest.MonkeyPatch) -> None:
    """(2, 3, 0, 1): kh and kw right, in and out swapped; the shape survives when in/groups == out."""
    mp.setattr(convolution, "conv_kernel_to_keras", lambda w: np.ascontiguousarray(w.transpose(2, 3, 0, 1)))


def flatten_dense_plain_transpose(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(dense, "dense_after_flatten_kernel_to_keras", lambda w, unflattened: dense_kernel_to_keras(w))


def same_as_symmetric_half_kernel(mp: pytest.MonkeyPatch) -> None:
    """`same` mapped to k//2 on both sides (right at stride 1 with an odd kernel, wrong at stride 2 on even input)."""
    def naive(padding, size, kernel, stride, dilation=(1, 1)):
        if padding == "same":
            return tuple((k // 2, k // 2) for k in kernel)
        return resolve_padding(padding, size, kernel, stride, dilation)

    mp.setattr(convolution_geometry, "resolve_padding", naive)


def leaky_relu_keras_default_slope(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_cls("leaky_relu"), "keras_layer", lambda self, site: keras.layers.LeakyReLU(dtype=site.dtype))


def maxpool_torch_stride_one(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_cls("max_pool2d"), "torch_module",
               lambda self, site: torch.nn.MaxPool2d(site.params["pool_size"], stride=site.params["strides"] or 1))


def avgpool_keras_native_same(mp: pytest.MonkeyPatch) -> None:
    """Keras's native `same` (which excludes padded cells) used for count_include_pad: true as well."""
    cls = _cls("avg_pool2d")
    original = cls.keras_layer

    def keras_layer(self, site):
        if site.params["padding"] == "same":
            k, s, _ = self.geometry(site)
            return keras.layers.AveragePooling2D(k, s, padding="same", dtype=site.dtype)
        return original(self, site)

    mp.setattr(cls, "keras_layer", keras_layer)


def maxpool_zero_padding(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(pooling, "NEG_INF", 0.0)


def dense_not_transposed(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(dense, "dense_kernel_to_keras", lambda w: np.ascontiguousarray(w))


def dense_keras_without_bias(mp: pytest.MonkeyPatch) -> None:
    """Keras layer built with use_bias=False (and so only the kernel copied)."""
    cls = _cls("dense")
    mp.setattr(cls, "keras_layer",
               lambda self, site: keras.layers.Dense(site.params["units"], use_bias=False, dtype=site.dtype))
    mp.setattr(cls, "transfer_weights",
               lambda self, site, module, layer: layer.kernel.assign(
                   dense_kernel_to_keras(to_numpy(self.torch_parameters(module)["weight"]))))


def conv_bias_not_copied(mp: pytest.MonkeyPatch) -> None:
    """Keras keeps its own zero-initialised bias: only the kernel is copied."""
    def transfer(self, site, module, layer):
        conv = convolution.find_keras_layer(layer, keras.layers.Conv2D)
        conv.kernel.assign(convolution.conv_kernel_to_keras(to_numpy(self.torch_parameters(module)["weight"])))

    mp.setattr(_cls("conv2d"), "transfer_weights", transfer)


def softmax_axis_not_converted(mp: pytest.MonkeyPatch) -> None:
    """The channels-first axis given to Keras as it is (axis 1 is H in NHWC)."""
    mp.setattr(_cls("softmax"), "keras_layer",
               lambda self, site: keras.layers.Softmax(axis=site.params["axis"], dtype=site.dtype))


class KerasUnscaledDropout(keras.layers.Layer):
    def __init__(self, rate: float, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = rate
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, x: Any, training: bool = False) -> Any:
        if not training:
            return x
        keep = keras.random.uniform(keras.ops.shape(x), seed=self.generator) >= self.rate
        return x * keras.ops.cast(keep, x.dtype)


class TorchUnscaledDropout(torch.nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (torch.rand_like(x) >= self.p).to(x.dtype) if self.training else x


def dropout_keras_unscaled(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_cls("dropout"), "keras_layer",
               lambda self, site: KerasUnscaledDropout(site.params["rate"], site.seed, dtype=site.dtype))


def dropout_torch_unscaled(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_cls("dropout"), "torch_module", lambda self, site: TorchUnscaledDropout(site.params["rate"]))


def torch_left_in_train_mode(mp: pytest.MonkeyPatch) -> None:
    """The runner forgets to put the PyTorch modules in eval mode (a module starts in train mode)."""
    original = runner.build_torch

    def build_torch(point, device):
        modules = original(point, device)
        for m in modules:
            m.train()
        return modules

    mp.setattr(runner, "build_torch", build_torch)


def keras_called_in_training(mp: pytest.MonkeyPatch) -> None:
    """The Keras side called with training=True for an eval-mode case."""
    original = runner.forward_keras

    def forward_keras(point, layers, x, device):
        return original(type(point)(**{**point.__dict__, "mode": "train"}), layers, x, device)

    mp.setattr(runner, "forward_keras", forward_keras)


def gelu_keras_tanh(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_cls("gelu"), "keras_layer", lambda self, site: keras.layers.Activation(
        functools.partial(keras.activations.gelu, approximate=True), dtype=site.dtype))


def gelu_torch_exact(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_cls("gelu"), "torch_module", lambda self, site: torch.nn.GELU())


def flatten_output_left_in_keras_order(mp: pytest.MonkeyPatch) -> None:
    """The harness forgets that Keras flattens (H, W, C): outputs compared in different element orders."""
    mp.setattr(_cls("flatten"), "output_layout", lambda self, site: site.layout)


def dense_torch_on_last_axis(mp: pytest.MonkeyPatch) -> None:
    """nn.Linear applied as it is to an NCHW tensor acts on W, not on the channels (same shape when C == W)."""
    mp.setattr(_cls("dense"), "torch_module",
               lambda self, site: torch.nn.Linear(site.in_shape[1], site.params["units"], bias=site.params["use_bias"]))


def global_pool_keras_drops_keepdims(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_cls("global_avg_pool2d"), "keras_layer",
               lambda self, site: keras.layers.GlobalAveragePooling2D(dtype=site.dtype))


def keras_layer_in_float32(mp: pytest.MonkeyPatch) -> None:
    """A float64 case whose Keras layer is built in Keras's default float32."""
    cls = _cls("conv2d")
    original = cls.keras_layer
    mp.setattr(cls, "keras_layer", lambda self, site: original(self, dataclasses.replace(site, dtype="float32")))


# --- the cases -----------------------------------------------------------------------------------------------

CONV_NON_SQUARE = """
- name: conv_3x2
  block: conv2d
  params: {filters: 6, kernel_size: [3, 2], groups: 2, padding: 1}
  input: {shape: [2, 4, 9, 8]}
"""
CONV_NON_SQUARE_IN_EQ_OUT = """
- name: conv_3x2_in_eq_out
  block: conv2d
  params: {filters: 4, kernel_size: [3, 2], padding: valid}
  input: {shape: [2, 4, 9, 8]}
"""
CONV_SQUARE = """
- name: conv_3x3
  block: conv2d
  params: {filters: 8, kernel_size: 3, padding: same}
  input: {shape: [2, 3, 10, 10]}
"""
CONV_SAME_STRIDE_2 = """
- name: conv_same_s2
  block: conv2d
  params: {filters: 8, kernel_size: 3, strides: 2, padding: same}
  input: {shape: [1, 3, 28, 28]}
"""
CNN = """
- name: conv_flatten_dense
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 4, kernel_size: 3, padding: 1}}
    - {block: relu}
    - {block: flatten}
    - {block: dense, params: {units: 10}}
  input: {shape: [2, 3, 6, 6]}
"""
LEAKY = """
- name: leaky
  block: leaky_relu
  input: {shape: [2, 4, 5, 5]}
"""
MAXPOOL_DEFAULT_STRIDE = """
- name: maxpool_default_stride
  block: max_pool2d
  params: {pool_size: 2}
  input: {shape: [2, 3, 8, 8]}
"""
AVGPOOL_INCLUDE_PAD = """
- name: avgpool_same_include_pad
  block: avg_pool2d
  params: {pool_size: 3, strides: 1, padding: same, count_include_pad: true}
  input: {shape: [1, 2, 6, 6]}
"""
NEGATIVE = -np.abs(np.random.default_rng(0).standard_normal((1, 2, 8, 8))) - 0.125
MAXPOOL_PADDED_NEGATIVE = f"""
- name: maxpool_padded_all_negative
  block: max_pool2d
  params: {{pool_size: 3, strides: 2, padding: 1}}
  input: {{fill: values, values: {_flow(NEGATIVE.astype(np.float32))}}}
"""
DENSE_SQUARE = """
- name: dense_square
  block: dense
  params: {units: 8}
  input: {shape: [4, 8]}
"""
SOFTMAX = """
- name: softmax_channels
  block: softmax
  input: {shape: [2, 3, 4, 5]}
"""
DROPOUT_TRAIN = """
- name: dropout_train
  block: dropout
  params: {rate: 0.3}
  mode: train
  input: {shape: [4, 8, 32, 16]}
"""
DROPOUT_EVAL = """
- name: dropout_eval
  block: dropout
  params: {rate: 0.5}
  mode: eval
  input: {shape: [2, 8, 16, 16]}
"""
GELU = """
- name: gelu_exact
  block: gelu
  input: {shape: [2, 8, 16, 16]}
"""
GELU_TANH = """
- name: gelu_tanh
  block: gelu
  params: {approximate: tanh}
  input: {shape: [2, 8, 16, 16]}
"""

FLATTEN = """
- name: flatten_only
  block: flatten
  input: {shape: [2, 3, 4, 5]}
"""
DENSE_RANK4 = """
- name: dense_over_channels
  block: dense
  params: {units: 4}
  input: {shape: [2, 4, 3, 4]}
"""
GLOBAL_KEEPDIMS = """
- name: global_avg_keepdims
  block: global_avg_pool2d
  params: {keepdims: true}
  input: {shape: [2, 3, 5, 5]}
"""
CONV_FLOAT64 = """
- name: conv_float64
  block: conv2d
  params: {filters: 4, kernel_size: 3}
  input: {shape: [2, 3, 8, 8], dtype: float64}
"""

VALUES = "values differ"
NEITHER = "neither 0 nor input/(1-rate)"

PLANTED = [
    Planted("a-conv-square-kernel-hw-swapped", CONV_SQUARE, conv_kernel_hw_swapped, "values", VALUES),
    Planted("a-conv-non-square-kernel-reshaped", CONV_NON_SQUARE, conv_kernel_reshaped, "values", VALUES),
    Planted("a-conv-non-square-kernel-in-out-swapped", CONV_NON_SQUARE_IN_EQ_OUT, conv_kernel_in_out_swapped,
            "values", VALUES),
    Planted("b-flatten-dense-without-row-permutation", CNN, flatten_dense_plain_transpose, "values", VALUES),
    Planted("c-same-stride2-as-symmetric-k//2", CONV_SAME_STRIDE_2, same_as_symmetric_half_kernel, "values", VALUES),
    Planted("d-leaky-relu-keras-default-slope", LEAKY, leaky_relu_keras_default_slope, "values", VALUES),
    Planted("f-maxpool-torch-stride-defaults-to-1", MAXPOOL_DEFAULT_STRIDE, maxpool_torch_stride_one, "shape",
            "shape mismatch: keras [2, 3, 4, 4] vs torch [2, 3, 7, 7]"),
    Planted("g-avgpool-include-pad-as-keras-same", AVGPOOL_INCLUDE_PAD, avgpool_keras_native_same, "values", VALUES),
    Planted("h-maxpool-zero-padding", MAXPOOL_PADDED_NEGATIVE, maxpool_zero_padding, "values", VALUES),
    Planted("i-dense-square-not-transposed", DENSE_SQUARE, dense_not_transposed, "values", VALUES),
    Planted("j-dense-keras-use-bias-false", DENSE_SQUARE, dense_keras_without_bias, "values", VALUES),
    Planted("j-conv-bias-not-copied", CONV_SQUARE, conv_bias_not_copied, "values", VALUES),
    Planted("k-softmax-wrong-axis", SOFTMAX, softmax_axis_not_converted, "values", VALUES),
    Planted("l-dropout-keras-survivors-unscaled", DROPOUT_TRAIN, dropout_keras_unscaled, "sample", NEITHER,
            what="keras dropout sample"),
    Planted("l-dropout-torch-survivors-unscaled", DROPOUT_TRAIN, dropout_torch_unscaled, "sample", NEITHER,
            what="torch dropout sample"),
    Planted("m-torch-left-in-train-mode", DROPOUT_EVAL, torch_left_in_train_mode, "values", VALUES),
    Planted("m-keras-called-in-training", DROPOUT_EVAL, keras_called_in_training, "values", VALUES),
    Planted("n-gelu-keras-tanh-for-exact", GELU, gelu_keras_tanh, "values", VALUES),
    Planted("n-gelu-torch-exact-for-tanh", GELU_TANH, gelu_torch_exact, "values", VALUES),
    # Beyond the list: the harness's own layout bookkeeping, rank > 2 dense, keepdims and dtype.
    Planted("flatten-output-compared-in-keras-order", FLATTEN, flatten_output_left_in_keras_order, "values", VALUES),
    Planted("dense-torch-linear-on-last-axis", DENSE_RANK4, dense_torch_on_last_axis, "values", VALUES),
    Planted("global-pool-keras-drops-keepdims", GLOBAL_KEEPDIMS, global_pool_keras_drops_keepdims, "shape",
            "shape mismatch: keras [2, 3] vs torch [2, 3, 1, 1]"),
    Planted("float64-case-keras-layer-in-float32", CONV_FLOAT64, keras_layer_in_float32, "values", VALUES),
]


def _failing(result) -> list:
    return [v for v in result.verdicts if not v.passed]


@pytest.mark.parametrize("planted", PLANTED, ids=[p.id for p in PLANTED])
def test_planted_mistake_is_caught(planted: Planted, run_case, monkeypatch: pytest.MonkeyPatch) -> None:
    (good,) = run_case(planted.case)
    assert good.status == "passed", f"the correct adapter fails:\n{good.message}"
    assert all(v.passed for v in good.verdicts)

    planted.plant(monkeypatch)
    (bad,) = run_case(planted.case)
    assert bad.status == "failed", f"{planted.id} not caught: {bad.status}\n{bad.message}"
    failing = _failing(bad)
    assert failing
    first = failing[0]
    assert first.what == planted.what, bad.message
    assert first.check == planted.check, bad.message
    assert planted.message in first.message, first.message
    assert planted.message in bad.message
    if planted.check == "values":
        # The difference is far outside the tolerance, not a rounding that happens to cross it.
        m = first.metrics
        assert m["max_abs"] > 10 * (m["atol"] + m["rtol"] * abs(m["worst_expected"])), first.message
        assert f"{m['max_abs']:.6g}" in first.message


def test_a_non_square_kernel_with_hw_swapped_is_refused_by_shape(run_case, monkeypatch) -> None:
    """A 3x2 kernel permuted with (3, 2, 1, 0) is 2x3: Keras refuses the assignment, the point is an error."""
    (good,) = run_case(CONV_NON_SQUARE)
    assert good.status == "passed", good.message
    conv_kernel_hw_swapped(monkeypatch)
    (bad,) = run_case(CONV_NON_SQUARE)
    assert bad.status == "error", bad.message
    assert "ValueError" in bad.message
    assert "(2, 3, 2, 6)" in bad.message and "(3, 2, 2, 6)" in bad.message, bad.message


def test_c_torch_same_refused_at_stride_2() -> None:
    """Why the harness needs the arithmetic: PyTorch refuses padding='same' at stride 2."""
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        torch.nn.Conv2d(3, 8, 3, stride=2, padding="same")


def test_c_same_stride2_planted_padding_shifts_the_grid(run_case, monkeypatch) -> None:
    """With k//2 the output shapes still agree (14x14): only values can catch it, and they differ by O(1)."""
    same_as_symmetric_half_kernel(monkeypatch)
    (bad,) = run_case(CONV_SAME_STRIDE_2)
    assert bad.shapes["torch"] == bad.shapes["keras"] == [1, 8, 14, 14]
    assert bad.verdicts[0].metrics["max_abs"] > 0.1


GOLDEN_X = np.array([[-1.5, 0.25, 2.0], [3.0, -0.5, 0.75]], dtype=np.float32)
GOLDEN_Y = np.where(GOLDEN_X >= 0, GOLDEN_X, 0.25 * GOLDEN_X)


def _golden_case(expected: np.ndarray) -> str:
    return f"""
- name: leaky_golden
  block: leaky_relu
  params: {{negative_slope: 0.25}}
  input: {{fill: values, values: {_flow(GOLDEN_X)}}}
  expect: {{shape: [2, 3], output: {_flow(expected)}}}
"""


def test_e_wrong_golden_value_is_caught_when_frameworks_agree(run_case) -> None:
    (good,) = run_case(_golden_case(GOLDEN_Y))
    assert good.status == "passed", good.message
    assert [v.what for v in good.verdicts] == ["keras vs torch", "torch vs expected", "keras vs expected",
                                               "torch vs reference", "keras vs reference"]

    wrong = GOLDEN_Y.astype(np.float64)
    wrong[1, 2] += 1e-3
    (bad,) = run_case(_golden_case(wrong))
    assert bad.status == "failed", bad.message
    assert bad.verdicts[0].what == "keras vs torch" and bad.verdicts[0].passed  # the frameworks agree
    failing = _failing(bad)
    assert [v.what for v in failing] == ["torch vs expected", "keras vs expected"]
    for v in failing:
        assert v.check == "values" and v.message.startswith("values differ: 1 of 6")
        assert v.metrics["worst_index"] == [1, 2]
        assert v.metrics["worst_expected"] == pytest.approx(0.751, abs=1e-9)
        assert "expected=0.751" in v.message


def test_e_wrong_golden_shape_is_caught(run_case) -> None:
    case = _golden_case(GOLDEN_Y).replace("shape: [2, 3]", "shape: [3, 2]")
    (bad,) = run_case(case)
    assert bad.status == "failed"
    failing = _failing(bad)
    assert failing[0].what == "expected shape" and failing[0].check == "shape"
    assert "[3, 2]" in failing[0].message and "[2, 3]" in failing[0].message


def test_h_zero_padding_is_harmless_on_positive_input(run_case, monkeypatch) -> None:
    """Control for (h): the planted zero padding only shows where a window is all negative."""
    positive = MAXPOOL_PADDED_NEGATIVE.replace(_flow(NEGATIVE.astype(np.float32)),
                                               _flow(-NEGATIVE.astype(np.float32)))
    maxpool_zero_padding(monkeypatch)
    (result,) = run_case(positive)
    assert result.status == "passed", result.message


def test_n_gelu_forms_differ_by_more_than_the_tolerance() -> None:
    """The size of the gelu difference the planted mistake relies on (~4.7e-4 at most)."""
    x = np.linspace(-6, 6, 20001, dtype=np.float32)
    exact = to_numpy(torch.nn.GELU(approximate="none")(torch.from_numpy(x)))
    tanh = to_numpy(torch.nn.GELU(approximate="tanh")(torch.from_numpy(x)))
    assert 3e-4 < np.max(np.abs(exact - tanh)) < 6e-4


CONV_GELU = """
- name: conv_gelu
  block: sequential
  layers:
    - {{block: conv2d, params: {{filters: 16, kernel_size: 3, padding: same}}}}
    - {{block: gelu}}
  input: {{shape: [2, {channels}, 10, 10]}}
"""


@pytest.mark.parametrize("channels", [64, 224], ids=["K=576", "K=2016"])
def test_n_gelu_mismatch_after_a_wide_conv_is_caught(run_case, monkeypatch, channels: int) -> None:
    # The network's default tolerance grows with its widest reduction (the conv's K = channels * 9); a later
    # layer's small mistake must still lie above it.
    case = CONV_GELU.format(channels=channels)
    (good,) = run_case(case)
    assert good.status == "passed", good.message
    assert good.verdicts[0].metrics["rtol"] > 16 * 1.19e-7 * 23  # the wide conv does set the tolerance
    gelu_keras_tanh(monkeypatch)
    (bad,) = run_case(case)
    assert bad.status == "failed", bad.message
