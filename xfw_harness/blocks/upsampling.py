"""Upsampling: `upsampling1d`, `upsampling2d`, `upsampling3d` enlarge each spatial axis of (N, C, L),
(N, C, H, W) or (N, C, D, H, W) by an integer factor (`size`, one per axis): PyTorch nn.Upsample(scale_factor)
(F.interpolate), Keras UpSampling1D/2D/3D(size). Keras's default factor is 2 on every axis; PyTorch's Upsample has
none. Any other output size, factor or convention is the `resize` block's (xfw_harness/blocks/resize.py).

- `nearest` (every rank): each cell repeated size times (output i reads input floor(i / size)); exact in both
  (Keras repeats: keras/src/layers/reshaping/up_sampling1d.py and up_sampling3d.py, keras.ops.repeat per axis).
  Measured: nn.Upsample(scale_factor, mode='nearest') on (N, C, L) and (N, C, D, H, W) equals UpSampling1D/3D
  bit for bit, in float32 and float64 (tests/blocks/test_padding_resizing.py), for factors up to 40: PyTorch
  computes the source index in float32 (i * float(1 / size)), and from 41 on some factors read the cell before at
  multiples of the factor (measured, torch 2.13: 41, 47, 55, 61, 82, 83, ...; output 41 of a factor 41 reads input
  0). There the harness gathers PyTorch's indices on Keras's side (NearestGather, resize_layers.py) and the
  reference takes them too (cases/upsampling.yaml, nearest_float32_index_golden). UpSampling1D and UpSampling3D have
  no other interpolation; PyTorch's linear (1-D) and trilinear (3-D) have no Keras layer and are not read.
- `upsampling2d` also interpolates:
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
PyTorch Upsample(scale_factor, mode, align_corners); Keras UpSampling1D/2D/3D(size, interpolation). Keras has no
align_corners (left out, as a hand port leaves it out); PyTorch has no default scale factor (refused when the case
writes none).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block, Corner, Emulation
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.resize import nearest_source
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
keras_layers = lazy_module("xfw_harness.blocks.keras_layers")
resize_layers = lazy_module("xfw_harness.blocks.resize_layers")


def torch_nearest_indices(site: Site) -> list[np.ndarray]:
    """The input cell each output cell reads on each spatial axis in PyTorch's nearest (float32 arithmetic,
    xfw_harness.blocks.resize.nearest_source): i // factor, except for some factors of 41 and more (measured, torch
    2.13: 41, 47, 55, 61, 82, 83, ...; output 41 of a factor 41 reads input 0)."""
    return [nearest_source(n, n * f, float(f), False) for n, f in zip(site.in_shape[2:], site.params["size"])]


def nearest_rounds(site: Site) -> bool:
    """Whether PyTorch's nearest reads another cell than i // factor somewhere: then Keras's UpSampling (which repeats
    each cell exactly) misses it, and the harness gathers PyTorch's indices on Keras's side (NearestGather)."""
    if site.params.get("interpolation", "nearest") != "nearest":
        return False
    return any((idx != np.arange(len(idx)) // f).any() for idx, f in zip(torch_nearest_indices(site),
                                                                          site.params["size"]))


NEAREST_EMULATIONS = (
    Emulation("keras_nearest_float32_index",
              "PyTorch's nearest computes its source index in float32 (output 41 of a factor 41 reads input 0): "
              "Keras's UpSampling repeats each cell exactly, so there the harness's NearestGather takes PyTorch's "
              "indices (resize.nearest_source). The reference gathers by the same indices: PyTorch's own Upsample, "
              "on the other side, is the check outside them",
              nearest_rounds, "framework"),
)


def keras_bilinear_by_matrix(site: Site) -> bool:
    """Whether upsampling2d's Keras side is the harness's BilinearUpSampling2D (Keras's UpSampling2D has no
    align_corners, and computes bilinear in float32 whatever its dtype)."""
    p = site.params
    return p.get("interpolation") == "bilinear" and (p["align_corners"] or site.dtype == "float64")


BILINEAR_EMULATIONS = (
    Emulation("keras_bilinear_matrix",
              "Keras's UpSampling2D has no align_corners and computes bilinear in float32: for align_corners, or in "
              "float64, the harness's BilinearUpSampling2D applies one interpolation matrix per axis "
              "(linear_interpolation_matrix); the reference is ONNX's Resize (align_corners / half_pixel)",
              keras_bilinear_by_matrix, "reference",
              (Corner("align_corners", lambda s: s.params["align_corners"]),
               Corner("float64 half-pixel", lambda s: not s.params["align_corners"]),
               Corner("size-1 axis", lambda s: 1 in s.in_shape[2:]),
               Corner("factor 1 on an axis", lambda s: 1 in s.params["size"]),
               Corner("unequal factors", lambda s: len(set(s.params["size"])) > 1),
               Corner("odd size", lambda s: any(n % 2 for n in s.in_shape[2:])),
               Corner("even size", lambda s: any(n % 2 == 0 for n in s.in_shape[2:])))),
)


class _UpSampling(Block):
    """upsampling1d/2d/3d: one class, `spatial` axes; `modes` the PyTorch modes read (and the `interpolation`
    choices where the block has that parameter)."""

    spatial: ClassVar[int]
    modes: ClassVar[tuple[str, ...]] = ("nearest",)
    family = "resizing"

    @staticmethod
    def _size_param(spatial: int) -> Param:
        axes = {1: "L", 2: "H and W", 3: "D, H and W"}[spatial]
        return Param("size", "pair", (2,) * spatial, minimum=1, default_text="2", size=spatial,
                     doc=f"integer factors for {axes} (PyTorch's scale_factor; Keras's default 2, PyTorch has none)")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        p = site.params
        if p.get("align_corners") and p["interpolation"] != "bilinear":
            raise Refusal("align_corners applies to bilinear interpolation only (PyTorch's Upsample refuses it with "
                          "nearest)", field="params.align_corners")
        return (*site.in_shape[:2], *(s * f for s, f in zip(site.in_shape[2:], p["size"])))

    def reduction_length(self, site: Site) -> int:
        """Nearest copies cells: 1. Bilinear sums 4 weighted neighbours, but its error grows with the input size:
        both frameworks compute the source coordinate in the input's dtype, off by up to about size * eps, and
        the output by that times the step between neighbours (measured in float32, uniform [-1, 1) data, factor
        3 or align_corners: PyTorch 1.5e-6 from float64 at 16x16, 5.8e-6 at 64x64, 4.9e-5 at 256x256, i.e.
        about 1.6 * size ulp; Keras's UpSampling2D alike). So K = max(H, W)^2, which makes the default rtol
        16 * eps * max(H, W): 10x above the measured error, and still far below any mapping mistake (O(0.1))."""
        if site.params.get("interpolation", "nearest") != "bilinear":
            return 1
        return max(4, max(site.in_shape[2:]) ** 2)

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        mode = p.get("interpolation", "nearest")
        return torch.nn.Upsample(scale_factor=tuple(float(f) for f in p["size"]), mode=mode,
                                 align_corners=p["align_corners"] if mode == "bilinear" else None)

    emulations = NEAREST_EMULATIONS

    def keras_layer(self, site: Site) -> keras.Layer:
        size = site.params["size"]
        if nearest_rounds(site):
            return resize_layers.NearestGather(torch_nearest_indices(site), dtype=site.dtype)
        return getattr(keras.layers, f"UpSampling{self.spatial}D")(size[0] if self.spatial == 1 else size,
                                                                    dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        p = site.params
        sizes = np.array(self.output_shape(site), dtype=np.int64)
        none = np.array([], dtype=np.float64)  # Resize's roi and scales, left out: the output sizes say it
        if nearest_rounds(site):  # PyTorch's float32 index, which ONNX's float64 Resize does not reproduce
            for axis, idx in enumerate(torch_nearest_indices(site), start=2):
                x = np.take(x, idx, axis=axis)
            return x
        if p.get("interpolation", "nearest") == "nearest":
            return onnx_op("Resize", x, none, none, sizes, mode="nearest",
                           coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return onnx_op("Resize", x, none, none, sizes, mode="linear",
                       coordinate_transformation_mode="align_corners" if p["align_corners"] else "half_pixel")

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        p, written = site.params, site.written_names
        if "size" not in written:
            raise Refusal(f"PyTorch's Upsample has no default scale_factor (Keras's UpSampling{self.spatial}D "
                          "doubles)", field="params.size")
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
        if self.spatial == 1 and "size" in kwargs:
            kwargs["size"] = kwargs["size"][0]
        # Keras has no align_corners: left out
        return getattr(keras.layers, f"UpSampling{self.spatial}D")(dtype=site.dtype, **kwargs)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        kind = type(module).__name__
        if kind not in self.torch_types:
            raise Refusal(f"{self.name} reads {', '.join(self.torch_types)}, not {kind}")
        k = self.spatial
        if len(in_shape) != k + 2:
            raise Refusal(f"{self.name} takes an input of rank {k + 2}, got {list(in_shape)}")
        if module.mode not in self.modes:
            raise Refusal(f"{kind}.mode={module.mode!r}: only {' and '.join(repr(m) for m in self.modes)} have a "
                          f"Keras UpSampling{k}D translation", field="mode")
        if module.scale_factor is not None:
            given = module.scale_factor
            factors = tuple(given) if isinstance(given, (tuple, list)) else (given,) * k
        else:  # an output size: a factor only where it is a whole multiple of the input's
            out = module.size if isinstance(module.size, (tuple, list)) else (module.size,) * k
            factors = tuple(o / i for o, i in zip(out, in_shape[2:]))
        if len(factors) != k or any(float(f) != int(f) or f < 1 for f in factors):
            what = f"scale_factor={module.scale_factor}" if module.scale_factor is not None else f"size={module.size}"
            raise Refusal(f"{kind}.{what} on an input of {list(in_shape[2:])}: Keras's UpSampling{k}D takes whole "
                          "factors >= 1 only", field="scale_factor" if module.scale_factor is not None else "size")
        size = [int(f) for f in factors]
        params: dict[str, Any] = {"size": size[0] if len(set(size)) == 1 else size}
        if module.mode == "bilinear":
            params["interpolation"] = "bilinear"
            if module.align_corners:
                params["align_corners"] = True
        return params


@register
class UpSampling1D(_UpSampling):
    name = "upsampling1d"
    spatial = 1
    benchmark = {"params": {"size": 2}, "input": {"shape": [8, 32, 1024]}}
    doc = "Enlarge L by an integer factor, each cell repeated (PyTorch's Upsample nearest, Keras's UpSampling1D)."
    ranks = (3,)
    params = (_UpSampling._size_param(1),)
    torch_types = ("Upsample",)


@register
class UpSampling2D(_UpSampling):
    name = "upsampling2d"
    spatial = 2
    modes = ("nearest", "bilinear")
    benchmark = {"params": {"size": 2, "interpolation": "bilinear"}, "input": BENCHMARK_INPUT}
    doc = "Enlarge H and W by integer factors: nearest repeats cells; bilinear interpolates (align_corners or not)."
    ranks = (4,)
    params = (
        _UpSampling._size_param(2),
        Param("interpolation", "choice", "nearest", choices=("nearest", "bilinear"),
              doc="nearest: each cell repeated; bilinear: linear in H and W (both frameworks' default: nearest)"),
        Param("align_corners", "bool", False,
              doc="bilinear only: false = half-pixel centres (Keras's only kind); true = corner cells on corner "
                  "cells (PyTorch's align_corners=True, emulated on Keras)"),
    )
    torch_types = ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")
    emulations = (*NEAREST_EMULATIONS, *BILINEAR_EMULATIONS)

    def notes(self, site: Site) -> tuple[str, ...]:
        p = site.params
        if not keras_bilinear_by_matrix(site):
            return ()
        if p["align_corners"]:
            return ("Keras's UpSampling2D has no align_corners: the harness computes PyTorch's align_corners=True "
                    "itself (its BilinearUpSampling2D layer, one interpolation matrix per axis)",)
        return ("Keras's bilinear UpSampling2D computes in float32: in float64 the harness computes it itself "
                "(its BilinearUpSampling2D layer)",)

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        if nearest_rounds(site):
            return resize_layers.NearestGather(torch_nearest_indices(site), dtype=site.dtype)
        # Keras's own bilinear runs in float32 (then casts): exact enough for float32 and below, not for float64.
        if keras_bilinear_by_matrix(site):
            return keras_layers.BilinearUpSampling2D(p["size"], p["align_corners"], dtype=site.dtype)
        return keras.layers.UpSampling2D(p["size"], interpolation=p["interpolation"], dtype=site.dtype)


@register
class UpSampling3D(_UpSampling):
    name = "upsampling3d"
    spatial = 3
    benchmark = {"params": {"size": 2}, "input": {"shape": [2, 16, 16, 32, 32]}}
    doc = "Enlarge D, H and W by integer factors, each cell repeated (PyTorch's Upsample nearest, Keras's UpSampling3D)"
    ranks = (5,)
    params = (_UpSampling._size_param(3),)
    torch_types = ("Upsample",)
