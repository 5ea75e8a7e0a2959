"""Activations with parameters that Keras's own layers cannot take: `log_softmax` (along an axis), `threshold`,
`thresholded_relu`, and `hard_sigmoid` with its own `alpha` and `beta`. Where no Keras layer computes the block
exactly, a harness Keras layer computes it from keras.ops (activation_layers.py: LogSoftmax, Threshold,
HardSigmoid: each saves into a .keras file with its config). Facts below were run on PyTorch 2.13, Keras 3.15.1
(TensorFlow 2.21), tf_keras 2.21 (Keras 2) and ONNX 1.23's reference runtime.

- log_softmax: x - log(sum(exp(x))) along `axis` of the channels-first tensor (default 1, the channels), given to
  Keras as the matching channels-last axis, as softmax's. PyTorch: nn.LogSoftmax(dim), F.log_softmax(x, dim),
  x.log_softmax(dim); with dim=None PyTorch picks the dim softmax's rule picks (torch/nn/functional.py,
  _get_softmax_dim: 0, the batch, for a 3-D input, 1 for 2-D and 4-D) and warns "Implicit dimension choice for
  log_softmax has been deprecated" (measured on a 3-D input: equal to dim 0): the harness always passes the dim.
  Keras 3 has no log-softmax layer (keras.layers.Softmax(axis=-1) has no log option) and
  keras.layers.Activation('log_softmax') is keras.activations.log_softmax at its default axis=-1, the channels of a
  channels-last tensor only: the harness's LogSoftmax layer calls keras.ops.log_softmax(x, axis) (tf.nn.log_softmax).
  Measured in float64: PyTorch and Keras within 4.4e-16 on every axis of a 4-D input.
- threshold: x if x > threshold else value, strictly: at x = threshold both give `value` (measured:
  nn.Threshold(1, -7) on [0.5, 1, 1.5] is [-7, -7, 1.5], and so is keras.ops.threshold(x, 1, -7); the input gradient
  is [0, 0, 1] in both). PyTorch: nn.Threshold(threshold, value) and F.threshold, neither argument with a default.
  Keras 3 has no layer; keras.ops.threshold(x, threshold, default_value) is tf.where(x > threshold, x,
  default_value), which the harness's Threshold layer calls. Both frameworks compare in the input's dtype, the
  threshold rounded to it: in float32, x = float32(0.1) = 0.10000000149 is not above threshold 0.1 in either
  (measured), though it is above 0.1 in float64; the reference rounds the threshold and the value alike.
- thresholded_relu: x if x > alpha else 0, ONNX's ThresholdedRelu (alpha default 1.0; measured: 0 at x = 1) and
  Keras 2's ThresholdedReLU(theta=1.0) (tf_keras: x * cast(x > theta), so -0.0 below theta, equal to 0 in every
  comparison). Keras 3 removed the layer (keras.layers has no ThresholdedReLU in 3.15.1) and PyTorch never had one:
  this block is threshold with value 0 and ONNX's default, built as nn.Threshold(alpha, 0.0) and the Threshold
  layer with 0. `xfw-harness port` reads every nn.Threshold as threshold (its value written), never as this block.
- hard_sigmoid: clip(alpha * x + beta, 0, 1). The defaults, alpha 1/6 and beta 1/2, are PyTorch's Hardsigmoid,
  relu6(x + 3) / 6 (0 for x <= -3, 1 for x >= 3), which Keras 3's hard_sigmoid computes too
  (keras/src/backend/tensorflow/nn.py: relu6(x + 3) / 6; measured equal to nn.Hardsigmoid on a grid): with them the
  harness builds nn.Hardsigmoid() and keras.layers.Activation('hard_sigmoid'). ONNX's HardSigmoid defaults to
  alpha 0.2, beta 0.5 (measured: 0.7 at x = 1), as Keras 2's hard_sigmoid was clip(0.2 x + 0.5, 0, 1) (tf_keras
  2.21 measured: 0 at -2.5, 0.7 at 1, 1 at 2.5): up to 1/12 (at x = +-2.5) away from PyTorch's. Neither PyTorch's
  Hardsigmoid nor Keras's hard_sigmoid takes an alpha or beta: other values are built as the harness's
  TorchHardSigmoid (torch.clamp(alpha * x + beta, 0, 1)) and HardSigmoid layer (keras.ops.clip). PyTorch's
  Hardsigmoid backward multiplies by the float32 constant 1/6 in float64 too (2.98e-8 relative: the float64 cases
  admit it); the clamp form has no such constant.

References (`reference`): ONNX's LogSoftmax with the axis; NumPy for the others, since ONNX's HardSigmoid and
ThresholdedRelu keep alpha and beta as FLOAT (float32) attributes (HardSigmoid(alpha=1/6) gives 0.6666666716 at x = 1
in float64, 5e-9 off).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.blocks.activations import Softmax, _Activation
from xfw_harness.blocks.base import BENCHMARK_INPUT, Corner, Emulation
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import frameworks, keras, lazy_module, torch
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
activation_layers = lazy_module("xfw_harness.blocks.activation_layers")

# PyTorch's Hardsigmoid, relu6(x + 3) / 6: the hard_sigmoid block's defaults.
TORCH_HARD_SIGMOID_ALPHA = 1.0 / 6.0
TORCH_HARD_SIGMOID_BETA = 0.5


# --- the harness's own layers ---------------------------------------------------------------------------------------


# --- log_softmax ----------------------------------------------------------------------------------------------------

@register
class LogSoftmaxBlock(Softmax):
    """softmax's axis, schema and PyTorch implicit-dim reading; the log of it."""

    name = "log_softmax"
    doc = "x - log(sum(exp(x))) along axis (channels-first axis; default 1, the channels)."
    params = (Param("axis", "axis", 1, doc="axis of the channels-first tensor to normalise over"),)
    torch_types = ("LogSoftmax",)
    emulations = (Emulation("keras_log_softmax_layer",
                            "the harness's Keras LogSoftmax layer (keras.ops.log_softmax along the axis the layout "
                            "gives): Keras has no log-softmax layer, Activation('log_softmax') is axis -1 only",
                            lambda s: True, "reference",
                            (Corner("Keras axis not last",
                                    lambda s: s.layout.keras_axis(s.params["axis"], s.rank) != s.rank - 1),)),)

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.LogSoftmax(dim=site.params["axis"] % site.rank)

    def keras_layer(self, site: Site) -> keras.Layer:
        return activation_layers.LogSoftmax(axis=site.layout.keras_axis(site.params["axis"], site.rank),
                                            dtype=site.dtype)

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        return onnx_op("LogSoftmax", x, axis=site.params["axis"] % site.rank)

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        # No axis written: nn.LogSoftmax() with its implicit dim (and its deprecation warning), as ported code has.
        return torch.nn.LogSoftmax(**site.written_args(axis="dim"))

    def native_keras_layer(self, site: Site) -> keras.Layer:
        # None written: Activation('log_softmax'), Keras's axis -1; a written axis is the same axis of the data.
        if "axis" not in site.written_names:
            return keras.layers.Activation("log_softmax", dtype=site.dtype)
        return self.keras_layer(site)


# --- threshold, thresholded_relu ------------------------------------------------------------------------------------

def in_dtype(value: float, dtype: str) -> float:
    """`value` rounded to `dtype`, as both frameworks hold a threshold they compare an input of that dtype with."""
    return float(torch.tensor(value, dtype=frameworks.TORCH_DTYPES[dtype]).item())


def threshold_reference(x: np.ndarray, threshold: float, value: float, dtype: str) -> np.ndarray:
    return np.where(x > in_dtype(threshold, dtype), x, in_dtype(value, dtype))


@register
class ThresholdBlock(_Activation):
    name = "threshold"
    doc = "x if x > threshold else value (PyTorch's Threshold; strict at x = threshold)."
    params = (Param("threshold", "float", doc="x must be above it (strictly) to pass; PyTorch has no default"),
              Param("value", "float", doc="what replaces x at or below the threshold; PyTorch has no default"))
    torch_types = ("Threshold",)
    emulations = (Emulation("keras_threshold_layer", "the harness's Keras Threshold layer (keras.ops.threshold): "
                            "Keras has no threshold layer", lambda s: True, "reference",
                            (Corner("value above the threshold",
                                    lambda s: s.params["value"] > s.params["threshold"]),)),)
    benchmark = {"params": {"threshold": 0.1, "value": 20.0}, "input": BENCHMARK_INPUT}

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Threshold(site.params["threshold"], site.params["value"])

    def keras_layer(self, site: Site) -> keras.Layer:
        return activation_layers.Threshold(site.params["threshold"], site.params["value"], dtype=site.dtype)

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        p = site.params
        return threshold_reference(np.asarray(x, np.float64), p["threshold"], p["value"], site.dtype)

    # Neither framework has a default to leave in place: the hand port writes both, as the harness does.
    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return self.torch_module(site)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        return self.keras_layer(site)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        return {"threshold": float(module.threshold), "value": float(module.value)}


@register
class ThresholdedReLU(_Activation):
    name = "thresholded_relu"
    doc = "x if x > alpha else 0 (ONNX's ThresholdedRelu, Keras 2's ThresholdedReLU; PyTorch's Threshold(alpha, 0))."
    params = (Param("alpha", "float", 1.0,
                    doc="x must be above it (strictly) to pass (ONNX's alpha and Keras 2's theta, both 1.0 by default; "
                        "PyTorch's Threshold has no default)"),)
    torch_types = ()  # PyTorch has no such class: xfw-harness port reads nn.Threshold(alpha, 0) as threshold
    emulations = (Emulation("keras_threshold_layer", "the harness's Keras Threshold layer at (alpha, 0): Keras 3 has "
                            "no ThresholdedReLU", lambda s: True, "reference",
                            (Corner("alpha other than 1", lambda s: s.params["alpha"] != 1.0),)),)

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Threshold(site.params["alpha"], 0.0)

    def keras_layer(self, site: Site) -> keras.Layer:
        return activation_layers.Threshold(site.params["alpha"], 0.0, dtype=site.dtype)

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        return threshold_reference(np.asarray(x, np.float64), site.params["alpha"], 0.0, site.dtype)

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return self.torch_module(site)  # nn.Threshold has no default alpha: the port writes ONNX's

    def native_keras_layer(self, site: Site) -> keras.Layer:
        return self.keras_layer(site)  # Keras 3 has no ThresholdedReLU: the port writes keras.ops.threshold


# --- hard_sigmoid ---------------------------------------------------------------------------------------------------

def is_torch_hard_sigmoid(p: dict[str, Any]) -> bool:
    """alpha and beta are PyTorch's: nn.Hardsigmoid and Keras 3's hard_sigmoid compute it."""
    return p["alpha"] == TORCH_HARD_SIGMOID_ALPHA and p["beta"] == TORCH_HARD_SIGMOID_BETA


def hard_sigmoid_reference(p: dict[str, Any], x: np.ndarray) -> np.ndarray:
    # ONNX HardSigmoid's alpha attribute is float32: 1/6 would be 0.1666666716.
    if is_torch_hard_sigmoid(p):
        return np.clip(x + 3.0, 0.0, 6.0) / 6.0
    return np.clip(p["alpha"] * x + p["beta"], 0.0, 1.0)


@register
class HardSigmoidBlock(_Activation):
    name = "hard_sigmoid"
    doc = ("clip(alpha x + beta, 0, 1); by default PyTorch's relu6(x + 3) / 6 (alpha 1/6, beta 1/2), not ONNX's or "
           "Keras 2's 0.2 x + 0.5.")
    params = (Param("alpha", "float", TORCH_HARD_SIGMOID_ALPHA, default_text="1/6",
                    doc="the slope (PyTorch's Hardsigmoid and Keras 3: 1/6; ONNX's HardSigmoid and Keras 2: 0.2)"),
              Param("beta", "float", TORCH_HARD_SIGMOID_BETA, doc="the offset (0.5 in every framework)"))
    torch_types = ("Hardsigmoid",)
    reference_function = staticmethod(hard_sigmoid_reference)  # _Activation.reference calls it
    emulations = (Emulation("alpha_beta_on_both_sides",
                            "any alpha and beta but PyTorch's: the harness's clip(alpha * x + beta, 0, 1) on both "
                            "sides (TorchHardSigmoid, Keras HardSigmoid): neither framework's hard sigmoid takes them",
                            lambda s: not is_torch_hard_sigmoid(s.params), "reference",
                            (Corner("beta other than 1/2", lambda s: s.params["beta"] != TORCH_HARD_SIGMOID_BETA),
                             # the reference shares this branch (hard_sigmoid_reference): golden values pin it
                             Corner("PyTorch's slope with another beta",
                                    lambda s: s.params["alpha"] == TORCH_HARD_SIGMOID_ALPHA))),)

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        if is_torch_hard_sigmoid(p):
            return torch.nn.Hardsigmoid()
        return activation_layers.TorchHardSigmoid(p["alpha"], p["beta"])

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        if is_torch_hard_sigmoid(p):
            return keras.layers.Activation("hard_sigmoid", dtype=site.dtype)
        return activation_layers.HardSigmoid(p["alpha"], p["beta"], dtype=site.dtype)

    # An unwritten alpha or beta is PyTorch's and Keras 3's alike: the hand port builds what the harness builds.
    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return self.torch_module(site)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        return self.keras_layer(site)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if type(module).__name__ not in self.torch_types:
            raise Refusal(f"{type(module).__name__} is not a Hardsigmoid", field="module")
        return {}  # nn.Hardsigmoid has no parameters: alpha 1/6, beta 1/2
