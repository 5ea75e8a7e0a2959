"""Size and padding arithmetic shared by the spatial blocks (convolution, pooling). Pure integers, no frameworks.

Rank-generic: a size, kernel, stride or dilation is a tuple with one value per spatial axis ((l,) for 1-D blocks,
(h, w) for 2-D, (d, h, w) for 3-D), a padding one (before, after) pair per spatial axis in the same order."""

from __future__ import annotations

import math

Pair = tuple[int, int]
Sizes = tuple[int, ...]  # one value per spatial axis: (h, w) in 2-D
Pads = tuple[Pair, ...]  # one (before, after) per spatial axis: ((top, bottom), (left, right)) in 2-D


def same_padding_1d(size: int, kernel: int, stride: int, dilation: int = 1) -> Pair:
    """TensorFlow's `same`: output ceil(size/stride); the odd pixel of padding goes after (bottom/right).

    tensorflow/core/framework/kernel_shape_util.cc: total = max((out-1)*s + (k-1)*d + 1 - in, 0).
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: str | Sizes, size: Sizes, kernel: Sizes, stride: Sizes,
                    dilation: Sizes | None = None) -> Pads:
    """The explicit ((top, bottom), (left, right)) zero/-inf padding that a padding parameter means (one pair per
    spatial axis of `size`; dilation 1 where None)."""
    dilation = dilation if dilation is not None else (1,) * len(size)
    if padding == "valid":
        return tuple((0, 0) for _ in size)
    if padding == "same":
        return tuple(same_padding_1d(*args) for args in zip(size, kernel, stride, dilation))
    return tuple((p, p) for p in padding)


def output_size_1d(size: int, kernel: int, stride: int, pads: Pair, dilation: int = 1) -> int:
    """Floor-mode output length of a window sliding over `size` padded by `pads`; <= 0 means no window fits."""
    effective = (kernel - 1) * dilation + 1
    span = size + pads[0] + pads[1] - effective
    return span // stride + 1 if span >= 0 else 0


def output_size(size: Sizes, kernel: Sizes, stride: Sizes, pads: Pads, dilation: Sizes | None = None) -> Sizes:
    dilation = dilation if dilation is not None else (1,) * len(size)
    return tuple(output_size_1d(*args) for args in zip(size, kernel, stride, pads, dilation))


def is_symmetric(pads: Pads) -> bool:
    return all(before == after for before, after in pads)


def torch_pad_arg(pads: Pads) -> tuple[int, ...]:
    """((top, bottom), (left, right)) -> the (left, right, top, bottom) order of torch.nn.functional.pad: the last
    axis first, for any number of spatial axes ((front, back), (top, bottom), (left, right) -> left, right, top,
    bottom, front, back)."""
    flat: list[int] = []
    for before, after in reversed(pads):
        flat += [before, after]
    return tuple(flat)


def ceil_output_size_1d(size: int, kernel: int, stride: int, pads: Pair) -> int:
    """PyTorch's ceil_mode output length of a pooling window over `size` padded by `pads` (0: none).

    aten/src/ATen/native/Pool.h, pooling_output_shape_pad_lr: the span is rounded up instead of down, so the
    last window may reach past the right padding; then a last window that would start at or after the end of
    the input (in the right padding or beyond) is dropped: (out - 1) * stride >= size + pads[0] -> out - 1.
    """
    out = (size + pads[0] + pads[1] - kernel + stride - 1) // stride + 1  # // floors like Pool.h's div_rtn
    if (out - 1) * stride >= size + pads[0]:  # never when out <= 0: (out - 1) * stride is then negative
        out -= 1
    return max(out, 0)


def ceil_overhang_1d(size: int, kernel: int, stride: int, pads: Pair) -> int:
    """How far the last ceil_mode window reaches past the right padding (0 when it does not): cells that
    count for nothing (max: -inf; average: neither in the sum nor in the divisor, even with count_include_pad)."""
    return max(0, (ceil_output_size_1d(size, kernel, stride, pads) - 1) * stride + kernel - size - pads[0] - pads[1])


def pool_output_size(size: Pair, kernel: Pair, stride: Pair, pads: Pads, ceil_mode: bool) -> Pair:
    """Output size of a pooling window: floor mode (output_size) or PyTorch's ceil mode (ceil_output_size_1d)."""
    if not ceil_mode:
        return output_size(size, kernel, stride, pads)
    return tuple(ceil_output_size_1d(*args) for args in zip(size, kernel, stride, pads))  # type: ignore[return-value]


def ceil_overhang(size: Pair, kernel: Pair, stride: Pair, pads: Pads) -> Pair:
    """(bottom, right) overhang of the last ceil_mode windows: padding these extra cells (with -inf for max, or
    uncounted zeros for average) and pooling in floor mode gives ceil mode's windows exactly."""
    return tuple(ceil_overhang_1d(*args) for args in zip(size, kernel, stride, pads))  # type: ignore[return-value]


# --- pooling's own: dilated windows, PyTorch's adaptive windows -----------------------------------------------
def effective_kernel(kernel: Sizes, dilation: Sizes) -> Sizes:
    """The span of a dilated window on each axis: (k - 1) * d + 1 cells."""
    return tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))


def adaptive_window(index: int, size: int, out: int) -> Pair:
    """The input cells [start, end) that output cell `index` of PyTorch's adaptive pooling from `size` to `out` cells
    covers: start = floor(index * size / out), end = ceil((index + 1) * size / out), in the integer forms of
    aten/src/ATen/native/AdaptivePooling.h (start_index, end_index). Windows may overlap, and with out > size
    several output cells read the same input cell."""
    start = (index // out) * size + ((index % out) * size) // out
    end = 1 + ((index + 1) * size - 1) // out
    return start, end


def adaptive_windows(size: int, out: int) -> list[Pair]:
    """Every adaptive_window of an axis pooled from `size` to `out` cells, in order."""
    return [adaptive_window(i, size, out) for i in range(out)]
