"""The harness's own Keras layers: exact computations that Keras has no layer for, each written in keras.ops so that
it runs on any Keras backend. The blocks build them where Keras's own layers cannot compute the block's semantics
exactly (a padding_mode, a padding value other than zero, a strided and dilated convolution, an average over the
cells that count, bilinear upsampling in float64 or with align_corners, batch statistics in eval mode).

Each saves into a .keras file with its config; `xfw-harness port` names them in the load instructions
(custom_objects), since a fresh Python has not imported this module.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from xfw_harness.core.frameworks import keras

# The index pattern of each PyTorch padding mode, as numpy.pad's mode (Padding2D gathers with it).
KERAS_INDEX_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
# ONNX Pad's name for each mode (the reference's; kept apart from Keras's table so one cannot hide the other).


@keras.saving.register_keras_serializable(package="harness")
class Subsample(keras.layers.Layer):
    """Keeps every stride-th cell of each spatial axis of a channels-last tensor (N, *spatial, C), one stride per
    spatial axis (1-D, 2-D, 3-D alike): the stride of a Keras conv run at stride 1 (Keras refuses strides with
    dilation)."""

    def __init__(self, strides: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strides = tuple(strides)

    def call(self, x: Any) -> Any:
        return x[(slice(None), *(slice(None, None, s) for s in self.strides), slice(None))]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        spatial = tuple(None if n is None else -(-n // s) for n, s in zip(input_shape[1:-1], self.strides))
        return input_shape[0], *spatial, input_shape[-1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "strides": self.strides}


@keras.saving.register_keras_serializable(package="harness")
class Subsample2D(Subsample):
    """Subsample of an NHWC tensor's rows and columns: the name under which convolution's strided, dilated layers
    were saved (.keras files name the class), kept for them."""


@keras.saving.register_keras_serializable(package="harness")
class SpatialPadding(keras.layers.Layer):
    """Pads the spatial axes of a channels-last tensor (N, *spatial, C), one (before, after) pair per spatial axis
    (1-D, 2-D, 3-D alike), as PyTorch's padding modes do: `constant` (the `value`, through keras.ops.pad's
    constant_values: exact), `reflect`, `replicate`, `circular`.

    Keras has no such layer and TensorFlow's pad no edge or wrap mode: for those three, each axis is gathered by
    index, the indices being numpy.pad's of an arange in the mode's pattern (KERAS_INDEX_MODES; an exact copy,
    whatever the dtype).
    """

    def __init__(self, padding: Any, mode: str = "constant", value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(a) for a in p) for p in padding)
        self.mode = mode
        self.value = float(value)

    def call(self, x: Any) -> Any:
        if self.mode == "constant":
            spec = [[0, 0], *([before, after] for before, after in self.padding), [0, 0]]
            return keras.ops.pad(x, spec, constant_values=self.value)
        index_mode = KERAS_INDEX_MODES[self.mode]  # looked up at each call: tests plant a wrong pattern here
        for axis, pair in enumerate(self.padding, start=1):
            size = x.shape[axis]
            if size is None:
                raise ValueError(f"{type(self).__name__} needs known spatial sizes, got input shape {tuple(x.shape)}")
            if any(pair):
                x = keras.ops.take(x, np.pad(np.arange(int(size)), pair, mode=index_mode), axis=axis)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        spatial = tuple(None if s is None else s + before + after
                        for s, (before, after) in zip(input_shape[1:-1], self.padding))
        return input_shape[0], *spatial, input_shape[-1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": self.padding, "mode": self.mode, "value": self.value}


@keras.saving.register_keras_serializable(package="harness")
class Padding2D(SpatialPadding):
    """SpatialPadding of an NHWC tensor's height and width: ((top, bottom), (left, right)). The name under which
    convolution's padding_mode layers were saved (.keras files name the class), kept for them."""


@keras.saving.register_keras_serializable(package="harness")
class InsertZeros(keras.layers.Layer):
    """Puts stride - 1 zeros between consecutive cells of each spatial axis of a channels-last tensor (N, *spatial,
    C), one stride per spatial axis (n -> (n-1)*s + 1; in 2-D between rows and between columns): a transposed
    convolution with strides is the stride-1 one of this tensor (for Keras's transposed convolutions, which refuse
    strides with dilation)."""

    def __init__(self, strides: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strides = tuple(strides)

    def call(self, x: Any) -> Any:
        # One axis at a time (TensorFlow pads tensors of rank 6 at most): each cell followed by a new axis of size
        # 1, padded at its end to the stride, folded back, the trailing zeros cut.
        for axis, s in enumerate(self.strides, start=1):
            n = x.shape[axis]
            if n is None:
                raise ValueError(f"{type(self).__name__} needs known spatial sizes, got input shape {tuple(x.shape)}")
            if s == 1:
                continue
            shape = list(x.shape)
            cells = keras.ops.expand_dims(x, axis + 1)
            spec = [[0, 0]] * (len(shape) + 1)
            spec[axis + 1] = [0, s - 1]
            spaced = keras.ops.pad(cells, spec)
            folded = keras.ops.reshape(spaced, (-1, *shape[1:axis], int(n) * s, *shape[axis + 1:]))
            x = folded[(slice(None),) * axis + (slice(0, (int(n) - 1) * s + 1),)]
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        spatial = tuple(None if n is None else (n - 1) * s + 1 for n, s in zip(input_shape[1:-1], self.strides))
        return input_shape[0], *spatial, input_shape[-1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "strides": self.strides}


@keras.saving.register_keras_serializable(package="harness")
class InsertZeros2D(InsertZeros):
    """InsertZeros of an NHWC tensor's rows and columns: the name under which conv2d_transpose's layers were saved
    (.keras files name the class), kept for them."""


@keras.saving.register_keras_serializable(package="harness")
class ConstantPadding2D(SpatialPadding):
    """SpatialPadding with a constant of an NHWC tensor's height and width. The name under which max pooling's -inf
    padding was saved (.keras files name the class), kept for them; the blocks build SpatialPadding."""


def linear_interpolation_matrix(size: int, factor: int, align_corners: bool) -> np.ndarray:
    """The [size * factor, size] float64 weights of PyTorch's linear upsampling along one axis.

    Output i samples input coordinate i * (size - 1) / (out - 1) with align_corners (0 when out is 1), else
    (i + 0.5) / factor - 0.5 clamped at 0 (aten/src/ATen/native/UpSample.h, area_pixel_compute_source_index,
    with scale 1 / scale_factor); np.interp weighs the two neighbours, the last cell repeating past the end.
    """
    out = size * factor
    i = np.arange(out, dtype=np.float64)
    if align_corners:
        source = i * ((size - 1) / (out - 1)) if out > 1 else np.zeros(out)
    else:
        source = np.maximum((i + 0.5) / factor - 0.5, 0.0)
    grid = np.arange(size, dtype=np.float64)
    return np.stack([np.interp(source, grid, column) for column in np.eye(size)], axis=1)


class BilinearUpSampling2D(keras.layers.Layer):
    """Bilinear upsampling by integer factors in the layer's own dtype, with or without align_corners: Keras's
    UpSampling2D has no align_corners and computes bilinear in float32 whatever its dtype."""

    def __init__(self, size: tuple[int, int], align_corners: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = tuple(size)
        self.align_corners = align_corners

    def call(self, x: Any) -> Any:
        rows, cols = (keras.ops.convert_to_tensor(linear_interpolation_matrix(n, f, self.align_corners),
                                                  dtype=self.compute_dtype)
                      for n, f in zip(x.shape[1:3], self.size))
        return keras.ops.einsum("ow,nhwc->nhoc", cols, keras.ops.einsum("oh,nhwc->nowc", rows, x))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape
        return n, None if h is None else h * self.size[0], None if w is None else w * self.size[1], c

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "align_corners": self.align_corners}


@keras.saving.register_keras_serializable(package="harness")
class KerasBatchStatisticsNormalization(keras.layers.BatchNormalization):
    """A BatchNormalization that always normalises with the batch's statistics (PyTorch's
    track_running_stats=False), in eval mode too; its moving statistics are never read."""

    # Variables the layer keeps but never computes with: PyTorch has no counterpart to map them to, and
    # xfw_harness.engine.training' "weights mapped" check leaves them out.
    unread_variables: ClassVar[tuple[str, ...]] = ("moving_mean", "moving_variance")

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        return super().call(inputs, training=True, mask=mask)


@keras.saving.register_keras_serializable(package="harness")
class ChannelScale(keras.layers.Layer):
    """x times a learned factor per element of `axis` (the channels): ConvNeXt's layer scale, which Keras has no
    layer for."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = axis

    def build(self, input_shape: tuple) -> None:
        self.weight = self.add_weight(shape=(input_shape[self.axis],), initializer="ones", name="weight")

    def call(self, x: Any) -> Any:
        shape = [1] * len(x.shape)
        shape[self.axis] = -1
        return x * keras.ops.reshape(keras.ops.cast(self.weight, x.dtype), shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="harness")
class AxisSlice(keras.layers.Layer):
    """The elements [start, stop) of one axis (a chunk of the channels, as torch.chunk / torch.narrow take it)."""

    def __init__(self, axis: int, start: int, stop: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis, self.start, self.stop = axis, start, stop

    def call(self, x: Any) -> Any:
        index = [slice(None)] * len(x.shape)
        index[self.axis] = slice(self.start, self.stop)
        return x[tuple(index)]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        shape[self.axis] = self.stop - self.start
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="harness")
class CELU(keras.layers.Layer):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) with its alpha (keras.ops.celu): Keras has the activation
    but no layer that keeps an alpha other than 1 in its config."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = alpha

    def call(self, x: Any) -> Any:
        return keras.ops.celu(x, alpha=self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="harness")
class Clip(keras.layers.Layer):
    """min(max(x, min_value), max_value) (keras.ops.clip): PyTorch's Hardtanh with its bounds, which Keras's
    hard_tanh (fixed at -1 and 1) and ReLU (a lower bound of 0) cannot take."""

    def __init__(self, min_value: float = -1.0, max_value: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_value, self.max_value = min_value, max_value

    def call(self, x: Any) -> Any:
        return keras.ops.clip(x, self.min_value, self.max_value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "min_value": self.min_value, "max_value": self.max_value}
