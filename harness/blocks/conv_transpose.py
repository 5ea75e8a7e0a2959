"""Transposed convolution: `conv2d_transpose` (family convolution).

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

The third opinion (`reference`): ONNX's ConvTranspose
with auto_pad SAME_UPPER for `same` (ONNX's own arithmetic; onnx.reference gets it wrong for a kernel that
spans less than the stride, whose total padding is negative: there, and for numeric padding, pads [before, after]
and output_padding = the extension). onnx.reference's ConvTranspose fails for an output_padding >= stride (its
col2im shape check): there the reference crops and extends the full transposed convolution with NumPy.

Native defaults (`defaults: native`): each framework's own layer with only the parameters the case wrote
(harness/blocks/convolution.py says how a hand port writes Keras's padding). ConvTranspose2d takes no string
padding: 'same' is refused on the PyTorch side ('valid' becomes 0). Keras's own refusals (strides > 1 with
dilation_rate > 1, output_padding >= strides) are left to it: its own error is the finding.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import torch

from harness.blocks.base import Block
from harness.blocks.convolution_common import check_in_channels, check_torch_type, native_keras_padding, pair_param
from harness.blocks.keras_layers import InsertZeros2D
from harness.blocks.reference import onnx_op
from harness.blocks.registry import register
from harness.blocks.site import Site, WeightCopy, find_keras_layer, parameter_path, sublayer_path
from harness.core.errors import Refusal
from harness.core.layout import conv_transpose_kernel_to_keras
from harness.core.schema import Param
from harness.core.spatial import torch_pad_arg


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
    benchmark = {"params": {"filters": 32, "kernel_size": 4, "strides": 2, "padding": 1},
                 "input": {"shape": [8, 32, 16, 16]}}
    family = "convolution"
    doc = ("Transposed 2-D convolution (the gradient of conv2d with respect to its input) of an (N, C, H, W) input, "
           "with output_padding and dilation.")
    ranks = (4,)
    weight_names = ("weight", "bias")
    torch_types = ("ConvTranspose2d",)
    padding_doc = ("TensorFlow's transposed `same`: output size*stride; the full output cropped by "
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
            args["padding"] = native_keras_padding(p["padding"], p["kernel_size"], "Conv2DTranspose")
        if "output_padding" in written:
            args["output_padding"] = p["output_padding"]
        return keras.layers.Conv2DTranspose(**args)

    # --- porting a PyTorch model -------------------------------------------------------------------------------
    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        check_torch_type(module, self)
        check_in_channels(module, in_shape)
        if module.groups != 1:
            raise Refusal(f"ConvTranspose2d(groups={module.groups}): Keras's Conv2DTranspose has no groups",
                          field="groups")
        params: dict[str, Any] = {"filters": module.out_channels, "kernel_size": pair_param(module.kernel_size)}
        for name, attribute in (("strides", "stride"), ("padding", "padding"), ("output_padding", "output_padding"),
                                ("dilation_rate", "dilation")):
            value = tuple(getattr(module, attribute))
            if len(value) != 2 or not all(isinstance(v, int) for v in value):
                raise Refusal(f"ConvTranspose2d's {attribute} {getattr(module, attribute)!r} is not a pair of "
                              "integers", field=attribute)
            if value != ((1, 1) if name in ("strides", "dilation_rate") else (0, 0)):
                params[name] = pair_param(value)
        if module.bias is None:
            params["use_bias"] = False
        return params
