"""Activations: `relu`, `tanh`, `sigmoid`, `softmax`, `leaky_relu`, `elu`, `gelu`, `silu`, `softplus`.

Elementwise on any rank >= 2, except softmax, which normalises along `axis` of the channels-first tensor
(default 1, the channels) and is given to Keras as the matching channels-last axis. Every parameter is
passed explicitly to both frameworks, because their defaults differ:
- leaky_relu: PyTorch's slope default is 0.01, keras.layers.LeakyReLU's 0.3, keras.activations.leaky_relu's
  0.2 (keras/src/layers/activations/leaky_relu.py). The harness's default is PyTorch's 0.01.
- gelu: `approximate: none` is the exact x * Phi(x) (torch approximate='none', keras approximate=False);
  `tanh` is the tanh approximation. keras.ops.gelu defaults to the approximation; they differ by ~4.7e-4.
- softmax: PyTorch's implicit dim picks 1 for 4-D but 0 (the batch) for 3-D; the harness always sets it.
- softplus: log(1 + exp(x)). PyTorch returns x above its threshold 20 and TensorFlow above its own; both
  are within a float32 ulp of the exact value there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import keras
import torch

from harness.errors import Refusal
from harness.registry import Block, Site, register
from harness.schema import Param


class _Activation(Block):
    family = "activations"
    torch_factory: Callable[[dict[str, Any]], torch.nn.Module]
    keras_factory: Callable[[dict[str, Any], str], keras.Layer]

    def torch_module(self, site: Site) -> torch.nn.Module:
        return type(self).torch_factory(site.params)

    def keras_layer(self, site: Site) -> keras.Layer:
        return type(self).keras_factory(site.params, site.dtype)


def _activation(name: str, doc: str, torch_factory: Callable, keras_factory: Callable,
                params: tuple[Param, ...] = ()) -> type[Block]:
    cls = type(name, (_Activation,), {"name": name, "doc": doc, "params": params,
                                      "torch_factory": staticmethod(torch_factory),
                                      "keras_factory": staticmethod(keras_factory)})
    return register(cls)


_activation("relu", "max(x, 0).", lambda p: torch.nn.ReLU(), lambda p, dt: keras.layers.ReLU(dtype=dt))
_activation("tanh", "Hyperbolic tangent.", lambda p: torch.nn.Tanh(),
            lambda p, dt: keras.layers.Activation("tanh", dtype=dt))
_activation("sigmoid", "1 / (1 + exp(-x)).", lambda p: torch.nn.Sigmoid(),
            lambda p, dt: keras.layers.Activation("sigmoid", dtype=dt))
_activation("leaky_relu", "x if x >= 0 else negative_slope * x.",
            lambda p: torch.nn.LeakyReLU(negative_slope=p["negative_slope"]),
            lambda p, dt: keras.layers.LeakyReLU(negative_slope=p["negative_slope"], dtype=dt),
            (Param("negative_slope", "float", 0.01, minimum=0.0,
                   doc="slope for x < 0 (PyTorch's default; Keras's layer defaults to 0.3)"),))
_activation("elu", "x if x > 0 else alpha * (exp(x) - 1).",
            lambda p: torch.nn.ELU(alpha=p["alpha"]),
            lambda p, dt: keras.layers.ELU(alpha=p["alpha"], dtype=dt),
            (Param("alpha", "float", 1.0, minimum=0.0, doc="scale of the negative part"),))
_activation("gelu", "x * Phi(x) (exact) or its tanh approximation.",
            lambda p: torch.nn.GELU(approximate=p["approximate"]),
            lambda p, dt: keras.layers.Activation(
                functools.partial(keras.activations.gelu, approximate=p["approximate"] == "tanh"), dtype=dt),
            (Param("approximate", "choice", "none", choices=("none", "tanh"),
                   doc="'none' = exact erf form; 'tanh' = the tanh approximation"),))
_activation("silu", "x * sigmoid(x) (swish).", lambda p: torch.nn.SiLU(),
            lambda p, dt: keras.layers.Activation("silu", dtype=dt))
_activation("softplus", "log(1 + exp(x)).", lambda p: torch.nn.Softplus(),
            lambda p, dt: keras.layers.Activation("softplus", dtype=dt))


@register
class Softmax(Block):
    name = "softmax"
    family = "activations"
    doc = "exp(x) / sum(exp(x)) along axis (channels-first axis; default 1, the channels)."
    params = (Param("axis", "axis", 1, doc="axis of the channels-first tensor to normalise over"),)

    def output_shape(self, site: Site) -> tuple[int, ...]:
        axis = site.params["axis"]
        if not -site.rank <= axis < site.rank:
            raise Refusal(f"axis {axis} is out of range for an input of rank {site.rank}", field="params.axis")
        return site.in_shape

    def reduction_length(self, site: Site) -> int:
        return site.in_shape[site.params["axis"]]

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Softmax(dim=site.params["axis"] % site.rank)

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.Softmax(axis=site.layout.keras_axis(site.params["axis"], site.rank), dtype=site.dtype)
