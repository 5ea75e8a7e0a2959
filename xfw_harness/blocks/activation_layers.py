"""The PyTorch modules and Keras layers of the activation blocks (xfw_harness/blocks/activations.py,
activations_ops.py), apart from the blocks' declarations: those name them through xfw_harness.core.lazy, so that reading
the blocks (xfw-harness check, the JSON Schema) imports no framework. Keras layers keep their registered names (package
"harness"): saved .keras files name them.
"""

from __future__ import annotations

from typing import Any

from xfw_harness.core.frameworks import keras, torch


class TorchHardTanh(torch.nn.Hardtanh):
    """nn.Hardtanh with only its two bounds as arguments (its constructor's deprecated min_value/max_value aside), so
    that `xfw-harness show` prints it from its attributes."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__(min_val, max_val)


@keras.saving.register_keras_serializable(package="harness")
class LogSoftmax(keras.layers.Layer):
    """keras.ops.log_softmax along `axis`: Keras has no log-softmax layer, and Activation('log_softmax') is axis -1
    only."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x: Any) -> Any:
        return keras.ops.log_softmax(x, axis=self.axis)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="harness")
class Threshold(keras.layers.Layer):
    """x if x > threshold else value (keras.ops.threshold): PyTorch's nn.Threshold, which Keras has no layer for."""

    def __init__(self, threshold: float = 0.0, value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold, self.value = threshold, value

    def call(self, x: Any) -> Any:
        return keras.ops.threshold(x, self.threshold, self.value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold, "value": self.value}


@keras.saving.register_keras_serializable(package="harness")
class HardSigmoid(keras.layers.Layer):
    """clip(alpha * x + beta, 0, 1) (keras.ops.clip): Keras's hard_sigmoid is fixed at alpha 1/6, beta 1/2."""

    def __init__(self, alpha: float = 0.2, beta: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha, self.beta = alpha, beta

    def call(self, x: Any) -> Any:
        return keras.ops.clip(self.alpha * x + self.beta, 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


class TorchHardSigmoid(torch.nn.Module):
    """clamp(alpha * x + beta, 0, 1): PyTorch's Hardsigmoid is fixed at alpha 1/6, beta 1/2."""

    def __init__(self, alpha: float = 0.2, beta: float = 0.5) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.alpha * x + self.beta, 0.0, 1.0)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"


@keras.saving.register_keras_serializable(package="harness")
def gelu_tanh(x: Any) -> Any:
    """GELU's tanh approximation (PyTorch's approximate='tanh') as a named, registered function: a Keras model
    holding it saves into a .keras file (`xfw-harness port`), which a functools.partial of keras.activations.gelu
    cannot."""
    return keras.activations.gelu(x, approximate=True)
