"""The pooling blocks' Keras layers and PyTorch modules, for any number of spatial axes (1-D, 2-D, 3-D): the Keras
layers that compute in keras.ops what Keras's pooling layers cannot (a padding of -inf, an average over the cells that
count, a dilated window, PyTorch's adaptive windows), and the PyTorch modules for what PyTorch's pooling layers cannot
take (padding that is asymmetric or wider than half the window, keepdims). Keras tensors are channels-last
(N, *spatial, C), PyTorch's channels-first (N, C, *spatial); paddings are one (before, after) pair per spatial axis.
The blocks' declarations (pooling_common.py, pooling.py, global_pooling.py) name these through xfw_harness.core.lazy,
so that reading them imports no framework.
"""

from __future__ import annotations

import itertools
from typing import Any

from xfw_harness.blocks.pooling_common import pads_minus_nd
from xfw_harness.core.frameworks import keras, torch
from xfw_harness.core.spatial import Pads, Sizes, adaptive_windows, torch_pad_arg

F = torch.nn.functional


def _pad_spec(pads: Pads) -> list[list[int]]:
    """keras.ops.pad's spec for a channels-last tensor: nothing on the batch and the channels."""
    return [[0, 0], *([int(a), int(b)] for a, b in pads), [0, 0]]


def _pairs(pads: Any) -> Pads:
    """Pads as tuples (a config read back from a .keras file holds lists)."""
    return tuple((int(a), int(b)) for a, b in pads)


def tap_reduce(x: Any, pool_size: Sizes, strides: Sizes, dilation: Sizes, combine: Any) -> Any:
    """`valid` window pooling of a channels-last tensor by its taps: each window tap (t_1, ..., t_n) is one strided
    slice, x[t*d :: s] on each axis, as long as the output; `combine` (first_maximum, keras.ops.add) folds them
    in PyTorch's scan order. For what Keras's pooling layers cannot do: a dilated window, and 3-D pooling in float64
    or float16 (TensorFlow has CPU kernels for AvgPool3D and MaxPool3D in float32 and bfloat16 only)."""
    out = [(n - (k - 1) * d - 1) // s + 1 for n, k, s, d in zip(x.shape[1:-1], pool_size, strides, dilation)]
    result = None
    for taps in itertools.product(*(range(k) for k in pool_size)):
        index = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip(taps, dilation, out, strides))
        tap = x[(slice(None), *index, slice(None))]
        result = tap if result is None else combine(result, tap)
    return result


def first_maximum(a: Any, b: Any) -> Any:
    """The elementwise maximum of a and b, a on ties (its gradient too) and NaN from either side, in their dtype on
    every backend. Not keras.ops.maximum: on the torch backend it casts both to dtypes.result_type(float64,
    float64), which is float32 off TensorFlow (keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE;
    keras/src/backend/torch/numpy.py, maximum), and its gradient on ties is backend-dependent (TensorFlow's all to
    the first argument, torch's and JAX's half to each)."""
    return keras.ops.where(keras.ops.logical_or(a >= b, keras.ops.isnan(a)), a, b)


@keras.saving.register_keras_serializable(package="harness")
class PoolSumOverCount(keras.layers.Layer):
    """Average over the cells of each window that count: sum(pad0(x)) / sum(pad0(mask)) per window, the mask 1 on
    the input and on `counted_padding` and 0 on the rest of `padding` (uncounted padding, ceil mode's overhang).
    The window sums are keras.ops.average_pool's (times the window, which cancels), or with `by_taps` tap_reduce's
    (3-D pooling in a dtype TensorFlow's AvgPool3D has no kernel for)."""

    def __init__(self, pool_size: Sizes, strides: Sizes, padding: Pads, counted_padding: Pads,
                 by_taps: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size, self.strides = tuple(pool_size), tuple(strides)
        self.padding, self.counted_padding = _pairs(padding), _pairs(counted_padding)
        self.by_taps = by_taps

    def _sums(self, x: Any) -> Any:
        if self.by_taps:
            return tap_reduce(x, self.pool_size, self.strides, (1,) * len(self.pool_size), keras.ops.add)
        return keras.ops.average_pool(x, self.pool_size, self.strides, "valid")

    def call(self, x: Any) -> Any:
        total = self._sums(keras.ops.pad(x, _pad_spec(self.padding)))
        mask = keras.ops.pad(keras.ops.ones_like(x[..., :1]), _pad_spec(self.counted_padding), constant_values=1)
        mask = keras.ops.pad(mask, _pad_spec(pads_minus_nd(self.padding, self.counted_padding)))
        return total / self._sums(mask)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "counted_padding": self.counted_padding, "by_taps": self.by_taps}


@keras.saving.register_keras_serializable(package="harness")
class KerasAveragePoolingSumOverCount(PoolSumOverCount):
    """PoolSumOverCount in 2-D: the name under which avg_pool2d's layers were saved (.keras files name the class),
    kept for them."""


@keras.saving.register_keras_serializable(package="harness")
class DilatedMaxPooling(keras.layers.Layer):
    """Max pooling with dilation, `valid` (the input comes padded): Keras's MaxPooling layers and keras.ops.max_pool
    have no dilation. The elementwise maximum of the window's taps (tap_reduce with first_maximum); a tie keeps the
    earlier tap, its gradient too, as PyTorch's max pooling sends it to the first maximum. Also 3-D
    max pooling in float64 / float16 (dilation 1), which TensorFlow's MaxPool3D has no kernel for.
    """

    def __init__(self, pool_size: Sizes, strides: Sizes, dilation: Sizes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size, self.strides, self.dilation = tuple(pool_size), tuple(strides), tuple(dilation)

    def call(self, x: Any) -> Any:
        return tap_reduce(x, self.pool_size, self.strides, self.dilation, first_maximum)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        out = (None if n is None else (n - (k - 1) * d - 1) // s + 1
               for n, k, s, d in zip(input_shape[1:-1], self.pool_size, self.strides, self.dilation))
        return input_shape[0], *out, input_shape[-1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "dilation": self.dilation}


@keras.saving.register_keras_serializable(package="harness")
class AdaptivePooling(keras.layers.Layer):
    """PyTorch's adaptive average or max pooling to `output_size`, exactly: each output cell reduces the input cells
    of xfw_harness.core.spatial.adaptive_window on each axis (windows of unequal sizes that may overlap; any output
    size, larger than the input too). One axis after the other: the slices of each window, each reduced
    (a sum divided by the window's length, or keras.ops.max, with keepdims), concatenated along that axis. A window
    is a box, so reducing the axes one by one is the reduction over the box (the mean of equal-sized rows' means is
    the box's mean). Not keras.ops.mean: off TensorFlow it computes a float64 mean in float32
    (keras/src/backend/{jax,torch}/numpy.py, mean: compute_dtype = result_type(x.dtype, "float32"), which is float32
    there, BIT64_TO_BIT32_DTYPE in keras/src/backend/common/dtypes.py)."""

    def __init__(self, op: str, output_size: Sizes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.op, self.output_size = op, tuple(output_size)

    def call(self, x: Any) -> Any:
        def reduce(window: Any, axis: int, keepdims: bool) -> Any:
            if self.op == "avg":
                return keras.ops.sum(window, axis=axis, keepdims=keepdims) / window.shape[axis]
            return keras.ops.max(window, axis=axis, keepdims=keepdims)

        for axis, out in enumerate(self.output_size, start=1):
            size = x.shape[axis]
            if size is None:
                raise ValueError(f"AdaptivePooling needs known spatial sizes, got input shape {tuple(x.shape)}")
            pieces = []
            for start, end in adaptive_windows(int(size), out):
                index = [slice(None)] * len(x.shape)
                index[axis] = slice(start, end)
                pieces.append(reduce(x[tuple(index)], axis=axis, keepdims=True))
            x = pieces[0] if len(pieces) == 1 else keras.ops.concatenate(pieces, axis=axis)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape[0], *self.output_size, input_shape[-1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "op": self.op, "output_size": self.output_size}


def torch_pool_function(kind: str, spatial: int) -> Any:
    """torch.nn.functional's pooling of `spatial` axes: kind "avg_pool", "max_pool", "adaptive_avg_pool", ..."""
    return getattr(F, f"{kind}{spatial}d")


class TorchAvgPoolSumOverCount(torch.nn.Module):
    """PyTorch's counterpart for what AvgPool1d/2d/3d cannot take (asymmetric padding, more than half the window,
    padding left out of the divisor together with ceil mode's overhang): sum / count over the cells that count."""

    def __init__(self, kernel_size: Sizes, stride: Sizes, pads: Pads, counted_pads: Pads) -> None:
        super().__init__()
        # Kept as given: `xfw-harness show` reads the constructor arguments back off these attributes.
        self.kernel_size, self.stride, self.pads, self.counted_pads = kernel_size, stride, pads, counted_pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = torch_pool_function("avg_pool", len(self.kernel_size))
        total = pool(F.pad(x, torch_pad_arg(self.pads)), self.kernel_size, self.stride)
        mask = F.pad(torch.ones_like(x[:, :1]), torch_pad_arg(self.counted_pads), value=1.0)
        mask = F.pad(mask, torch_pad_arg(pads_minus_nd(self.pads, self.counted_pads)))
        return total / pool(mask, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pads={self.pads}, counted={self.counted_pads}"


class TorchGlobalPool(torch.nn.Module):
    """Global average or max pooling with Keras's keepdims switch: PyTorch's adaptive pooling to size 1 keeps the
    spatial axes ([N, C, 1, ...]); without keepdims they are flattened away ([N, C]), as Keras's global pooling
    layers do."""

    def __init__(self, op: str, keepdims: bool) -> None:
        super().__init__()
        self.op, self.keepdims = op, keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch_pool_function(f"adaptive_{self.op}_pool", x.dim() - 2)(x, 1)
        return pooled if self.keepdims else torch.flatten(pooled, 1)

    def extra_repr(self) -> str:
        return f"op={self.op}, keepdims={self.keepdims}"
