"""Window pooling: `max_pool1d`, `max_pool2d`, `max_pool3d`, `avg_pool1d`, `avg_pool2d`, `avg_pool3d`.

One class per operation, the number of spatial axes a class attribute: sequences (N, C, L), images (N, C, H, W) and
volumes (N, C, D, H, W) share every rule below, axis by axis (a parameter is an int for every axis or a list of one
per axis). Keras's MaxPooling1D/2D/3D and AveragePooling1D/2D/3D and PyTorch's MaxPool1d/2d/3d and AvgPool1d/2d/3d
pool the same axes once the harness has moved the channels last.

Window semantics (channels-first): windows of `pool_size` every `strides` (default: pool_size, in both
frameworks) over the input padded as `padding` says, the first window at the top-left padded corner.
- Output size: floor mode by default; `ceil_mode: true` is PyTorch's rule (aten/src/ATen/native/Pool.h,
  pooling_output_shape_pad_lr; xfw_harness.core.spatial.ceil_output_size_1d): the span is rounded up, so the last
  window may reach past the right/bottom padding, and a last window that would start at or after the end of
  the input (inside the right padding) is dropped. The cells past the padding ("overhang") count for nothing.
- Max pooling pads with -inf, never zeros: a zero pad changes the result wherever a window is all negative.
  PyTorch pads with -inf itself but refuses padding > half the window; Keras has only valid/same (same
  ignores padded cells). Elsewhere the harness pads with -inf explicitly and pools `valid`.
- `dilation` (max pooling only: PyTorch's MaxPool1d/2d/3d take it, AvgPool1d/2d/3d have no such argument, checked
  in their signatures): the window's taps are `dilation` cells apart, so it spans (k - 1) * d + 1 cells; output
  size, `same` padding (TensorFlow's rule with that span) and ceil mode's overhang count that span. PyTorch still
  refuses padding above half of k itself (measured: k 3, dilation 2, padding 2 raises "pad should be smaller than or
  equal to half of kernel size"). Keras's MaxPooling layers and keras.ops.max_pool have no dilation: the harness's
  DilatedMaxPooling (xfw_harness.blocks.pooling_layers) takes the maximum of the window's taps, each a strided slice of
  the -inf-padded input. A point whose dilated window would hold no input cell is refused.
- TensorFlow has CPU kernels for AvgPool3D and MaxPool3D in float32 and bfloat16 only (measured: float64 and float16
  raise NotFoundError / InvalidArgumentError; 1-D and 2-D pooling and the global 3-D layers run in all four): there
  the harness pools by the window's taps in keras.ops (strided slices added or maximised), and `defaults: native`
  refuses. PyTorch 2.13's CPU avg_pool3d has no float16 or bfloat16 kernel ("not implemented for 'Half'"): such a
  point errors on the CPU. PyTorch's AvgPool3d, unlike AvgPool1d/2d and MaxPool3d, refuses an input smaller than the
  window on any axis even where the padding makes room (measured: 1x1x1, window 2, padding 1 raises "input image
  smaller than kernel size"; avg_pool2d gives 1x1): the harness zero-pads before it there.
- Average pooling divides by the window size when `count_include_pad` is true (PyTorch's default), and by
  the number of real input cells in the window when false (the harness's default, as ONNX and TensorFlow's
  `same`, tensorflow#45579). Where a framework has no switch for a combination, the harness computes
  sum / count as avg_pool(zero-padded x) / avg_pool(zero-padded mask), which is exactly that.
- The divisor of a ceil_mode window that overhangs (verified by running PyTorch, and in its CPU kernel
  aten/src/ATen/native/cpu/AvgPoolKernel.cpp: pool_size = (min(ih0 + kH, H + padH) - ih0) * ...): with
  count_include_pad it counts the window's cells up to the padded bounds, padding included, but never the
  overhang past them; without, only the real cells. E.g. width 6, pool 3, stride 2, padding 1, ceil_mode: a
  fourth window covers x[5], one padding cell and one cell past the padding, and divides by 2 with
  count_include_pad, by 1 without (cases/pooling.yaml, ceil_mode_avg_divisor_golden; measured in 1-D too:
  avg_pool1d of 0..5 gives [0.333, 2, 4, 2.5] with count_include_pad, [0.5, 2, 4, 5] without).
Keras has no ceil_mode: the harness pads the overhang explicitly (-inf for max; uncounted zeros for average,
through the sum / count layer) and pools `valid`, which gives ceil mode's windows exactly.
Keras's torch backend averages `same` over replicated cells where TensorFlow's rule pads unequally (the odd cell at
the end): it pads with mode="replicate" and counts those cells (keras/src/backend/torch/nn.py, average_pool and
_apply_same_padding); there the harness computes sum / count, and cases/backend_differences.yaml holds Keras's own.

The geometry (window, strides, padding, ceil mode's overhang), the path each framework's builder takes and the
emulations those paths are (Block.emulations, issue 18) are pooling_geometry.py's, declared with the very functions
the builders branch on.

The float64 reference is ONNX's reference MaxPool / AveragePool, given the input already padded (-inf for max, the
counted zeros for average) and ceil mode's overhang as uncounted padding. Its own pads and ceil_mode are bypassed
for max pooling: at stride 1 it runs an older routine (onnx/reference/ops/_op_common_pool.py) that reads pads as
[top, bottom, left, right] where ONNX's order is [top, left, bottom, right], and whose ceil-mode output is too large
(measured: 3x3 input, window 2, padding 1 gives 6x6; PyTorch 4x4); for average pooling it splits a ceil-mode
overhang between both ends (measured: H 2, window 4, stride 3 averages the wrong cells). So used, it matched
PyTorch's float64 pooling on all 747 points of a sweep (1-D, 2-D, 3-D; windows 1-3, strides 1-3, padding 0-1,
dilation 1-2, ceil mode, both divisors, `same` padding; max exactly, average within 1e-13).

`defaults: native` builds what a person porting by hand writes, with only the parameters the case wrote:
PyTorch MaxPool/AvgPool{1,2,3}d(kernel_size, stride, padding, dilation, ceil_mode, count_include_pad), Keras
MaxPooling/AveragePooling{1,2,3}D(pool_size, strides, padding). A numeric padding becomes Keras's usual idiom,
ZeroPadding{1,2,3}D(p) then `valid` pooling: zeros, not -inf, before max pooling, and zeros that count in the
average's divisor (count_include_pad true). A parameter a framework has no name for (Keras: ceil_mode,
count_include_pad, dilation; PyTorch: keepdims) is left out, as a hand port leaves it out (cases/known_differences.yaml,
max_pool_dilation_dropped_by_keras); a value a framework's layer refuses (PyTorch: padding 'same', or above half the
window) is refused.
"""

from __future__ import annotations

from math import prod
from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks import pooling_geometry
from xfw_harness.blocks.base import BENCHMARK_INPUT, Block
from xfw_harness.blocks.pooling_common import (
    AXES,
    AXES_LIST,
    adaptive_output_size,
    pads_minus_nd,
    sizes_text,
    torch_sizes,
)
from xfw_harness.blocks.pooling_geometry import (
    avg_pool_emulations,
    keras_avg_path,
    keras_max_path,
    max_pool_emulations,
    torch_avg_path,
    torch_max_path,
)
from xfw_harness.blocks.pooling_geometry import no_pads as _no_pads
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param
from xfw_harness.core.spatial import Sizes, effective_kernel, pool_output_size, torch_pad_arg

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
keras_layers = lazy_module("xfw_harness.blocks.keras_layers")
pooling_layers = lazy_module("xfw_harness.blocks.pooling_layers")

NEG_INF = float("-inf")


def window_params(spatial: int) -> tuple[Param, ...]:
    """The parameters every window pooling of `spatial` axes takes."""
    padding_doc = (f"'valid' = none; 'same' = TensorFlow's same; int or {AXES_LIST[spatial]} = that many cells on "
                   "both sides")
    return (
        Param("pool_size", "pair", minimum=1, doc=f"window {AXES[spatial]}", size=spatial),
        Param("strides", "pair", None, minimum=1, default_text="pool_size", size=spatial,
              doc="step between windows; default: pool_size (both frameworks' default)"),
        Param("padding", "padding", "valid", doc=padding_doc, size=spatial),
        Param("ceil_mode", "bool", False,
              doc="PyTorch's ceil_mode: output size rounded up (the last window may overhang the padding, whose "
                  "overhang counts for nothing), a last window that would start in the right padding dropped; "
                  "Keras has no switch (the harness pads the overhang)"),
    )


def _window_without_input(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int],
                           out: int) -> bool:
    """Whether some dilated window's taps all fall in the padding (possible with taps wider apart than the input)."""
    return any(all(not 0 <= i * stride - pads[0] + t * dilation < size for t in range(kernel)) for i in range(out))


class _WindowPool(Block):
    family = "pooling"
    spatial: ClassVar[int] = 2  # spatial axes: 1 (N, C, L), 2 (N, C, H, W), 3 (N, C, D, H, W)
    op: ClassVar[str]  # "max" | "avg": torch.nn.{Max,Avg}Pool{n}d, keras.layers.{Max,Average}Pooling{n}D

    torch_class: ClassVar[str]  # MaxPool1d, AvgPool3d, ...
    keras_class: ClassVar[str]  # MaxPooling1D, AveragePooling3D, ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A registered class (one that names itself) gets its ranks, classes and parameters from `spatial`."""
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            n, op = cls.spatial, cls.op
            cls.ranks = (n + 2,)
            cls.torch_class = f"{op.capitalize()}Pool{n}d"
            cls.keras_class = f"{'Max' if op == 'max' else 'Average'}Pooling{n}D"
            cls.params = (*window_params(n), *cls.own_params(n))
            cls.emulations = (max_pool_emulations if op == "max" else avg_pool_emulations)(n)
            cls.torch_types = (cls.torch_class,)
            # Adaptive pooling to a divisor of its input is window pooling (adaptive_as_window).
            cls.torch_fallback_types = (f"Adaptive{op.capitalize()}Pool{n}d",)

    @classmethod
    def own_params(cls, spatial: int) -> tuple[Param, ...]:
        """The operation's parameters after the window's."""
        return ()

    def keras_pooling(self, site: Site, k: Sizes, s: Sizes, padding: str) -> keras.Layer:
        return getattr(keras.layers, self.keras_class)(k, s, padding=padding, dtype=site.dtype)

    # The geometry and the builders' paths are pooling_geometry.py's (shared with the emulations they declare).
    keras_has_kernel = staticmethod(pooling_geometry.keras_has_kernel)
    dilation = staticmethod(pooling_geometry.dilation)
    geometry = staticmethod(pooling_geometry.geometry)
    padded_geometry = staticmethod(pooling_geometry.padded_geometry)
    torch_native_padding = staticmethod(pooling_geometry.torch_native_padding)

    def output_shape(self, site: Site) -> tuple[int, ...]:
        k, s, pads = self.geometry(site)
        ceil, d = site.params["ceil_mode"], self.dilation(site)
        span = effective_kernel(k, d)  # the window itself where dilation is 1
        if any(max(pair) >= kk for pair, kk in zip(pads, span)):
            raise Refusal(f"padding {list(max(pair) for pair in pads)} must be smaller than the window {list(span)}: "
                          "a window would hold nothing but padding", field="params.padding")
        out = pool_output_size(site.in_shape[2:], span, s, pads, ceil)
        if min(out) <= 0:
            padded = [size + sum(pair) for size, pair in zip(site.in_shape[2:], pads)]
            raise Refusal(f"the window {'x'.join(map(str, span))} is larger than the padded input "
                          f"{'x'.join(map(str, padded))}"
                          + (" by more than the stride less one (ceil_mode)" if ceil else "") + ": no output",
                          field="params.pool_size")
        if max(d) > 1 and any(map(_window_without_input, site.in_shape[2:], k, s, d, pads, out)):
            raise Refusal(f"with dilation {list(d)} a window's taps all fall in the padding {list(pads)}: it would "
                          "hold no input cell", field="params.dilation")
        return (*site.in_shape[:2], *out)

    def largest_array(self, site: Site) -> int:
        _, _, _, full = self.padded_geometry(site)
        return prod(site.in_shape[:2]) * prod(n + a + b for n, (a, b) in zip(site.in_shape[2:], full))

    # --- defaults: native --------------------------------------------------------------------------------
    def native_torch_module(self, site: Site) -> torch.nn.Module:
        p, written = site.params, site.written_names
        kwargs: dict[str, Any] = {"kernel_size": p["pool_size"]}
        if "strides" in written and p["strides"] is not None:
            kwargs["stride"] = p["strides"]
        if "padding" in written:
            if p["padding"] == "same":
                raise Refusal(f"PyTorch's {self.torch_class} has no padding 'same' (a hand port must compute the "
                              "numbers)", field="params.padding")
            padding = (0,) * self.spatial if p["padding"] == "valid" else p["padding"]
            if any(pad > kk // 2 for pad, kk in zip(padding, p["pool_size"])):
                raise Refusal(f"PyTorch's {self.torch_class} refuses padding {list(padding)} above half the window "
                              f"{list(p['pool_size'])}", field="params.padding")
            kwargs["padding"] = padding
        for name in ("dilation", "ceil_mode", "count_include_pad"):
            if name in written and name in p:
                kwargs[name] = p[name]
        return getattr(torch.nn, self.torch_class)(**kwargs)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        p, written = site.params, site.written_names
        kwargs: dict[str, Any] = {"pool_size": p["pool_size"], "dtype": site.dtype}
        if "strides" in written and p["strides"] is not None:
            kwargs["strides"] = p["strides"]
        if not self.keras_has_kernel(site):
            raise Refusal(f"TensorFlow has no {site.dtype} CPU kernel for Keras's {self.keras_class}",
                          field="input.dtype")
        pooling = getattr(keras.layers, self.keras_class)
        padding = p["padding"] if "padding" in written else "valid"
        if padding in ("valid", "same"):
            return pooling(padding=padding, **kwargs)
        if padding == (0,) * self.spatial:
            return pooling(**kwargs)
        # Keras pooling takes no number: the usual port pads first with ZeroPadding{n}D (zeros, whatever the pooling).
        zeros = getattr(keras.layers, f"ZeroPadding{self.spatial}D")(padding[0] if self.spatial == 1 else padding,
                                                                       dtype=site.dtype)
        return keras.Sequential([zeros, pooling(**kwargs)])

    # --- xfw-harness port --------------------------------------------------------------------------------------
    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if type(module).__name__ in self.torch_fallback_types:
            return adaptive_as_window(module, in_shape, self.spatial)
        if type(module).__name__ not in self.torch_types:
            raise Refusal(f"{self.name} reads {', '.join(self.torch_types)}, not {type(module).__name__}")
        if getattr(module, "return_indices", False):
            raise Refusal(f"{type(module).__name__}.return_indices=True: Keras pooling returns no indices",
                          field="return_indices")
        if getattr(module, "divisor_override", None) is not None:
            raise Refusal(f"{type(module).__name__}.divisor_override={module.divisor_override}: the harness's "
                          "average divides by the window or by its real cells only", field="divisor_override")
        kernel = torch_sizes(module.kernel_size, self.spatial)
        stride = torch_sizes(module.stride if module.stride is not None else module.kernel_size, self.spatial)
        padding = torch_sizes(module.padding, self.spatial)
        params: dict[str, Any] = {"pool_size": sizes_text(kernel)}
        if stride != kernel:
            params["strides"] = sizes_text(stride)
        if any(padding):
            params["padding"] = sizes_text(padding)
        dilation = torch_sizes(getattr(module, "dilation", 1), self.spatial)
        if any(d != 1 for d in dilation):
            params["dilation"] = sizes_text(dilation)
        if module.ceil_mode:
            params["ceil_mode"] = True
        return params


def adaptive_as_window(module: Any, in_shape: tuple[int, ...], spatial: int = 2) -> dict[str, Any]:
    """The window pooling params equal to an adaptive pooling of `spatial` axes on an input of `in_shape`; Refusal
    where none is.

    Adaptive pooling whose output size divides its input's is window pooling: PyTorch's adaptive window i spans
    [floor(i*H/k), ceil((i+1)*H/k)), which is [i*H/k, (i+1)*H/k) when k divides H: window = stride = H/k, no padding.
    """
    name = type(module).__name__
    if getattr(module, "return_indices", False):
        raise Refusal(f"{name}.return_indices=True: Keras pooling returns no indices", field="return_indices")
    if len(in_shape) != spatial + 2:
        raise Refusal(f"{name} on a rank-{len(in_shape)} input {list(in_shape)}: the window pooling blocks of "
                      f"{spatial} spatial axes take rank {spatial + 2}")
    out = adaptive_output_size(module.output_size, in_shape[2:])
    sizes = in_shape[2:]
    if any(n % k for n, k in zip(sizes, out)):
        raise Refusal(f"the input's {'x'.join(map(str, sizes))} is not a multiple of output_size "
                      f"{'x'.join(map(str, out))}: the adaptive windows differ in size or overlap", field="output_size")
    return {"pool_size": sizes_text(tuple(n // k for n, k in zip(sizes, out)))}


class _MaxPool(_WindowPool):
    op = "max"
    doc = "Maximum over each window; padding counts as -inf; taps `dilation` apart."

    @classmethod
    def own_params(cls, spatial: int) -> tuple[Param, ...]:
        return (Param("dilation", "pair", (1,) * spatial, minimum=1, default_text="1", size=spatial,
                      doc="spacing between the window's taps (PyTorch's dilation; Keras's pooling has none: "
                          "the harness takes the maximum of the taps, DilatedMaxPooling)"),)

    def torch_module(self, site: Site) -> torch.nn.Module:
        k, s, pads, full = self.padded_geometry(site)
        d, spatial = self.dilation(site), self.spatial
        pool = getattr(torch.nn, self.torch_class)
        if torch_max_path(site) == "native":
            return pool(k, s, padding=self.torch_native_padding(k, pads), dilation=d,
                        ceil_mode=site.params["ceil_mode"])
        # -inf padding, ceil mode's overhang included, then floor-mode pooling: ceil mode's windows with the
        # harness's drop rule for the padding as given (PyTorch's own ceil_mode would apply it to the padded input).
        pad = getattr(torch.nn, f"ConstantPad{spatial}d")(torch_pad_arg(full), NEG_INF)
        return torch.nn.Sequential(pad, pool(k, s, dilation=d))

    def notes(self, site: Site) -> tuple[str, ...]:
        if keras_max_path(site) != "taps":
            return ()
        why = ("Keras's pooling has no dilation" if any(dd != 1 for dd in self.dilation(site))
               else f"TensorFlow has no {site.dtype} CPU kernel for {self.keras_class}")
        return (f"{why}: the harness takes the maximum of the window's taps itself (its DilatedMaxPooling layer)",)

    def keras_layer(self, site: Site) -> keras.Layer:
        k, s, pads, full = self.padded_geometry(site)
        d = self.dilation(site)
        path = keras_max_path(site)
        if path == "taps":
            pool = pooling_layers.DilatedMaxPooling(k, s, d, dtype=site.dtype)
            if not any(map(any, full)):
                return pool
            return keras.Sequential([keras_layers.SpatialPadding(full, value=NEG_INF, dtype=site.dtype), pool])
        if path == "native":
            return self.keras_pooling(site, k, s, site.params["padding"])
        return keras.Sequential([keras_layers.SpatialPadding(full, value=NEG_INF, dtype=site.dtype),
                                 self.keras_pooling(site, k, s, "valid")])

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        k, s, _, full = self.padded_geometry(site)
        # Padded here, ceil mode's overhang included: ONNX's own pads and ceil_mode are bypassed (module doc).
        x = np.pad(x, [(0, 0), (0, 0), *full], constant_values=NEG_INF)
        return onnx_op("MaxPool", x, kernel_shape=list(k), strides=list(s), dilations=list(self.dilation(site)))


class _AvgPool(_WindowPool):
    op = "avg"
    doc = "Mean over each window; count_include_pad says whether padded cells count in the divisor."

    @classmethod
    def own_params(cls, spatial: int) -> tuple[Param, ...]:
        return (Param("count_include_pad", "bool", False,
                      doc="divide by the whole window (true, PyTorch's default) or by the real cells only "
                          "(false: ONNX, TensorFlow same); never by ceil mode's overhang"),)

    def reduction_length(self, site: Site) -> int:
        return prod(site.params["pool_size"])

    def torch_module(self, site: Site) -> torch.nn.Module:
        k, s, pads, full = self.padded_geometry(site)
        include = site.params["count_include_pad"]
        pool, path = getattr(torch.nn, self.torch_class), torch_avg_path(site)
        if path == "native":
            return pool(k, s, padding=self.torch_native_padding(k, pads), ceil_mode=site.params["ceil_mode"],
                        count_include_pad=include)
        if path == "zero_pad":
            zeros = getattr(torch.nn, f"ZeroPad{self.spatial}d")
            return torch.nn.Sequential(zeros(torch_pad_arg(pads)), pool(k, s))
        return pooling_layers.TorchAvgPoolSumOverCount(k, s, full, pads if include else _no_pads(self.spatial))

    def keras_layer(self, site: Site) -> keras.Layer:
        k, s, pads, full = self.padded_geometry(site)
        include, dtype, path = site.params["count_include_pad"], site.dtype, keras_avg_path(site)
        if path == "taps":
            counted = pads if include else _no_pads(self.spatial)
            return pooling_layers.PoolSumOverCount(k, s, full, counted, by_taps=True, dtype=dtype)
        if path == "native":
            return self.keras_pooling(site, k, s, site.params["padding"])
        if path == "zero_pad":
            return keras.Sequential([keras_layers.SpatialPadding(pads, dtype=dtype),
                                     self.keras_pooling(site, k, s, "valid")])
        return pooling_layers.PoolSumOverCount(k, s, full, pads if include else _no_pads(self.spatial), dtype=dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        k, s, pads, full = self.padded_geometry(site)
        # A counted padding is given as explicit zeros (then real cells); the rest (uncounted padding, ceil mode's
        # overhang) as ONNX padding that is never counted (count_include_pad 0): see the module doc.
        counted = pads if site.params["count_include_pad"] else _no_pads(self.spatial)
        x = np.pad(x, [(0, 0), (0, 0), *counted])
        rest = pads_minus_nd(full, counted)
        return onnx_op("AveragePool", x, kernel_shape=list(k), strides=list(s),
                       pads=[a for a, _ in rest] + [b for _, b in rest], count_include_pad=0)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        params = super().params_from_torch(module, in_shape)
        if type(module).__name__ in self.torch_fallback_types:  # adaptive: no padding to count
            return params
        return {**params, "count_include_pad": bool(module.count_include_pad)}


@register
class MaxPool1D(_MaxPool):
    name, spatial = "max_pool1d", 1
    benchmark = {"params": {"pool_size": 2}, "input": {"shape": [8, 32, 1024]}}


@register
class MaxPool2D(_MaxPool):
    name, spatial = "max_pool2d", 2
    benchmark = {"params": {"pool_size": 2}, "input": BENCHMARK_INPUT}


@register
class MaxPool3D(_MaxPool):
    name, spatial = "max_pool3d", 3
    benchmark = {"params": {"pool_size": 2}, "input": {"shape": [2, 16, 16, 16, 16]}}


@register
class AvgPool1D(_AvgPool):
    name, spatial = "avg_pool1d", 1
    benchmark = {"params": {"pool_size": 3, "strides": 2, "padding": "same"}, "input": {"shape": [8, 32, 1024]}}


@register
class AvgPool2D(_AvgPool):
    name, spatial = "avg_pool2d", 2
    benchmark = {"params": {"pool_size": 3, "strides": 2, "padding": "same"}, "input": BENCHMARK_INPUT}


@register
class AvgPool3D(_AvgPool):
    name, spatial = "avg_pool3d", 3
    benchmark = {"params": {"pool_size": 3, "strides": 2, "padding": "same"}, "input": {"shape": [2, 16, 16, 16, 16]}}
