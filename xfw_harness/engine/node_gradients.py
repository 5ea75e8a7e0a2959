"""A network's gradients node by node: each layer's vector-Jacobian product, both frameworks fed the same values.

Why. End to end, the gradient of a deep network of piecewise-linear layers (ReLU, ReLU6, max pooling) is not a
continuous function of the forward values: an activation within rounding of a kink (ReLU's 0) may lie on one side in
PyTorch's forward pass and on the other in Keras's, and that element's whole upstream gradient then flows in one
framework and not in the other. Measured on torchvision's mobilenet_v2 (random weights, calibrated batch norms): the
forward outputs agree to 1e-6 relative, the input gradients differ in 69% of their elements, up to 2% of their scale,
by the kinks alone. Two correct ports fail an end-to-end comparison of such a network's gradients.

What holds instead. Layer i alone, given PyTorch's forward values of its inputs (converted into Keras's layout at
that point) and a seeded upstream gradient R_i of its output, has the same vector-Jacobian product in both
frameworks: the gradient with respect to each input and to each trainable weight. Both evaluate every kink at the
same values, so nothing flips. If every node's product agrees and the forward graph agrees (the forward verdicts),
the chain rule composes them into the same gradient function: the end-to-end difference is the kinks' alone.

`node_gradient_verdicts` computes the products; xfw_harness.engine.backward asks for them where a network's end-to-end
gradients differ (in eval mode: a train-mode forward pass would move running statistics again) and reads them: all
agree, the end-to-end verdicts pass with the reason said; one differs, that node is named.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.autodiff import keras_value_and_grad
from xfw_harness.core.frameworks import keras, keras_device, keras_tensor, to_numpy, to_torch, torch, torch_device
from xfw_harness.core.tolerance import tolerance_for
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine.build import forward_torch, keras_arguments, keras_inputs
from xfw_harness.engine.comparing import compare
from xfw_harness.engine.localize import torch_inputs
from xfw_harness.engine.weights_map import Trainable

NODE_STREAM = 2  # the third word of R_i's seed: apart from the inputs' (0) and the end-to-end loss's (1)
WHAT = "gradients node by node"


def _trainables_of(point: Point, index: int, trainables: list[Trainable]) -> list[Trainable]:
    prefix = f"{point.network_key}[{index}]."
    return [t for t in trainables if t.name.startswith(prefix)]


def _node_verdicts(point: Point, i: int, inputs: list[np.ndarray], torch_grads: list[Any], keras_grads: list[Any],
                   own: list[tuple[Trainable, Any, Any]], out_shape: tuple[int, ...]) -> list[Verdict]:
    """The verdicts of node i's vector-Jacobian product: each input's gradient, each trainable weight's."""
    block, site = point.layers[i].block, point.sites[i]
    layouts = site.in_layouts or (site.layout,)
    label = point.layer_label(i)
    forward_k = max(1, block.reduction_length(site))
    fan_out = math.ceil(forward_k * math.prod(out_shape[1:]) / max(1, math.prod(site.in_shape[1:])))
    verdicts = []
    for j, (tg, kg, layout) in enumerate(zip(torch_grads, keras_grads, layouts)):
        expected = to_numpy(tg) if tg is not None else np.zeros_like(inputs[j])
        got = layout.to_channels_first(to_numpy(kg)) if kg is not None else np.zeros_like(inputs[j])
        tolerance = tolerance_for(point.input.dtype, max(forward_k, fan_out), expected, point.tolerance)
        verdicts.append(compare(got, expected, tolerance, f"grad input {j} of {label}", ("keras", "torch"),
                                kind=VerdictKind.GRADIENT))
    for trainable, tg, kg in own:
        if tg is None or kg is None:
            continue  # the end-to-end verdicts say which framework gave none
        expected = trainable.convert(to_numpy(tg))
        k = max(forward_k, fan_out, out_shape[0] * math.prod(out_shape[2:]))
        verdicts.append(compare(to_numpy(kg), expected, tolerance_for(point.input.dtype, k, expected,
                                                                        point.tolerance),
                                f"grad {trainable.name}", ("keras", "torch"), kind=VerdictKind.GRADIENT))
    return verdicts


def node_gradient_verdicts(point: Point, device: str, x: np.ndarray, modules: list[Any], layers: list[Any],
                           trainables: list[Trainable]) -> tuple[Verdict, list[Verdict]]:
    """One summary verdict (WHAT) and the failing nodes' own verdicts (module doc).

    All nodes in one differentiated pass per framework: every node is fed its own copies of PyTorch's values
    (leaves of the pass), and the loss is the sum over the nodes of sum(output_i * R_i); since no node's output
    reaches another's input, the gradient with respect to node i's input copies (and weights) is node i's own
    vector-Jacobian product with R_i, and one backward pass gives them all."""
    torch_outs = forward_torch(point, modules, x, device)
    inputs = [torch_inputs(point, i, x, torch_outs) for i in range(len(point.layers))]
    rs = [np.random.default_rng([point.input.seed, i, NODE_STREAM]).standard_normal(out.shape).astype(out.dtype)
          for i, out in enumerate(torch_outs)]
    ts = [[to_torch(a).to(torch_device(device)).requires_grad_(True) for a in node] for node in inputs]
    loss = sum((modules[i](*ts[i]) * to_torch(r).to(torch_device(device))).sum() for i, r in enumerate(rs))
    flat_t = [t for node in ts for t in node]
    torch_grads = torch.autograd.grad(loss, [*flat_t, *(t.torch_param for t in trainables)], allow_unused=True)
    training = point.training("keras")
    node_inputs = [keras_inputs(point, i, node) for i, node in enumerate(inputs)]
    flat_k = [a for node in node_inputs for a in node]
    rks = [point.layers[i].block.output_layout(point.sites[i]).to_keras(r) for i, r in enumerate(rs)]

    def keras_loss(*flat: Any) -> Any:
        xs, at = [], 0
        for node in node_inputs:
            xs.append(list(flat[at:at + len(node)]))
            at += len(node)
        return sum(keras.ops.sum(layers[i](keras_arguments(point.layers[i], xs[i]), training=training)
                                 * keras_tensor(rk)) for i, rk in enumerate(rks))

    with keras_device(device):
        _, keras_grads = keras_value_and_grad(keras_loss, flat_k, [t.keras_variable for t in trainables],
                                              state=[v for layer in layers for v in layer.variables])
    weights = {t.name: (t, tg, kg) for t, tg, kg in zip(trainables, torch_grads[len(flat_t):],
                                                         keras_grads[len(flat_k):])}
    failing: list[Verdict] = []
    compared, at = 0, 0
    for i, node in enumerate(inputs):
        own = [weights[t.name] for t in _trainables_of(point, i, trainables)]
        verdicts = _node_verdicts(point, i, node, list(torch_grads[at:at + len(node)]),
                                  list(keras_grads[at:at + len(node)]), own, tuple(torch_outs[i].shape))
        at += len(node)
        compared += len(verdicts)
        failing += [v for v in verdicts if not v.passed]
    if failing:
        message = (f"{len(failing)} of {compared} node gradients differ, each node fed the same values in both "
                   f"frameworks; the first: {failing[0].what}: {failing[0].message}")
    else:
        message = (f"all {compared} gradients of the {len(point.layers)} nodes agree, each node fed the same values "
                   "and the same upstream gradient in both frameworks")
    return Verdict(WHAT, not failing, "values" if failing else "ok", message,
                   {"compared": compared, "failing": len(failing)}, kind=VerdictKind.GRADIENT), failing
