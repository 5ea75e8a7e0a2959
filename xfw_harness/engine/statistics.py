"""Running statistics of a train-mode forward pass (batch_norm2d's running_mean and running_var, ...).

Running statistics (train mode, blocks with buffers such as batch_norm2d's running_mean and running_var): fresh
modules and layers take `steps` forward passes in train mode on the step inputs above, then each framework's
output at the last step (when steps > 1; the forward check covers the first) and every buffer is compared, the
Keras value first put into PyTorch's convention where the block's weight transfer declares that they keep it
differently (a `StateConvention` on the `WeightCopy`: batch_norm2d's Keras moving_variance keeps the biased batch
variance, PyTorch's running_var the unbiased one; the exact correction from the batches PyTorch's layer received is
added). Not with `defaults: native`: a port by hand reconciles nothing, so there the values are
compared as each framework keeps them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.frameworks import keras_device, keras_tensor, to_numpy, to_torch, torch, torch_device
from xfw_harness.core.tolerance import tolerance_for
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine.backward import step_input
from xfw_harness.engine.build import build_keras, build_torch, keras_chain, torch_chain
from xfw_harness.engine.comparing import compare
from xfw_harness.engine.tolerances import forward_reduction_length, point_tolerance
from xfw_harness.engine.weights_map import mapped_weights


def running_state_verdicts(point: Point, device: str) -> list[Verdict]:
    """Train mode with buffers: `steps` forward passes from the same state, then the last output and every buffer
    compared (Keras's value reconciled into PyTorch's convention first)."""
    modules = build_torch(point, device)
    layers = build_keras(point, modules, device)
    _, states, _ = mapped_weights(point, modules, layers)
    if not states:
        return []
    seen: dict[int, list[np.ndarray]] = {id(s.owner): [] for s in states}
    owners = {id(s.owner): s.owner for s in states}

    def record(module: Any, args: tuple) -> None:
        seen[id(module)].append(to_numpy(args[0]).astype(np.float64))

    hooks = [owner.register_forward_pre_hook(record) for owner in owners.values()]
    out_layout = point.layers[-1].block.output_layout(point.sites_for("keras")[-1])
    try:
        for step in range(point.steps):
            x = step_input(point, step)
            with torch.no_grad():
                t = torch_chain(point, modules, to_torch(x).to(torch_device(device)))[-1]
            with keras_device(device):
                y = keras_chain(point, layers, keras_tensor(point.sites[0].layout.to_keras(x)))[-1]
    finally:
        for hook in hooks:
            hook.remove()
    verdicts = []
    steps = point.steps
    if steps > 1:
        torch_out, keras_out = to_numpy(t), out_layout.to_channels_first(to_numpy(y))
        verdicts.append(compare(keras_out, torch_out, point_tolerance(point, torch_out), f"output at step {steps}",
                                ("keras", "torch"), kind=VerdictKind.STATISTICS))
    k = forward_reduction_length(point)
    for state in states:
        torch_value = state.convert(to_numpy(state.torch_tensor))
        keras_value = to_numpy(state.keras_variable)
        convention = state.convention if point.defaults != "native" else None  # a hand port reconciles nothing
        if convention is not None:
            keras_value = convention.reconcile(keras_value, seen[id(state.owner)])
        tolerance = tolerance_for(point.input.dtype, k, torch_value, point.tolerance)
        verdict = compare(keras_value, torch_value, tolerance, f"{state.name} after {steps} step(s)",
                          ("keras", "torch"), kind=VerdictKind.STATISTICS)
        if convention is not None:
            verdict.message = f"{convention.note}: {verdict.message}"
        verdicts.append(verdict)
    return verdicts


