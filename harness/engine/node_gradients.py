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

`node_gradient_verdicts` computes the products; harness.engine.backward asks for them where a network's end-to-end
gradients differ (in eval mode: a train-mode forward pass would move running statistics again) and reads them: all
agree, the end-to-end verdicts pass with the reason said; one differs, that node is named.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.cases import Point
from harness.core.compare import compare
from harness.core.frameworks import keras_device, tf, to_numpy, to_torch, torch, torch_device
from harness.core.tolerance import tolerance_for
from harness.core.verdicts import Verdict, VerdictKind
from harness.engine.build import forward_torch, keras_arguments, keras_inputs
from harness.engine.localize import torch_inputs
from harness.engine.weights_map import Trainable

NODE_STREAM = 2  # the third word of R_i's seed: apart from the inputs' (0) and the end-to-end loss's (1)
WHAT = "gradients node by node"


def _trainables_of(point: Point, index: int, trainables: list[Trainable]) -> list[Trainable]:
    prefix = f"{point.network_key}[{index}]."
    return [t for t in trainables if t.name.startswith(prefix)]


def _node(point: Point, device: str, i: int, inputs: list[np.ndarray], module: Any, layer: Any,
          own: list[Trainable]) -> list[Verdict]:
    """The verdicts of node i's vector-Jacobian product: each input's gradient, each trainable weight's."""
    block, site = point.layers[i].block, point.sites[i]
    ts = [to_torch(a).to(torch_device(device)).requires_grad_(True) for a in inputs]
    y = module(*ts)
    r = np.random.default_rng([point.input.seed, i, NODE_STREAM]).standard_normal(tuple(y.shape)).astype(
        inputs[0].dtype)
    torch_grads = torch.autograd.grad((y * to_torch(r).to(y.device)).sum(), [*ts, *(t.torch_param for t in own)],
                                      allow_unused=True)
    layouts = site.in_layouts or (site.layout,)
    with keras_device(device):
        xs = [tf.constant(a) for a in keras_inputs(point, i, inputs)]
        with tf.GradientTape() as tape:
            for xk in xs:
                tape.watch(xk)
            out = layer(keras_arguments(point.layers[i], xs), training=point.training("keras"))
            loss = tf.reduce_sum(out * block.output_layout(site).to_keras(r))
        keras_grads = tape.gradient(loss, [*xs, *(t.keras_variable for t in own)])
    label = point.layer_label(i)
    forward_k = max(1, block.reduction_length(site))
    out_shape = tuple(y.shape)
    fan_out = math.ceil(forward_k * math.prod(out_shape[1:]) / max(1, math.prod(site.in_shape[1:])))
    verdicts = []
    for j, (tg, kg, layout) in enumerate(zip(torch_grads, keras_grads, layouts)):
        expected = to_numpy(tg) if tg is not None else np.zeros_like(inputs[j])
        got = layout.to_channels_first(to_numpy(kg)) if kg is not None else np.zeros_like(inputs[j])
        tolerance = tolerance_for(point.input.dtype, max(forward_k, fan_out), expected, point.tolerance)
        verdicts.append(compare(got, expected, tolerance, f"grad input {j} of {label}", ("keras", "torch"),
                                kind=VerdictKind.GRADIENT))
    for trainable, tg, kg in zip(own, torch_grads[len(ts):], keras_grads[len(xs):]):
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
    """One summary verdict (WHAT) and the failing nodes' own verdicts (module doc)."""
    torch_outs = forward_torch(point, modules, x, device)
    failing: list[Verdict] = []
    compared = 0
    for i in range(len(point.layers)):
        node = _node(point, device, i, torch_inputs(point, i, x, torch_outs), modules[i], layers[i],
                     _trainables_of(point, i, trainables))
        compared += len(node)
        failing += [v for v in node if not v.passed]
    if failing:
        message = (f"{len(failing)} of {compared} node gradients differ, each node fed the same values in both "
                   f"frameworks; the first: {failing[0].what}: {failing[0].message}")
    else:
        message = (f"all {compared} gradients of the {len(point.layers)} nodes agree, each node fed the same values "
                   "and the same upstream gradient in both frameworks")
    return Verdict(WHAT, not failing, "values" if failing else "ok", message,
                   {"compared": compared, "failing": len(failing)}, kind=VerdictKind.GRADIENT), failing
