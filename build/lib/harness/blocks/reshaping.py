"""Reshaping: `zero_padding2d`, `upsampling2d`.

- `zero_padding2d` adds zeros around H and W: `padding` is an int (all four sides), [h, w] (h rows at the top
  and at the bottom, w columns at the left and at the right) or [[top, bottom], [left, right]] (Keras's
  ZeroPadding2D order). PyTorch's ZeroPad2d wants (left, right, top, bottom), the last axis first
  (harness.core.spatial.torch_pad_arg); ZeroPad2d((1, 2)) pads only the width. Keras's default is 1 on every side;
  PyTorch's ZeroPad2d has no default.
- `upsampling2d` enlarges H and W by the integer factors `size` (PyTorch nn.Upsample(scale_factor),
  Keras UpSampling2D(size)).
  - `nearest`: each cell repeated size times (output i reads input floor(i / size)); exact in both.
  - `bilinear`, `align_corners: false`: output i samples input coordinate (i + 0.5) / size - 0.5 (half-pixel
    centres, clamped at 0), linear between the two neighbours. This is what Keras's UpSampling2D computes
    (tf.image.resize's half_pixel_centers): measured against PyTorch's align_corners=False, max |diff| 6.6e-7 in
    float32 on N(0, 1) data; against align_corners=True it differs by O(1) (0.95). But Keras computes it in
    float32 whatever its dtype (TensorFlow's ResizeBilinear kernel returns float32): in float64 it misses
    PyTorch by 9.1e-7, so in float64 the harness computes Keras's side as `BilinearUpSampling2D` below;
    `defaults: native` keeps Keras's own layer and shows that rounding.
  - `bilinear`, `align_corners: true`: output i samples input coordinate i * (H - 1) / (H * size - 1), corners
    on corners. Keras's UpSampling2D has no such switch; tf.compat.v1.image.resize_bilinear(align_corners=True)
    computes it (measured 2.4e-7 from PyTorch in float32) but only in float32 and only on TensorFlow, so the
    harness emulates it exactly with `BilinearUpSampling2D`: the interpolation as one matrix per axis
    (PyTorch's source coordinates, aten/src/ATen/native/UpSample.h area_pixel_compute_source_index, and
    np.interp's weights), applied with keras.ops.einsum in the layer's dtype.
  align_corners with `nearest` is refused: PyTorch's Upsample refuses it.

`defaults: native` builds what a person porting by hand writes, with only the parameters the case wrote:
PyTorch ZeroPad2d(padding) / Upsample(scale_factor, mode, align_corners); Keras ZeroPadding2D(padding) /
UpSampling2D(size, interpolation). Keras has no align_corners (left out, as a hand port leaves it out);
PyTorch has no default padding or scale factor (refused when the case writes none).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import torch

from harness.blocks.base import BENCHMARK_INPUT, Block
from harness.blocks.keras_layers import BilinearUpSampling2D
from harness.blocks.reference import onnx_op
from harness.blocks.registry import register
from harness.blocks.site import Site
from harness.core.errors import Refusal
from harness.core.schema import Param
from harness.core.spatial import Pads, torch_pad_arg


class PadsParam(Param):
    """Padding per side (kind `pads`): an int >= 0 for all four sides, [h, w] for top = bottom = h and left =
    right = w, or [[top, bottom], [left, right]] -> ((top, bottom), (left, right))."""

    def allowed(self) -> str:
        return "an integer >= 0, a list [h, w] of two such integers, or [[top, bottom], [left, right]]"

    def _normalise(self, v: Any) -> tuple[bool, Any]:
        def amount(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= 0

        if amount(v):
            return True, ((v, v), (v, v))
        if isinstance(v, (list, tuple)) and len(v) == 2:
            if all(amount(x) for x in v):
                return True, ((int(v[0]), int(v[0])), (int(v[1]), int(v[1])))
            if all(isinstance(pair, (list, tuple)) and len(pair) == 2 and all(amount(x) for x in pair) for pair in v):
                return True, tuple((int(a), int(b)) for a, b in v)
        return False, None


def pads_text(pads: Pads) -> Any:
    """Padding as a person writes it in YAML: 1, [1, 2] or [[0, 1], [2, 3]]."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right:
        return top
    if top == bottom and left == right:
        return [top, left]
    return [[top, bottom], [left, right]]


@register
class ZeroPadding2D(Block):
    name = "zero_padding2d"
    benchmark = {"params": {"padding": [[1, 2], [0, 3]]}, "input": BENCHMARK_INPUT}
    family = "reshaping"
    doc = "Zeros added around H and W: [[top, bottom], [left, right]] (PyTorch's ZeroPad2d takes left, right first)."
    ranks = (4,)
    params = (PadsParam("padding", "pads", ((1, 1), (1, 1)), default_text="1",
                        doc="zeros per side: int (all four), [h, w] (each on both sides) or [[top, bottom], "
                            "[left, right]]; default 1, Keras's (PyTorch's ZeroPad2d has none)"),)
    torch_types = ("ZeroPad2d", "ConstantPad2d")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, c, h, w = site.in_shape
        (top, bottom), (left, right) = site.params["padding"]
        return n, c, h + top + bottom, w + left + right

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.ZeroPad2d(torch_pad_arg(site.params["padding"]))

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.ZeroPadding2D(site.params["padding"], dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        (top, bottom), (left, right) = site.params["padding"]
        return onnx_op("Pad", x, np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64), mode="constant")

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        if "padding" not in site.written_names:
            raise Refusal("PyTorch's ZeroPad2d has no default padding (Keras's ZeroPadding2D pads 1 on every side)",
                          field="params.padding")
        (top, bottom), (left, right) = site.params["padding"]
        return torch.nn.ZeroPad2d((left, right, top, bottom))

    def native_keras_layer(self, site: Site) -> keras.Layer:
        kwargs = site.written_args(padding="padding")
        return keras.layers.ZeroPadding2D(dtype=site.dtype, **kwargs)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        kind = type(module).__name__
        if kind not in self.torch_types:
            raise Refusal(f"{self.name} reads {', '.join(self.torch_types)}, not {kind}")
        if float(module.value) != 0.0:
            raise Refusal(f"{kind}.value={module.value}: only zeros have a Keras layer (ZeroPadding2D)", field="value")
        amounts = tuple(module.padding)
        if len(amounts) == 2:  # F.pad's pairs start from the last axis: (left, right) pads the width only
            amounts = (*amounts, 0, 0)
        if len(amounts) != 4 or any(a < 0 for a in amounts):
            raise Refusal(f"{kind}.padding={module.padding}: only (left, right, top, bottom) amounts >= 0 have a "
                          "translation (a negative one crops)", field="padding")
        left, right, top, bottom = (int(a) for a in amounts)
        return {"padding": pads_text(((top, bottom), (left, right)))}


@register
class UpSampling2D(Block):
    name = "upsampling2d"
    benchmark = {"params": {"size": 2, "interpolation": "bilinear"}, "input": BENCHMARK_INPUT}
    family = "reshaping"
    doc = "Enlarge H and W by integer factors: nearest repeats cells; bilinear interpolates (align_corners or not)."
    ranks = (4,)
    params = (
        Param("size", "pair", (2, 2), minimum=1, default_text="2",
              doc="integer factors for H and W (PyTorch's scale_factor; Keras's default 2, PyTorch has none)"),
        Param("interpolation", "choice", "nearest", choices=("nearest", "bilinear"),
              doc="nearest: each cell repeated; bilinear: linear in H and W (both frameworks' default: nearest)"),
        Param("align_corners", "bool", False,
              doc="bilinear only: false = half-pixel centres (Keras's only kind); true = corner cells on corner "
                  "cells (PyTorch's align_corners=True, emulated on Keras)"),
    )
    torch_types = ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        p = site.params
        if p["align_corners"] and p["interpolation"] != "bilinear":
            raise Refusal("align_corners applies to bilinear interpolation only (PyTorch's Upsample refuses it with "
                          "nearest)", field="params.align_corners")
        n, c, h, w = site.in_shape
        return n, c, h * p["size"][0], w * p["size"][1]

    def reduction_length(self, site: Site) -> int:
        """Nearest copies cells: 1. Bilinear sums 4 weighted neighbours, but its error grows with the input size:
        both frameworks compute the source coordinate in the input's dtype, off by up to about size * eps, and
        the output by that times the step between neighbours (measured in float32, uniform [-1, 1) data, factor
        3 or align_corners: PyTorch 1.5e-6 from float64 at 16x16, 5.8e-6 at 64x64, 4.9e-5 at 256x256, i.e.
        about 1.6 * size ulp; Keras's UpSampling2D alike). So K = max(H, W)^2, which makes the default rtol
        16 * eps * max(H, W): 10x above the measured error, and still far below any mapping mistake (O(0.1))."""
        if site.params["interpolation"] != "bilinear":
            return 1
        return max(4, max(site.in_shape[2:]) ** 2)

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        bilinear = p["interpolation"] == "bilinear"
        return torch.nn.Upsample(scale_factor=tuple(float(f) for f in p["size"]), mode=p["interpolation"],
                                 align_corners=p["align_corners"] if bilinear else None)

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        # Keras's own bilinear runs in float32 (then casts): exact enough for float32 and below, not for float64.
        if p["interpolation"] == "bilinear" and (p["align_corners"] or site.dtype == "float64"):
            return BilinearUpSampling2D(p["size"], p["align_corners"], dtype=site.dtype)
        return keras.layers.UpSampling2D(p["size"], interpolation=p["interpolation"], dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        p = site.params
        sizes = np.array(self.output_shape(site), dtype=np.int64)
        none = np.array([], dtype=np.float64)  # Resize's roi and scales, left out: the output sizes say it
        if p["interpolation"] == "nearest":
            return onnx_op("Resize", x, none, none, sizes, mode="nearest",
                           coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return onnx_op("Resize", x, none, none, sizes, mode="linear",
                       coordinate_transformation_mode="align_corners" if p["align_corners"] else "half_pixel")

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        p, written = site.params, site.written_names
        if "size" not in written:
            raise Refusal("PyTorch's Upsample has no default scale_factor (Keras's UpSampling2D doubles)",
                          field="params.size")
        kwargs: dict[str, Any] = {"scale_factor": p["size"]}
        if "interpolation" in written:
            kwargs["mode"] = p["interpolation"]
        if "align_corners" in written:
            if kwargs.get("mode", "nearest") == "nearest":
                raise Refusal("PyTorch's Upsample refuses align_corners (even false) with mode 'nearest'",
                              field="params.align_corners")
            kwargs["align_corners"] = p["align_corners"]
        return torch.nn.Upsample(**kwargs)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        kwargs = site.written_args(size="size", interpolation="interpolation")
        return keras.layers.UpSampling2D(dtype=site.dtype, **kwargs)  # Keras has no align_corners: left out

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        kind = type(module).__name__
        if kind not in self.torch_types:
            raise Refusal(f"{self.name} reads {', '.join(self.torch_types)}, not {kind}")
        if module.mode not in ("nearest", "bilinear"):
            raise Refusal(f"{kind}.mode={module.mode!r}: only 'nearest' and 'bilinear' have a Keras UpSampling2D "
                          "translation", field="mode")
        if module.scale_factor is not None:
            given = module.scale_factor
            factors = tuple(given) if isinstance(given, (tuple, list)) else (given, given)
        else:  # an output size: a factor only where it is a whole multiple of the input's
            out = module.size if isinstance(module.size, (tuple, list)) else (module.size, module.size)
            factors = tuple(o / i for o, i in zip(out, in_shape[2:]))
        if len(factors) != 2 or any(float(f) != int(f) or f < 1 for f in factors):
            what = f"scale_factor={module.scale_factor}" if module.scale_factor is not None else f"size={module.size}"
            raise Refusal(f"{kind}.{what} on an input of {list(in_shape[2:])}: Keras's UpSampling2D takes whole "
                          "factors >= 1 only", field="scale_factor" if module.scale_factor is not None else "size")
        size = (int(factors[0]), int(factors[1]))
        params: dict[str, Any] = {"size": size[0] if size[0] == size[1] else list(size)}
        if module.mode == "bilinear":
            params["interpolation"] = "bilinear"
            if module.align_corners:
                params["align_corners"] = True
        return params
