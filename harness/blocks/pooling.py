"""Pooling: `max_pool2d`, `avg_pool2d`, `global_avg_pool2d`, `global_max_pool2d`.

Window semantics (channels-first, floor mode): windows of `pool_size` every `strides` (default: pool_size,
in both frameworks) over the input padded as `padding` says.
- Max pooling pads with -inf, never zeros: a zero pad changes the result wherever a window is all negative.
  PyTorch pads with -inf itself but refuses padding > half the window; Keras has only valid/same (same
  ignores padded cells). Elsewhere the harness pads with -inf explicitly and pools `valid`.
- Average pooling divides by the window size when `count_include_pad` is true (PyTorch's default), and by
  the number of real input cells in the window when false (the harness's default, as ONNX and TensorFlow's
  `same`, tensorflow#45579). Where a framework has no switch for a combination, the harness computes
  sum / count as avg_pool(zero-padded x) / avg_pool(zero-padded ones), which is exactly that.
Global pooling reduces H and W; `keepdims` keeps them as size 1 ([N, C, 1, 1] like AdaptiveAvgPool2d(1)).
"""

from __future__ import annotations

from typing import Any

import keras
import torch
import torch.nn.functional as F

from harness.errors import Refusal
from harness.registry import Block, Site, register
from harness.schema import Param
from harness.spatial import Pads, is_symmetric, output_size, resolve_padding, torch_pad_arg

NEG_INF = float("-inf")


def _keras_pad_spec(pads: Pads) -> list[list[int]]:
    (top, bottom), (left, right) = pads
    return [[0, 0], [top, bottom], [left, right], [0, 0]]


class ConstantPadding2D(keras.layers.Layer):
    """ZeroPadding2D with another value (Keras has none): -inf before max pooling."""

    def __init__(self, padding: Pads, value: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding = tuple(tuple(p) for p in padding)
        self.value = value

    def call(self, x: Any) -> Any:
        return keras.ops.pad(x, _keras_pad_spec(self.padding), constant_values=self.value)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape
        (t, b), (left, r) = self.padding
        return n, None if h is None else h + t + b, None if w is None else w + left + r, c

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": self.padding, "value": self.value}


class KerasAveragePoolingExcludingPadding(keras.layers.Layer):
    """Average over the real cells of each window only: avg_pool(pad(x)) / avg_pool(pad(ones))."""

    def __init__(self, pool_size: tuple[int, int], strides: tuple[int, int], padding: Pads, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size, self.strides = tuple(pool_size), tuple(strides)
        self.padding = tuple(tuple(p) for p in padding)

    def call(self, x: Any) -> Any:
        spec = _keras_pad_spec(self.padding)
        total = keras.ops.average_pool(keras.ops.pad(x, spec), self.pool_size, self.strides, "valid")
        count = keras.ops.average_pool(keras.ops.pad(keras.ops.ones_like(x[..., :1]), spec), self.pool_size,
                                       self.strides, "valid")
        return total / count

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}


class TorchAvgPoolExcludingPadding(torch.nn.Module):
    """PyTorch's counterpart for padding AvgPool2d cannot take (asymmetric, or more than half the window)."""

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], pads: Pads) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.pads = kernel_size, stride, pads  # as given: `harness show` reads them
        self.pad = torch_pad_arg(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel_size, self.stride)
        count = F.avg_pool2d(F.pad(torch.ones_like(x[:, :1]), self.pad), self.kernel_size, self.stride)
        return total / count

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pad={self.pad}"


class _WindowPool(Block):
    family = "pooling"
    ranks = (4,)
    base_params = (
        Param("pool_size", "pair", minimum=1, doc="window height and width"),
        Param("strides", "pair", None, minimum=1, default_text="pool_size",
              doc="step between windows; default: pool_size (both frameworks' default)"),
        Param("padding", "padding", "valid",
              doc="'valid' = none; 'same' = TensorFlow's same; int or [h, w] = that many cells on both sides"),
    )

    def geometry(self, site: Site) -> tuple[tuple[int, int], tuple[int, int], Pads]:
        p = site.params
        k = p["pool_size"]
        s = p["strides"] or k
        return k, s, resolve_padding(p["padding"], site.in_shape[2:], k, s)

    def output_shape(self, site: Site) -> tuple[int, ...]:
        k, s, pads = self.geometry(site)
        if any(max(pair) >= kk for pair, kk in zip(pads, k)):
            raise Refusal(f"padding {list(max(pair) for pair in pads)} must be smaller than the window {list(k)}: "
                          "a window would hold nothing but padding", field="params.padding")
        out = output_size(site.in_shape[2:], k, s, pads)
        if min(out) <= 0:
            raise Refusal(f"the window {k[0]}x{k[1]} is larger than the padded input: no output",
                          field="params.pool_size")
        return (*site.in_shape[:2], *out)

    def largest_array(self, site: Site) -> int:
        _, _, ((top, bottom), (left, right)) = self.geometry(site)
        n, c, h, w = site.in_shape
        return n * c * (h + top + bottom) * (w + left + right)

    @staticmethod
    def torch_native_padding(k: tuple[int, int], pads: Pads) -> tuple[int, int] | None:
        """Padding PyTorch's pooling layers take themselves: symmetric and at most half the window."""
        if is_symmetric(pads) and all(pair[0] <= kk // 2 for pair, kk in zip(pads, k)):
            return pads[0][0], pads[1][0]
        return None


@register
class MaxPool2D(_WindowPool):
    name = "max_pool2d"
    doc = "Maximum over each window; padding counts as -inf."
    params = _WindowPool.base_params

    def torch_module(self, site: Site) -> torch.nn.Module:
        k, s, pads = self.geometry(site)
        native = self.torch_native_padding(k, pads)
        if native is not None:
            return torch.nn.MaxPool2d(k, s, padding=native)
        return torch.nn.Sequential(torch.nn.ConstantPad2d(torch_pad_arg(pads), NEG_INF), torch.nn.MaxPool2d(k, s))

    def keras_layer(self, site: Site) -> keras.Layer:
        k, s, pads = self.geometry(site)
        if site.params["padding"] in ("valid", "same"):
            return keras.layers.MaxPooling2D(k, s, padding=site.params["padding"], dtype=site.dtype)
        return keras.Sequential([ConstantPadding2D(pads, NEG_INF, dtype=site.dtype),
                                 keras.layers.MaxPooling2D(k, s, padding="valid", dtype=site.dtype)])


@register
class AvgPool2D(_WindowPool):
    name = "avg_pool2d"
    doc = "Mean over each window; count_include_pad says whether padded cells count in the divisor."
    params = (*_WindowPool.base_params,
              Param("count_include_pad", "bool", False,
                    doc="divide by the whole window (true, PyTorch's default) or by the real cells only "
                        "(false: ONNX, TensorFlow same)"))

    def reduction_length(self, site: Site) -> int:
        k = site.params["pool_size"]
        return k[0] * k[1]

    def torch_module(self, site: Site) -> torch.nn.Module:
        k, s, pads = self.geometry(site)
        include = site.params["count_include_pad"]
        native = self.torch_native_padding(k, pads)
        if native is not None:
            return torch.nn.AvgPool2d(k, s, padding=native, count_include_pad=include)
        if include:
            return torch.nn.Sequential(torch.nn.ZeroPad2d(torch_pad_arg(pads)), torch.nn.AvgPool2d(k, s))
        return TorchAvgPoolExcludingPadding(k, s, pads)

    def keras_layer(self, site: Site) -> keras.Layer:
        k, s, pads = self.geometry(site)
        padding, include, dtype = site.params["padding"], site.params["count_include_pad"], site.dtype
        if padding == "valid" or (padding == "same" and not include):
            return keras.layers.AveragePooling2D(k, s, padding=padding, dtype=dtype)
        if include:
            return keras.Sequential([keras.layers.ZeroPadding2D(pads, dtype=dtype),
                                     keras.layers.AveragePooling2D(k, s, padding="valid", dtype=dtype)])
        return KerasAveragePoolingExcludingPadding(k, s, pads, dtype=dtype)


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

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, c = site.in_shape[:2]
        return (n, c, 1, 1) if site.params["keepdims"] else (n, c)

    def torch_module(self, site: Site) -> torch.nn.Module:
        return TorchGlobalPool(self.op, site.params["keepdims"])

    def keras_layer(self, site: Site) -> keras.Layer:
        return getattr(keras.layers, self.keras_class)(keepdims=site.params["keepdims"], dtype=site.dtype)


@register
class GlobalAvgPool2D(_GlobalPool):
    name = "global_avg_pool2d"
    doc = "Mean over H and W of each channel."
    op, keras_class = "avg", "GlobalAveragePooling2D"

    def reduction_length(self, site: Site) -> int:
        return site.in_shape[2] * site.in_shape[3]


@register
class GlobalMaxPool2D(_GlobalPool):
    name = "global_max_pool2d"
    doc = "Maximum over H and W of each channel."
    op, keras_class = "max", "GlobalMaxPooling2D"
