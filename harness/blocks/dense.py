"""Flatten and dense: `flatten`, `dense`.

- `flatten` flattens the channels-first tensor per sample, in (C, H, W) order, as PyTorch does. Keras
  flattens its channels-last tensor in (H, W, C) order (data_format='channels_first' would not give C, H, W
  either: it moves axis 1 last, keras/src/layers/reshaping/flatten.py); the harness records the permutation in
  the tensor's `Layout`, so outputs are compared in PyTorch's order and a following `dense` gets its kernel
  rows permuted.
- `dense` is y = x W^T + b over the channels axis (axis 1 of the channels-first tensor; for a rank-2 input
  that is the features). On a rank > 2 input PyTorch's Linear would act on the last axis (W in NCHW) and
  Keras's Dense on C: the harness gives PyTorch the channels axis explicitly.
"""

from __future__ import annotations

from typing import Any

import keras
import torch

from harness.layout import Layout, dense_after_flatten_kernel_to_keras, dense_kernel_to_keras
from harness.registry import Block, Site, WeightCopy, parameter_path, register
from harness.schema import Param


@register
class Flatten(Block):
    name = "flatten"
    family = "dense"
    doc = "Flatten each sample of the channels-first tensor to (C*H*W), in PyTorch's C, H, W order."

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, *rest = site.in_shape
        size = 1
        for d in rest:
            size *= d
        return n, size

    def output_layout(self, site: Site) -> Layout:
        if site.rank == 2:
            return site.layout
        return Layout(flattened_from=tuple(site.in_shape[1:]))

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Flatten()

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.Flatten(dtype=site.dtype)


class TorchChannelsLinear(torch.nn.Module):
    """nn.Linear over axis 1 of a channels-first tensor of rank > 2."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.movedim(1, -1)).movedim(-1, 1)


@register
class Dense(Block):
    name = "dense"
    family = "dense"
    doc = "Fully connected layer over the channels axis: y = x W^T + b."
    weight_names = ("weight", "bias")
    params = (
        Param("units", "int", minimum=1, doc="number of output features"),
        Param("use_bias", "bool", True, doc="add a learned bias per output feature"),
    )

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, _, *rest = site.in_shape
        return n, site.params["units"], *rest

    def output_layout(self, site: Site) -> Layout:
        return Layout()

    def reduction_length(self, site: Site) -> int:
        return site.in_shape[1]

    def largest_array(self, site: Site) -> int:
        return site.params["units"] * site.in_shape[1]

    def torch_module(self, site: Site) -> torch.nn.Module:
        linear = torch.nn.Linear(site.in_shape[1], site.params["units"], bias=site.params["use_bias"])
        return linear if site.rank == 2 else TorchChannelsLinear(linear)

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.Dense(site.params["units"], use_bias=site.params["use_bias"], dtype=site.dtype)

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        linear = module.linear if isinstance(module, TorchChannelsLinear) else module
        return {"weight": linear.weight, "bias": linear.bias} if linear.bias is not None else {"weight": linear.weight}

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        w = self.torch_parameters(module)
        weight = parameter_path(module, w["weight"])
        if site.layout.flattened_from is not None:  # after a flatten: the kernel rows follow Keras's (H, W, C) order
            copies = [WeightCopy(weight, "kernel", dense_after_flatten_kernel_to_keras, (site.layout.flattened_from,))]
        else:
            copies = [WeightCopy(weight, "kernel", dense_kernel_to_keras)]
        if "bias" in w:
            copies.append(WeightCopy(parameter_path(module, w["bias"]), "bias"))
        return copies
