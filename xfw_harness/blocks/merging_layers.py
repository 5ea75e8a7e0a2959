"""The PyTorch modules and Keras layers of the merging blocks (xfw_harness/blocks/merging.py), apart from the blocks'
declarations: those name them through xfw_harness.core.lazy, so that reading the blocks (xfw-harness check, the JSON
Schema) imports no framework. Keras layers keep their registered names (package "harness"): saved .keras files name
them.
"""

from __future__ import annotations

import functools

from xfw_harness.core.frameworks import torch


class TorchAdd(torch.nn.Module):
    """x0 + x1 + ...: PyTorch's `+` with broadcasting, as a module of several inputs."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return functools.reduce(torch.add, xs)


class TorchMultiply(torch.nn.Module):
    """x0 * x1 * ...: PyTorch's `*` with broadcasting, as a module of several inputs."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return functools.reduce(torch.mul, xs)


class TorchConcatenate(torch.nn.Module):
    """torch.cat(xs, dim) as a module of several inputs."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
