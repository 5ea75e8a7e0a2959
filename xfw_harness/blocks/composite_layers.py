"""The PyTorch modules and Keras layers of the composite blocks (xfw_harness/blocks/composite.py), apart from the
blocks' declarations: those name them through xfw_harness.core.lazy, so that reading the blocks (xfw-harness check, the
JSON Schema) imports no framework. Keras layers keep their registered names (package "harness"): saved .keras files name
them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from xfw_harness.core.frameworks import keras, torch


class TorchResidual(torch.nn.Module):
    """body(x) + shortcut(x), each an nn.Sequential (an empty one is the identity): the harness's residual block."""

    def __init__(self, body: torch.nn.Sequential, shortcut: torch.nn.Sequential) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


@keras.saving.register_keras_serializable(package="harness")
class KerasResidual(keras.layers.Layer):
    """body(x) + shortcut(x), each a list of Keras layers applied in order (an empty one is the identity): the
    harness's residual block; it saves into and loads from a .keras file like any Keras layer."""

    layer_lists: ClassVar[tuple[str, ...]] = ("body", "shortcut")  # constructor arguments that are lists of layers

    def __init__(self, body: list[keras.Layer], shortcut: list[keras.Layer], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Keras tracks the lists' layers and their variables; a WeightCopy path such as `body.0.kernel` resolves.
        self.body = list(body)
        self.shortcut = list(shortcut)

    def build(self, input_shape: tuple) -> None:
        for branch in (self.body, self.shortcut):  # each sublayer built for its own input, as a functional model
            x = keras.KerasTensor(tuple(input_shape), dtype=self.compute_dtype)
            for sub in branch:
                x = sub(x)
        self.built = True

    def call(self, x: Any, training: bool | None = None) -> Any:
        y, s = x, x
        for sub in self.body:
            y = sub(y, training=training)
        for sub in self.shortcut:
            s = sub(s, training=training)
        return keras.ops.add(y, s)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                **{key: [keras.saving.serialize_keras_object(sub) for sub in getattr(self, key)]
                   for key in self.layer_lists}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KerasResidual:
        config = dict(config)
        branches = {key: [keras.saving.deserialize_keras_object(sub) for sub in config.pop(key)]
                    for key in cls.layer_lists}
        return cls(**branches, **config)
