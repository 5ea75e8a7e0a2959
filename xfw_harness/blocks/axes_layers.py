"""The PyTorch modules and Keras layers of the axes blocks (xfw_harness/blocks/axes.py), apart from the blocks'
declarations: those name them through xfw_harness.core.lazy, so that reading the blocks (xfw-harness check, the JSON
Schema) imports no framework. Keras layers keep their registered names (package "harness"): saved .keras files name
them.
"""

from __future__ import annotations

from xfw_harness.blocks.axes import moves_axis_last
from xfw_harness.core.frameworks import torch


class TorchPermute(torch.nn.Module):
    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class TorchLayerNorm(torch.nn.LayerNorm):
    """nn.LayerNorm over `axis` of a channels-first tensor (axis 1: torchvision's LayerNorm2d), its weight and bias
    drawn (uniform 0.5 to 1.5, normal 0 and 0.1), not PyTorch's ones and zeros: Keras starts from those too, so a
    weight transfer that copied nothing would pass."""

    def __init__(self, channels: int, eps: float, affine: bool, use_bias: bool, axis: int) -> None:
        super().__init__(channels, eps=eps, elementwise_affine=affine, bias=affine and use_bias)
        self.channels, self.affine, self.use_bias, self.axis = channels, affine, use_bias, axis
        with torch.no_grad():
            if self.weight is not None:
                self.weight.uniform_(0.5, 1.5)
            if self.bias is not None:
                self.bias.normal_(0.0, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not moves_axis_last(self.axis, x.ndim):
            return super().forward(x)
        return super().forward(x.movedim(self.axis, -1)).movedim(-1, self.axis)


class TorchChannelScale(torch.nn.Module):
    """x times a learned factor per channel (axis 1), as PyTorch broadcasts a (C, 1, ..., 1) parameter."""

    def __init__(self, channels: int, rank: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(channels).uniform_(0.5, 1.5))
        self.channels, self.rank = channels, rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.reshape(-1, *[1] * (self.rank - 2))


class TorchChannelShuffle(torch.nn.Module):
    """ShuffleNet's channel shuffle, as torchvision writes it: view (N, g, C/g, H, W), swap 1 and 2, view back."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class TorchNarrow(torch.nn.Module):
    def __init__(self, axis: int, start: int, length: int) -> None:
        super().__init__()
        self.axis, self.start, self.length = axis, start, length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.narrow(self.axis, self.start, self.length)
