"""Convolution: `conv2d`, `depthwise_conv2d`, `conv2d_transpose`.

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

depthwise_conv2d is conv2d with groups = in_channels and filters = in_channels * depth_multiplier: output channel
c*m + q convolves input channel c with its q-th kernel. PyTorch: Conv2d(groups=in_channels); Keras:
DepthwiseConv2D, kernel (kh, kw, in, m) (harness.core.layout.depthwise_kernel_to_keras). Keras's DepthwiseConv2D takes
strides with dilation (its TensorFlow backend runs stride 1 and subsamples itself).

conv2d_transpose semantics: the full transposed convolution scatters each input pixel through the kernel,
full[n, o, i*sh + u*dh, j*sw + v*dw] += x[n, c, i, j] * w[c, o, u, v] (weight [in, out, kh, kw], PyTorch's layout,
no spatial flip), of size F = (in - 1)*stride + (kernel - 1)*dilation + 1 per axis. The output is a window of it:
`before` cells cropped at the start and `after` at the end, where a negative `after` appends that many cells that
no input reaches; then the bias is added everywhere. Output size F - before - after.
- numeric padding p with output_padding op (PyTorch's ConvTranspose2d): before = p, after = p - op, so
  out = (in - 1)*stride - 2p + (kernel - 1)*dilation + 1 + op. PyTorch refuses op >= max(stride, dilation) and an
  output <= 0; so does the harness. `valid` is padding 0.
- `same` is TensorFlow's (Keras's Conv2DTranspose padding='same', output_padding None): out = in*stride;
  total = max(keff - stride, 0) with keff = (kernel - 1)*dilation + 1; before = total // 2 (the odd cell is
  cropped at the end), after = total - before - max(stride - keff, 0). This is not PyTorch's usual port
  padding=(k-1)//2, output_padding=stride-1: for kernel 3, stride 2 that crops one cell at the start where
  TensorFlow crops it at the end (a one-pixel shift). output_padding with `same` is refused: Keras's size formula
  assumes a symmetric kernel//2 crop there, TensorFlow's kernel crops differently (and fails for even kernels).
How each framework computes it:
- PyTorch: ConvTranspose2d(padding=before, output_padding=before - after) where that is one PyTorch takes
  (0 <= output_padding < max(stride, dilation)), else ConvTranspose2d(padding=0, output_padding=extension) then a
  ZeroPad2d with negative amounts, which crops.
- Keras: Conv2DTranspose(padding='same') natively for `same`; otherwise Conv2DTranspose(padding='valid',
  output_padding=extension) (Keras: output (in-1)*stride + keff + output_padding, before 0) then Cropping2D.
  Keras refuses output_padding >= stride and strides > 1 with dilation > 1, and TensorFlow's oneDNN gradient
  kernels corrupt the heap for a strided 1x1 kernel on a batch of one: those run as stride 1 on the input with
  stride-1 zeros inserted between its rows and columns (`InsertZeros2D`, exactly the scatter above) and
  zero-padded at the end by the extension (cells no input reaches), then Cropping2D. PyTorch's groups has no
  Keras counterpart (Conv2DTranspose takes none): not a parameter here. TensorFlow has no CPU float64 kernel for a
  dilated transposed convolution (Conv2DBackpropInput: "Current CPU implementations do not yet support dilation
  rates larger than 1"): float64 with dilation > 1 is refused.

The third opinion (`reference`): ONNX's Conv (auto_pad SAME_UPPER for zero-padded `same`, which is TensorFlow's
arithmetic computed by ONNX, not by harness.core.spatial) after ONNX's Pad for the other modes; ONNX's ConvTranspose
with auto_pad SAME_UPPER for `same` (again ONNX's own arithmetic; onnx.reference gets it wrong for a kernel that
spans less than the stride, whose total padding is negative: there, and for numeric padding, pads [before, after]
and output_padding = the extension). onnx.reference's ConvTranspose fails for an output_padding >= stride (its
col2im shape check): there the reference crops and extends the full transposed convolution with NumPy.

Native defaults (`defaults: native`): each framework's own layer with only the parameters the case wrote, as a
person porting by hand writes them. Keras has only 'valid' and 'same': the hand port writes numeric padding 0 as
'valid' and padding == kernel // 2 (per axis) as 'same', which is how the catalogue of known differences shows that
`same` at stride 2 is not a symmetric padding; any other numeric padding, and a padding_mode other than zeros,
cannot be written as one Keras layer (Refusal). ConvTranspose2d takes no string padding: 'same' is refused on
the PyTorch side ('valid' becomes 0). What a framework itself refuses when the port is written (PyTorch's Conv2d
padding='same' with stride > 1; Keras's strides > 1 with dilation_rate > 1, output_padding >= strides) is left to
it: its own error is the finding (the runner records it as "refuses the hand port" for `expect: divergent`).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import torch

from harness.blocks.reference import onnx_op
from harness.blocks.registry import Block, Site, WeightCopy, find_keras_layer, parameter_path, register, sublayer_path
from harness.core.errors import Refusal
from harness.core.layout import conv_kernel_to_keras, conv_transpose_kernel_to_keras, depthwise_kernel_to_keras
from harness.core.schema import Param
from harness.core.spatial import Pads, is_symmetric, output_size, resolve_padding, torch_pad_arg

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# The index pattern of each PyTorch padding mode, as numpy.pad's mode (Padding2D gathers with it).
KERAS_INDEX_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
# ONNX Pad's name for each mode (the reference's; kept apart from Keras's table so one cannot hide the other).
ONNX_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
TORCH_PAD_MODULES = {"zeros": torch.nn.ZeroPad2d, "reflect": torch.nn.ReflectionPad2d,
                     "replicate": torch.nn.ReplicationPad2d, "circular": torch.nn.CircularPad2d}


def _static_hw(x: Any, who: str) -> tuple[int, int]:
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        raise ValueError(f"{who} needs a known height and width, got input shape {tuple(x.shape)}")
    return int(h), int(w)


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


class Padding2D(keras.layers.Layer):
    """Pads an NHWC tensor's height and width as PyTorch's padding_mode does (reflect, replicate, circular).

    Keras has no such layer and TensorFlow's pad no edge or wrap mode: rows and columns are gathered by index,
    the indices being numpy.pad's of an arange (an exact copy, whatever the dtype).
    """

    def __init__(self, padding: Pads, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding = tuple(tuple(p) for p in padding)
        self.mode = mode

    def call(self, x: Any) -> Any:
        h, w = _static_hw(x, "Padding2D")
        index_mode = KERAS_INDEX_MODES[self.mode]
        rows = np.pad(np.arange(h), self.padding[0], mode=index_mode)
        cols = np.pad(np.arange(w), self.padding[1], mode=index_mode)
        return keras.ops.take(keras.ops.take(x, rows, axis=1), cols, axis=2)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape
        (t, b), (left, r) = self.padding
        return n, None if h is None else h + t + b, None if w is None else w + left + r, c

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": self.padding, "mode": self.mode}


class InsertZeros2D(keras.layers.Layer):
    """Puts stride - 1 zeros between consecutive rows and between consecutive columns of an NHWC tensor (h, w ->
    (h-1)*sh + 1, (w-1)*sw + 1): a transposed convolution with strides is the stride-1 one of this tensor (for
    Keras's Conv2DTranspose, which refuses strides with dilation)."""

    def __init__(self, strides: tuple[int, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strides = tuple(strides)

    def call(self, x: Any) -> Any:
        h, w = _static_hw(x, "InsertZeros2D")
        sh, sw = self.strides
        c = x.shape[-1]
        cells = keras.ops.reshape(x, (-1, h, 1, w, 1, c))
        spaced = keras.ops.pad(cells, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]])
        return keras.ops.reshape(spaced, (-1, h * sh, w * sw, c))[:, : (h - 1) * sh + 1, : (w - 1) * sw + 1, :]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape
        sh, sw = self.strides
        return n, None if h is None else (h - 1) * sh + 1, None if w is None else (w - 1) * sw + 1, c

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "strides": self.strides}


def _native_keras_padding(padding: Any, kernel: tuple[int, int], layer: str) -> str:
    """A hand port's Keras padding: 'valid'/'same' as written, 0 -> 'valid', kernel // 2 -> 'same'."""
    if padding in ("valid", "same"):
        return padding
    if padding == (0, 0):
        return "valid"
    if padding == (kernel[0] // 2, kernel[1] // 2):
        return "same"
    raise Refusal(f"Keras's {layer} has only padding 'valid' and 'same': a hand port writes 0 as 'valid' and "
                  f"kernel_size // 2 = {[k // 2 for k in kernel]} as 'same', and cannot write {list(padding)} "
                  "(the harness's own mode pads explicitly)", field="params.padding")


def _pair_param(value: tuple[int, int]) -> int | list[int]:
    """A pair as a person writes it in YAML: 3 for (3, 3), [3, 2] otherwise."""
    return int(value[0]) if value[0] == value[1] else [int(v) for v in value]


def _torch_type_check(module: Any, block: Block) -> None:
    if type(module).__name__ not in block.torch_types:
        raise Refusal(f"{type(module).__name__} is not a {' or '.join(block.torch_types)}", field="module")


def _in_channels_check(module: Any, in_shape: tuple[int, ...]) -> None:
    if len(in_shape) != 4 or in_shape[1] != module.in_channels:
        raise Refusal(f"{type(module).__name__}(in_channels={module.in_channels}) cannot take an input of shape "
                      f"{list(in_shape)} (channels-first, rank 4)", field="in_channels")


@register
class Conv2D(Block):
    name = "conv2d"
    family = "convolution"
    doc = "2-D convolution (cross-correlation) of an (N, C, H, W) input, with groups, dilation and padding_mode."
    ranks = (4,)
    weight_names = ("weight", "bias")
    torch_types = ("Conv2d",)
    params = (
        Param("filters", "int", minimum=1, doc="number of output channels"),
        Param("kernel_size", "pair", minimum=1, doc="kernel height and width"),
        Param("strides", "pair", (1, 1), minimum=1, default_text="1", doc="step between windows, height and width"),
        Param("padding", "padding", (0, 0), default_text="0",
              doc="cells on both sides (int or [h, w]); 'valid' = none; 'same' = TensorFlow's same"),
        Param("padding_mode", "choice", "zeros", choices=PADDING_MODES,
              doc="what the padding holds, as PyTorch's padding_mode: zeros, reflect (mirror, edge not repeated), "
                  "replicate (edge repeated), circular (wrap around)"),
        Param("dilation_rate", "pair", (1, 1), minimum=1, default_text="1", doc="spacing between kernel taps"),
        Param("groups", "int", 1, minimum=1,
              doc="channel groups: in and out channels split into this many independent convolutions"),
        Param("use_bias", "bool", True, doc="add a learned bias per output channel"),
    )
    keras_refuses_stride_with_dilation = True  # keras.layers.Conv2D does; DepthwiseConv2D decomposes itself
    keras_conv_type: type = keras.layers.Conv2D

    def channels(self, site: Site) -> tuple[int, int]:
        """(output channels, groups) at this site."""
        return site.params["filters"], site.params["groups"]

    def _geometry(self, site: Site) -> tuple:
        p = site.params
        size = site.in_shape[2:]
        pads = resolve_padding(p["padding"], size, p["kernel_size"], p["strides"], p["dilation_rate"])
        return size, pads

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
        for axis, length, (before, after) in zip(("height", "width"), size, pads):
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
            kh, kw = p["kernel_size"]
            dh, dw = p["dilation_rate"]
            raise Refusal(
                f"the kernel {kh}x{kw} (dilation {dh}x{dw}: spans {(kh - 1) * dh + 1}x{(kw - 1) * dw + 1}) is larger "
                f"than the padded input {size[0] + sum(pads[0])}x{size[1] + sum(pads[1])}: no output",
                field="params.kernel_size")
        return site.in_shape[0], self.channels(site)[0], *out

    def reduction_length(self, site: Site) -> int:
        kh, kw = site.params["kernel_size"]
        return site.in_shape[1] // self.channels(site)[1] * kh * kw

    def largest_array(self, site: Site) -> int:
        (size_h, size_w), ((top, bottom), (left, right)) = self._geometry(site)
        n, c = site.in_shape[:2]
        return max(n * c * (size_h + top + bottom) * (size_w + left + right),
                   self.channels(site)[0] * self.reduction_length(site))

    # --- builders --------------------------------------------------------------------------------------------
    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        _, pads = self._geometry(site)
        filters, groups = self.channels(site)
        mode = p["padding_mode"]
        common = dict(in_channels=site.in_shape[1], out_channels=filters, kernel_size=p["kernel_size"],
                      stride=p["strides"], dilation=p["dilation_rate"], groups=groups, bias=p["use_bias"])
        if p["padding"] == "same" and p["strides"] == (1, 1):
            return torch.nn.Conv2d(padding="same", padding_mode=mode, **common)
        if is_symmetric(pads):
            return torch.nn.Conv2d(padding=(pads[0][0], pads[1][0]), padding_mode=mode, **common)
        return torch.nn.Sequential(TORCH_PAD_MODULES[mode](torch_pad_arg(pads)), torch.nn.Conv2d(padding=0, **common))

    def _keras_conv(self, site: Site, strides: Any, padding: str) -> keras.Layer:
        p = site.params
        return keras.layers.Conv2D(filters=p["filters"], kernel_size=p["kernel_size"], strides=strides,
                                   padding=padding, dilation_rate=p["dilation_rate"], groups=p["groups"],
                                   use_bias=p["use_bias"], dtype=site.dtype)

    def _keras_padding(self, site: Site, pads: Pads) -> list[keras.Layer]:
        """The explicit padding before a `valid` Keras convolution: none, zeros, or PyTorch's padding_mode."""
        layers: list[keras.Layer] = []
        if any(any(pair) for pair in pads):
            if site.params["padding_mode"] == "zeros":
                layers.append(keras.layers.ZeroPadding2D(padding=pads, dtype=site.dtype))
            else:
                layers.append(Padding2D(pads, site.params["padding_mode"], dtype=site.dtype))
        return layers

    def keras_runs_stride_1(self, site: Site) -> bool:
        """Whether Keras's conv cannot take the strides (it is run at stride 1 and subsampled: the same arithmetic)."""
        p = site.params
        return self.keras_refuses_stride_with_dilation and max(p["strides"]) > 1 and max(p["dilation_rate"]) > 1

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        _, pads = self._geometry(site)
        strided_and_dilated = self.keras_runs_stride_1(site)
        native_padding = p["padding"] == "valid" or (p["padding"] == "same" and p["padding_mode"] == "zeros")
        if native_padding and not strided_and_dilated:
            return self._keras_conv(site, p["strides"], p["padding"])
        layers = self._keras_padding(site, pads)
        if strided_and_dilated:
            layers += [self._keras_conv(site, 1, "valid"),
                       Subsample2D(p["strides"], dtype=site.dtype)]
        else:
            layers.append(self._keras_conv(site, p["strides"], "valid"))
        return layers[0] if len(layers) == 1 else keras.Sequential(layers)

    def _torch_conv(self, module: torch.nn.Module) -> torch.nn.Module:
        if isinstance(module, torch.nn.Sequential):
            return next(m for m in module if isinstance(m, torch.nn.Conv2d))
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
        (top, bottom), (left, right) = pads
        attrs: dict[str, Any] = dict(strides=list(p["strides"]), dilations=list(p["dilation_rate"]),
                                     group=self.channels(site)[1])
        if p["padding_mode"] != "zeros" and any(any(pair) for pair in pads):
            x = onnx_op("Pad", x, np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64),
                        mode=ONNX_PAD_MODES[p["padding_mode"]])
            attrs["pads"] = [0, 0, 0, 0]
        elif p["padding"] == "same":
            attrs["auto_pad"] = "SAME_UPPER"  # ONNX computes TensorFlow's same itself
        else:
            attrs["pads"] = [top, left, bottom, right]
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
        return torch.nn.Conv2d(out_channels=site.params["filters"], **args)

    def _native_keras_common(self, site: Site, layer: str) -> dict[str, Any]:
        p, written = site.params, site.written_names
        if "padding_mode" in written and p["padding_mode"] != "zeros":
            raise Refusal(f"Keras's {layer} has no padding_mode: {p['padding_mode']!r} cannot be written natively",
                          field="params.padding_mode")
        args: dict[str, Any] = {"kernel_size": p["kernel_size"], "dtype": site.dtype}
        args.update(site.written_args(strides="strides", dilation_rate="dilation_rate", use_bias="use_bias"))
        if "padding" in written:
            args["padding"] = _native_keras_padding(p["padding"], p["kernel_size"], layer)
        return args

    def native_keras_layer(self, site: Site) -> keras.Layer:
        args = self._native_keras_common(site, "Conv2D")
        if "groups" in site.written_names:
            args["groups"] = site.params["groups"]
        return keras.layers.Conv2D(filters=site.params["filters"], **args)

    # --- porting a PyTorch model -------------------------------------------------------------------------------
    def _common_from_torch(self, module: torch.nn.Conv2d, in_shape: tuple[int, ...]) -> dict[str, Any]:
        """kernel_size, strides, padding, padding_mode, dilation_rate, use_bias of a Conv2d, non-defaults only."""
        _torch_type_check(module, self)
        _in_channels_check(module, in_shape)
        params: dict[str, Any] = {"kernel_size": _pair_param(module.kernel_size)}
        if tuple(module.stride) != (1, 1):
            params["strides"] = _pair_param(module.stride)
        padding = module.padding
        if isinstance(padding, str):
            params["padding"] = padding  # PyTorch's 'same' exists at stride 1 only, where it is TensorFlow's
        elif tuple(padding) != (0, 0):
            params["padding"] = _pair_param(padding)
        if module.padding_mode != "zeros":
            params["padding_mode"] = module.padding_mode
        if tuple(module.dilation) != (1, 1):
            params["dilation_rate"] = _pair_param(module.dilation)
        if module.bias is None:
            params["use_bias"] = False
        return params

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        """A Conv2d's params. A depthwise one (groups = in_channels > 1) is read by depthwise_conv2d instead, so
        that exactly one block reads each module."""
        _torch_type_check(module, self)
        if module.groups > 1 and module.groups == module.in_channels:
            raise Refusal(f"Conv2d(groups={module.groups}) with groups = in_channels is a depthwise convolution: "
                          "read it as depthwise_conv2d", field="groups")
        params = {"filters": module.out_channels, **self._common_from_torch(module, in_shape)}
        if module.groups != 1:
            params["groups"] = module.groups
        return params


@register
class DepthwiseConv2D(Conv2D):
    name = "depthwise_conv2d"
    doc = ("Depthwise 2-D convolution: each input channel convolved with depth_multiplier kernels of its own "
           "(Conv2d with groups = in_channels).")
    params = (
        Param("kernel_size", "pair", minimum=1, doc="kernel height and width"),
        Param("depth_multiplier", "int", 1, minimum=1,
              doc="kernels per input channel: output channel c*m + q is input channel c's q-th"),
        *(param for param in Conv2D.params if param.name in ("strides", "padding", "padding_mode", "dilation_rate",
                                                                "use_bias")),
    )
    keras_refuses_stride_with_dilation = False
    keras_conv_type = keras.layers.DepthwiseConv2D

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
        # unequal strides: "Current implementation only supports equal length strides" (found by harness fuzz).
        strides = site.params["strides"]
        return strides[0] != strides[1] and site.dtype in ("float64", "float16")

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
        _torch_type_check(module, self)
        if not (module.groups > 1 and module.groups == module.in_channels):
            raise Refusal(f"Conv2d(groups={module.groups}, in_channels={module.in_channels}) is not depthwise "
                          "(groups = in_channels > 1): read it as conv2d", field="groups")
        params = self._common_from_torch(module, in_shape)
        multiplier = module.out_channels // module.in_channels
        return {"kernel_size": params.pop("kernel_size"),
                **({"depth_multiplier": multiplier} if multiplier != 1 else {}), **params}


def transposed_crop_1d(size: int, kernel: int, stride: int, dilation: int, padding: Any,
                       output_padding: int) -> tuple[int, int]:
    """(before, after) of conv2d_transpose on one axis (module docstring): the output is the full transposed
    convolution, (size - 1)*stride + (kernel - 1)*dilation + 1 long, less `before` cells at the start and `after` at
    the end; a negative `after` appends -after cells that no input reaches."""
    if padding == "same":
        keff = (kernel - 1) * dilation + 1
        total = max(keff - stride, 0)
        return total // 2, total - total // 2 - max(stride - keff, 0)
    return padding, padding - output_padding


@register
class Conv2DTranspose(Block):
    name = "conv2d_transpose"
    family = "convolution"
    doc = ("Transposed 2-D convolution (the gradient of conv2d with respect to its input) of an (N, C, H, W) input, "
           "with output_padding and dilation.")
    ranks = (4,)
    weight_names = ("weight", "bias")
    torch_types = ("ConvTranspose2d",)
    same_padding_doc = ("TensorFlow's transposed `same`: output size*stride; the full output cropped by "
                        "max(keff - stride, 0) cells, the odd one at the end (bottom/right), keff = (kernel-1)*dilation"
                        " + 1.")
    params = (
        Param("filters", "int", minimum=1, doc="number of output channels"),
        Param("kernel_size", "pair", minimum=1, doc="kernel height and width"),
        Param("strides", "pair", (1, 1), minimum=1, default_text="1", doc="upsampling step, height and width"),
        Param("padding", "padding", (0, 0), default_text="0",
              doc="PyTorch's: cells cropped from both sides of the full output (int or [h, w]); 'valid' = 0; "
                  "'same' = TensorFlow's (output input*stride, the odd cell cropped at the end)"),
        Param("output_padding", "pair", (0, 0), minimum=0, default_text="0",
              doc="PyTorch's: cells added at the bottom/right (less than max(stride, dilation)); numeric padding "
                  "only"),
        Param("dilation_rate", "pair", (1, 1), minimum=1, default_text="1", doc="spacing between kernel taps"),
        Param("use_bias", "bool", True, doc="add a learned bias per output channel"),
    )

    def crops(self, site: Site) -> tuple[tuple[int, int], tuple[int, int]]:
        """((before, after) height, (before, after) width): see transposed_crop_1d."""
        p = site.params
        padding = (0, 0) if p["padding"] == "valid" else p["padding"]
        per_axis = ("same", "same") if padding == "same" else padding
        return tuple(transposed_crop_1d(*args) for args in zip(  # type: ignore[return-value]
            site.in_shape[2:], p["kernel_size"], p["strides"], p["dilation_rate"], per_axis, p["output_padding"]))

    def full_size(self, site: Site) -> tuple[int, int]:
        p = site.params
        return tuple((n - 1) * s + (k - 1) * d + 1 for n, k, s, d in zip(  # type: ignore[return-value]
            site.in_shape[2:], p["kernel_size"], p["strides"], p["dilation_rate"]))

    def output_shape(self, site: Site) -> tuple[int, ...]:
        p = site.params
        if p["padding"] == "same" and p["output_padding"] != (0, 0):
            raise Refusal("output_padding goes with a numeric padding only: padding 'same' fixes the output at "
                          "input*stride (Keras's Conv2DTranspose sizes same + output_padding as if it cropped "
                          "kernel//2 on both sides, TensorFlow's kernel does not, and fails for even kernels)",
                          field="params.output_padding")
        if p["padding"] != "same":
            for op, s, d in zip(p["output_padding"], p["strides"], p["dilation_rate"]):
                if op >= max(s, d):
                    raise Refusal(f"output_padding {list(p['output_padding'])} must be smaller than stride or "
                                  f"dilation on each axis (PyTorch refuses it; strides {list(p['strides'])}, "
                                  f"dilation_rate {list(p['dilation_rate'])})", field="params.output_padding")
        if site.dtype == "float64" and max(p["dilation_rate"]) > 1:
            raise Refusal("TensorFlow has no CPU float64 kernel for a transposed convolution with dilation_rate > 1 "
                          "(Conv2DBackpropInput: 'Current CPU implementations do not yet support dilation rates "
                          "larger than 1'): run it in float32", field="params.dilation_rate")
        out = tuple(f - before - after for f, (before, after) in zip(self.full_size(site), self.crops(site)))
        if min(out) <= 0:
            padding = p["padding"] if isinstance(p["padding"], str) else list(p["padding"])
            raise Refusal(f"padding {padding} with output_padding {list(p['output_padding'])} crops the whole "
                          f"{'x'.join(map(str, self.full_size(site)))} output of the transposed convolution: output "
                          f"{'x'.join(map(str, out))}", field="params.padding")
        return site.in_shape[0], p["filters"], *out

    def reduction_length(self, site: Site) -> int:
        """Input channels times the kernel taps that land on one output cell: tap u reaches cell o when
        o + before - u*d is a multiple of the stride, at most ceil(k / (s / gcd(s, d))) taps per axis."""
        p = site.params
        taps = [math.ceil(k / (s // math.gcd(s, d)))
                for k, s, d in zip(p["kernel_size"], p["strides"], p["dilation_rate"])]
        return site.in_shape[1] * taps[0] * taps[1]

    def largest_array(self, site: Site) -> int:
        p = site.params
        n, cin, h, w = site.in_shape
        (fh, fw), ((_, ah), (_, aw)) = self.full_size(site), self.crops(site)
        extended = n * max(p["filters"], cin) * (fh + max(-ah, 0)) * (fw + max(-aw, 0))
        return max(extended, cin * p["filters"] * p["kernel_size"][0] * p["kernel_size"][1])

    # --- builders --------------------------------------------------------------------------------------------
    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        crops = self.crops(site)
        common = dict(in_channels=site.in_shape[1], out_channels=p["filters"], kernel_size=p["kernel_size"],
                      stride=p["strides"], dilation=p["dilation_rate"], bias=p["use_bias"])
        output_padding = tuple(before - after for before, after in crops)
        if all(0 <= op < max(s, d) for op, s, d in zip(output_padding, p["strides"], p["dilation_rate"])):
            return torch.nn.ConvTranspose2d(padding=(crops[0][0], crops[1][0]), output_padding=output_padding,
                                            **common)
        extension = tuple(max(-after, 0) for _, after in crops)
        cut = tuple((before, after + ext) for (before, after), ext in zip(crops, extension))
        return torch.nn.Sequential(torch.nn.ConvTranspose2d(padding=0, output_padding=extension, **common),
                                   torch.nn.ZeroPad2d(tuple(-c for c in torch_pad_arg(cut))))  # negative: crops

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        crops = self.crops(site)
        strided = max(p["strides"]) > 1
        # Strided and dilated: Keras refuses it. A strided 1x1 kernel: TensorFlow 2.21's oneDNN CPU kernels for its
        # gradient (Conv2DBackpropFilter and the input's) corrupt the heap on a batch of one ("corrupted size vs.
        # prev_size", segfaults; measured: 200 gradient steps crash every time). Both run as stride 1 on the input
        # with zeros inserted between its rows and columns, which computes exactly the strided layer.
        by_zeros = strided and (max(p["dilation_rate"]) > 1 or tuple(p["kernel_size"]) == (1, 1))
        common = dict(filters=p["filters"], kernel_size=p["kernel_size"], dilation_rate=p["dilation_rate"],
                      use_bias=p["use_bias"], dtype=site.dtype)
        if p["padding"] == "same" and not by_zeros:
            return keras.layers.Conv2DTranspose(strides=p["strides"], padding="same", **common)
        extension = tuple(max(-after, 0) for _, after in crops)
        cut = tuple((before, max(after, 0)) for before, after in crops)
        layers: list[keras.Layer] = []
        if not by_zeros and all(ext < s for ext, s in zip(extension, p["strides"])):
            layers.append(keras.layers.Conv2DTranspose(strides=p["strides"], padding="valid",
                                                       output_padding=extension, **common))
        else:
            if strided:
                layers.append(InsertZeros2D(p["strides"], dtype=site.dtype))
            if max(extension) > 0:
                layers.append(keras.layers.ZeroPadding2D(((0, extension[0]), (0, extension[1])), dtype=site.dtype))
            layers.append(keras.layers.Conv2DTranspose(strides=1, padding="valid", **common))
        if any(any(pair) for pair in cut):
            layers.append(keras.layers.Cropping2D(cut, dtype=site.dtype))
        return layers[0] if len(layers) == 1 else keras.Sequential(layers)

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        conv = module[0] if isinstance(module, torch.nn.Sequential) else module
        return {"weight": conv.weight, "bias": conv.bias} if conv.bias is not None else {"weight": conv.weight}

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        at = sublayer_path(layer, find_keras_layer(layer, keras.layers.Conv2DTranspose))
        w = self.torch_parameters(module)
        return [WeightCopy(parameter_path(module, tensor), at + ("kernel" if name == "weight" else "bias"),
                           conv_transpose_kernel_to_keras if name == "weight" else None)
                for name, tensor in w.items()]

    # --- the third opinion -----------------------------------------------------------------------------------
    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        p = site.params
        (bh, ah), (bw, aw) = self.crops(site)
        extension = (max(-ah, 0), max(-aw, 0))
        attrs = dict(strides=list(p["strides"]), dilations=list(p["dilation_rate"]))
        keff = [(k - 1) * d + 1 for k, d in zip(p["kernel_size"], p["dilation_rate"])]
        if p["padding"] == "same" and all(k >= s for k, s in zip(keff, p["strides"])):
            # ONNX computes TensorFlow's same itself (not through transposed_crop_1d); its reference runtime gets
            # a kernel smaller than the stride wrong (a negative total padding), hence the condition.
            return onnx_op("ConvTranspose", x, weights["weight"], weights.get("bias"), auto_pad="SAME_UPPER", **attrs)
        if all(ext < s for ext, s in zip(extension, p["strides"])):
            return onnx_op("ConvTranspose", x, weights["weight"], weights.get("bias"),
                           pads=[bh, bw, max(ah, 0), max(aw, 0)], output_padding=list(extension), **attrs)
        # onnx.reference's col2im refuses output_padding >= stride: crop and extend the full output here.
        full = onnx_op("ConvTranspose", x, weights["weight"], **attrs)
        full = np.pad(full, [(0, 0), (0, 0), (0, extension[0]), (0, extension[1])])
        out = full[:, :, bh: full.shape[2] - max(ah, 0), bw: full.shape[3] - max(aw, 0)]
        return out + weights["bias"][None, :, None, None] if "bias" in weights else out

    # --- native defaults -------------------------------------------------------------------------------------
    def native_torch_module(self, site: Site) -> torch.nn.Module:
        p, written = site.params, site.written_names
        args: dict[str, Any] = {"in_channels": site.in_shape[1], "out_channels": p["filters"],
                                "kernel_size": p["kernel_size"]}
        args.update(site.written_args(strides="stride", output_padding="output_padding", dilation_rate="dilation",
                                      use_bias="bias"))
        if "padding" in written:
            if p["padding"] == "same":
                raise Refusal("PyTorch's ConvTranspose2d has no padding='same' (it takes numbers only)",
                              field="params.padding")
            args["padding"] = (0, 0) if p["padding"] == "valid" else p["padding"]
        return torch.nn.ConvTranspose2d(**args)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        p, written = site.params, site.written_names
        args: dict[str, Any] = {"filters": p["filters"], "kernel_size": p["kernel_size"], "dtype": site.dtype}
        args.update(site.written_args(strides="strides", dilation_rate="dilation_rate", use_bias="use_bias"))
        if "padding" in written:
            args["padding"] = _native_keras_padding(p["padding"], p["kernel_size"], "Conv2DTranspose")
        if "output_padding" in written:
            args["output_padding"] = p["output_padding"]
        return keras.layers.Conv2DTranspose(**args)

    # --- porting a PyTorch model -------------------------------------------------------------------------------
    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        _torch_type_check(module, self)
        _in_channels_check(module, in_shape)
        if module.groups != 1:
            raise Refusal(f"ConvTranspose2d(groups={module.groups}): Keras's Conv2DTranspose has no groups",
                          field="groups")
        params: dict[str, Any] = {"filters": module.out_channels, "kernel_size": _pair_param(module.kernel_size)}
        for name, attribute in (("strides", "stride"), ("padding", "padding"), ("output_padding", "output_padding"),
                                ("dilation_rate", "dilation")):
            value = tuple(getattr(module, attribute))
            if len(value) != 2 or not all(isinstance(v, int) for v in value):
                raise Refusal(f"ConvTranspose2d's {attribute} {getattr(module, attribute)!r} is not a pair of "
                              "integers", field=attribute)
            if value != ((1, 1) if name in ("strides", "dilation_rate") else (0, 0)):
                params[name] = _pair_param(value)
        if module.bias is None:
            params["use_bias"] = False
        return params
