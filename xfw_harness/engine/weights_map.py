"""The weights both frameworks train and the state they keep, as pairs: each block's `weight_copies` say which
PyTorch parameter or buffer went into which Keras variable, through which conversion. A trainable weight or a
floating-point state that no copy maps fails the point ("weights mapped"): it would go untested otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xfw_harness.blocks import StateConvention, WeightCopy, resolve_path
from xfw_harness.cases import Point
from xfw_harness.core.frameworks import torch
from xfw_harness.core.verdicts import Verdict, VerdictKind


@dataclass
class Trainable:
    """One trainable weight as both frameworks hold it, and how PyTorch's layout converts to Keras's."""

    name: str  # "layers[0].weight"
    keras_path: str  # "layers[0].kernel", for messages
    torch_param: Any
    keras_variable: Any
    convert: Callable[[np.ndarray], np.ndarray]


@dataclass
class State:
    """One buffer (a running statistic) as both frameworks hold it."""

    name: str
    owner: Any  # the PyTorch module holding the buffer (nested inside a layer's module for a composite block)
    buffer: str  # its name in the owner: "running_var"
    torch_tensor: Any
    keras_variable: Any
    convert: Callable[[np.ndarray], np.ndarray]
    convention: StateConvention | None = None  # how Keras's value is put in PyTorch's convention, where they differ


def _converter(copy: WeightCopy) -> Callable[[np.ndarray], np.ndarray]:
    return (lambda a: a) if copy.convert is None else (lambda a: copy.convert(a, *copy.args))


def _label(point: Point, i: int, name: str) -> str:
    return f"{point.network_key}[{i}].{name}" if point.sequential else name


def mapped_weights(point: Point, modules: list[Any], layers: list[Any]
                   ) -> tuple[list[Trainable], list[State], list[Verdict]]:
    """The trainable weights and the buffers of the point as pairs (through each block's weight_copies), and a
    failed "weights mapped" verdict for each layer with a trainable weight or a floating-point state (a buffer such
    as a running statistic, a non-trainable variable) that no copy maps, in either framework."""
    trainables: list[Trainable] = []
    states: list[State] = []
    problems: list[Verdict] = []
    for i, (layer, site, module, klayer) in enumerate(zip(point.layers, point.sites_for("keras"), modules, layers)):
        names = {id(t): name for name, t in layer.block.torch_parameters(module).items()}
        torch_seen, keras_seen = set(), set()
        for copy in layer.block.weight_copies(site, module, klayer):
            tensor = resolve_path(module, copy.torch_path)
            variable = resolve_path(klayer, copy.keras_path)
            name = _label(point, i, names.get(id(tensor), copy.torch_path))
            torch_seen.add(id(tensor))
            keras_seen.add(id(variable))
            if isinstance(tensor, torch.nn.Parameter) and tensor.requires_grad:
                trainables.append(Trainable(name, _label(point, i, copy.keras_path), tensor, variable,
                                            _converter(copy)))
            else:
                owner_path, _, buffer = copy.torch_path.rpartition(".")
                owner = resolve_path(module, owner_path) if owner_path else module
                states.append(State(name, owner, buffer, tensor, variable, _converter(copy), copy.convention))
        unmapped = [f"PyTorch's {n}" for n, p in module.named_parameters() if p.requires_grad and id(p) not in
                    torch_seen]
        unmapped += [f"Keras's {v.path}" for v in klayer.trainable_variables if id(v) not in keras_seen]
        # State that is neither trained nor transferred: a running statistic left out of weight_copies would start
        # from each framework's own initial value and never be compared (integer state, such as PyTorch's
        # num_batches_tracked or a Keras seed generator's, is bookkeeping, not what the layer computes with).
        state = [f"PyTorch's {n}" for n, t in [*module.named_parameters(), *module.named_buffers()]
                 if not t.requires_grad and t.is_floating_point() and id(t) not in torch_seen]
        unread = getattr(klayer, "unread_variables", ())  # a harness layer's state it never computes with
        state += [f"Keras's {v.path}" for v in klayer.non_trainable_variables
                  if "float" in str(v.dtype) and id(v) not in keras_seen and v.name not in unread]
        problems += [Verdict("weights mapped", False, "mapping",
                             f"{point.layer_label(i)}: {', '.join(names)} {why} but not in the block's weight_copies, "
                             f"so {what}: the adapter is incomplete", {"unmapped": names}, kind=VerdictKind.MAPPING)
                     for names, why, what in (
                         (unmapped, "is trainable", "its gradient and updates cannot be compared"),
                         (state, "is state (a buffer or non-trainable variable)",
                          "it is neither transferred nor compared")) if names]
    return trainables, states, problems


