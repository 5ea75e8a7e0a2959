"""The PyTorch modules and Keras layers of the dense block (xfw_harness/blocks/dense.py), apart from the blocks'
declarations: those name them through xfw_harness.core.lazy, so that reading the blocks (xfw-harness check, the JSON
Schema) imports no framework. Keras layers keep their registered names (package "harness"): saved .keras files name
them.
"""

from __future__ import annotations

from xfw_harness.core.frameworks import torch


class TorchChannelsLinear(torch.nn.Module):
    """nn.Linear over axis 1 of a channels-first tensor of rank > 2."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.movedim(1, -1)).movedim(-1, 1)
