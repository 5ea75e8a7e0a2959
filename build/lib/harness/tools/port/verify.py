"""Does the case describe the model? `model_verdicts`: the second of `harness port`'s two verdicts.

The first verdict is the case's own run (PyTorch against Keras, by the runner, as for every case). This one runs
the model itself on the case's input (the probe run) against the runner's PyTorch modules built from the case
(harness.engine.build_torch / forward_torch), leaf by leaf. A leaf whose input differs from the case's input to
that layer means the model does something between its modules that the case does not (a functional call in
forward, a skip connection); a leaf whose output differs means the module computes something its class's block
does not (a subclass with its own forward). The first such place is named. Without this check a model that is not
what its modules say would pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.cases import Point
from harness.core.compare import compare
from harness.core.errors import CaseError
from harness.core.frameworks import to_numpy, torch
from harness.core.tolerance import tolerance_for
from harness.core.verdicts import Verdict, VerdictKind
from harness.engine import StageError, build_torch, forward_torch
from harness.tools.port.model import Leaf

MODEL_OUTPUT = "model vs case output"  # the verdict on the model's own output (the others are per layer)


def model_verdicts(point: Point, leaves: list[Leaf], model_out: np.ndarray, x: np.ndarray
                   ) -> tuple[list[Verdict], str | None]:
    """The model's own outputs (the probe run) against the runner's PyTorch modules built from the case, layer by
    layer and at the end; and the first place where they differ, in words (None where they agree)."""
    for i, (leaf, layer, site) in enumerate(zip(leaves, point.layers, point.sites)):
        given = tuple(leaf.inputs[0].shape)
        if given != site.in_shape:
            where = "the input" if i == 0 else f"the output of layers[{i - 1}] ({point.layers[i - 1].block.name})"
            message = (f"layers[{i}] ({layer.block.name}, the model's {leaf.where}): the model feeds it shape "
                       f"{list(given)}, but the case gives it {where}, shape {list(site.in_shape)}: the model's "
                       "forward does something between its modules (a functional call such as torch.flatten or "
                       "x.view, a skip connection); make it a module (nn.Flatten, ...) to port it")
            return [Verdict(f"model input of layers[{i}]", False, "chain", message, {},
                            kind=VerdictKind.MODEL)], message
    try:
        modules = build_torch(point, "cpu")
        outs = forward_torch(point, modules, x, "cpu")
    except (StageError, CaseError) as e:
        message = f"the case's PyTorch modules cannot run: {e}"
        return [Verdict(MODEL_OUTPUT, False, "error", message, {}, kind=VerdictKind.MODEL)], message
    inputs = [x, *outs[:-1]]
    verdicts, first = [], None
    chain_k = 1  # the longest reduction up to a layer: the differences the chain carries to its input
    for i, (leaf, layer, site) in enumerate(zip(leaves, point.layers, point.sites)):
        label = f"layers[{i}] ({layer.block.name}, the model's {leaf.where})"
        k = layer.block.reduction_length(site)
        fed = compare(leaf.inputs[0], inputs[i], _tolerance(point, inputs[i], chain_k), f"model input of {label}",
                      ("model", "case"), kind=VerdictKind.MODEL)
        chain_k = max(chain_k, k)
        if not fed.passed:  # the same shape, other values: something between the modules changed them
            verdicts.append(fed)
            first = first or (f"{label}: the model feeds this module other values than the case's layers before it "
                              "give: its forward does more than call its modules in a chain (a functional call, a "
                              f"skip connection): {fed.message}")
            break
        # The module itself on the case's input to the layer: its own difference, none carried from before. On a
        # copy: an in-place module would overwrite the case's arrays (x is the Keras model's check input too).
        with torch.no_grad():
            own = to_numpy(leaf.module(torch.from_numpy(inputs[i].copy())))
        verdict = compare(own, outs[i], _tolerance(point, outs[i], k), f"model vs case at {label}", ("model", "case"),
                          kind=VerdictKind.MODEL)
        verdicts.append(verdict)
        if not verdict.passed:
            first = first or (f"{label}: the module computes something else than its block {layer.block.name} with "
                              f"the params written: {verdict.message}")
            break
    k = max(layer.block.reduction_length(site) for layer, site in zip(point.layers, point.sites))
    end = compare(model_out, outs[-1], _tolerance(point, outs[-1], k), MODEL_OUTPUT, ("model", "case"),
                  kind=VerdictKind.MODEL)
    verdicts.append(end)
    if not end.passed and first is None:
        first = f"the model's output: {end.message}"
    return verdicts, first


def _tolerance(point: Point, expected: np.ndarray, k: int) -> Any:
    return tolerance_for(point.input.dtype, k, expected, point.tolerance)
