"""Every layout and weight-layout conversion between PyTorch and Keras, and nothing else.

Cases and verdicts speak channels-first (PyTorch's N, C, ...). Keras computes channels-last. No other
module transposes by hand: blocks call these functions, and `Layout` records how a Keras tensor's
elements correspond to the channels-first tensor that PyTorch holds at the same point of a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) -> (N, *spatial, C). Rank 2 is returned unchanged."""
    return np.moveaxis(x, 1, -1) if x.ndim > 2 else x


def to_channels_first(x: np.ndarray) -> np.ndarray:
    """(N, *spatial, C) -> (N, C, *spatial). Rank 2 is returned unchanged."""
    return np.moveaxis(x, -1, 1) if x.ndim > 2 else x


def shape_to_channels_last(shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(shape)
    return (shape[0], *shape[2:], shape[1]) if len(shape) > 2 else shape


def conv_kernel_to_keras(weight: np.ndarray) -> np.ndarray:
    """Conv2d weight [out, in/groups, kh, kw] -> Keras Conv2D kernel (kh, kw, in/groups, out).

    Any spatial rank alike: Conv1d's [out, in/groups, l] -> Conv1D's (l, in/groups, out), Conv3d's
    [out, in/groups, d, h, w] -> Conv3D's (d, h, w, in/groups, out).

    Not (3, 2, 1, 0): that also swaps kh and kw, which a square kernel hides.
    """
    return np.ascontiguousarray(weight.transpose(*range(2, weight.ndim), 1, 0))


def conv_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Inverse of `conv_kernel_to_keras`."""
    return np.ascontiguousarray(kernel.transpose(kernel.ndim - 1, kernel.ndim - 2, *range(kernel.ndim - 2)))


def depthwise_kernel_to_keras(weight: np.ndarray, depth_multiplier: int) -> np.ndarray:
    """Depthwise Conv2d weight [in*m, 1, kh, kw] -> Keras DepthwiseConv2D kernel (kh, kw, in, m).

    PyTorch's output channel c*m + q reads input channel c (groups = in: consecutive outputs share an input), as
    tf.nn.depthwise_conv2d's output channel c*m + q does; so the rows split as (in, m), not (m, in).
    """
    rows, _, kh, kw = weight.shape
    split = weight.reshape(rows // depth_multiplier, depth_multiplier, kh, kw)  # [in, m, kh, kw]
    return np.ascontiguousarray(split.transpose(2, 3, 0, 1))


def depthwise_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Inverse of `depthwise_kernel_to_keras`."""
    kh, kw, channels, multiplier = kernel.shape
    return np.ascontiguousarray(kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw))


def conv_transpose_kernel_to_keras(weight: np.ndarray) -> np.ndarray:
    """ConvTranspose2d weight [in, out, kh, kw] -> Keras Conv2DTranspose kernel (kh, kw, out, in); any spatial rank
    alike ([in, out, l] -> (l, out, in), [in, out, d, h, w] -> (d, h, w, out, in)).

    The permutation of `conv_kernel_to_keras`: each framework stores its transposed kernel with in and out swapped
    relative to its convolution kernel, and neither flips it spatially (both scatter x[i] * w[u] to output
    i*stride + u*dilation - crop). Taking Keras's kernel for (kh, kw, in, out) swaps in and out, which a layer
    with as many outputs as inputs hides.
    """
    return np.ascontiguousarray(np.transpose(weight, (*range(2, weight.ndim), 1, 0)))


def conv_transpose_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Inverse of `conv_transpose_kernel_to_keras`."""
    return np.ascontiguousarray(np.transpose(kernel, (kernel.ndim - 1, kernel.ndim - 2, *range(kernel.ndim - 2))))


def grouped_conv_transpose_kernel_to_keras(weight: np.ndarray, groups: int) -> np.ndarray:
    """Grouped ConvTranspose2d weight [in, out/groups, kh, kw] -> the harness's GroupedConvTranspose kernel
    (groups, kh, kw, out/groups, in/groups), group j's Keras transposed-convolution kernel at [j]; any spatial rank
    alike. PyTorch keeps group j's kernel in rows j*in/g .. (j+1)*in/g (consecutive input channels, as its groups
    take them): the rows split as (groups, in/groups), not (in/groups, groups), which would give each group every
    g-th channel's kernel; then each group's [in/g, out/g, kh, kw] as `conv_transpose_kernel_to_keras`."""
    rows, out_per_group, *kernel = weight.shape
    split = weight.reshape(groups, rows // groups, out_per_group, *kernel)  # [g, in/g, out/g, kh, kw]
    return np.ascontiguousarray(np.transpose(split, (0, *range(3, split.ndim), 2, 1)))


def grouped_conv_transpose_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Inverse of `grouped_conv_transpose_kernel_to_keras`."""
    groups, *taps, out_per_group, in_per_group = kernel.shape
    per_group = np.transpose(kernel, (0, kernel.ndim - 1, kernel.ndim - 2, *range(1, kernel.ndim - 2)))
    return np.ascontiguousarray(per_group.reshape(groups * in_per_group, out_per_group, *taps))


def dense_kernel_to_keras(weight: np.ndarray) -> np.ndarray:
    """Linear weight [out, in] -> Dense kernel (in, out)."""
    return np.ascontiguousarray(weight.T)


def dense_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.T)


def flatten_permutation(unflattened: tuple[int, ...]) -> np.ndarray:
    """Index p with keras_flat == torch_flat[..., p] for a per-sample tensor of channels-first shape `unflattened`.

    PyTorch flattens (C, H, W) in that order; Keras's Flatten() flattens its channels-last (H, W, C) tensor as
    it lies. (Flatten(data_format='channels_first') does not undo that: it moves axis 1 to the end first, which
    on an NHWC tensor gives (W, C, H); keras/src/layers/reshaping/flatten.py.)
    """
    idx = np.arange(int(np.prod(unflattened))).reshape(unflattened)
    return np.moveaxis(idx, 0, -1).ravel() if len(unflattened) > 1 else idx.ravel()


def dense_after_flatten_kernel_to_keras(weight: np.ndarray, unflattened: tuple[int, ...]) -> np.ndarray:
    """Linear weight [out, C*H*W] (rows in C, H, W order) -> Dense kernel (H*W*C, out) for Keras's flatten order."""
    return np.ascontiguousarray(weight[:, flatten_permutation(unflattened)].T)


def channel_vector_to_keras(vector: np.ndarray, shape: tuple[int, ...],
                            flattened_from: tuple[int, ...] | None = None) -> np.ndarray:
    """Per-channel vector [C] (or one value [1]) -> a Keras weight of `shape` that broadcasts over channels-last.

    PyTorch keeps one value per channel (axis 1 of the channels-first tensor), e.g. PReLU's weight; Keras keeps it in
    a variable shaped like a sample of its channels-last tensor with size 1 on the axes that share it, e.g. PReLU's
    alpha: (1, ..., 1, C) shared over the spatial axes, (1, ..., 1) for one value, (H, W, C) for one per element
    (each element then starts from its channel's value). NumPy's broadcasting aligns the vector with the last axis,
    where Keras keeps the channels; a length that fits neither 1 nor that axis raises. After a flatten
    (`flattened_from`, as in `Layout`) the channels are the flattened features, which Keras holds in its own order:
    permuted by `flatten_permutation`.
    """
    vector = np.asarray(vector)
    if flattened_from is not None and vector.size > 1:
        vector = vector[flatten_permutation(flattened_from)]
    return np.ascontiguousarray(np.broadcast_to(vector, shape))


def channels_last_axes(rank: int) -> tuple[int, ...]:
    """The axes of a channels-first tensor in the order Keras holds them: (0, 2, ..., rank - 1, 1); rank <= 2 as is."""
    return (0, *range(2, rank), 1) if rank > 2 else tuple(range(rank))


@dataclass(frozen=True)
class Layout:
    """How the Keras tensor at some point of a network maps onto PyTorch's channels-first tensor there.

    `flattened_from` is None for a plain channels-last tensor. After a flatten of a per-sample tensor of
    channels-first shape S, it is S: the Keras features are PyTorch's, permuted by `flatten_permutation(S)`.
    `axes`, where set, is any other order: Keras holds np.transpose(pytorch_tensor, axes). A permute in a PyTorch
    model (ConvNeXt's (0, 2, 3, 1) to put channels last) changes PyTorch's tensor and leaves Keras's as it is: its
    layout records where each axis went (`permuted`), so that a layer norm or a linear layer on PyTorch's last axis
    acts on Keras's last axis too, without a transpose in the Keras model.
    """

    flattened_from: tuple[int, ...] | None = None
    axes: tuple[int, ...] | None = None

    def _order(self, rank: int) -> tuple[int, ...]:
        return self.axes if self.axes is not None else channels_last_axes(rank)

    def to_keras(self, x: np.ndarray) -> np.ndarray:
        if self.flattened_from is None:
            return np.ascontiguousarray(np.transpose(x, self._order(x.ndim)))
        return np.ascontiguousarray(x[..., flatten_permutation(self.flattened_from)])

    def to_channels_first(self, y: np.ndarray) -> np.ndarray:
        if self.flattened_from is None:
            return np.ascontiguousarray(np.transpose(y, np.argsort(self._order(y.ndim))))
        out = np.empty_like(y)
        out[..., flatten_permutation(self.flattened_from)] = y
        return out

    def keras_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape Keras holds a tensor of channels-first `shape` in."""
        return tuple(shape) if self.flattened_from is not None else tuple(shape[a] for a in self._order(len(shape)))

    def keras_axis(self, axis: int, rank: int) -> int:
        # A flattened tensor is rank 2 and the permutation stays inside axis 1: axes map as they are.
        if self.flattened_from is not None:
            return axis % rank
        return self._order(rank).index(axis % rank)

    def permuted(self, dims: tuple[int, ...]) -> Layout:
        """The layout after PyTorch's tensor is permuted by `dims` (torch.permute) and Keras's is left as it is."""
        inverse = np.argsort(dims)
        axes = tuple(int(inverse[a]) for a in self._order(len(dims)))
        return CHANNELS_LAST if axes == channels_last_axes(len(dims)) else Layout(axes=axes)

    @property
    def standard(self) -> bool:
        """Channels-last (or a flatten of it): what every block that is not layout-agnostic takes."""
        return self.axes is None

    def describe(self) -> str:
        if self.axes is not None:
            return f"axes {list(self.axes)} of PyTorch's tensor"
        return "channels-last" if self.flattened_from is None else f"flattened from {list(self.flattened_from)}"


CHANNELS_LAST = Layout()
