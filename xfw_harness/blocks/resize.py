"""Resizing: `resize` is F.interpolate / nn.Upsample on (N, C, H, W), to an explicit output `size` or by a
`scale_factor` (integer or not), in PyTorch's four 2-D modes, each convention mapped exactly or refused. Per axis,
an input of length n becomes m = `size`, or floor(n * scale_factor) (torch/nn/functional.py interpolate; ATen
alike). PyTorch's source coordinates (aten/src/ATen/native/UpSample.h) use a scale per axis:
- align_corners (bilinear, bicubic): (n - 1) / (m - 1) (0 when m = 1), output i samples input i * scale;
- otherwise 1 / scale_factor where a scale_factor was given and `recompute_scale_factor` is false (PyTorch's
  default: compute_scales_value), else n / m (an explicit size, or recompute_scale_factor=True, which recomputes m
  first and then forgets the factor). The two differ wherever n * scale_factor is not a whole number: 2.5 on 5 rows
  is 12 rows sampled at (i + 0.5) / 2.5 - 0.5, not at (i + 0.5) * 5 / 12 - 0.5.

The modes (measured against torch 2.13's CPU kernels in float64 on 1,000+ size pairs and factors: the harness's
computation matches them to 1e-14; tests/blocks/test_padding_resizing.py; CUDA's kernels, with their own shortcuts
and index arithmetic, have not been measured):
- `nearest` (PyTorch's default): output i reads input min(floor(i * scale), n - 1), computed in float32 whatever
  the dtype (nearest_idx: the scale and the product are C floats), and an axis whose length is unchanged is copied
  and one exactly doubled reads i // 2 whatever the given factor (nearest_idx's two shortcuts: scale_factor=1.3 on 3
  rows copies them). This is ONNX Resize's asymmetric + floor, except where the float32 product rounds across an
  integer (ONNX's reference runtime differs at 72 of 3,393 size pairs n <= 39, m <= 89: 2 -> 82 reads input 0 at
  output 41 in PyTorch, 1 in float64).
- `nearest-exact`: min(floor((i + 0.5) * scale), n - 1), also in float32 (ONNX's half_pixel + round_prefer_ceil but
  at 119 of 3,471 size pairs). It is what TensorFlow's nearest computes (half-pixel centres): Keras's own
  Resizing(interpolation='nearest') equals it wherever scale = n / m (measured: 0 difference).
- `bilinear`: source x = scale * (i + 0.5) - 0.5 clamped at 0 (or i * scale with align_corners), the two cells
  floor(x) and floor(x) + 1 (the last one repeating) weighed 1 - t and t; an axis whose length is unchanged is copied
  whatever the factor (compute_source_index_and_lambda's shortcut, CPU kernels). Keras's Resizing('bilinear') is
  the half-pixel one with scale = n / m (measured 6.3e-7 from PyTorch in float32), computed in float32 whatever its
  dtype (5.9e-7 in float64); it has no align_corners (2.29 from PyTorch's align_corners=True).
- `bicubic`: x as for bilinear but not clamped, t = x - floor(x), the four cells floor(x) - 1 .. floor(x) + 2
  clamped into [0, n - 1] (upsample_get_value_bounded), weighed by Keys' cubic convolution with a = -0.75
  (get_cubic_upsample_coefficients). ONNX Resize's cubic with cubic_coeff_a = -0.75 and exclude_outside = 0 (edge
  padding) is the same. Keras's Resizing('bicubic') is TensorFlow's ScaleAndTranslate with its keyscubic kernel,
  a = -0.5 (tensorflow/core/kernels/image/sampling_kernels.h), taps outside the image dropped and the rest
  renormalised (measured: within 6.5e-7 of that formula at factors 2 and 4, 1e-3 at 3 and non-integer ratios;
  0.27 from PyTorch's bicubic on N(0, 1) data).

How the harness makes Keras compute it: Keras's own keras.layers.Resizing where it computes the same (bilinear
without align_corners, scale n / m on both axes, float32 and below; nearest-exact with scale n / m; nearest by whole
factors, where floor(i / k) is floor((i + 0.5) / k), except where PyTorch's float32 index is not i // k: 2 -> 82
reads input 0 at output 41, Keras's Resizing 1, measured, cases/resize.yaml); everywhere else (align_corners,
PyTorch's nearest, bicubic's a = -0.75, a scale_factor that is not n / m, bilinear in float64) the harness's own
`Interpolation2D` (resize_layers.py), in keras.ops: PyTorch's source indices per axis (a keras.ops.take for the
nearest modes) or PyTorch's interpolation weights as one [m, n] matrix per axis built in float64 and applied with
keras.ops.einsum in the layer's dtype.

The float64 reference is NumPy: the nearest modes by the float32 index rule above; bilinear and bicubic per output
coordinate with the coefficient functions of ONNX's reference runtime (onnx.reference.ops.op_resize._linear_coeffs,
_cubic_coeffs with a = -0.75). ONNX's Resize operator itself is not used for them: in onnx 1.23.2 it picks the
neighbours in edge-padded coordinates, so a source coordinate that rounds onto an integer when the padding is added
takes the wrong pair (7 -> 17 linear half_pixel, output 8: x = 3.0000000000000004 gives 2.0 where PyTorch and the
formula give 3.0), and it computes cubic coefficients in float32 (the cubic_coeff_a attribute is a float32 and NumPy
keeps float32 arithmetic: 2.1e-7 off on a constant input).

Refused as PyTorch refuses them: both `size` and `scale_factor` ("only one of size or scale_factor should be
defined"), align_corners with a nearest mode, recompute_scale_factor with a size ("not meaningful with an explicit
size"), an output length 0. Not translated: antialias=True, modes 'area', 'linear', 'trilinear' (other blocks' or
none). With neither size nor scale_factor written, the factor is 2 (UpSampling's default; PyTorch has none).

`defaults: native` builds the hand port: PyTorch nn.Upsample(size or scale_factor, mode, align_corners,
recompute_scale_factor as written) / Keras keras.layers.Resizing(m_h, m_w, interpolation) with the output size the
port computed and PyTorch's mode name (nearest-exact as 'nearest'), or Keras's default interpolation 'bilinear'
where none is written; Keras has no align_corners (left out, as a hand port leaves it out).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block, Corner, Emulation
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
resize_layers = lazy_module("xfw_harness.blocks.resize_layers")

MODES = ("nearest", "nearest-exact", "bilinear", "bicubic")
CUBIC_A = -0.75  # PyTorch's (get_cubic_upsample_coefficients); TensorFlow's keyscubic kernel has -0.5
# Keras's interpolation name for each PyTorch mode where Resizing computes PyTorch's values (see `_keras_computes`).
KERAS_NAMES = {"nearest": "nearest", "nearest-exact": "nearest", "bilinear": "bilinear", "bicubic": "bicubic"}


class ScalesParam(Param):
    """A scale factor per spatial axis (kind `scales`): a number > 0 for both, or [h, w] -> (h, w) floats."""

    def allowed(self) -> str:
        return "a number > 0, or a list [h, w] of two such numbers"

    def _normalise(self, v: Any) -> tuple[bool, Any]:
        def factor(x: Any) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0

        if factor(v):
            return True, (float(v), float(v))
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(factor(x) for x in v):
            return True, (float(v[0]), float(v[1]))
        return False, None

    def _json_schema(self) -> dict[str, Any]:
        factor = {"type": "number", "exclusiveMinimum": 0}
        return {"anyOf": [factor, self._json_list(factor, 2)]}


# --- PyTorch's per-axis rules (aten/src/ATen/native/UpSample.h) ---------------------------------------------------

def axis_scale(n: int, m: int, factor: float | None, align_corners: bool) -> float:
    """The scale PyTorch's source coordinates use on an axis of n cells resized to m (area_pixel_compute_scale):
    `factor` is the scale_factor the kernel is given (None: an explicit size, or one recomputed)."""
    if align_corners:
        return (n - 1) / (m - 1) if m > 1 else 0.0
    return 1.0 / factor if factor else n / m


def nearest_source(n: int, m: int, factor: float | None, exact: bool) -> np.ndarray:
    """The input index each of the m outputs reads (nearest_idx / nearest_exact_idx), in float32 as ATen does."""
    i = np.arange(m)
    if not exact and m == n:
        return i
    if not exact and m == 2 * n:
        return i // 2
    scale = np.float32(1.0 / factor) if factor else np.float32(n) / np.float32(m)
    offset = np.float32(0.5 if exact else 0.0)
    return np.minimum(np.floor((i.astype(np.float32) + offset) * scale).astype(np.int64), n - 1)


def interpolation_matrix(n: int, m: int, factor: float | None, mode: str, align_corners: bool) -> np.ndarray:
    """The [m, n] float64 weights of PyTorch's bilinear or bicubic resizing along one axis."""
    weights = np.zeros((m, n))
    rows = np.arange(m)
    if mode == "bilinear" and m == n:  # compute_source_index_and_lambda copies an unchanged axis
        return np.eye(n)
    scale = axis_scale(n, m, factor, align_corners)
    x = scale * rows if align_corners else scale * (rows + 0.5) - 0.5
    if mode == "bilinear":
        x = np.maximum(x, 0.0)
        low = np.minimum(np.floor(x).astype(np.int64), n - 1)
        t = np.clip(x - low, 0.0, 1.0)
        np.add.at(weights, (rows, low), 1.0 - t)
        np.add.at(weights, (rows, np.minimum(low + 1, n - 1)), t)
        return weights
    low = np.floor(x).astype(np.int64)
    t = x - low
    a = CUBIC_A

    def near(d: np.ndarray) -> np.ndarray:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: np.ndarray) -> np.ndarray:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    for offset, w in zip((-1, 0, 1, 2), (far(t + 1), near(t), near(1 - t), far(2 - t))):
        np.add.at(weights, (rows, np.clip(low + offset, 0, n - 1)), w)
    return weights


def _reference_axis(x: np.ndarray, axis: int, m: int, factor: float | None, mode: str,
                    align_corners: bool) -> np.ndarray:
    """One axis of the float64 reference, output coordinate by output coordinate (module doc)."""
    from onnx.reference.ops.op_resize import _cubic_coeffs, _linear_coeffs

    n = x.shape[axis]
    if mode in ("nearest", "nearest-exact"):
        return np.take(x, nearest_source(n, m, factor, mode == "nearest-exact"), axis=axis)
    if mode == "bilinear" and m == n:
        return x
    scale = axis_scale(n, m, factor, align_corners)
    out = []
    for i in range(m):
        x_ori = i * scale if align_corners else (i + 0.5) * scale - 0.5
        if mode == "bilinear":
            x_ori = min(max(x_ori, 0.0), n - 1.0)
            low = min(math.floor(x_ori), n - 1)
            taps, coeffs = [low, min(low + 1, n - 1)], _linear_coeffs(x_ori - low)
        else:
            low = math.floor(x_ori)
            taps = [min(max(low + k, 0), n - 1) for k in (-1, 0, 1, 2)]
            coeffs = _cubic_coeffs(x_ori - low, A=CUBIC_A)
        out.append(sum(c * np.take(x, t, axis=axis) for c, t in zip(coeffs, taps)))
    return np.stack(out, axis=axis)


def factors(site: Site) -> tuple[float, float] | None:
    """The scale_factor written, or the default 2 where no size is written either (None: a size)."""
    p = site.params
    if p["size"] is not None:
        return None
    return p["scale_factor"] if p["scale_factor"] is not None else (2.0, 2.0)


def kernel_scales(site: Site) -> tuple[float | None, float | None]:
    """The scale_factor per axis that PyTorch's kernel is given (None: it uses n / m)."""
    given = factors(site)
    if given is None or site.params["recompute_scale_factor"]:
        return None, None
    return given


def out_size(site: Site) -> tuple[int, ...]:
    """The output's (h, w): `size`, or floor(n * scale_factor) per axis (unchecked: Resize.output_shape refuses 0)."""
    given = factors(site)
    return site.params["size"] if given is None else \
        tuple(math.floor(s * f) for s, f in zip(site.in_shape[2:], given))


def keras_computes(site: Site) -> bool:
    """Whether Keras's own Resizing computes PyTorch's values here (module doc); elsewhere the harness's own
    Interpolation2D does (RESIZE_EMULATIONS)."""
    p = site.params
    (h, w), out = site.in_shape[2:], out_size(site)
    mode = p["interpolation"]
    # Keras samples at n / m; PyTorch too where no factor reaches the kernel, where it is exactly m / n, or (its
    # shortcuts: bilinear and nearest only) where the axis keeps its length.
    copies = mode in ("bilinear", "nearest")
    ratio = all(f is None or m == n * f or (copies and m == n)
                for n, m, f in zip((h, w), out, kernel_scales(site)))
    if mode == "bilinear":
        return ratio and not p["align_corners"] and site.dtype != "float64"
    if mode == "nearest-exact":
        return ratio
    if mode == "nearest":  # whole factors k, where PyTorch's float32 index is i // k: not everywhere (2 -> 82)
        return ratio and all(m % n == 0 and (nearest_source(n, m, f, False) == np.arange(m) // (m // n)).all()
                             for n, m, f in zip((h, w), out, kernel_scales(site)))
    return False  # bicubic: TensorFlow's a = -0.5


def _nearest(site: Site) -> bool:
    return site.params["interpolation"] in ("nearest", "nearest-exact")


def _scale_not_ratio(site: Site) -> bool:
    """A scale_factor reaches PyTorch's kernel that is not m / n on some axis (its coordinates are not Keras's)."""
    return any(f is not None and m != n * f for n, m, f in zip(site.in_shape[2:], out_size(site), kernel_scales(site)))


def _shrinks(site: Site) -> bool:
    return any(m < n for n, m in zip(site.in_shape[2:], out_size(site)))


def _float32_index_rounds(site: Site) -> bool:
    """A nearest source index that PyTorch's float32 arithmetic puts on another cell than float64 would (module doc:
    2 -> 82 reads input 0 at output 41)."""
    exact = site.params["interpolation"] == "nearest-exact"
    for n, m, f in zip(site.in_shape[2:], out_size(site), kernel_scales(site)):
        i, scale = np.arange(m), (1.0 / f if f else n / m)
        wide = np.minimum(np.floor((i + (0.5 if exact else 0.0)) * scale).astype(np.int64), n - 1)
        if (exact or m not in (n, 2 * n)) and (wide != nearest_source(n, m, f, exact)).any():
            return True
    return False


def _shortcut(site: Site) -> bool:
    """An axis PyTorch's nearest / bilinear kernels copy (kept length) or, nearest, read at i // 2 (doubled) whatever
    the scale_factor given."""
    return any(f is not None and m != n * f and (m == n or (m == 2 * n and site.params["interpolation"] == "nearest"))
               for n, m, f in zip(site.in_shape[2:], out_size(site), kernel_scales(site)))


SIZE_CORNERS = (Corner("size-1 input axis", lambda s: 1 in s.in_shape[2:]),
                Corner("size-1 output axis", lambda s: 1 in out_size(s)),
                Corner("odd size", lambda s: any(n % 2 for n in s.in_shape[2:])),
                Corner("even size", lambda s: any(n % 2 == 0 for n in s.in_shape[2:])),
                Corner("downscaling", _shrinks), Corner("scale_factor not m / n", _scale_not_ratio))

RESIZE_EMULATIONS = (
    Emulation("keras_nearest_by_index",
              "Keras's Resizing has no floor-rule nearest (nor PyTorch's coordinates for a scale_factor that is not "
              "m / n): the harness's Interpolation2D gathers PyTorch's source indices (nearest_source, in float32). "
              "The reference gathers by the same nearest_source: PyTorch's own F.interpolate, on the other side, is "
              "the check outside the harness's arithmetic",
              lambda s: not keras_computes(s) and _nearest(s), "framework",
              (*SIZE_CORNERS, Corner("nearest-exact", lambda s: s.params["interpolation"] == "nearest-exact"),
               Corner("float32 index rounding", _float32_index_rounds),
               Corner("kept or doubled axis with another scale_factor", _shortcut))),
    Emulation("keras_interpolation_matrix",
              "Keras's Resizing has no align_corners, no a = -0.75 bicubic, no float64 bilinear and no PyTorch "
              "coordinates for a scale_factor that is not m / n: the harness's Interpolation2D applies PyTorch's "
              "weights as one matrix per axis (interpolation_matrix); the reference computes each output from ONNX's "
              "coefficient functions (sharing only axis_scale, PyTorch's scale rule)",
              lambda s: not keras_computes(s) and not _nearest(s), "reference",
              (*SIZE_CORNERS, Corner("align_corners", lambda s: s.params["align_corners"]),
               Corner("bicubic", lambda s: s.params["interpolation"] == "bicubic"),
               Corner("float64 bilinear", lambda s: s.params["interpolation"] == "bilinear"
                      and s.dtype == "float64"))),
)


@register
class Resize(Block):
    name = "resize"
    family = "resizing"
    doc = ("F.interpolate / nn.Upsample on H and W: nearest, nearest-exact, bilinear, bicubic; to a size or by any "
           "scale factor; align_corners and recompute_scale_factor as PyTorch computes them.")
    ranks = (4,)
    benchmark = {"params": {"interpolation": "bicubic", "size": [48, 40]}, "input": BENCHMARK_INPUT}
    params = (
        Param("interpolation", "choice", "nearest", choices=MODES,
              doc="PyTorch's mode: nearest (floor, PyTorch's default), nearest-exact (half-pixel: TensorFlow's "
                  "nearest), bilinear, bicubic (a = -0.75); Keras's Resizing defaults to bilinear"),
        Param("size", "pair", None, minimum=1,
              doc="the output [h, w] (F.interpolate's size); none: scale_factor sets it"),
        ScalesParam("scale_factor", "scales", None, default_text="2 (when size is none)",
                    doc="factor per axis, integer or not: output floor(n * factor); used by the coordinates unless "
                        "recompute_scale_factor"),
        Param("align_corners", "bool", False,
              doc="bilinear and bicubic: corner cells on corner cells (scale (n - 1) / (m - 1)); Keras has no switch"),
        Param("recompute_scale_factor", "bool", False,
              doc="with scale_factor: interpolate with n / m instead of 1 / scale_factor (PyTorch's default false)"),
    )
    # Read where upsampling2d refuses them (a mode, factor or size UpSampling2D has no translation for): the modules
    # it reads stay upsampling2d's, as before.
    torch_fallback_types = ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")

    _factors = staticmethod(factors)
    _kernel_scales = staticmethod(kernel_scales)
    _keras_computes = staticmethod(keras_computes)
    emulations = RESIZE_EMULATIONS

    def output_shape(self, site: Site) -> tuple[int, ...]:
        p = site.params
        if p["size"] is not None and p["scale_factor"] is not None:
            raise Refusal("size and scale_factor both given: PyTorch's interpolate takes only one of them",
                          field="params.scale_factor")
        if p["align_corners"] and p["interpolation"] in ("nearest", "nearest-exact"):
            raise Refusal(f"align_corners with {p['interpolation']!r}: PyTorch refuses it (an interpolating mode "
                          "only: bilinear, bicubic)", field="params.align_corners")
        if p["recompute_scale_factor"] and p["size"] is not None:
            raise Refusal("recompute_scale_factor with an explicit size: PyTorch refuses it (not meaningful)",
                          field="params.recompute_scale_factor")
        n, c, h, w = site.in_shape
        out = out_size(site)
        if min(out) < 1:
            raise Refusal(f"output size {list(out)} from an input of {[h, w]}: PyTorch refuses an output length 0",
                          field="params.scale_factor")
        return n, c, *out

    def reduction_length(self, site: Site) -> int:
        """Nearest copies cells: 1. Bilinear and bicubic sum 2 and 4 weighted cells per axis, and both frameworks
        compute the source coordinate in the input's dtype, off by up to about size * eps (upsampling2d's
        reduction_length): K = the largest length, input or output, squared."""
        if site.params["interpolation"] in ("nearest", "nearest-exact"):
            return 1
        return max(16, max(*site.in_shape[2:], *self.output_shape(site)[2:]) ** 2)

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        given = self._factors(site)
        interpolating = p["interpolation"] in ("bilinear", "bicubic")
        return torch.nn.Upsample(size=tuple(p["size"]) if given is None else None, scale_factor=given,
                                 mode=p["interpolation"], align_corners=p["align_corners"] if interpolating else None,
                                 recompute_scale_factor=p["recompute_scale_factor"] if given is not None else None)

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        out = self.output_shape(site)[2:]
        if self._keras_computes(site):
            return keras.layers.Resizing(*out, interpolation=KERAS_NAMES[p["interpolation"]], dtype=site.dtype)
        return resize_layers.Interpolation2D(out, p["interpolation"], p["align_corners"], self._kernel_scales(site),
                                             dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        p = site.params
        out = self.output_shape(site)[2:]
        for axis, m, factor in zip((2, 3), out, self._kernel_scales(site)):
            x = _reference_axis(x, axis, m, factor, p["interpolation"], p["align_corners"])
        return x

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        p, written = site.params, site.written_names
        kwargs: dict[str, Any] = {}
        if p["size"] is not None:
            kwargs["size"] = tuple(p["size"])
        else:
            kwargs["scale_factor"] = self._factors(site)
        if "interpolation" in written:
            kwargs["mode"] = p["interpolation"]
        if "align_corners" in written:
            if kwargs.get("mode", "nearest") in ("nearest", "nearest-exact"):
                raise Refusal("PyTorch's Upsample refuses align_corners (even false) with a nearest mode",
                              field="params.align_corners")
            kwargs["align_corners"] = p["align_corners"]
        if "recompute_scale_factor" in written:
            kwargs["recompute_scale_factor"] = p["recompute_scale_factor"]
        return torch.nn.Upsample(**kwargs)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        kwargs = {"interpolation": KERAS_NAMES[site.params["interpolation"]]} \
            if "interpolation" in site.written_names else {}
        return keras.layers.Resizing(*self.output_shape(site)[2:], dtype=site.dtype, **kwargs)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        kind = type(module).__name__
        if kind not in self.torch_fallback_types:
            raise Refusal(f"{self.name} reads {', '.join(self.torch_fallback_types)}, not {kind}")
        if len(in_shape) != 4:
            raise Refusal(f"{self.name} resizes an input of rank 4, got {list(in_shape)}")
        if module.mode not in MODES:
            raise Refusal(f"{kind}.mode={module.mode!r}: {', '.join(MODES)} have a translation", field="mode")
        params: dict[str, Any] = {"interpolation": module.mode}
        if module.size is not None:
            size = module.size if isinstance(module.size, (tuple, list)) else (module.size, module.size)
            params["size"] = [int(s) for s in size]
        else:
            given = module.scale_factor
            factors = [float(f) for f in (given if isinstance(given, (tuple, list)) else (given, given))]
            params["scale_factor"] = factors[0] if factors[0] == factors[1] else factors
            if getattr(module, "recompute_scale_factor", None):
                params["recompute_scale_factor"] = True
        if module.align_corners:
            params["align_corners"] = True
        return params
