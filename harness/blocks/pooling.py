"""Pooling: `max_pool2d`, `avg_pool2d`, `global_avg_pool2d`, `global_max_pool2d`.

Window semantics (channels-first): windows of `pool_size` every `strides` (default: pool_size, in both
frameworks) over the input padded as `padding` says, the first window at the top-left padded corner.
- Output size: floor mode by default; `ceil_mode: true` is PyTorch's rule (aten/src/ATen/native/Pool.h,
  pooling_output_shape_pad_lr; harness.core.spatial.ceil_output_size_1d): the span is rounded up, so the last
  window may reach past the right/bottom padding, and a last window that would start at or after the end of
  the input (inside the right padding) is dropped. The cells past the padding ("overhang") count for nothing.
- Max pooling pads with -inf, never zeros: a zero pad changes the result wherever a window is all negative.
  PyTorch pads with -inf itself but refuses padding > half the window; Keras has only valid/same (same
  ignores padded cells). Elsewhere the harness pads with -inf explicitly and pools `valid`.
- Average pooling divides by the window size when `count_include_pad` is true (PyTorch's default), and by
  the number of real input cells in the window when false (the harness's default, as ONNX and TensorFlow's
  `same`, tensorflow#45579). Where a framework has no switch for a combination, the harness computes
  sum / count as avg_pool(zero-padded x) / avg_pool(zero-padded mask), which is exactly that.
- The divisor of a ceil_mode window that overhangs (verified by running PyTorch, and in its CPU kernel
  aten/src/ATen/native/cpu/AvgPoolKernel.cpp: pool_size = (min(ih0 + kH, H + padH) - ih0) * ...): with
  count_include_pad it counts the window's cells up to the padded bounds, padding included, but never the
  overhang past them; without, only the real cells. E.g. width 6, pool 3, stride 2, padding 1, ceil_mode: a
  fourth window covers x[5], one padding cell and one cell past the padding, and divides by 2 with
  count_include_pad, by 1 without (cases/pooling.yaml, ceil_mode_avg_divisor_golden).
Keras has no ceil_mode: the harness pads the overhang explicitly (-inf for max; uncounted zeros for average,
through the sum / count layer) and pools `valid`, which gives ceil mode's windows exactly.

Global pooling reduces H and W; `keepdims` keeps them as size 1 ([N, C, 1, 1] like AdaptiveAvgPool2d(1)).

`defaults: native` builds what a person porting by hand writes, with only the parameters the case wrote:
PyTorch MaxPool2d/AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad), Keras
MaxPooling2D/AveragePooling2D(pool_size, strides, padding). A numeric padding becomes Keras's usual idiom,
ZeroPadding2D(p) then `valid` pooling: zeros, not -inf, before max pooling, and zeros that count in the average's
divisor (count_include_pad true). A parameter a framework has no name for (Keras: ceil_mode,
count_include_pad; PyTorch: keepdims) is left out, as a hand port leaves it out; a value a framework's layer
refuses (PyTorch: padding 'same', or above half the window) is refused.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import torch
import torch.nn.functional as F

from harness.blocks.base import BENCHMARK_INPUT, Block
from harness.blocks.keras_layers import ConstantPadding2D, KerasAveragePoolingSumOverCount, pads_minus
from harness.blocks.reference import onnx_op
from harness.blocks.registry import register
from harness.blocks.site import Site
from harness.core.errors import Refusal
from harness.core.schema import Param
from harness.core.spatial import (
    Pads,
    Pair,
    ceil_overhang,
    is_symmetric,
    pool_output_size,
    resolve_padding,
    torch_pad_arg,
)

NEG_INF = float("-inf")
NO_PADS: Pads = ((0, 0), (0, 0))


def _with_overhang(pads: Pads, overhang: Pair) -> Pads:
    """`pads` with ceil mode's overhang added after (bottom, right)."""
    (top, bottom), (left, right) = pads
    return (top, bottom + overhang[0]), (left, right + overhang[1])


def _pair_text(value: tuple[int, int]) -> int | list[int]:
    """A pair as a person writes it in YAML: 3 for (3, 3), [3, 2] otherwise."""
    return value[0] if value[0] == value[1] else [value[0], value[1]]


def _torch_pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class TorchAvgPoolSumOverCount(torch.nn.Module):
    """PyTorch's counterpart for what AvgPool2d cannot take (asymmetric padding, more than half the window, padding
    left out of the divisor together with ceil mode's overhang): sum / count over the cells that count."""

    def __init__(self, kernel_size: Pair, stride: Pair, pads: Pads, counted_pads: Pads) -> None:
        super().__init__()
        # Kept as given: `harness show` reads the constructor arguments back off these attributes.
        self.kernel_size, self.stride, self.pads, self.counted_pads = kernel_size, stride, pads, counted_pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = F.avg_pool2d(F.pad(x, torch_pad_arg(self.pads)), self.kernel_size, self.stride)
        mask = F.pad(torch.ones_like(x[:, :1]), torch_pad_arg(self.counted_pads), value=1.0)
        mask = F.pad(mask, torch_pad_arg(pads_minus(self.pads, self.counted_pads)))
        return total / F.avg_pool2d(mask, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pads={self.pads}, counted={self.counted_pads}"


class _WindowPool(Block):
    family = "pooling"
    ranks = (4,)
    base_params = (
        Param("pool_size", "pair", minimum=1, doc="window height and width"),
        Param("strides", "pair", None, minimum=1, default_text="pool_size",
              doc="step between windows; default: pool_size (both frameworks' default)"),
        Param("padding", "padding", "valid",
              doc="'valid' = none; 'same' = TensorFlow's same; int or [h, w] = that many cells on both sides"),
        Param("ceil_mode", "bool", False,
              doc="PyTorch's ceil_mode: output size rounded up (the last window may overhang the padding, whose "
                  "overhang counts for nothing), a last window that would start in the right padding dropped; "
                  "Keras has no switch (the harness pads the overhang)"),
    )
    torch_class: str
    keras_class: str

    def geometry(self, site: Site) -> tuple[Pair, Pair, Pads]:
        p = site.params
        k = p["pool_size"]
        s = p["strides"] or k
        return k, s, resolve_padding(p["padding"], site.in_shape[2:], k, s)

    def padded_geometry(self, site: Site) -> tuple[Pair, Pair, Pads, Pads]:
        """geometry() and the padding extended by ceil mode's overhang (`full`; equal to `pads` in floor mode):
        floor-mode pooling over the input padded by `full` has exactly ceil mode's windows."""
        k, s, pads = self.geometry(site)
        overhang = ceil_overhang(site.in_shape[2:], k, s, pads) if site.params["ceil_mode"] else (0, 0)
        return k, s, pads, _with_overhang(pads, overhang)

    def output_shape(self, site: Site) -> tuple[int, ...]:
        k, s, pads = self.geometry(site)
        if any(max(pair) >= kk for pair, kk in zip(pads, k)):
            raise Refusal(f"padding {list(max(pair) for pair in pads)} must be smaller than the window {list(k)}: "
                          "a window would hold nothing but padding", field="params.padding")
        ceil = site.params["ceil_mode"]
        out = pool_output_size(site.in_shape[2:], k, s, pads, ceil)
        if min(out) <= 0:
            padded = [size + sum(pair) for size, pair in zip(site.in_shape[2:], pads)]
            raise Refusal(f"the window {k[0]}x{k[1]} is larger than the padded input {padded[0]}x{padded[1]}"
                          + (" by more than the stride less one (ceil_mode)" if ceil else "") + ": no output",
                          field="params.pool_size")
        return (*site.in_shape[:2], *out)

    def largest_array(self, site: Site) -> int:
        _, _, _, ((top, bottom), (left, right)) = self.padded_geometry(site)
        n, c, h, w = site.in_shape
        return n * c * (h + top + bottom) * (w + left + right)

    @staticmethod
    def torch_native_padding(k: Pair, pads: Pads) -> Pair | None:
        """Padding PyTorch's pooling layers take themselves: symmetric and at most half the window."""
        if is_symmetric(pads) and all(pair[0] <= kk // 2 for pair, kk in zip(pads, k)):
            return pads[0][0], pads[1][0]
        return None

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
            padding = (0, 0) if p["padding"] == "valid" else p["padding"]
            if any(pad > kk // 2 for pad, kk in zip(padding, p["pool_size"])):
                raise Refusal(f"PyTorch's {self.torch_class} refuses padding {list(padding)} above half the window "
                              f"{list(p['pool_size'])}", field="params.padding")
            kwargs["padding"] = padding
        for name in ("ceil_mode", "count_include_pad"):
            if name in written and name in p:
                kwargs[name] = p[name]
        return getattr(torch.nn, self.torch_class)(**kwargs)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        p, written = site.params, site.written_names
        kwargs: dict[str, Any] = {"pool_size": p["pool_size"], "dtype": site.dtype}
        if "strides" in written and p["strides"] is not None:
            kwargs["strides"] = p["strides"]
        pooling = getattr(keras.layers, self.keras_class)
        padding = p["padding"] if "padding" in written else "valid"
        if padding in ("valid", "same"):
            return pooling(padding=padding, **kwargs)
        if padding == (0, 0):
            return pooling(**kwargs)
        # Keras pooling takes no number: the usual port pads first with ZeroPadding2D (zeros, whatever the pooling).
        return keras.Sequential([keras.layers.ZeroPadding2D(padding, dtype=site.dtype), pooling(**kwargs)])

    # --- harness port --------------------------------------------------------------------------------------
    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if type(module).__name__ in self.torch_fallback_types:
            return adaptive_as_window(module, in_shape)
        if type(module).__name__ not in self.torch_types:
            raise Refusal(f"{self.name} reads {', '.join(self.torch_types)}, not {type(module).__name__}")
        if _torch_pair(getattr(module, "dilation", 1)) != (1, 1):
            raise Refusal(f"{type(module).__name__}.dilation={module.dilation}: Keras pooling has no dilation",
                          field="dilation")
        if getattr(module, "return_indices", False):
            raise Refusal(f"{type(module).__name__}.return_indices=True: Keras pooling returns no indices",
                          field="return_indices")
        if getattr(module, "divisor_override", None) is not None:
            raise Refusal(f"{type(module).__name__}.divisor_override={module.divisor_override}: the harness's "
                          "average divides by the window or by its real cells only", field="divisor_override")
        kernel = _torch_pair(module.kernel_size)
        stride = _torch_pair(module.stride if module.stride is not None else module.kernel_size)
        padding = _torch_pair(module.padding)
        params: dict[str, Any] = {"pool_size": _pair_text(kernel)}
        if stride != kernel:
            params["strides"] = _pair_text(stride)
        if padding != (0, 0):
            params["padding"] = _pair_text(padding)
        if module.ceil_mode:
            params["ceil_mode"] = True
        return params


def adaptive_as_window(module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
    """The window pooling params equal to an adaptive pooling on an input of `in_shape`; Refusal where none is.

    Adaptive pooling whose output size divides its input's is window pooling: PyTorch's adaptive window i spans
    [floor(i*H/k), ceil((i+1)*H/k)), which is [i*H/k, (i+1)*H/k) when k divides H: window = stride = H/k, no padding.
    """
    name = type(module).__name__
    if getattr(module, "return_indices", False):
        raise Refusal(f"{name}.return_indices=True: Keras pooling returns no indices", field="return_indices")
    if len(in_shape) != 4:
        raise Refusal(f"{name} on a rank-{len(in_shape)} input {list(in_shape)}: the window pooling blocks take "
                      "[N, C, H, W]")
    size = module.output_size
    wanted = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    spatial = in_shape[2:]
    out = tuple(n if k is None else k for n, k in zip(spatial, wanted))  # None: that side keeps its size
    if any(n % k for n, k in zip(spatial, out)):
        raise Refusal(f"the input's {spatial[0]}x{spatial[1]} is not a multiple of output_size {out[0]}x{out[1]}: "
                      "the adaptive windows differ in size or overlap", field="output_size")
    window = tuple(n // k for n, k in zip(spatial, out))
    return {"pool_size": window[0] if window[0] == window[1] else list(window)}


@register
class MaxPool2D(_WindowPool):
    name = "max_pool2d"
    benchmark = {"params": {"pool_size": 2}, "input": BENCHMARK_INPUT}
    doc = "Maximum over each window; padding counts as -inf."
    params = _WindowPool.base_params
    torch_class, keras_class = "MaxPool2d", "MaxPooling2D"
    torch_types = ("MaxPool2d",)
    torch_fallback_types = ("AdaptiveMaxPool2d",)  # to a divisor of its input: window pooling (adaptive_as_window)

    def torch_module(self, site: Site) -> torch.nn.Module:
        k, s, pads, full = self.padded_geometry(site)
        native = self.torch_native_padding(k, pads)
        if native is not None:
            return torch.nn.MaxPool2d(k, s, padding=native, ceil_mode=site.params["ceil_mode"])
        # -inf padding, ceil mode's overhang included, then floor-mode pooling: ceil mode's windows with the
        # harness's drop rule for the padding as given (PyTorch's own ceil_mode would apply it to the padded input).
        return torch.nn.Sequential(torch.nn.ConstantPad2d(torch_pad_arg(full), NEG_INF), torch.nn.MaxPool2d(k, s))

    def keras_layer(self, site: Site) -> keras.Layer:
        k, s, pads, full = self.padded_geometry(site)
        if site.params["padding"] in ("valid", "same") and full == pads:
            return keras.layers.MaxPooling2D(k, s, padding=site.params["padding"], dtype=site.dtype)
        return keras.Sequential([ConstantPadding2D(full, NEG_INF, dtype=site.dtype),
                                 keras.layers.MaxPooling2D(k, s, padding="valid", dtype=site.dtype)])

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        k, s, pads = self.geometry(site)
        # ONNX's reference MaxPool is right (PyTorch's ceil_mode drop rule included) on its strided path only. With
        # every stride 1 it runs an older routine (onnx/reference/ops/_op_common_pool.py) that reads pads as [top,
        # bottom, left, right], ONNX's order being [top, left, bottom, right], and whose ceil-mode output is too
        # large (measured: 3x3 input, window 2, padding 1 gives 6x6; PyTorch 4x4). At stride 1 ceil mode changes
        # nothing, so it is not passed, and a padding that is not the same on all four sides is given as explicit
        # -inf cells (ONNX Pad).
        if max(s) == 1 and len({*pads[0], *pads[1]}) > 1:
            (top, bottom), (left, right) = pads
            x = onnx_op("Pad", x, np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64),
                        np.array(NEG_INF), mode="constant")
            pads = NO_PADS
        (top, bottom), (left, right) = pads
        return onnx_op("MaxPool", x, kernel_shape=list(k), strides=list(s), pads=[top, left, bottom, right],
                       ceil_mode=int(site.params["ceil_mode"] and max(s) > 1))


@register
class AvgPool2D(_WindowPool):
    name = "avg_pool2d"
    benchmark = {"params": {"pool_size": 3, "strides": 2, "padding": "same"}, "input": BENCHMARK_INPUT}
    doc = "Mean over each window; count_include_pad says whether padded cells count in the divisor."
    params = (*_WindowPool.base_params,
              Param("count_include_pad", "bool", False,
                    doc="divide by the whole window (true, PyTorch's default) or by the real cells only "
                        "(false: ONNX, TensorFlow same); never by ceil mode's overhang"))
    torch_class, keras_class = "AvgPool2d", "AveragePooling2D"
    torch_types = ("AvgPool2d",)
    torch_fallback_types = ("AdaptiveAvgPool2d",)  # to a divisor of its input: window pooling (adaptive_as_window)

    def reduction_length(self, site: Site) -> int:
        k = site.params["pool_size"]
        return k[0] * k[1]

    def torch_module(self, site: Site) -> torch.nn.Module:
        k, s, pads, full = self.padded_geometry(site)
        include = site.params["count_include_pad"]
        native = self.torch_native_padding(k, pads)
        if native is not None:
            return torch.nn.AvgPool2d(k, s, padding=native, ceil_mode=site.params["ceil_mode"],
                                      count_include_pad=include)
        if include and full == pads:
            return torch.nn.Sequential(torch.nn.ZeroPad2d(torch_pad_arg(pads)), torch.nn.AvgPool2d(k, s))
        return TorchAvgPoolSumOverCount(k, s, full, pads if include else NO_PADS)

    def keras_layer(self, site: Site) -> keras.Layer:
        k, s, pads, full = self.padded_geometry(site)
        padding, include, dtype = site.params["padding"], site.params["count_include_pad"], site.dtype
        overhang = full != pads
        if not overhang and (padding == "valid" or (padding == "same" and not include)):
            return keras.layers.AveragePooling2D(k, s, padding=padding, dtype=dtype)
        if include and not overhang:
            return keras.Sequential([keras.layers.ZeroPadding2D(pads, dtype=dtype),
                                     keras.layers.AveragePooling2D(k, s, padding="valid", dtype=dtype)])
        return KerasAveragePoolingSumOverCount(k, s, full, pads if include else NO_PADS, dtype=dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        k, s, pads, full = self.padded_geometry(site)
        if full == pads:
            (top, bottom), (left, right) = pads
            return onnx_op("AveragePool", x, kernel_shape=list(k), strides=list(s), pads=[top, left, bottom, right],
                           count_include_pad=int(site.params["count_include_pad"]))
        # Ceil mode with an overhang: ONNX's reference AveragePool splits the overhang between both ends (shifting
        # the windows once it is 2 or more; measured: H 2, window 4, stride 3 averages the wrong cells) and counts
        # it in the divisor with count_include_pad. So the overhang is given as ONNX padding that is never counted
        # (count_include_pad 0), and a counted padding as explicit zeros (ONNX Pad) that are then real cells.
        counted = pads if site.params["count_include_pad"] else NO_PADS
        (ct, cb), (cl, cr) = counted
        x = onnx_op("Pad", x, np.array([0, 0, ct, cl, 0, 0, cb, cr], dtype=np.int64), mode="constant")
        (top, bottom), (left, right) = pads_minus(full, counted)
        return onnx_op("AveragePool", x, kernel_shape=list(k), strides=list(s), pads=[top, left, bottom, right],
                       count_include_pad=0)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        params = super().params_from_torch(module, in_shape)
        if type(module).__name__ in self.torch_fallback_types:  # adaptive: no padding to count
            return params
        return {**params, "count_include_pad": bool(module.count_include_pad)}


class TorchGlobalPool(torch.nn.Module):
    """Global average or max pooling with Keras's keepdims switch: PyTorch's adaptive pooling to 1x1 keeps H and W
    ([N, C, 1, 1]); without keepdims they are flattened away ([N, C]), as Keras's global pooling layers do."""

    def __init__(self, op: str, keepdims: bool) -> None:
        super().__init__()
        self.op, self.keepdims = op, keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = (F.adaptive_avg_pool2d if self.op == "avg" else F.adaptive_max_pool2d)(x, 1)
        return pooled if self.keepdims else torch.flatten(pooled, 1)

    def extra_repr(self) -> str:
        return f"op={self.op}, keepdims={self.keepdims}"


class _GlobalPool(Block):
    family = "pooling"
    ranks = (4,)
    params = (Param("keepdims", "bool", False, doc="keep H and W as size 1: [N, C, 1, 1] instead of [N, C]"),)
    op: str
    keras_class: str
    torch_class: str  # the adaptive pooling a hand port writes: AdaptiveAvgPool2d(1) keeps [N, C, 1, 1]
    onnx_type: str  # the ONNX operator of the reference

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, c = site.in_shape[:2]
        return (n, c, 1, 1) if site.params["keepdims"] else (n, c)

    def torch_module(self, site: Site) -> torch.nn.Module:
        return TorchGlobalPool(self.op, site.params["keepdims"])

    def keras_layer(self, site: Site) -> keras.Layer:
        return getattr(keras.layers, self.keras_class)(keepdims=site.params["keepdims"], dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        pooled = onnx_op(self.onnx_type, x)  # [N, C, 1, 1]
        return pooled if site.params["keepdims"] else pooled.reshape(pooled.shape[:2])

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        # PyTorch has no keepdims: AdaptiveAvgPool2d(1) always keeps [N, C, 1, 1] (a written keepdims is left out).
        return getattr(torch.nn, self.torch_class)(1)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        kwargs = site.written_args(keepdims="keepdims")
        return getattr(keras.layers, self.keras_class)(dtype=site.dtype, **kwargs)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if type(module).__name__ != self.torch_class:
            raise Refusal(f"{self.name} reads {self.torch_class}, not {type(module).__name__}")
        size = module.output_size
        if (tuple(size) if isinstance(size, (tuple, list)) else (size, size)) != (1, 1):
            raise Refusal(f"{self.torch_class}.output_size={module.output_size}: only 1 (global pooling) has a Keras "
                          "layer", field="output_size")
        if getattr(module, "return_indices", False):
            raise Refusal(f"{self.torch_class}.return_indices=True: Keras pooling returns no indices",
                          field="return_indices")
        return {"keepdims": True}  # adaptive pooling to 1x1 keeps H and W


@register
class GlobalAvgPool2D(_GlobalPool):
    name = "global_avg_pool2d"
    doc = "Mean over H and W of each channel."
    op, keras_class, torch_class, onnx_type = "avg", "GlobalAveragePooling2D", "AdaptiveAvgPool2d", "GlobalAveragePool"
    torch_types = ("AdaptiveAvgPool2d",)
    torch_functions = ("mean",)  # x.mean((2, 3), keepdim=...): a squeeze-and-excite's or a head's pooling

    def reduction_length(self, site: Site) -> int:
        return site.in_shape[2] * site.in_shape[3]

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
        dims = sorted(d % 4 for d in dims) if isinstance(dims, (list, tuple)) else dims
        if len(in_shapes[0]) != 4 or dims != [2, 3] or kwargs.get("dtype") is not None:
            raise Refusal(f"mean over dims {dims} of a rank-{len(in_shapes[0])} input: only the mean over H and W "
                          "(dims 2 and 3) of an (N, C, H, W) tensor is global average pooling", field="mean.dim")
        return {"keepdims": bool(kwargs.get("keepdim", args[2] if len(args) > 2 else False))}


@register
class GlobalMaxPool2D(_GlobalPool):
    name = "global_max_pool2d"
    doc = "Maximum over H and W of each channel."
    op, keras_class, torch_class, onnx_type = "max", "GlobalMaxPooling2D", "AdaptiveMaxPool2d", "GlobalMaxPool"
    torch_types = ("AdaptiveMaxPool2d",)
