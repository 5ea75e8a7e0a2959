"""Convolution: `conv2d`, `conv1d`, `conv3d`, `depthwise_conv2d` (and, in xfw_harness/blocks/conv_transpose.py, the
transposed ones; in xfw_harness/blocks/separable.py, `separable_conv2d`).

conv2d semantics (channels-first): out[n, o, i, j] = bias[o] + sum over the group's input channels c and kernel
taps (u, v) of w[o, c, u, v] * xpad[n, g*cin_g + c, i*sh + u*dh, j*sw + v*dw], where xpad is the input padded as
`padding` says, with the values `padding_mode` says. `same` is TensorFlow's: output ceil(in/stride) with the odd
padding pixel at the bottom/right, for any stride, kernel and dilation.

padding_mode is PyTorch's Conv2d(padding_mode=...): `zeros`; `reflect`, the mirror image without repeating the
edge (x[1], x[0] | x[0], x[1], ...: numpy.pad's and ONNX Pad's `reflect`, tf.pad's REFLECT); `replicate`, the edge
repeated (numpy's and ONNX's `edge`); `circular`, wrapping around (numpy's and ONNX's `wrap`). PyTorch refuses a
reflect padding >= the input size on that axis and a circular padding > the input size (wrapping more than
once); so does the harness. With `same`, the modes pad TensorFlow's same amounts (PyTorch's own padding='same'
at stride 1 pads the same amounts, the odd pixel after).

How each framework is made to compute exactly that:
- PyTorch: `padding='same'` only at stride 1 (it refuses stride > 1); symmetric padding as Conv2d's own
  `padding` and `padding_mode`; asymmetric padding (TF `same` with an odd total) as an explicit ZeroPad2d,
  ReflectionPad2d, ReplicationPad2d or CircularPad2d first.
- Keras: `valid`/`same` natively; an integer or pair padding as ZeroPadding2D then `valid` (Keras has no
  numeric padding). Keras refuses strides > 1 with dilation > 1 (keras/src/layers/convolutional/
  base_conv.py), so that combination runs as stride 1 on the explicitly padded input and keeps every
  stride-th row and column, which is the same arithmetic. Keras has no padding_mode: the harness pads first with
  its own `Padding2D`, which gathers rows and columns by index (the index pattern is numpy.pad's of an arange).
  keras.ops.pad would serve for reflect (its `reflect` excludes the edge like PyTorch's; its `symmetric` repeats
  it: a different padding), but TensorFlow's backend has no `edge` or `wrap` mode (tf.pad: CONSTANT, REFLECT,
  SYMMETRIC only), so one exact gather serves the three modes.

Which path each builder takes is decided by the predicates of xfw_harness/blocks/convolution_geometry.py, which
also declare those paths as the blocks' emulations (issue 18).

conv1d (N, C, L) and conv3d (N, C, D, H, W) are conv2d with one and three spatial axes: the same sum over the
kernel taps of each axis, the same padding (TensorFlow's `same` per axis, for any stride and dilation), groups,
dilation and padding_mode; pairs are written [l] and [d, h, w] (or one integer for every axis). One class computes
all three (its spatial rank a class attribute): PyTorch's Conv1d / Conv3d, the padding modules of that rank
(ZeroPad1d, ReflectionPad3d, ...); Keras's Conv1D / Conv3D, with ZeroPadding1D / ZeroPadding3D for numeric
padding, the harness's SpatialPadding for padding_mode and its Subsample for strides with dilation (Keras's Conv1D
and Conv3D refuse strides > 1 with dilation > 1 as Conv2D does, measured). Kernels: Conv1d's [out, in/groups, l]
-> Conv1D's (l, in/groups, out), Conv3d's [out, in/groups, d, h, w] -> (d, h, w, in/groups, out)
(xfw_harness.core.layout.conv_kernel_to_keras). `xfw-harness port` reads Conv1d as conv1d and Conv3d as conv3d, a
grouped one with groups = in_channels included (no depthwise block of those ranks).

depthwise_conv2d is conv2d with groups = in_channels and filters = in_channels * depth_multiplier: output channel
c*m + q convolves input channel c with its q-th kernel. PyTorch: Conv2d(groups=in_channels); Keras:
DepthwiseConv2D, kernel (kh, kw, in, m) (xfw_harness.core.layout.depthwise_kernel_to_keras). Keras's DepthwiseConv2D
takes strides with dilation (its TensorFlow backend runs stride 1 and subsamples itself).

The third opinion (`reference`): ONNX's Conv (auto_pad SAME_UPPER for zero-padded `same`, which is TensorFlow's
arithmetic computed by ONNX, not by xfw_harness.core.spatial) after ONNX's Pad for the other modes.

Native defaults (`defaults: native`): each framework's own layer with only the parameters the case wrote, as a
person porting by hand writes them. Keras has only 'valid' and 'same': the hand port writes numeric padding 0 as
'valid' and padding == kernel // 2 (per axis) as 'same', which is how the catalogue of known differences shows that
`same` at stride 2 is not a symmetric padding; any other numeric padding, and a padding_mode other than zeros,
cannot be written as one Keras layer (Refusal). What a framework itself refuses when the port is written
(PyTorch's Conv2d padding='same' with stride > 1; Keras's strides > 1 with dilation_rate > 1) is left to
it: its own error is the finding (the runner records it as "refuses the hand port" for `expect: divergent`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block
from xfw_harness.blocks.convolution_common import (
    AXIS_NAMES,
    ONNX_PAD_MODES,
    ConvClasses,
    check_in_channels,
    check_torch_type,
    conv_params,
    keras_zero_padding,
    native_keras_padding,
    pair_param,
    torch_pad_module,
)
from xfw_harness.blocks.convolution_geometry import (
    CONV_EMULATIONS,
    DEPTHWISE_EMULATIONS,
    conv_pads,
    conv_refuses_stride_with_dilation,
    depthwise_refuses_unequal_strides,
    keras_native,
    keras_pads_with_mode,
    keras_pads_zeros,
    torch_native_same,
    torch_pad_module_first,
)
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site, WeightCopy, find_keras_layer, parameter_path, sublayer_path
from xfw_harness.core.errors import Refusal
from xfw_harness.core.layout import conv_kernel_to_keras, depthwise_kernel_to_keras
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param
from xfw_harness.core.spatial import Pads, output_size

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
keras_layers = lazy_module("xfw_harness.blocks.keras_layers")


@register
class Conv2D(ConvClasses, Block):
    name = "conv2d"
    benchmark = {"params": {"filters": 32, "kernel_size": 3, "padding": "same"}, "input": BENCHMARK_INPUT}
    family = "convolution"
    doc = "2-D convolution (cross-correlation) of an (N, C, H, W) input, with groups, dilation and padding_mode."
    spatial: ClassVar[int] = 2  # spatial axes: conv1d and conv3d are this class with 1 and 3
    ranks = (4,)
    weight_names = ("weight", "bias")
    torch_types = ("Conv2d",)
    params = conv_params(2)
    emulations = CONV_EMULATIONS
    # Why the Keras side runs at stride 1 where keras_runs_stride_1 says so (notes).
    stride_1_note: ClassVar[str] = (
        "Keras's own convolution refuses strides > 1 with dilation_rate > 1 (keras/src/layers/convolutional/"
        "base_conv.py): the harness runs it at stride 1 and keeps every stride-th output (its Subsample layer), "
        "the same arithmetic")
    keras_conv_name: ClassVar[str] = "Conv2D"
    torch_conv_name: ClassVar[str] = "Conv2d"
    # Whether a grouped module with groups = in_channels is left to depthwise_conv2d (no depthwise block in 1-D/3-D).
    depthwise_elsewhere: ClassVar[bool] = True

    def channels(self, site: Site) -> tuple[int, int]:
        """(output channels, groups) at this site."""
        return site.params["filters"], site.params["groups"]

    def _geometry(self, site: Site) -> tuple:
        return site.in_shape[2:], conv_pads(site)

    def _check_channels(self, site: Site) -> None:
        cin = site.in_shape[1]
        filters, g = self.channels(site)
        if cin % g:
            raise Refusal(f"groups={g} does not divide the {cin} input channels", field="params.groups")
        if filters % g:
            raise Refusal(f"groups={g} does not divide filters={filters}", field="params.groups")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        p = site.params
        self._check_channels(site)
        size, pads = self._geometry(site)
        mode = p["padding_mode"]
        for axis, length, (before, after) in zip(AXIS_NAMES[self.spatial], size, pads):
            if mode == "reflect" and max(before, after) >= length:
                raise Refusal(f"padding_mode reflect needs a padding smaller than the input (PyTorch refuses more: "
                              f"the mirror image would run off the input): padding {before}, {after} on the "
                              f"{length} of the {axis}", field="params.padding_mode")
            if mode == "circular" and max(before, after) > length:
                raise Refusal(f"padding_mode circular needs a padding no larger than the input (PyTorch refuses "
                              f"wrapping around more than once): padding {before}, {after} on the {length} of the "
                              f"{axis}", field="params.padding_mode")
        out = output_size(size, p["kernel_size"], p["strides"], pads, p["dilation_rate"])
        if min(out) <= 0:
            def by(values: Any) -> str:
                return "x".join(str(v) for v in values)
            spans = [(k - 1) * d + 1 for k, d in zip(p["kernel_size"], p["dilation_rate"])]
            raise Refusal(
                f"the kernel {by(p['kernel_size'])} (dilation {by(p['dilation_rate'])}: spans {by(spans)}) is larger "
                f"than the padded input {by(n + sum(pair) for n, pair in zip(size, pads))}: no output",
                field="params.kernel_size")
        return site.in_shape[0], self.channels(site)[0], *out

    def reduction_length(self, site: Site) -> int:
        return site.in_shape[1] // self.channels(site)[1] * math.prod(site.params["kernel_size"])

    def largest_array(self, site: Site) -> int:
        size, pads = self._geometry(site)
        n, c = site.in_shape[:2]
        return max(n * c * math.prod(length + before + after for length, (before, after) in zip(size, pads)),
                   self.channels(site)[0] * self.reduction_length(site))

    # --- builders --------------------------------------------------------------------------------------------
    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        _, pads = self._geometry(site)
        filters, groups = self.channels(site)
        mode = p["padding_mode"]
        conv = self.torch_conv_type
        common = dict(in_channels=site.in_shape[1], out_channels=filters, kernel_size=p["kernel_size"],
                      stride=p["strides"], dilation=p["dilation_rate"], groups=groups, bias=p["use_bias"])
        if torch_native_same(site):
            return conv(padding="same", padding_mode=mode, **common)
        if not torch_pad_module_first(site):
            return conv(padding=tuple(before for before, _ in pads), padding_mode=mode, **common)
        return torch.nn.Sequential(torch_pad_module(mode, pads), conv(padding=0, **common))

    def _keras_conv(self, site: Site, strides: Any, padding: str) -> keras.Layer:
        p = site.params
        return self.keras_conv_type(filters=p["filters"], kernel_size=p["kernel_size"], strides=strides,
                                    padding=padding, dilation_rate=p["dilation_rate"], groups=p["groups"],
                                    use_bias=p["use_bias"], dtype=site.dtype)

    def _keras_padding(self, site: Site, pads: Pads) -> list[keras.Layer]:
        """The explicit padding before a `valid` Keras convolution: none, zeros, or PyTorch's padding_mode."""
        layers: list[keras.Layer] = []
        if keras_pads_with_mode(site):
            layers.append(keras_layers.SpatialPadding(pads, site.params["padding_mode"], dtype=site.dtype))
        elif keras_pads_zeros(site, self.keras_runs_stride_1):
            layers.append(keras_zero_padding(pads, site.dtype))
        return layers

    def keras_runs_stride_1(self, site: Site) -> bool:
        """Whether Keras's conv cannot take the strides (it is run at stride 1 and subsampled: the same arithmetic)."""
        return conv_refuses_stride_with_dilation(site)

    def notes(self, site: Site) -> tuple[str, ...]:
        mode = site.params["padding_mode"]
        return ((self.stride_1_note,) if self.keras_runs_stride_1(site) else ()) + (
            (f"Keras has no padding_mode: the harness pads ({mode}) itself (its SpatialPadding layer) before a "
             "'valid' convolution",) if keras_pads_with_mode(site) else ())

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        _, pads = self._geometry(site)
        strided_and_dilated = self.keras_runs_stride_1(site)
        if keras_native(site, self.keras_runs_stride_1):
            return self._keras_conv(site, p["strides"], p["padding"])
        layers = self._keras_padding(site, pads)
        if strided_and_dilated:
            layers += [self._keras_conv(site, 1, "valid"),
                       keras_layers.Subsample(p["strides"], dtype=site.dtype)]
        else:
            layers.append(self._keras_conv(site, p["strides"], "valid"))
        return layers[0] if len(layers) == 1 else keras.Sequential(layers)

    def _torch_conv(self, module: torch.nn.Module) -> torch.nn.Module:
        if isinstance(module, torch.nn.Sequential):
            return next(m for m in module if isinstance(m, self.torch_conv_type))
        return module

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        conv = self._torch_conv(module)
        return {"weight": conv.weight, "bias": conv.bias} if conv.bias is not None else {"weight": conv.weight}

    def _kernel_copy(self, site: Site, torch_path: str, keras_path: str) -> WeightCopy:
        return WeightCopy(torch_path, keras_path, conv_kernel_to_keras)

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        at = sublayer_path(layer, find_keras_layer(layer, self.keras_conv_type))
        w = self.torch_parameters(module)
        copies = [self._kernel_copy(site, parameter_path(module, w["weight"]), at + "kernel")]
        if "bias" in w:
            copies.append(WeightCopy(parameter_path(module, w["bias"]), at + "bias"))
        return copies

    # --- the third opinion -----------------------------------------------------------------------------------
    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        p = site.params
        _, pads = self._geometry(site)
        befores, afters = [before for before, _ in pads], [after for _, after in pads]
        attrs: dict[str, Any] = dict(strides=list(p["strides"]), dilations=list(p["dilation_rate"]),
                                     group=self.channels(site)[1])
        if p["padding_mode"] != "zeros" and any(any(pair) for pair in pads):
            x = onnx_op("Pad", x, np.array([0, 0, *befores, 0, 0, *afters], dtype=np.int64),
                        mode=ONNX_PAD_MODES[p["padding_mode"]])
            attrs["pads"] = [0] * (2 * self.spatial)
        elif p["padding"] == "same":
            attrs["auto_pad"] = "SAME_UPPER"  # ONNX computes TensorFlow's same itself
        else:
            attrs["pads"] = [*befores, *afters]
        return onnx_op("Conv", x, weights["weight"], weights.get("bias"), **attrs)

    # --- native defaults -------------------------------------------------------------------------------------
    def _native_torch_common(self, site: Site) -> dict[str, Any]:
        """Conv2d's arguments for the shared parameters the case wrote, under PyTorch's names."""
        p, written = site.params, site.written_names
        args: dict[str, Any] = {"in_channels": site.in_shape[1], "kernel_size": p["kernel_size"]}
        args.update(site.written_args(strides="stride", dilation_rate="dilation", use_bias="bias",
                                      padding_mode="padding_mode"))
        if "padding" in written:
            args["padding"] = p["padding"]
        return args

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        args = self._native_torch_common(site)
        if "groups" in site.written_names:
            args["groups"] = site.params["groups"]
        return self.torch_conv_type(out_channels=site.params["filters"], **args)

    def _native_keras_common(self, site: Site, layer: str) -> dict[str, Any]:
        p, written = site.params, site.written_names
        if "padding_mode" in written and p["padding_mode"] != "zeros":
            raise Refusal(f"Keras's {layer} has no padding_mode: {p['padding_mode']!r} cannot be written natively",
                          field="params.padding_mode")
        args: dict[str, Any] = {"kernel_size": p["kernel_size"], "dtype": site.dtype}
        args.update(site.written_args(strides="strides", dilation_rate="dilation_rate", use_bias="use_bias"))
        if "padding" in written:
            args["padding"] = native_keras_padding(p["padding"], p["kernel_size"], layer)
        return args

    def native_keras_layer(self, site: Site) -> keras.Layer:
        args = self._native_keras_common(site, self.keras_conv_type.__name__)
        if "groups" in site.written_names:
            args["groups"] = site.params["groups"]
        return self.keras_conv_type(filters=site.params["filters"], **args)

    # --- porting a PyTorch model -------------------------------------------------------------------------------
    def _common_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        """kernel_size, strides, padding, padding_mode, dilation_rate, use_bias of a Conv2d, non-defaults only."""
        check_torch_type(module, self)
        check_in_channels(module, in_shape, self.spatial + 2)
        ones, zeros = (1,) * self.spatial, (0,) * self.spatial
        params: dict[str, Any] = {"kernel_size": pair_param(module.kernel_size)}
        if tuple(module.stride) != ones:
            params["strides"] = pair_param(module.stride)
        padding = module.padding
        if isinstance(padding, str):
            params["padding"] = padding  # PyTorch's 'same' exists at stride 1 only, where it is TensorFlow's
        elif tuple(padding) != zeros:
            params["padding"] = pair_param(padding)
        if module.padding_mode != "zeros":
            params["padding_mode"] = module.padding_mode
        if tuple(module.dilation) != ones:
            params["dilation_rate"] = pair_param(module.dilation)
        if module.bias is None:
            params["use_bias"] = False
        return params

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        """A Conv2d's params. A depthwise one (groups = in_channels > 1) is read by depthwise_conv2d instead, so
        that exactly one block reads each module."""
        check_torch_type(module, self)
        if self.depthwise_elsewhere and module.groups > 1 and module.groups == module.in_channels:
            raise Refusal(f"Conv2d(groups={module.groups}) with groups = in_channels is a depthwise convolution: "
                          "read it as depthwise_conv2d", field="groups")
        params = {"filters": module.out_channels, **self._common_from_torch(module, in_shape)}
        if module.groups != 1:
            params["groups"] = module.groups
        return params


@register
class Conv1D(Conv2D):
    name = "conv1d"
    benchmark = {"params": {"filters": 32, "kernel_size": 3, "padding": "same"}, "input": {"shape": [8, 32, 1024]}}
    doc = ("1-D convolution (cross-correlation) of an (N, C, L) input (sequences, audio), with groups, dilation and "
           "padding_mode.")
    spatial = 1
    ranks = (3,)
    torch_types = ("Conv1d",)
    params = conv_params(1)
    keras_conv_name = "Conv1D"
    torch_conv_name = "Conv1d"
    depthwise_elsewhere = False


@register
class Conv3D(Conv2D):
    name = "conv3d"
    benchmark = {"params": {"filters": 16, "kernel_size": 3, "padding": "same"},
                 "input": {"shape": [2, 16, 16, 32, 32]}}
    doc = ("3-D convolution (cross-correlation) of an (N, C, D, H, W) input (volumes, video), with groups, dilation "
           "and padding_mode.")
    spatial = 3
    ranks = (5,)
    torch_types = ("Conv3d",)
    params = conv_params(3)
    keras_conv_name = "Conv3D"
    torch_conv_name = "Conv3d"
    depthwise_elsewhere = False


@register
class DepthwiseConv2D(Conv2D):
    name = "depthwise_conv2d"
    benchmark = {"params": {"kernel_size": 3, "padding": "same"}, "input": BENCHMARK_INPUT}
    doc = ("Depthwise 2-D convolution: each input channel convolved with depth_multiplier kernels of its own "
           "(Conv2d with groups = in_channels).")
    params = (
        Param("kernel_size", "pair", minimum=1, doc="kernel height and width"),
        Param("depth_multiplier", "int", 1, minimum=1,
              doc="kernels per input channel: output channel c*m + q is input channel c's q-th"),
        *(param for param in Conv2D.params if param.name in ("strides", "padding", "padding_mode", "dilation_rate",
                                                                "use_bias")),
    )
    emulations = DEPTHWISE_EMULATIONS
    stride_1_note = ("TensorFlow's depthwise CPU kernel in float64 and float16 refuses unequal strides: the harness "
                     "runs Keras's layer at stride 1 and keeps every stride-th output (its Subsample layer), the "
                     "same arithmetic")
    keras_conv_name = "DepthwiseConv2D"

    def channels(self, site: Site) -> tuple[int, int]:
        cin = site.in_shape[1]
        return cin * site.params["depth_multiplier"], cin

    def _keras_conv(self, site: Site, strides: Any, padding: str) -> keras.Layer:
        p = site.params
        return keras.layers.DepthwiseConv2D(kernel_size=p["kernel_size"], strides=strides, padding=padding,
                                            depth_multiplier=p["depth_multiplier"], dilation_rate=p["dilation_rate"],
                                            use_bias=p["use_bias"], dtype=site.dtype)

    def keras_runs_stride_1(self, site: Site) -> bool:
        # TensorFlow's Eigen CPU depthwise kernel (float64, float16; float32 and bfloat16 go to oneDNN) refuses
        # unequal strides: "Current implementation only supports equal length strides" (found by xfw-harness fuzz).
        return depthwise_refuses_unequal_strides(site)

    def _kernel_copy(self, site: Site, torch_path: str, keras_path: str) -> WeightCopy:
        return WeightCopy(torch_path, keras_path, depthwise_kernel_to_keras, (site.params["depth_multiplier"],))

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        """Conv2d(in, in * depth_multiplier, groups=in): PyTorch has no depthwise layer; groups is how one writes it."""
        cin = site.in_shape[1]
        args = self._native_torch_common(site)
        return torch.nn.Conv2d(out_channels=cin * site.params["depth_multiplier"], groups=cin, **args)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        args = self._native_keras_common(site, "DepthwiseConv2D")
        if "depth_multiplier" in site.written_names:
            args["depth_multiplier"] = site.params["depth_multiplier"]
        return keras.layers.DepthwiseConv2D(**args)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        """A Conv2d with groups = in_channels > 1 (out_channels is then a multiple: PyTorch requires it)."""
        check_torch_type(module, self)
        if not (module.groups > 1 and module.groups == module.in_channels):
            raise Refusal(f"Conv2d(groups={module.groups}, in_channels={module.in_channels}) is not depthwise "
                          "(groups = in_channels > 1): read it as conv2d", field="groups")
        params = self._common_from_torch(module, in_shape)
        multiplier = module.out_channels // module.in_channels
        return {"kernel_size": params.pop("kernel_size"),
                **({"depth_multiplier": multiplier} if multiplier != 1 else {}), **params}
