"""The PyTorch modules and Keras layers of group_norm and instance_norm (xfw_harness/blocks/group_normalization.py),
apart from the blocks' declarations: those name them through xfw_harness.core.lazy, so that reading the blocks
(xfw-harness check, the JSON Schema) imports no framework. Keras layers keep their registered names (package "harness"):
saved .keras files name them.
"""

from __future__ import annotations

import math
from typing import Any

from xfw_harness.core.frameworks import keras


@keras.saving.register_keras_serializable(package="harness")
class InstanceNormalization(keras.layers.Layer):
    """Instance normalisation with running statistics (PyTorch's InstanceNormNd(track_running_stats=True)), which
    Keras has no layer for: each sample's channels normalised by their own mean and biased variance over the spatial
    axes in training, by the moving statistics in inference; `momentum` is Keras's (the fraction of the old value
    kept) and moving_variance keeps the mean of the instances' UNBIASED variances, PyTorch's convention."""

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum, self.epsilon, self.center, self.scale = momentum, epsilon, center, scale

    def build(self, input_shape: tuple) -> None:
        channels = (input_shape[-1],)
        self.gamma = self.add_weight(shape=channels, initializer="ones", name="gamma") if self.scale else None
        self.beta = self.add_weight(shape=channels, initializer="zeros", name="beta") if self.center else None
        self.moving_mean = self.add_weight(shape=channels, initializer="zeros", name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(shape=channels, initializer="ones", name="moving_variance",
                                               trainable=False)

    def call(self, x: Any, training: Any = None) -> Any:
        axes = list(range(1, len(x.shape) - 1))
        if training:
            # Means as sums over counts: keras.ops.mean and ops.var compute float64 in float32 on the JAX and torch
            # backends (their dtype from backend.result_type, which maps float64 to float32 there:
            # keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE); ops.sum, square and divide keep it.
            n = math.prod(int(d) for d in x.shape[1:-1])
            mean = keras.ops.sum(x, axis=axes, keepdims=True) / n
            var = keras.ops.sum(keras.ops.square(x - mean), axis=axes, keepdims=True) / n
            batch = int(x.shape[0])
            self._update(self.moving_mean, keras.ops.sum(mean, axis=[0, *axes]) / batch)
            self._update(self.moving_variance, keras.ops.sum(var, axis=[0, *axes]) / batch * (n / (n - 1)))
        else:
            mean = keras.ops.cast(self.moving_mean, x.dtype)
            var = keras.ops.cast(self.moving_variance, x.dtype)
        y = (x - mean) * keras.ops.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            y = y * keras.ops.cast(self.gamma, x.dtype)
        if self.beta is not None:
            y = y + keras.ops.cast(self.beta, x.dtype)
        return y

    def _update(self, variable: Any, batch: Any) -> None:
        batch = keras.ops.cast(batch, variable.dtype)
        # The momentum as a tensor of the variable's dtype: the torch backend's ops.multiply (a Keras variable's
        # `*`) makes a Python float a float32 tensor first, so 0.9 would be rounded to float32 in a float64 layer.
        momentum = keras.ops.convert_to_tensor(self.momentum, variable.dtype)
        variable.assign(variable * momentum + batch * (1.0 - momentum))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale}
