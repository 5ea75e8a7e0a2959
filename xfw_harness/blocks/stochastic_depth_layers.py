"""The PyTorch modules and Keras layers of stochastic_depth (xfw_harness/blocks/stochastic_depth.py), apart from the
blocks' declarations: those name them through xfw_harness.core.lazy, so that reading the blocks (xfw-harness check, the
JSON Schema) imports no framework. Keras layers keep their registered names (package "harness"): saved .keras files name
them.
"""

from __future__ import annotations

from typing import Any

from xfw_harness.blocks.stochastic_depth import MODES
from xfw_harness.core.frameworks import keras, torch


class StochasticDepth(torch.nn.Module):
    """torchvision.ops.StochasticDepth's computation (torchvision does not import beside the harness's torch): in
    training, input times a Bernoulli(1 - p) noise of shape (N, 1, ...) (row) or (1, ...) (batch), divided by 1 - p
    where that is above 0; the identity in eval mode or at p = 0."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0 or mode not in MODES:
            raise ValueError(f"p must be in [0, 1] and mode one of {MODES}, got p={p}, mode={mode!r}")
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


@keras.saving.register_keras_serializable(package="harness")
class KerasStochasticDepth(keras.layers.Layer):
    """torchvision's stochastic depth in keras.ops: in training, x times a Bernoulli(1 - p) draw per sample (row) or
    per call (batch), divided by 1 - p where that is above 0; the identity otherwise. Keras has no such layer."""

    def __init__(self, p: float, mode: str, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.p, self.mode, self.seed = p, mode, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x: Any, training: bool = False) -> Any:
        if not training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        rank = len(x.shape)
        shape = (keras.ops.shape(x)[0], *[1] * (rank - 1)) if self.mode == "row" else (1,) * rank
        noise = keras.ops.cast(keras.random.uniform(shape, seed=self.seed_generator) < survival, x.dtype)
        if survival > 0.0:
            noise = noise / keras.ops.convert_to_tensor(survival, dtype=x.dtype)  # not via float32
        return x * noise

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "p": self.p, "mode": self.mode, "seed": self.seed}
