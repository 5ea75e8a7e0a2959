"""The PyTorch modules and Keras layers of pixel_shuffle and pixel_unshuffle (xfw_harness/blocks/depth_space.py), apart
from the blocks' declarations: those name them through xfw_harness.core.lazy, so that reading the blocks (xfw-harness
check, the JSON Schema) imports no framework. Keras layers keep their registered names (package "harness"): saved .keras
files name them.
"""

from __future__ import annotations

from typing import Any

from xfw_harness.core.frameworks import keras


@keras.saving.register_keras_serializable(package="harness")
class DepthToSpace(keras.layers.Layer):
    """keras.ops.depth_to_space(x, block_size) on an NHWC tensor, as a hand port writes it: TensorFlow's channel order
    (the catalogue's hand port, not the harness's translation)."""

    def __init__(self, block_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.block_size = block_size

    def call(self, x: Any) -> Any:
        return keras.ops.depth_to_space(x, self.block_size)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="harness")
class SpaceToDepth(keras.layers.Layer):
    """keras.ops.space_to_depth(x, block_size) on an NHWC tensor, as a hand port writes it: TensorFlow's channel order
    (the catalogue's hand port, not the harness's translation)."""

    def __init__(self, block_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.block_size = block_size

    def call(self, x: Any) -> Any:
        return keras.ops.space_to_depth(x, self.block_size)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "block_size": self.block_size}
