"""Where a Keras artefact with layers first departs from the PyTorch model: its layers aligned with the tensors
the PyTorch model's leaf modules computed. A best effort; exactly this, on the first failing seed's input:

1. Keras side: every layer of the model (model.layers, in Keras's topological order) except input layers, layers
   called more than once (shared) and layers with several outputs, with its output (one keras.Model from the
   model's input to all those outputs).
2. PyTorch side: the input, every leaf module's outputs in call order, the model's outputs
   (xfw_harness.tools.crosscheck.torch_side), and each of these of rank 3 or more flattened per sample (in its C, H, W
   order: what PyTorch's torch.flatten gives where no module flattens).
3. A Keras layer *meets* a PyTorch tensor when its output, read as is, channels-last, or (rank 2) in Keras's flatten
   order of a per-sample shape the PyTorch model computed, has the tensor's shape and equals it within the
   harness's tolerance for K = --tolerance-k. Candidates are tried in call order from the latest tensor its own
   inputs met (so that the alignment proceeds in order through repeated shapes), then the earlier ones.
4. The first point of divergence is the first Keras layer that has PyTorch tensors of a fitting shape, meets none
   of them, and after which no layer depending on it meets anything either (when no such layer has a tensor of a
   fitting shape: the first that meets nothing with nothing met after it). A layer that meets nothing but is
   followed by layers that do (an Add or an activation that the PyTorch model computes with an operator, not a
   module) is listed as not aligned, never named as the divergence.
5. For that layer: what its inputs met and in which reading, its comparison with the first PyTorch tensor of a
   fitting shape after them, and, when its one input met PyTorch's tensor only in Keras's flatten order, the layer
   run on PyTorch's own (C, H, W)-ordered features: if that gives a PyTorch tensor, its weights were copied for
   PyTorch's flatten order (a Dense kernel whose rows were not permuted).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from xfw_harness.core.compare import format_shape
from xfw_harness.core.frameworks import keras, to_numpy
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.tools.crosscheck.alignment import View, layer_views
from xfw_harness.tools.crosscheck.artefact import one_line
from xfw_harness.tools.crosscheck.judge import judge
from xfw_harness.tools.crosscheck.torch_side import Recorded, with_flattened

NAMES = ("keras", "torch")
INDENT = "      "


@dataclass
class Met:
    record: Recorded
    view: View


def _layers(model: Any) -> list[Any]:
    chosen = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or len(getattr(layer, "_inbound_nodes", [])) != 1:
            continue
        if not isinstance(layer.output, (list, tuple, dict)):
            chosen.append(layer)
    return chosen


def _parents(layer: Any) -> list[str]:
    history = [getattr(t, "_keras_history", None) for t in layer._inbound_nodes[0].input_tensors]
    return [h.operation.name for h in history if h is not None]


def _ordered(recorded: list[Recorded], start: int) -> list[Recorded]:
    return sorted(recorded, key=lambda r: (r.order < start, r.order))


def _judge(view: View, value: np.ndarray, record: Recorded, k: int, what: str = "keras vs torch") -> Verdict:
    return judge(view.to_channels_first(value), record.value, what, NAMES, k, VerdictKind.LAYERS)


def _meet(value: np.ndarray, recorded: list[Recorded], unflattened: list[tuple[int, ...]], start: int,
          k: int) -> Met | None:
    readings = [(view, view.to_channels_first(value)) for view in layer_views(value.shape, unflattened)]
    for record in _ordered(recorded, start):
        for view, read in readings:
            if read.shape == record.value.shape and judge(read, record.value, "keras vs torch", NAMES, k,
                                                          VerdictKind.LAYERS).passed:
                return Met(record, view)
    return None


def _name(layer: Any) -> str:
    return f"{layer.name!r} ({type(layer).__name__})"


def localize(model: Any, x: np.ndarray, recorded: list[Recorded], k: int) -> list[str]:
    """Lines naming the first Keras layer that departs from the PyTorch model (module doc); x in the model's layout."""
    try:
        layers = _layers(model)
        outputs = keras.Model(model.inputs, [layer.output for layer in layers])(keras.ops.convert_to_tensor(x),
                                                                                 training=False)
        values = [to_numpy(v) for v in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        parents = {layer.name: _parents(layer) for layer in layers}
    except Exception as e:  # noqa: BLE001 - a model whose layers cannot be read out: say so, keep the checks
        return [f"layers: not aligned: the Keras model's layers cannot be read out ({one_line(e)})"]
    unflattened = list(dict.fromkeys(tuple(r.value.shape[1:]) for r in recorded if r.value.ndim >= 3))
    recorded = with_flattened(recorded)
    by_name = {layer.name: (layer, value) for layer, value in zip(layers, values)}
    met: dict[str, Met] = {}
    comparable: set[str] = set()  # layers with PyTorch tensors of a fitting shape
    for layer, value in zip(layers, values):
        start = max((met[p].record.order for p in parents[layer.name] if p in met), default=0)
        if (found := _meet(value, recorded, unflattened, start, k)) is not None:
            met[layer.name] = found
        shapes = {v.to_channels_first(value).shape for v in layer_views(value.shape, unflattened)}
        if any(r.value.shape in shapes for r in recorded):
            comparable.add(layer.name)
    children: dict[str, list[str]] = defaultdict(list)
    for name, ps in parents.items():
        for p in ps:
            children[p].append(name)

    def descendants(name: str) -> set[str]:
        seen, todo = set(), list(children[name])
        while todo:
            if (n := todo.pop()) not in seen:
                seen.add(n)
                todo += children[n]
        return seen

    diverging = [layer for layer in layers if layer.name not in met and not any(d in met for d in descendants(
        layer.name))]
    first = next((layer for layer in diverging if layer.name in comparable), diverging[0] if diverging else None)
    lines = [f"layers: {len(met)} of {len(layers)} Keras layers meet a PyTorch tensor (the input, a leaf module's "
             "output or the model's output), aligned by shape in call order (xfw_harness.tools.crosscheck.localize)"]
    if first is None:
        lines.append(f"{INDENT}every layer that meets nothing is followed by layers that do: the difference is in how "
                     "the outputs are laid out or ordered (see the checks above)")
    else:
        lines += _divergence(first, by_name[first.name][1], parents[first.name], by_name, met, recorded, k)
    after_first = descendants(first.name) if first is not None else set()
    heads = [layer for layer in diverging if layer is not first and layer.name not in after_first
             and layer.name in comparable]  # of other branches that depart: the first layer of each
    others = [_name(h) for h in heads if not any(h.name in descendants(o.name) for o in heads if o is not h)]
    if others:
        lines.append(f"{INDENT}departing too, outside what depends on it: {', '.join(others)}")
    skipped = [_name(layer) for layer in layers if layer.name not in met and any(d in met for d in descendants(
        layer.name))]
    if skipped:
        lines.append(f"{INDENT}not aligned, but followed by layers that are (no PyTorch module computes them): "
                     f"{', '.join(skipped)}")
    return lines


def _divergence(layer: Any, value: np.ndarray, parents: list[str], by_name: dict, met: dict[str, Met],
                recorded: list[Recorded], k: int) -> list[str]:
    lines = [f"{INDENT}first divergence: Keras layer {_name(layer)}, output {format_shape(value.shape)}: it meets no "
             "PyTorch tensor, and no layer after it does"]
    for p in parents:
        if p not in by_name:
            lines.append(f"{INDENT}its input: the model's input")
        elif p in met:
            lines.append(f"{INDENT}its input {_name(by_name[p][0])} meets {met[p].record.describe()}, read "
                         f"{met[p].view.label}")
        else:
            lines.append(f"{INDENT}its input {_name(by_name[p][0])} meets no PyTorch tensor either")
    start = max((met[p].record.order + 1 for p in parents if p in met), default=0)
    views = layer_views(value.shape, [])
    nearest = next(((r, v) for r in _ordered(recorded, start) for v in views
                    if v.to_channels_first(value).shape == r.value.shape), None)
    if nearest is None:
        lines.append(f"{INDENT}no PyTorch tensor has a fitting shape: the two models' structures differ here")
    else:
        record, view = nearest
        verdict = _judge(view, value, record, k, f"keras {layer.name} vs torch {record.where}")
        lines.append(f"{INDENT}against {record.describe()}, the first PyTorch tensor of a fitting shape after its "
                     f"inputs', read {view.label}:")
        lines += [f"{INDENT}  {line}" for line in verdict.message.splitlines()]
    lines += _flatten_finding(layer, parents, met, recorded, k)
    return lines


def _flatten_finding(layer: Any, parents: list[str], met: dict[str, Met], recorded: list[Recorded],
                     k: int) -> list[str]:
    """When the layer's one input met PyTorch's tensor only in Keras's flatten order: the layer run on PyTorch's own
    feature order, and whether that gives a PyTorch tensor."""
    if len(parents) != 1 or parents[0] not in met or met[parents[0]].view.flattened_from is None:
        return []
    source = met[parents[0]]
    order = f"Keras's (H, W, C) flatten order of a {list(source.view.flattened_from)} tensor"
    try:
        again = to_numpy(layer(keras.ops.convert_to_tensor(source.record.value.astype(np.float32)), training=False))
    except Exception:  # noqa: BLE001 - a layer that cannot be called alone: the plain note below
        again = None
    later = [r for r in recorded if r.order > source.record.order]
    hit = _meet(again, later, [], 0, k) if again is not None else None
    if hit is not None:
        return [f"{INDENT}finding: flatten order: its input is in {order}, but fed PyTorch's own (C, H, W)-ordered "
                f"features this layer gives {hit.record.describe()}: its weights were copied for PyTorch's flatten "
                "order; a Dense kernel after a flatten of a channels-last tensor needs its rows permuted "
                "(xfw_harness.core.layout.dense_after_flatten_kernel_to_keras)"]
    return [f"{INDENT}note: its input is in {order}; weights copied from a PyTorch layer that reads flattened "
            "features need their rows permuted to that order "
            "(xfw_harness.core.layout.dense_after_flatten_kernel_to_keras)"]
