"""`check: backward`: the gradients of one fixed loss, PyTorch autograd against Keras's backend's own autodiff
(tf.GradientTape, jax.value_and_grad, torch.autograd on the torch backend: xfw_harness.core.autodiff).

The loss. Both frameworks differentiate one fixed scalar, L = sum(output * R), R a seeded standard-normal tensor
of the output's channels-first shape (`loss_weights`: NumPy's generator seeded with [input.seed, step, 1]); Keras
gets R in its own layout through the output's `Layout`, so both losses are the same number. dL/d(output) = R:
every output element is weighted differently, so a gradient that lands on the wrong element cannot cancel out.

backward. One verdict per gradient: "grad input" (Keras's gradient converted back to channels-first through the
first layer's layout), and "grad <layer>.<weight>" for every trainable weight, PyTorch's grad converted to Keras's
layout by the same `WeightCopy` conversion that transferred the weight, compared with the Keras variable's gradient
in Keras's layout. Buffers (running statistics) have no gradient and are skipped. A trainable weight one framework
has and the block's weight_copies do not map fails the point ("weights mapped"): it would go untested otherwise.

Tolerance of a gradient (unless the case sets `tolerance`): compare.default_tolerance with the reduction length
- input gradient: K = the largest, over the layers, of the forward reduction length and the fan-out (how many
  outputs one input element feeds, estimated as forward K * per-sample outputs / per-sample inputs: a conv's
  filters * kh * kw / stride**2, a dense's units, a pooling window, a softmax axis);
- a weight's gradient: the larger of that and N * (the layer's output positions): a weight's gradient sums one
  product per sample and position.
Scale: the largest |PyTorch gradient|. Measured over the shipped cases (docs/tolerances.md, "Gradients, training
steps and running statistics").
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.autodiff import keras_value_and_grad
from xfw_harness.core.frameworks import keras, keras_device, keras_tensor, to_numpy, to_torch, torch, torch_device
from xfw_harness.core.tolerance import Tolerance, tolerance_for
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine.build import build_keras, build_torch, keras_chain, torch_chain
from xfw_harness.engine.comparing import compare
from xfw_harness.engine.node_gradients import node_gradient_verdicts
from xfw_harness.engine.weights_map import Trainable, mapped_weights

RANDOM_FILLS = ("normal", "uniform")
LOSS_STREAM = 1  # the third word of the loss weights' seed: keeps R's stream apart from the inputs'


# --- what each step feeds ------------------------------------------------------------------------------------

def step_input(point: Point, step: int) -> np.ndarray:
    """The channels-first input of step `step` (0-based): the case's input, then the same fill with seed
    input.seed + step; a fixed fill (values, arange, file) gives the same input at every step."""
    if step == 0 or point.input.fill not in RANDOM_FILLS:
        return point.input.make()
    return dataclasses.replace(point.input, seed=(point.input.seed + step) % 2**32).make()


def loss_weights(point: Point, step: int, dtype: Any) -> np.ndarray:
    """R of step `step`: the loss is sum(output * R); channels-first, in the output's shape and `dtype`."""
    rng = np.random.default_rng([point.input.seed, step, LOSS_STREAM])
    return rng.standard_normal(point.output_shape).astype(dtype)


# --- one differentiated pass in each framework ---------------------------------------------------------------

def torch_pass(point: Point, modules: list[Any], x: np.ndarray, r: np.ndarray, device: str,
               wrt: list[Any]) -> tuple[Any, Any, list[Any]]:
    """(loss tensor, input tensor, outputs' gradient list): L = sum(output * R) through every module; the
    gradients of L with respect to the input and to `wrt` (torch.autograd.grad: no .grad is accumulated)."""
    t = to_torch(x).to(torch_device(device)).requires_grad_(True)
    y = torch_chain(point, modules, t)[-1]
    loss = (y * to_torch(r).to(torch_device(device))).sum()
    return loss, t, list(torch.autograd.grad(loss, [t, *wrt], allow_unused=True))


def keras_loss_weights(point: Point, r: np.ndarray) -> np.ndarray:
    """R in the Keras output's layout (channels-last, or a flatten's feature order), element for element."""
    return point.layers[-1].block.output_layout(point.sites_for("keras")[-1]).to_keras(r)


def keras_pass(point: Point, layers: list[Any], x: np.ndarray, r: np.ndarray, device: str,
               wrt: list[Any]) -> tuple[Any, list[Any]]:
    """(loss, gradients of L with respect to the Keras input and `wrt`): the same loss, computed channels-last."""
    with keras_device(device):
        rk = keras_tensor(keras_loss_weights(point, r))
        return keras_value_and_grad(lambda xk: keras.ops.sum(keras_chain(point, layers, xk)[-1] * rk),
                                    [point.sites[0].layout.to_keras(x)], wrt,
                                    state=[v for layer in layers for v in layer.variables])


# --- tolerances ------------------------------------------------------------------------------------------------

def _out_shapes(point: Point) -> list[tuple[int, ...]]:
    if not point.graph:  # a chain: each layer's output is the next one's input (no block asked again)
        return [s.in_shape for s in point.sites[1:]] + [point.output_shape]
    return [layer.block.output_shape(site) for layer, site in zip(point.layers, point.sites)]


def backward_reduction_length(point: Point) -> int:
    """How many terms one element of the input gradient sums, at most over the layers (see the module doc)."""
    k = 1
    for layer, site, out in zip(point.layers, point.sites, _out_shapes(point)):
        forward = layer.block.reduction_length(site)
        fan_out = math.ceil(forward * math.prod(out[1:]) / math.prod(site.in_shape[1:]))
        k = max(k, forward, fan_out)
    return k


def weight_reduction_length(point: Point, index: int) -> int:
    """How many terms one element of layer `index`'s weight gradient sums: a product per sample and position,
    after the backward chain."""
    out = _out_shapes(point)[index]
    return max(backward_reduction_length(point), out[0] * math.prod(out[2:]))


def layer_of(name: str, point: Point) -> int:
    return int(name[name.index("[") + 1:name.index("]")]) if point.sequential else 0


def gradient_tolerance(point: Point, expected: np.ndarray, reduction_length: int) -> Tolerance:
    """A gradient's tolerance: compare.tolerance_for at the gradient's reduction length (module doc)."""
    return tolerance_for(point.input.dtype, reduction_length, expected, point.tolerance)


# --- backward --------------------------------------------------------------------------------------------------

def backward_verdicts(point: Point, device: str, x: np.ndarray, modules: list[Any], layers: list[Any],
                      trainables: list[Trainable]) -> list[Verdict]:
    """`check: backward`: the gradients of L = sum(output * R) with respect to the input and every trainable
    weight (`trainables`, the mapping of `modules` and `layers`), PyTorch against Keras (module doc). A network's
    end-to-end differences in float32 or narrower are then explained or located (`explained_by_rounding`)."""
    verdicts = end_to_end_verdicts(point, device, x, modules, layers, trainables)
    if (point.sequential and len(point.layers) > 1 and point.mode == "eval" and point.input.dtype != "float64"
            and any(not v.passed and v.check == "values" for v in verdicts)):
        verdicts = explained_by_rounding(point, device, x, modules, layers, trainables, verdicts)
    return verdicts


def end_to_end_verdicts(point: Point, device: str, x: np.ndarray, modules: list[Any], layers: list[Any],
                        trainables: list[Trainable]) -> list[Verdict]:
    """One verdict per gradient of the whole point: "grad input", then "grad <layer>.<weight>" (module doc)."""
    r = loss_weights(point, 0, x.dtype)
    _, _, torch_grads = torch_pass(point, modules, x, r, device, [t.torch_param for t in trainables])
    _, keras_grads = keras_pass(point, layers, x, r, device, [t.keras_variable for t in trainables])
    verdicts = []
    tx = to_numpy(torch_grads[0])
    kx = point.sites[0].layout.to_channels_first(to_numpy(keras_grads[0]))
    verdicts.append(compare(kx, tx, gradient_tolerance(point, tx, backward_reduction_length(point)), "grad input",
                            ("keras", "torch"), kind=VerdictKind.GRADIENT))
    for trainable, tg, kg in zip(trainables, torch_grads[1:], keras_grads[1:]):
        what = f"grad {trainable.name}"
        if tg is None or kg is None:
            missing = " and ".join(n for n, g in (("PyTorch", tg), ("Keras", kg)) if g is None)
            verdicts.append(Verdict(what, False, "mapping", f"{missing} gave no gradient for {trainable.name}: the "
                                    "loss does not depend on it there", {}, kind=VerdictKind.GRADIENT))
            continue
        expected = trainable.convert(to_numpy(tg))
        k = weight_reduction_length(point, layer_of(trainable.name, point))
        verdicts.append(in_keras_layout(compare(to_numpy(kg), expected, gradient_tolerance(point, expected, k),
                                                 what, ("keras", "torch"), kind=VerdictKind.GRADIENT), trainable))
    return verdicts


def float64_twin(point: Point) -> Point:
    """The point in float64: the same case, weights (drawn in float32 and widened, or read from the files) and input
    drawn in float64."""
    return dataclasses.replace(point, input=dataclasses.replace(point.input, dtype="float64"),
                               sites=[dataclasses.replace(s, dtype="float64") for s in point.sites],
                               framework_sites={fw: [dataclasses.replace(s, dtype="float64") for s in sites]
                                                for fw, sites in point.framework_sites.items()})


def explained_by_rounding(point: Point, device: str, x: np.ndarray, modules: list[Any], layers: list[Any],
                          trainables: list[Trainable], verdicts: list[Verdict]) -> list[Verdict]:
    """A network's end-to-end gradients differ in float32: the same gradients in float64, and every node's gradient
    with both frameworks fed the same values (xfw_harness.engine.node_gradients), decide. Both agree: the float32
    difference is rounding that flipped activations across a kink (ReLU's 0 evaluated on different sides by the two
    forward passes, so that an element's whole upstream gradient flows in one framework only); those verdicts pass,
    saying so. Else they fail, with the float64 verdicts and the nodes that differ after them."""
    summary, failing = node_gradient_verdicts(point, device, x, modules, layers, trainables)
    wide = float64_twin(point)
    wide_modules = build_torch(wide, device)
    wide_layers = build_keras(wide, wide_modules, device)
    wide_verdicts = end_to_end_verdicts(wide, device, wide.input.make(), wide_modules, wide_layers,
                                        mapped_weights(wide, wide_modules, wide_layers)[0])
    wide_failed = [dataclasses.replace(v, what=f"{v.what} in float64") for v in wide_verdicts if not v.passed]
    if not summary.passed or wide_failed:
        return [*verdicts, *wide_failed, summary, *failing]
    worst = max((v.metrics["max_abs"] / v.metrics["atol"] for v in wide_verdicts
                 if v.metrics.get("max_abs") is not None and v.metrics.get("atol")), default=0.0)
    explained = []
    for v in verdicts:
        if not v.passed and v.check == "values":
            v = dataclasses.replace(v, passed=True, check="kinks", message=(
                f"differs end to end in {point.input.dtype} ({v.message.splitlines()[0]}), but in float64 the "
                f"frameworks agree end to end (worst error {worst:.2g} of the tolerance) and every node's gradient "
                "agrees fed the same values: the difference is rounding that flips activations across a kink "
                "(ReLU's 0), which the two forward passes evaluate on different sides "
                "(xfw_harness.engine.node_gradients)"))
            v.metrics["kinks"] = True
        explained.append(v)
    return [*explained, summary]


def in_keras_layout(verdict: Verdict, trainable: Trainable) -> Verdict:
    """compare() speaks channels-first; a weight is compared in Keras's layout of its variable: say so."""
    verdict.message = verdict.message.replace(
        "(channels-first)", f"(Keras's layout of {trainable.keras_path}; PyTorch's converted by the weight "
        "transfer's conversion)")
    return verdict
