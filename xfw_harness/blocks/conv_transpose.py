"""Transposed convolution: `conv2d_transpose`, `conv1d_transpose`, `conv3d_transpose` (family convolution).

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
  stride-1 zeros inserted between its rows and columns (`InsertZeros`, exactly the scatter above) and
  zero-padded at the end by the extension (cells no input reaches), then Cropping2D. TensorFlow has no CPU
  float64 kernel for a dilated transposed convolution (Conv2DBackpropInput: "Current CPU implementations do not
  yet support dilation rates larger than 1"; Conv1DTranspose's and Conv3DTranspose's too, measured): float64
  with dilation > 1 is refused.

groups (PyTorch's ConvTranspose2d(groups=g)): input channels and outputs split into g independent transposed
convolutions, group j taking input channels j*in/g .. (j+1)*in/g to outputs j*out/g .. (j+1)*out/g; PyTorch's
weight is [in, out/g, kh, kw], group j's kernel in its rows j*in/g .. (j+1)*in/g. Keras's Conv2DTranspose has no
groups (keras/src/layers/convolutional/base_conv_transpose.py takes none; `groups=2` raises "Unrecognized keyword
arguments", measured): for groups > 1 the harness's own Keras layer `GroupedConvTranspose` keeps one kernel
(g, kh, kw, out/g, in/g), group j's a Keras transposed-convolution kernel at [j]
(xfw_harness.core.layout.grouped_conv_transpose_kernel_to_keras), and runs keras.ops.conv_transpose (what
Conv2DTranspose runs) on each group's channel slice, concatenating the outputs and adding the bias as
Conv2DTranspose does; everything around it (output_padding, crops, inserted zeros) is as for groups 1. A
block-diagonal kernel in one Conv2DTranspose would compute the same forward but train its zero blocks.

conv1d_transpose (N, C, L) and conv3d_transpose (N, C, D, H, W) are conv2d_transpose with one and three spatial
axes, one class (its spatial rank a class attribute): the same crops per axis, output_padding, TensorFlow's
`same`, dilation, groups; PyTorch's ConvTranspose1d / ConvTranspose3d (ZeroPad1d / ZeroPad3d to crop), Keras's
Conv1DTranspose / Conv3DTranspose (ZeroPadding1D/3D, Cropping1D/3D; InsertZeros of that rank). Keras's refusals
are the same (strides > 1 with dilation > 1, output_padding >= strides: base_conv_transpose.py). Kernels
[in, out/g, l] -> (l, out/g, in), [in, out/g, d, h, w] -> (d, h, w, out/g, in).

The third opinion (`reference`): ONNX's ConvTranspose, group by group (onnx.reference 1.23's own group > 1 fails:
measured, ValueError for in = out = 4 with groups 2 and for 6 -> 9 with groups 3; its code slices the weight's rows
by output channels and hands every group the whole bias), with auto_pad SAME_UPPER for `same` (ONNX's own
arithmetic; onnx.reference gets it wrong for a kernel that spans less than the stride, whose total padding is
negative: there, and for numeric padding, pads [before, after] and output_padding = the extension). onnx.reference's
ConvTranspose fails for an output_padding >= stride (its col2im shape check): there the reference crops and extends
the full transposed convolution with NumPy.

Native defaults (`defaults: native`): each framework's own layer with only the parameters the case wrote
(xfw_harness/blocks/convolution.py says how a hand port writes Keras's padding). ConvTranspose2d takes no string
padding: 'same' is refused on the PyTorch side ('valid' becomes 0). Keras's own refusals (strides > 1 with
dilation_rate > 1, output_padding >= strides, groups: "Unrecognized keyword arguments") are left to it: its own
error is the finding.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks.base import Block
from xfw_harness.blocks.conv_transpose_geometry import (
    TRANSPOSE_EMULATIONS,
    keras_by_zeros,
    keras_native_same,
    torch_takes_crops,
    transposed_crops,
)
from xfw_harness.blocks.convolution_common import (
    AXES_WORDS,
    ConvClasses,
    check_in_channels,
    check_torch_type,
    keras_cropping,
    keras_zero_padding,
    native_keras_padding,
    pair_param,
)
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site, WeightCopy, find_keras_layer, parameter_path, sublayer_path
from xfw_harness.core.errors import Refusal
from xfw_harness.core.layout import conv_transpose_kernel_to_keras, grouped_conv_transpose_kernel_to_keras
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param
from xfw_harness.core.spatial import torch_pad_arg

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
conv_transpose_layers = lazy_module("xfw_harness.blocks.conv_transpose_layers")
keras_layers = lazy_module("xfw_harness.blocks.keras_layers")


def transpose_params(spatial: int) -> tuple[Param, ...]:
    """The parameters of the transposed convolution with `spatial` spatial axes."""
    axes, ends = AXES_WORDS[spatial], {1: "end", 2: "bottom/right", 3: "back/bottom/right"}[spatial]
    written = Param("p", "pair", size=spatial).axes_text
    return (
        Param("filters", "int", minimum=1, doc="number of output channels"),
        Param("kernel_size", "pair", minimum=1, doc=f"kernel {axes}", size=spatial),
        Param("strides", "pair", (1,) * spatial, minimum=1, default_text="1", doc=f"upsampling step, {axes}",
              size=spatial),
        Param("padding", "padding", (0,) * spatial, default_text="0", size=spatial,
              doc=f"PyTorch's: cells cropped from both sides of the full output (int or {written}); 'valid' = 0; "
                  "'same' = TensorFlow's (output input*stride, the odd cell cropped at the end)"),
        Param("output_padding", "pair", (0,) * spatial, minimum=0, default_text="0", size=spatial,
              doc=f"PyTorch's: cells added at the {ends} (less than max(stride, dilation)); numeric padding "
                  "only"),
        Param("dilation_rate", "pair", (1,) * spatial, minimum=1, default_text="1", doc="spacing between kernel taps",
              size=spatial),
        Param("groups", "int", 1, minimum=1,
              doc="PyTorch's groups: channels split into this many independent transposed convolutions (Keras: "
                  "the harness's GroupedConvTranspose)"),
        Param("use_bias", "bool", True, doc="add a learned bias per output channel"),
    )


@register
class Conv2DTranspose(ConvClasses, Block):
    name = "conv2d_transpose"
    benchmark = {"params": {"filters": 32, "kernel_size": 4, "strides": 2, "padding": 1},
                 "input": {"shape": [8, 32, 16, 16]}}
    family = "convolution"
    doc = ("Transposed 2-D convolution (the gradient of conv2d with respect to its input) of an (N, C, H, W) input, "
           "with output_padding, dilation and groups.")
    spatial: ClassVar[int] = 2  # spatial axes: conv1d_transpose and conv3d_transpose are this class with 1 and 3
    ranks = (4,)
    weight_names = ("weight", "bias")
    torch_types = ("ConvTranspose2d",)
    keras_conv_name: ClassVar[str] = "Conv2DTranspose"
    torch_conv_name: ClassVar[str] = "ConvTranspose2d"
    padding_doc = ("TensorFlow's transposed `same`: output size*stride; the full output cropped by "
                        "max(keff - stride, 0) cells, the odd one at the end (bottom/right), keff = (kernel-1)*dilation"
                        " + 1.")
    params = transpose_params(2)
    emulations = TRANSPOSE_EMULATIONS

    def crops(self, site: Site) -> tuple[tuple[int, int], ...]:
        """((before, after) height, (before, after) width): see transposed_crop_1d."""
        return transposed_crops(site)

    def full_size(self, site: Site) -> tuple[int, ...]:
        p = site.params
        return tuple((n - 1) * s + (k - 1) * d + 1 for n, k, s, d in zip(
            site.in_shape[2:], p["kernel_size"], p["strides"], p["dilation_rate"]))

    def output_shape(self, site: Site) -> tuple[int, ...]:
        p = site.params
        cin, g = site.in_shape[1], p["groups"]
        if cin % g or p["filters"] % g:
            raise Refusal(f"groups={g} must divide the {cin} input channels and filters={p['filters']} (PyTorch "
                          "refuses it)", field="params.groups")
        if p["padding"] == "same" and any(p["output_padding"]):
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
        """Input channels of a group times the kernel taps that land on one output cell: tap u reaches cell o when
        o + before - u*d is a multiple of the stride, at most ceil(k / (s / gcd(s, d))) taps per axis."""
        p = site.params
        taps = [math.ceil(k / (s // math.gcd(s, d)))
                for k, s, d in zip(p["kernel_size"], p["strides"], p["dilation_rate"])]
        return site.in_shape[1] // p["groups"] * math.prod(taps)

    def largest_array(self, site: Site) -> int:
        p = site.params
        n, cin = site.in_shape[:2]
        extended = n * max(p["filters"], cin) * math.prod(
            f + max(-after, 0) for f, (_, after) in zip(self.full_size(site), self.crops(site)))
        return max(extended, cin * p["filters"] // p["groups"] * math.prod(p["kernel_size"]))

    # --- builders --------------------------------------------------------------------------------------------
    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        crops = self.crops(site)
        common = dict(in_channels=site.in_shape[1], out_channels=p["filters"], kernel_size=p["kernel_size"],
                      stride=p["strides"], dilation=p["dilation_rate"], groups=p["groups"], bias=p["use_bias"])
        output_padding = tuple(before - after for before, after in crops)
        if torch_takes_crops(site):
            return self.torch_conv_type(padding=tuple(before for before, _ in crops), output_padding=output_padding,
                                        **common)
        extension = tuple(max(-after, 0) for _, after in crops)
        cut = tuple((before, after + ext) for (before, after), ext in zip(crops, extension))
        crop = getattr(torch.nn, f"ZeroPad{self.spatial}d")(tuple(-c for c in torch_pad_arg(cut)))  # negative: crops
        return torch.nn.Sequential(self.torch_conv_type(padding=0, output_padding=extension, **common), crop)

    def _keras_conv(self, groups: int, **kwargs: Any) -> keras.Layer:
        """Keras's transposed convolution of this rank, or the harness's GroupedConvTranspose for groups > 1."""
        if groups == 1:
            return self.keras_conv_type(**kwargs)
        return conv_transpose_layers.GroupedConvTranspose(groups, **kwargs)

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        crops = self.crops(site)
        strided = max(p["strides"]) > 1
        # Strided and dilated: Keras refuses it. A strided 1x1 kernel: TensorFlow 2.21's oneDNN CPU kernels for its
        # gradient (Conv2DBackpropFilter and the input's) corrupt the heap on a batch of one ("corrupted size vs.
        # prev_size", segfaults; measured: 200 gradient steps crash every time). Both run as stride 1 on the input
        # with zeros inserted between its rows and columns, which computes exactly the strided layer.
        by_zeros = keras_by_zeros(site)
        common = dict(groups=p["groups"], filters=p["filters"], kernel_size=p["kernel_size"],
                      dilation_rate=p["dilation_rate"], use_bias=p["use_bias"], dtype=site.dtype)
        if keras_native_same(site):
            return self._keras_conv(strides=p["strides"], padding="same", **common)
        extension = tuple(max(-after, 0) for _, after in crops)
        cut = tuple((before, max(after, 0)) for before, after in crops)
        layers: list[keras.Layer] = []
        if not by_zeros and all(ext < s for ext, s in zip(extension, p["strides"])):
            layers.append(self._keras_conv(strides=p["strides"], padding="valid",
                                           output_padding=extension, **common))
        else:
            if strided:
                layers.append(keras_layers.InsertZeros(p["strides"], dtype=site.dtype))
            if max(extension) > 0:
                layers.append(keras_zero_padding(tuple((0, ext) for ext in extension), site.dtype))
            layers.append(self._keras_conv(strides=(1,) * self.spatial, padding="valid", **common))
        if any(any(pair) for pair in cut):
            layers.append(keras_cropping(cut, site.dtype))
        return layers[0] if len(layers) == 1 else keras.Sequential(layers)

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        conv = module[0] if isinstance(module, torch.nn.Sequential) else module
        return {"weight": conv.weight, "bias": conv.bias} if conv.bias is not None else {"weight": conv.weight}

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        groups = site.params["groups"]
        conv_type = self.keras_conv_type if groups == 1 else conv_transpose_layers.GroupedConvTranspose
        at = sublayer_path(layer, find_keras_layer(layer, conv_type))
        w = self.torch_parameters(module)
        weight = parameter_path(module, w["weight"])
        copies = [WeightCopy(weight, at + "kernel", conv_transpose_kernel_to_keras) if groups == 1 else
                  WeightCopy(weight, at + "kernel", grouped_conv_transpose_kernel_to_keras, (groups,))]
        if "bias" in w:
            copies.append(WeightCopy(parameter_path(module, w["bias"]), at + "bias"))
        return copies

    # --- the third opinion -----------------------------------------------------------------------------------
    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        # Group by group, each an ONNX ConvTranspose of group 1: onnx.reference 1.23's own group > 1 raises (it
        # slices the weight's rows by output channels and hands every group the whole bias).
        g = site.params["groups"]
        x_parts = np.split(x, g, axis=1)
        w_parts = np.split(weights["weight"], g, axis=0)
        b_parts = np.split(weights["bias"], g) if "bias" in weights else [None] * g
        return np.concatenate([self._reference_group(site, xj, wj, bj)
                               for xj, wj, bj in zip(x_parts, w_parts, b_parts)], axis=1)

    def _reference_group(self, site: Site, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None
                         ) -> np.ndarray:
        p = site.params
        crops = self.crops(site)
        befores, afters = [before for before, _ in crops], [max(after, 0) for _, after in crops]
        extension = [max(-after, 0) for _, after in crops]
        attrs = dict(strides=list(p["strides"]), dilations=list(p["dilation_rate"]))
        keff = [(k - 1) * d + 1 for k, d in zip(p["kernel_size"], p["dilation_rate"])]
        if p["padding"] == "same" and all(k >= s for k, s in zip(keff, p["strides"])):
            # ONNX computes TensorFlow's same itself (not through transposed_crop_1d); its reference runtime gets
            # a kernel smaller than the stride wrong (a negative total padding), hence the condition.
            return onnx_op("ConvTranspose", x, weight, bias, auto_pad="SAME_UPPER", **attrs)
        if all(ext < s for ext, s in zip(extension, p["strides"])):
            return onnx_op("ConvTranspose", x, weight, bias, pads=[*befores, *afters], output_padding=extension,
                           **attrs)
        # onnx.reference's col2im refuses output_padding >= stride: crop and extend the full output here.
        full = onnx_op("ConvTranspose", x, weight, **attrs)
        full = np.pad(full, [(0, 0), (0, 0), *((0, ext) for ext in extension)])
        out = full[(slice(None), slice(None),
                    *(slice(b, n - a) for b, a, n in zip(befores, afters, full.shape[2:])))]
        return out + bias.reshape(1, -1, *(1,) * self.spatial) if bias is not None else out

    # --- native defaults -------------------------------------------------------------------------------------
    def native_torch_module(self, site: Site) -> torch.nn.Module:
        p, written = site.params, site.written_names
        args: dict[str, Any] = {"in_channels": site.in_shape[1], "out_channels": p["filters"],
                                "kernel_size": p["kernel_size"]}
        args.update(site.written_args(strides="stride", output_padding="output_padding", dilation_rate="dilation",
                                      groups="groups", use_bias="bias"))
        if "padding" in written:
            if p["padding"] == "same":
                raise Refusal(f"PyTorch's {self.torch_conv_type.__name__} has no padding='same' (it takes numbers "
                              "only)", field="params.padding")
            args["padding"] = (0,) * self.spatial if p["padding"] == "valid" else p["padding"]
        return self.torch_conv_type(**args)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        p, written = site.params, site.written_names
        layer = self.keras_conv_type.__name__
        args: dict[str, Any] = {"filters": p["filters"], "kernel_size": p["kernel_size"], "dtype": site.dtype}
        if "groups" in written and p["groups"] != 1:
            args["groups"] = p["groups"]  # Keras's transposed convolutions take none: its own error is the finding
        args.update(site.written_args(strides="strides", dilation_rate="dilation_rate", use_bias="use_bias"))
        if "padding" in written:
            args["padding"] = native_keras_padding(p["padding"], p["kernel_size"], layer)
        if "output_padding" in written:
            args["output_padding"] = p["output_padding"]
        return self.keras_conv_type(**args)

    # --- porting a PyTorch model -------------------------------------------------------------------------------
    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        check_torch_type(module, self)
        check_in_channels(module, in_shape, self.spatial + 2)
        kind = type(module).__name__
        params: dict[str, Any] = {"filters": module.out_channels, "kernel_size": pair_param(module.kernel_size)}
        for name, attribute in (("strides", "stride"), ("padding", "padding"), ("output_padding", "output_padding"),
                                ("dilation_rate", "dilation")):
            value = tuple(getattr(module, attribute))
            if len(value) != self.spatial or not all(isinstance(v, int) for v in value):
                raise Refusal(f"{kind}'s {attribute} {getattr(module, attribute)!r} is not {self.spatial} "
                              "integers", field=attribute)
            if value != ((1,) if name in ("strides", "dilation_rate") else (0,)) * self.spatial:
                params[name] = pair_param(value)
        if module.groups != 1:
            params["groups"] = module.groups
        if module.bias is None:
            params["use_bias"] = False
        return params


@register
class Conv1DTranspose(Conv2DTranspose):
    name = "conv1d_transpose"
    benchmark = {"params": {"filters": 32, "kernel_size": 4, "strides": 2, "padding": 1},
                 "input": {"shape": [8, 32, 512]}}
    doc = ("Transposed 1-D convolution of an (N, C, L) input (audio decoders, sequence upsampling), with "
           "output_padding, dilation and groups.")
    spatial = 1
    ranks = (3,)
    torch_types = ("ConvTranspose1d",)
    keras_conv_name = "Conv1DTranspose"
    torch_conv_name = "ConvTranspose1d"
    padding_doc = ("TensorFlow's transposed `same`: output size*stride; the full output cropped by max(keff - stride, "
                   "0) cells, the odd one at the end, keff = (kernel-1)*dilation + 1.")
    params = transpose_params(1)


@register
class Conv3DTranspose(Conv2DTranspose):
    name = "conv3d_transpose"
    benchmark = {"params": {"filters": 16, "kernel_size": 2, "strides": 2},
                 "input": {"shape": [2, 16, 8, 16, 16]}}
    doc = ("Transposed 3-D convolution of an (N, C, D, H, W) input (volumetric decoders, 3-D U-Nets), with "
           "output_padding, dilation and groups.")
    spatial = 3
    ranks = (5,)
    torch_types = ("ConvTranspose3d",)
    keras_conv_name = "Conv3DTranspose"
    torch_conv_name = "ConvTranspose3d"
    padding_doc = ("TensorFlow's transposed `same`: output size*stride; the full output cropped by max(keff - stride, "
                   "0) cells per axis, the odd one at the end (back/bottom/right), keff = (kernel-1)*dilation + 1.")
    params = transpose_params(3)
