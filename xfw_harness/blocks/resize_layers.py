"""The PyTorch modules and Keras layers of the resize block (xfw_harness/blocks/resize.py), apart from the blocks'
declarations: those name them through xfw_harness.core.lazy, so that reading the blocks (xfw-harness check, the JSON
Schema) imports no framework. Keras layers keep their registered names (package "harness"): saved .keras files name
them.
"""

from __future__ import annotations

from typing import Any

from xfw_harness.blocks.resize import interpolation_matrix, nearest_source
from xfw_harness.core.frameworks import keras


@keras.saving.register_keras_serializable(package="harness")
class Interpolation2D(keras.layers.Layer):
    """F.interpolate on an NHWC tensor, exactly as PyTorch computes it (xfw_harness/blocks/resize.py): PyTorch's source
    indices (nearest, nearest-exact: a gather) or its interpolation weights (bilinear, bicubic: one matrix per axis)
    for the input's static height and width; `scales` the scale_factor per axis PyTorch's kernel is given, or None."""

    def __init__(self, size: Any, interpolation: str, align_corners: bool = False, scales: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = tuple(int(s) for s in size)
        self.interpolation = interpolation
        self.align_corners = bool(align_corners)
        self.scales = tuple(scales) if scales is not None else (None, None)

    def call(self, x: Any) -> Any:
        h, w = x.shape[1], x.shape[2]
        if h is None or w is None:
            raise ValueError(f"Interpolation2D needs a known height and width, got input shape {tuple(x.shape)}")
        if self.interpolation in ("nearest", "nearest-exact"):
            exact = self.interpolation == "nearest-exact"
            rows, cols = (nearest_source(int(n), m, f, exact) for n, m, f in zip((h, w), self.size, self.scales))
            return keras.ops.take(keras.ops.take(x, rows, axis=1), cols, axis=2)
        rows, cols = (keras.ops.convert_to_tensor(
            interpolation_matrix(int(n), m, f, self.interpolation, self.align_corners), dtype=self.compute_dtype)
            for n, m, f in zip((h, w), self.size, self.scales))
        return keras.ops.einsum("ow,nhwc->nhoc", cols, keras.ops.einsum("oh,nhwc->nowc", rows, x))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape[0], *self.size, input_shape[-1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "interpolation": self.interpolation,
                "align_corners": self.align_corners, "scales": self.scales}


@keras.saving.register_keras_serializable(package="harness")
class NearestGather(keras.layers.Layer):
    """PyTorch's nearest upsampling on a channels-last tensor of any rank: each spatial axis gathered at the input
    indices PyTorch reads (`indices`, one list per axis: resize.nearest_source, its float32 arithmetic), for the
    factors where they are not i // factor (upsampling.py, nearest_rounds)."""

    def __init__(self, indices: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.indices = tuple(tuple(int(i) for i in axis) for axis in indices)

    def call(self, x: Any) -> Any:
        for axis, idx in enumerate(self.indices, start=1):
            x = keras.ops.take(x, list(idx), axis=axis)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape[0], *(len(idx) for idx in self.indices), input_shape[-1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "indices": self.indices}
