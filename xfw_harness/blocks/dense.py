"""Flatten and dense: `flatten`, `dense`.

- `flatten` flattens the channels-first tensor per sample, in (C, H, W) order, as PyTorch does. Keras
  flattens its channels-last tensor in (H, W, C) order (data_format='channels_first' would not give C, H, W
  either: it moves axis 1 last, keras/src/layers/reshaping/flatten.py); the harness records the permutation in
  the tensor's `Layout`, so outputs are compared in PyTorch's order and a following `dense` gets its kernel
  rows permuted.
- `dense` is y = x W^T + b over the channels axis (axis 1 of the channels-first tensor; for a rank-2 input
  that is the features). On a rank > 2 input PyTorch's Linear would act on the last axis (W in NCHW) and
  Keras's Dense on C: the harness gives PyTorch the channels axis explicitly.

References: ONNX's Flatten(axis=1) (PyTorch's C, H, W order) and Gemm(x, W, b, transB=1) on the channels axis
(moved last and the other axes folded into rows for rank > 2). Read from PyTorch (`xfw-harness port`): nn.Flatten with
start_dim 1 and end_dim -1 only, nn.Linear on a rank-2 input only (on a rank > 2 input it acts on the last axis,
which the harness's dense does not model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.blocks.base import Block, Corner, Emulation
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site, WeightCopy, parameter_path
from xfw_harness.core.errors import Refusal
from xfw_harness.core.layout import Layout, dense_after_flatten_kernel_to_keras, dense_kernel_to_keras
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
dense_layers = lazy_module("xfw_harness.blocks.dense_layers")


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

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        return onnx_op("Flatten", x, axis=1)

    # No parameters: the layers a port by hand writes are the harness's own.
    native_torch_module = torch_module
    native_keras_layer = keras_layer
    torch_types = ("Flatten",)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if module.start_dim % len(in_shape) != 1 or module.end_dim % len(in_shape) != len(in_shape) - 1:
            raise Refusal(f"Flatten(start_dim={module.start_dim}, end_dim={module.end_dim}) on a rank-{len(in_shape)} "
                          "input: the harness's flatten keeps the batch axis and flattens all the others "
                          "(start_dim=1, end_dim=-1)", field="Flatten.start_dim")
        return {}


def linear_moves_channels(site: Site) -> bool:
    """Whether dense's features are not the last axis of the channels-first tensor (axis 1 of a rank > 2 input):
    PyTorch's Linear acts on the last, so the harness moves them there and back (TorchChannelsLinear)."""
    return Dense._axis(site) != site.rank - 1


@register
class Dense(Block):
    name = "dense"
    benchmark = {"params": {"units": 256}, "input": {"shape": [8, 1024]}}
    family = "dense"
    doc = "Fully connected layer over the channels axis: y = x W^T + b."
    weight_names = ("weight", "bias")
    params = (
        Param("units", "int", minimum=1, doc="number of output features"),
        Param("use_bias", "bool", True, doc="add a learned bias per output feature"),
        Param("axis", "choice", 1, choices=(1, -1), doc="the axis of the features: 1, the channels (nn.Linear after a "
              "flatten, or on channels); -1, the last (nn.Linear on a rank > 2 tensor, as ConvNeXt's after a "
              "permute to channels-last)"),
    )
    any_layout = True  # on the axis the layout maps, which must be Keras's last (Dense's)
    emulations = (
        Emulation("torch_channels_linear",
                  "PyTorch's Linear acts on the last axis: on the channels of a rank > 2 input the harness moves them "
                  "last and back (TorchChannelsLinear); the reference is ONNX's Gemm on rows it folds itself",
                  linear_moves_channels, "reference",
                  (Corner("rank 3", lambda s: s.rank == 3), Corner("rank 4 or more", lambda s: s.rank >= 4),
                   Corner("one unit", lambda s: s.params["units"] == 1))),
    )

    @staticmethod
    def _axis(site: Site) -> int:
        return site.params["axis"] % site.rank

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        keras_axis = site.layout.keras_axis(self._axis(site), site.rank)
        if keras_axis != site.rank - 1:
            raise Refusal(f"the features (axis {site.params['axis']}) are axis {keras_axis} of Keras's "
                          f"{site.layout.describe()} tensor, and Keras's Dense acts on the last: no translation",
                          field="params.axis")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        shape = list(site.in_shape)
        shape[self._axis(site)] = site.params["units"]
        return tuple(shape)

    def output_layout(self, site: Site) -> Layout:
        return Layout() if site.layout.standard else site.layout  # a flatten's order is taken up by the kernel

    def reduction_length(self, site: Site) -> int:
        return site.in_shape[self._axis(site)]

    def largest_array(self, site: Site) -> int:
        return site.params["units"] * site.in_shape[self._axis(site)]

    def torch_module(self, site: Site) -> torch.nn.Module:
        return self.linear_on_channels(site, bias=site.params["use_bias"])

    @classmethod
    def linear_on_channels(cls, site: Site, **kwargs: Any) -> torch.nn.Module:
        linear = torch.nn.Linear(site.in_shape[cls._axis(site)], site.params["units"], **kwargs)
        return dense_layers.TorchChannelsLinear(linear) if linear_moves_channels(site) else linear

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.Dense(site.params["units"], use_bias=site.params["use_bias"], dtype=site.dtype)

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        axis = self._axis(site)
        rows = np.moveaxis(np.asarray(x, np.float64), axis, -1)  # features last; every other axis is a row
        out = onnx_op("Gemm", rows.reshape(-1, rows.shape[-1]), weights["weight"], weights.get("bias"), transB=1)
        return np.moveaxis(out.reshape(*rows.shape[:-1], site.params["units"]), -1, axis)

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        # Both frameworks default to a bias. On a rank > 2 input the channels axis is the layout's business, not a
        # default: PyTorch gets it as in the harness's own build.
        return self.linear_on_channels(site, **site.written_args(use_bias="bias"))

    def native_keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.Dense(**site.written_args(units="units", use_bias="use_bias"), dtype=site.dtype)

    torch_types = ("Linear",)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if module.in_features != in_shape[-1]:
            raise Refusal(f"Linear(in_features={module.in_features}) receives {in_shape[-1]} features "
                          f"(input {list(in_shape)})", field="Linear.in_features")
        # nn.Linear acts on the last axis: the channels of a rank-2 input, else (after a permute) the last.
        axis = {"axis": -1} if len(in_shape) > 2 else {}
        return {"units": int(module.out_features), "use_bias": module.bias is not None, **axis}

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        linear = module.linear if isinstance(module, dense_layers.TorchChannelsLinear) else module
        return {"weight": linear.weight, "bias": linear.bias} if linear.bias is not None else {"weight": linear.weight}

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        w = self.torch_parameters(module)
        weight = parameter_path(module, w["weight"])
        # After a flatten the kernel rows follow Keras's (H, W, C) order. A hand port (`defaults: native`) copies the
        # kernel transposed and nothing more: that is the catalogued flatten-order mistake.
        if site.layout.flattened_from is not None and site.written is None:
            copies = [WeightCopy(weight, "kernel", dense_after_flatten_kernel_to_keras, (site.layout.flattened_from,))]
        else:
            copies = [WeightCopy(weight, "kernel", dense_kernel_to_keras)]
        if "bias" in w:
            copies.append(WeightCopy(parameter_path(module, w["bias"]), "bias"))
        return copies
