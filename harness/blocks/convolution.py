"""Convolution: `conv2d`.

Semantics (channels-first): out[n, o, i, j] = bias[o] + sum over the group's input channels c and kernel
taps (u, v) of w[o, c, u, v] * xpad[n, g*cin_g + c, i*sh + u*dh, j*sw + v*dw], where xpad is the input
zero-padded as `padding` says. `same` is TensorFlow's: output ceil(in/stride) with the odd padding pixel at
the bottom/right, for any stride, kernel and dilation.

How each framework is made to compute exactly that:
- PyTorch: `padding='same'` only at stride 1 (it refuses stride > 1); symmetric padding as Conv2d's own
  `padding`; asymmetric padding (TF `same` with an odd total) as an explicit ZeroPad2d first.
- Keras: `valid`/`same` natively; an integer or pair padding as ZeroPadding2D then `valid` (Keras has no
  numeric padding). Keras refuses strides > 1 with dilation > 1 (keras/src/layers/convolutional/
  base_conv.py), so that combination runs as stride 1 on the explicitly padded input and keeps every
  stride-th row and column, which is the same arithmetic.
"""

from __future__ import annotations

from typing import Any

import keras
import torch

from harness.errors import Refusal
from harness.layout import conv_kernel_to_keras
from harness.registry import Block, Site, WeightCopy, find_keras_layer, parameter_path, register, sublayer_path
from harness.schema import Param
from harness.spatial import is_symmetric, output_size, resolve_padding, torch_pad_arg


class Subsample2D(keras.layers.Layer):
    """Keeps every stride-th row and column of an NHWC tensor (stride for a dilated Keras conv)."""

    def __init__(self, strides: tuple[int, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strides = tuple(strides)

    def call(self, x: Any) -> Any:
        return x[:, :: self.strides[0], :: self.strides[1], :]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape
        sh, sw = self.strides
        return n, None if h is None else -(-h // sh), None if w is None else -(-w // sw), c

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "strides": self.strides}


@register
class Conv2D(Block):
    name = "conv2d"
    family = "convolution"
    doc = "2-D convolution (cross-correlation) of an (N, C, H, W) input, with groups and dilation."
    ranks = (4,)
    weight_names = ("weight", "bias")
    params = (
        Param("filters", "int", minimum=1, doc="number of output channels"),
        Param("kernel_size", "pair", minimum=1, doc="kernel height and width"),
        Param("strides", "pair", (1, 1), minimum=1, default_text="1", doc="step between windows, height and width"),
        Param("padding", "padding", (0, 0), default_text="0",
              doc="zeros on both sides (int or [h, w]); 'valid' = none; 'same' = TensorFlow's same"),
        Param("dilation_rate", "pair", (1, 1), minimum=1, default_text="1", doc="spacing between kernel taps"),
        Param("groups", "int", 1, minimum=1,
              doc="channel groups: in and out channels split into this many independent convolutions"),
        Param("use_bias", "bool", True, doc="add a learned bias per output channel"),
    )

    def _geometry(self, site: Site) -> tuple:
        p = site.params
        size = site.in_shape[2:]
        pads = resolve_padding(p["padding"], size, p["kernel_size"], p["strides"], p["dilation_rate"])
        return size, pads

    def output_shape(self, site: Site) -> tuple[int, ...]:
        p = site.params
        n, cin = site.in_shape[:2]
        g = p["groups"]
        if cin % g:
            raise Refusal(f"groups={g} does not divide the {cin} input channels", field="params.groups")
        if p["filters"] % g:
            raise Refusal(f"groups={g} does not divide filters={p['filters']}", field="params.groups")
        size, pads = self._geometry(site)
        out = output_size(size, p["kernel_size"], p["strides"], pads, p["dilation_rate"])
        if min(out) <= 0:
            kh, kw = p["kernel_size"]
            dh, dw = p["dilation_rate"]
            raise Refusal(
                f"the kernel {kh}x{kw} (dilation {dh}x{dw}: spans {(kh - 1) * dh + 1}x{(kw - 1) * dw + 1}) is larger "
                f"than the padded input {size[0] + sum(pads[0])}x{size[1] + sum(pads[1])}: no output",
                field="params.kernel_size")
        return n, p["filters"], *out

    def reduction_length(self, site: Site) -> int:
        kh, kw = site.params["kernel_size"]
        return site.in_shape[1] // site.params["groups"] * kh * kw

    def largest_array(self, site: Site) -> int:
        (size_h, size_w), ((top, bottom), (left, right)) = self._geometry(site)
        n, c = site.in_shape[:2]
        return max(n * c * (size_h + top + bottom) * (size_w + left + right),
                   site.params["filters"] * self.reduction_length(site))

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        _, pads = self._geometry(site)
        common = dict(in_channels=site.in_shape[1], out_channels=p["filters"], kernel_size=p["kernel_size"],
                      stride=p["strides"], dilation=p["dilation_rate"], groups=p["groups"], bias=p["use_bias"])
        if p["padding"] == "same" and p["strides"] == (1, 1):
            return torch.nn.Conv2d(padding="same", **common)
        if is_symmetric(pads):
            return torch.nn.Conv2d(padding=(pads[0][0], pads[1][0]), **common)
        return torch.nn.Sequential(torch.nn.ZeroPad2d(torch_pad_arg(pads)), torch.nn.Conv2d(padding=0, **common))

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        _, pads = self._geometry(site)
        strided_and_dilated = max(p["strides"]) > 1 and max(p["dilation_rate"]) > 1
        common = dict(filters=p["filters"], kernel_size=p["kernel_size"], dilation_rate=p["dilation_rate"],
                      groups=p["groups"], use_bias=p["use_bias"], dtype=site.dtype)
        if p["padding"] in ("valid", "same") and not strided_and_dilated:
            return keras.layers.Conv2D(strides=p["strides"], padding=p["padding"], **common)
        layers = []
        if any(any(pair) for pair in pads):
            layers.append(keras.layers.ZeroPadding2D(padding=pads, dtype=site.dtype))
        if strided_and_dilated:
            layers += [keras.layers.Conv2D(strides=1, padding="valid", **common),
                       Subsample2D(p["strides"], dtype=site.dtype)]
        else:
            layers.append(keras.layers.Conv2D(strides=p["strides"], padding="valid", **common))
        return layers[0] if len(layers) == 1 else keras.Sequential(layers)

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        conv = module if isinstance(module, torch.nn.Conv2d) else module[-1]
        return {"weight": conv.weight, "bias": conv.bias} if conv.bias is not None else {"weight": conv.weight}

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        at = sublayer_path(layer, find_keras_layer(layer, keras.layers.Conv2D))
        w = self.torch_parameters(module)
        copies = [WeightCopy(parameter_path(module, w["weight"]), at + "kernel", conv_kernel_to_keras)]
        if "bias" in w:
            copies.append(WeightCopy(parameter_path(module, w["bias"]), at + "bias"))
        return copies
