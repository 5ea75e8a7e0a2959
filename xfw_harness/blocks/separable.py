"""Separable convolution: `separable_conv2d` (family convolution), Keras's SeparableConv2D.

separable_conv2d semantics (channels-first): a depthwise convolution, then a pointwise (1x1) one, with one bias at
the end. The depthwise part is depthwise_conv2d without its bias: input channel c convolved with its
depth_multiplier kernels, output channel c*m + q being channel c's q-th (kernel_size, strides, padding as conv2d's,
TensorFlow's `same` for any stride, dilation_rate, padding_mode); the pointwise part mixes the C*m channels into
`filters`: out[n, o] = bias[o] + sum over k of p[o, k] * depthwise[n, k]. Keras's SeparableConv2D has no bias on
the depthwise part (keras/src/layers/convolutional/base_separable_conv.py: depthwise_kernel, pointwise_kernel and
one bias of `filters`); neither has the harness.

How each framework computes it:
- PyTorch has no separable layer: nn.Sequential of Conv2d(C, C*m, kernel_size, groups=C, bias=False) (with the
  stride, padding, padding_mode and dilation, or an explicit padding module first for an asymmetric `same`, as
  depthwise_conv2d builds it) and Conv2d(C*m, filters, 1, bias=use_bias).
- Keras: SeparableConv2D(filters, kernel_size, strides, padding, depth_multiplier, dilation_rate, use_bias), with
  an explicit padding first (ZeroPadding2D, or the harness's SpatialPadding for padding_mode) where Keras's
  'valid'/'same' cannot say it, as for conv2d. Keras decomposes strides with dilation itself (its TensorFlow
  backend runs stride 1 and subsamples, as for DepthwiseConv2D; measured: equal to PyTorch to 2e-16 in float64).
  TensorFlow's float64 separable_conv2d refuses unequal strides ("Current implementation only supports equal
  length strides", measured, as its depthwise kernel does): there the layer runs at stride 1 on the explicitly
  padded input and the harness's Subsample keeps every stride-th row and column, which is the same arithmetic
  (the pointwise part is 1x1: subsampling after it is subsampling before it).
- Weights: the depthwise Conv2d's [C*m, 1, kh, kw] -> depthwise_kernel (kh, kw, C, m)
  (xfw_harness.core.layout.depthwise_kernel_to_keras, as depthwise_conv2d); the pointwise Conv2d's [filters, C*m, 1, 1]
  -> pointwise_kernel (1, 1, C*m, filters) (conv_kernel_to_keras: a 1x1 convolution's kernel, transposed, not
  reshaped); the bias as it is.

The third opinion (`reference`): ONNX's Conv twice, the depthwise one (group = C, with the padding as
depthwise_conv2d's reference) and the 1x1 one with the bias.

Native defaults (`defaults: native`): Keras's SeparableConv2D with only the parameters the case wrote; on the
PyTorch side the two Conv2d as a port writes them, the depthwise one with bias=False (the separable layer has no
depthwise bias: PyTorch's default bias=True there would add a second, unmapped bias) and the pointwise one with the
written use_bias or PyTorch's default.

Porting a PyTorch model (`xfw-harness port`): a module reads one class, and PyTorch writes a separable convolution as
two (a depthwise Conv2d followed by a 1x1 Conv2d, as MobileNet's and Xception's blocks do). The port keeps them two
nodes, depthwise_conv2d and conv2d: the same computation, exactly, as a DepthwiseConv2D and a Conv2D in Keras (a
fused SeparableConv2D would differ from them only by rounding). separable_conv2d reads no PyTorch class.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from xfw_harness.blocks.convolution import Conv2D, DepthwiseConv2D
from xfw_harness.blocks.convolution_geometry import SEPARABLE_EMULATIONS
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site, WeightCopy, find_keras_layer, parameter_path, sublayer_path
from xfw_harness.core.layout import conv_kernel_to_keras, depthwise_kernel_to_keras
from xfw_harness.core.lazy import keras, torch
from xfw_harness.core.schema import Param


@register
class SeparableConv2D(DepthwiseConv2D):
    name = "separable_conv2d"
    benchmark = {"params": {"filters": 32, "kernel_size": 3, "padding": "same"},
                 "input": {"shape": [8, 32, 32, 32]}}
    doc = ("Depthwise separable 2-D convolution, as Keras's SeparableConv2D: a depthwise convolution (depth_multiplier "
           "kernels per channel), then a 1x1 convolution to `filters` channels, one bias at the end.")
    weight_names = ("depthwise_weight", "pointwise_weight", "bias")
    torch_types = ()  # a depthwise Conv2d then a 1x1 Conv2d: ported as two nodes (module docstring)
    params = (
        Param("filters", "int", minimum=1, doc="number of output channels (of the pointwise 1x1 convolution)"),
        *DepthwiseConv2D.params,
    )
    keras_conv_name = "SeparableConv2D"
    emulations = SEPARABLE_EMULATIONS

    def _depthwise_site(self, site: Site) -> Site:
        """The depthwise part's site: depthwise_conv2d's computation without a bias."""
        return dataclasses.replace(site, params={**site.params, "use_bias": False})

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, _, *spatial = super().output_shape(site)
        return n, site.params["filters"], *spatial

    def reduction_length(self, site: Site) -> int:
        """The products one output sums: the C*m depthwise outputs the pointwise part adds, each a sum of the kernel's
        taps."""
        return self.channels(site)[0] * math.prod(site.params["kernel_size"])

    def largest_array(self, site: Site) -> int:
        return max(super().largest_array(site), self.channels(site)[0] * site.params["filters"])

    # --- builders --------------------------------------------------------------------------------------------
    def torch_module(self, site: Site) -> torch.nn.Module:
        depthwise = Conv2D.torch_module(self, self._depthwise_site(site))
        parts = list(depthwise) if isinstance(depthwise, torch.nn.Sequential) else [depthwise]
        pointwise = torch.nn.Conv2d(self.channels(site)[0], site.params["filters"], 1, bias=site.params["use_bias"])
        return torch.nn.Sequential(*parts, pointwise)

    def _keras_conv(self, site: Site, strides: Any, padding: str) -> keras.Layer:
        p = site.params
        return keras.layers.SeparableConv2D(filters=p["filters"], kernel_size=p["kernel_size"], strides=strides,
                                            padding=padding, depth_multiplier=p["depth_multiplier"],
                                            dilation_rate=p["dilation_rate"], use_bias=p["use_bias"],
                                            dtype=site.dtype)

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        convs = [m for m in module if isinstance(m, torch.nn.Conv2d)]
        depthwise, pointwise = convs[0], convs[-1]
        weights = {"depthwise_weight": depthwise.weight, "pointwise_weight": pointwise.weight}
        return {**weights, "bias": pointwise.bias} if pointwise.bias is not None else weights

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        at = sublayer_path(layer, find_keras_layer(layer, self.keras_conv_type))
        w = self.torch_parameters(module)
        copies = [WeightCopy(parameter_path(module, w["depthwise_weight"]), at + "depthwise_kernel",
                             depthwise_kernel_to_keras, (site.params["depth_multiplier"],)),
                  WeightCopy(parameter_path(module, w["pointwise_weight"]), at + "pointwise_kernel",
                             conv_kernel_to_keras)]
        if "bias" in w:
            copies.append(WeightCopy(parameter_path(module, w["bias"]), at + "bias"))
        return copies

    # --- the third opinion -----------------------------------------------------------------------------------
    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        depthwise = Conv2D.reference(self, self._depthwise_site(site), x, {"weight": weights["depthwise_weight"]})
        return onnx_op("Conv", depthwise, weights["pointwise_weight"], weights.get("bias"))

    # --- native defaults -------------------------------------------------------------------------------------
    def native_torch_module(self, site: Site) -> torch.nn.Module:
        """Conv2d(C, C*m, groups=C, bias=False) then Conv2d(C*m, filters, 1): PyTorch has no separable layer."""
        cin, p = site.in_shape[1], site.params
        args = self._native_torch_common(site)
        bias = {"bias": args.pop("bias")} if "bias" in args else {}
        depthwise = torch.nn.Conv2d(out_channels=cin * p["depth_multiplier"], groups=cin, bias=False, **args)
        return torch.nn.Sequential(depthwise, torch.nn.Conv2d(cin * p["depth_multiplier"], p["filters"], 1, **bias))

    def native_keras_layer(self, site: Site) -> keras.Layer:
        args = self._native_keras_common(site, "SeparableConv2D")
        if "depth_multiplier" in site.written_names:
            args["depth_multiplier"] = site.params["depth_multiplier"]
        return keras.layers.SeparableConv2D(filters=site.params["filters"], **args)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        raise NotImplementedError(f"{self.name} reads no PyTorch class: a depthwise Conv2d then a 1x1 Conv2d are "
                                  "ported as depthwise_conv2d and conv2d")
