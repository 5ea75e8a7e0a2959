"""Everything a training loop touches: `check: backward`, `check: train_step`, and the running statistics of a
train-mode forward pass (batch_norm2d), PyTorch autograd against tf.GradientTape (Keras variables on TensorFlow).

The runner calls `training_verdicts` after the forward comparison; each verdict here is one more `Verdict` of the
point, so statuses, messages, `judge` and the report treat them like the forward ones.

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
Scale: the largest |PyTorch gradient|. Measured over the shipped cases (README, "Gradients, training steps and
running statistics").

train_step. From identical weights (both frameworks built afresh from the case's seed), `steps` optimiser steps,
each on step s's input and R (step 0: the case's input; step s > 0: the same fill drawn with seed input.seed + s;
fixed fills (values, arange, file) repeat the case's input), then every trainable weight's update (weight after
minus weight before, Keras layout) is compared. The optimisers' parameters are PyTorch's (harness.cases.loader.OPTIMIZERS);
the mappings (checked against torch/optim/{sgd,adam}.py and keras/src/optimizers/{sgd,adam}.py, and by running):
- SGD with momentum m: PyTorch buf = m * buf + g (buf = g at the first step; dampening 0), p -= lr * buf. Keras
  v = mu * v - lr * g, p += v (v starts at 0). With mu = m, v = -lr * buf at every step: `keras_sgd_momentum`
  is the identity (1 - m, the batch-norm habit, is wrong from the second step on).
- Adam: PyTorch p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps); Keras
  p -= lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps_k). They agree exactly when
  eps_k = eps * sqrt(1 - b2**t), which depends on the step t: the harness sets Keras's optimizer.epsilon to that
  before each step (`keras_adam_epsilon`; Keras reads the attribute at every update in eager mode). Passing eps as
  it is differs by a factor up to 1/sqrt(1 - b2) = 31.6 at t = 1 in the epsilon term: invisible at eps = 1e-8 with
  O(1) gradients, decisive where sqrt(v) is comparable to eps.
- Keras keeps a float learning rate in a float32 variable (floatx) whatever the variables' dtype, so float64
  updates would differ by lr's float32 rounding (2.2e-8 relative for 0.01): the harness passes the learning rate
  as a callable returning a float64 tensor, which Keras casts to each variable's dtype (a callable returning a
  Python float does not help: it becomes a float32 tensor on its way to update_step). Likewise SGD's momentum and
  Adam's beta_1 and beta_2 reach update_step through ops.cast(value, variable.dtype), which on TensorFlow makes a
  Python float a float32 tensor first (beta_2 = 0.999 becomes 0.99900001, 6.7e-6 relative in Adam's first
  step): in float64 cases the harness sets them to float64 tensors. Then float64 updates agree to rounding.
Tolerance of an update: rtol from the gradient tolerance's rule (K the largest gradient reduction length), and
atol = rtol * S + 16 * eps(dtype) * steps * max|w|, S the sum over steps of PyTorch's largest per-step update
(gradient differences propagate into the updates at most that much) and the second term the rounding of the
weights to their dtype once per step. Where both frameworks' gradient of an element is zero up to rounding (below
the gradient atol, not exactly 0) at some step, Adam divides rounding noise by its own size and steps by up to the
learning rate in a random direction: those elements of an Adam update are not compared with each other; instead each
framework's update there must lie within the bound no Adam update exceeds (lr * sum_t B(t), `adam_step_bound`), and
no more than 1% of a weight (MAX_NOT_COMPARED) may be left out whose gradient was real at some step. The message
counts them.

Running statistics (train mode, blocks with buffers such as batch_norm2d's running_mean and running_var): fresh
modules and layers take `steps` forward passes in train mode on the step inputs above, then each framework's
output at the last step (when steps > 1; the forward check covers the first) and every buffer is compared, the
Keras value first put into PyTorch's convention by harness.blocks.normalization.reconcile_running_state (Keras
keeps the biased batch variance, PyTorch the unbiased one: the exact correction from the batches PyTorch's layer
received is added). Not with `defaults: native`: a port by hand reconciles nothing, so there the values are
compared as each framework keeps them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.blocks.normalization import reconcile_running_state
from harness.blocks.registry import resolve_path
from harness.cases.loader import Point
from harness.core.compare import EPS, ULP_FACTOR, Tolerance, Verdict, compare, default_tolerance, tolerance_for
from harness.core.frameworks import keras, keras_device, tf, to_numpy, to_torch, torch, torch_device
from harness.engine.run import (
    _tolerance_for,
    build_keras,
    build_torch,
    forward_reduction_length,
    keras_chain,
    torch_chain,
)

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


# --- the weights both frameworks train -----------------------------------------------------------------------

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


def _converter(copy: Any) -> Callable[[np.ndarray], np.ndarray]:
    return (lambda a: a) if copy.convert is None else (lambda a: copy.convert(a, *copy.args))


def _label(point: Point, i: int, name: str) -> str:
    return f"layers[{i}].{name}" if point.sequential else name


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
                states.append(State(name, owner, buffer, tensor, variable, _converter(copy)))
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
                             f"so {what}: the adapter is incomplete", {"unmapped": names})
                     for names, why, what in (
                         (unmapped, "is trainable", "its gradient and updates cannot be compared"),
                         (state, "is state (a buffer or non-trainable variable)",
                          "it is neither transferred nor compared")) if names]
    return trainables, states, problems


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
        xk = tf.constant(point.sites[0].layout.to_keras(x))
        rk = tf.constant(keras_loss_weights(point, r))
        with tf.GradientTape() as tape:
            tape.watch(xk)
            loss = tf.reduce_sum(keras_chain(point, layers, xk)[-1] * rk)
        return loss, tape.gradient(loss, [xk, *wrt])


# --- tolerances ------------------------------------------------------------------------------------------------

def _out_shapes(point: Point) -> list[tuple[int, ...]]:
    return [s.in_shape for s in point.sites[1:]] + [point.output_shape]


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


def _layer_of(name: str, point: Point) -> int:
    return int(name[len("layers["):name.index("]")]) if point.sequential else 0


def gradient_tolerance(point: Point, expected: np.ndarray, reduction_length: int) -> Tolerance:
    """A gradient's tolerance: compare.tolerance_for at the gradient's reduction length (module doc)."""
    return tolerance_for(point.input.dtype, reduction_length, expected, point.tolerance)


# --- backward --------------------------------------------------------------------------------------------------

def backward_verdicts(point: Point, device: str, x: np.ndarray, modules: list[Any], layers: list[Any],
                      trainables: list[Trainable]) -> list[Verdict]:
    """`check: backward`: the gradients of L = sum(output * R) with respect to the input and every trainable
    weight (`trainables`, the mapping of `modules` and `layers`), PyTorch against Keras (module doc)."""
    r = loss_weights(point, 0, x.dtype)
    _, _, torch_grads = torch_pass(point, modules, x, r, device, [t.torch_param for t in trainables])
    _, keras_grads = keras_pass(point, layers, x, r, device, [t.keras_variable for t in trainables])
    verdicts = []
    tx = to_numpy(torch_grads[0])
    kx = point.sites[0].layout.to_channels_first(to_numpy(keras_grads[0]))
    verdicts.append(compare(kx, tx, gradient_tolerance(point, tx, backward_reduction_length(point)), "grad input",
                            ("keras", "torch")))
    for trainable, tg, kg in zip(trainables, torch_grads[1:], keras_grads[1:]):
        what = f"grad {trainable.name}"
        if tg is None or kg is None:
            missing = " and ".join(n for n, g in (("PyTorch", tg), ("Keras", kg)) if g is None)
            verdicts.append(Verdict(what, False, "mapping", f"{missing} gave no gradient for {trainable.name}: the "
                                    "loss does not depend on it there", {}))
            continue
        expected = trainable.convert(to_numpy(tg))
        k = weight_reduction_length(point, _layer_of(trainable.name, point))
        verdicts.append(_in_keras_layout(compare(to_numpy(kg), expected, gradient_tolerance(point, expected, k),
                                                 what, ("keras", "torch")), trainable))
    return verdicts


def _in_keras_layout(verdict: Verdict, trainable: Trainable) -> Verdict:
    """compare() speaks channels-first; a weight is compared in Keras's layout of its variable: say so."""
    verdict.message = verdict.message.replace(
        "(channels-first)", f"(Keras's layout of {trainable.keras_path}; PyTorch's converted by the weight "
        "transfer's conversion)")
    return verdict


# --- train_step --------------------------------------------------------------------------------------------------

def keras_sgd_momentum(momentum: float) -> float:
    """Keras's SGD momentum for PyTorch's: the same number (module doc)."""
    return momentum


def keras_adam_epsilon(epsilon: float, beta_2: float, step: int) -> float:
    """Keras's Adam epsilon at 1-based step `step` for PyTorch's: eps * sqrt(1 - beta_2**step) (module doc)."""
    return epsilon * math.sqrt(1.0 - beta_2**step)


def describe_optimizer(opt: dict[str, Any]) -> str:
    return f"{opt['name']}(" + ", ".join(f"{k}={v:g}" for k, v in opt.items() if k != "name") + ")"


def torch_optimizer(opt: dict[str, Any], params: list[Any]) -> Any:
    if opt["name"] == "sgd":
        return torch.optim.SGD(params, lr=opt["learning_rate"], momentum=opt["momentum"])
    return torch.optim.Adam(params, lr=opt["learning_rate"], betas=(opt["beta_1"], opt["beta_2"]),
                            eps=opt["epsilon"])


def keras_optimizer(opt: dict[str, Any], dtype: str) -> Any:
    lr = opt["learning_rate"]
    # A callable giving a float64 tensor: Keras casts it to each variable's dtype (a float would live in a float32
    # variable, and a callable's Python float becomes a float32 tensor on its way to update_step).
    learning_rate = lambda: tf.constant(lr, tf.float64)  # noqa: E731
    if opt["name"] == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=keras_sgd_momentum(opt["momentum"]))
        hyper = ("momentum",)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=opt["beta_1"], beta_2=opt["beta_2"],
                                          epsilon=keras_adam_epsilon(opt["epsilon"], opt["beta_2"], 1))
        hyper = ("beta_1", "beta_2")
    if dtype == "float64":
        # update_step reads these at every step through ops.cast(value, variable.dtype), which on TensorFlow turns a
        # Python float into a float32 tensor first (0.999 -> 0.99900001): float64 tensors keep them exact. The
        # constructors only take floats, so they are set afterwards.
        for name in hyper:
            setattr(optimizer, name, tf.constant(getattr(optimizer, name), tf.float64))
    return optimizer


def train_step_verdicts(point: Point, device: str, opt: dict[str, Any]) -> list[Verdict]:
    """`check: train_step` with one optimiser: `steps` steps from identical weights; every weight's update compared
    (module doc)."""
    modules = build_torch(point, device)
    layers = build_keras(point, modules, device)
    trainables, _, _ = mapped_weights(point, modules, layers)  # what cannot be mapped: training_verdicts
    if not trainables:
        return []
    params = [t.torch_param for t in trainables]
    variables = [t.keras_variable for t in trainables]
    before = [np.array(t.convert(to_numpy(t.torch_param)), np.float64) for t in trainables]  # copies (in-place steps)
    largest_step = [0.0] * len(trainables)
    lengths = [weight_reduction_length(point, _layer_of(t.name, point)) for t in trainables]
    # Adam divides each gradient by its own running size: where both frameworks' gradient is zero up to rounding,
    # the update is rounding noise scaled up to the learning rate (a conv bias before a train-mode batch norm).
    unresolved = [np.zeros(np.shape(b), bool) for b in before]
    always_zero = [np.ones(np.shape(b), bool) for b in before]  # zero up to rounding at every step so far
    torch_opt, keras_opt = torch_optimizer(opt, params), keras_optimizer(opt, point.input.dtype)
    for step in range(point.steps):
        x = step_input(point, step)
        r = loss_weights(point, step, x.dtype)
        previous = [to_numpy(p).astype(np.float64) for p in params]
        torch_opt.zero_grad()
        y = torch_chain(point, modules, to_torch(x).to(torch_device(device)))[-1]
        (y * to_torch(r).to(torch_device(device))).sum().backward()
        torch_opt.step()
        for j, p in enumerate(params):
            largest_step[j] += float(np.max(np.abs(to_numpy(p).astype(np.float64) - previous[j]), initial=0.0))
        _, grads = keras_pass(point, layers, x, r, device, variables)
        if opt["name"] == "adam":
            for j, (trainable, kg) in enumerate(zip(trainables, grads[1:])):
                tg = trainable.convert(to_numpy(trainable.torch_param.grad)).astype(np.float64)
                kg64 = to_numpy(kg).astype(np.float64)
                floor = gradient_tolerance(point, tg, lengths[j]).atol
                below = (np.abs(tg) <= floor) & (np.abs(kg64) <= floor)
                # Both exactly 0 (a feature no sample activates) gives no update in both: still compared.
                unresolved[j] |= below & ((tg != 0) | (kg64 != 0))
                always_zero[j] &= below
        if opt["name"] == "adam":
            keras_opt.epsilon = keras_adam_epsilon(opt["epsilon"], opt["beta_2"], step + 1)
        with keras_device(device):
            keras_opt.apply_gradients(zip(grads[1:], variables))
    verdicts = []
    k = max(lengths)
    label = describe_optimizer(opt)
    for trainable, w0, s, skip, quiet in zip(trainables, before, largest_step, unresolved, always_zero):
        w0 = np.asarray(w0, np.float64)
        torch_update = trainable.convert(to_numpy(trainable.torch_param)).astype(np.float64) - w0
        keras_update = to_numpy(trainable.keras_variable).astype(np.float64) - w0
        compared_keras = keras_update
        if skip.shape == keras_update.shape:
            compared_keras = np.where(skip, torch_update, keras_update)
        largest_weight = float(np.max(np.abs(w0), initial=0.0))
        tolerance = update_tolerance(point, k, s, largest_weight)
        verdict = compare(compared_keras, torch_update, tolerance, f"{opt['name']} update {trainable.name}",
                          ("keras", "torch"))
        note = ""
        if skip.any() and skip.shape == keras_update.shape:
            note = _judge_not_compared(verdict, point, opt, skip, quiet, torch_update, keras_update, largest_weight)
        verdict.message = (f"{label}, {point.steps} step(s); the update (weight after - before) is compared{note}: "
                           + verdict.message)
        verdicts.append(_in_keras_layout(verdict, trainable))
    return verdicts


# Adam's bound. PyTorch's step t (1-based) moves an element by lr * |m_hat| / (sqrt(v_hat) + eps) <= lr * |m_hat| /
# sqrt(v_hat), m_hat = m / (1 - b1**t), v_hat = v / (1 - b2**t), m = (1 - b1) * sum_i b1**(t-i) g_i and
# v = (1 - b2) * sum_i b2**(t-i) g_i**2. Cauchy-Schwarz on sum_i (b1**(t-i) / b2**((t-i)/2)) * (b2**((t-i)/2) g_i):
#   |m| / sqrt(v) <= (1 - b1) / sqrt(1 - b2) * sqrt(sum_{k<t} (b1**2 / b2)**k),
# so |step t| <= lr * B(t), B(t) = (1 - b1) * sqrt(1 - b2**t) / ((1 - b1**t) * sqrt(1 - b2)) * sqrt(sum_{k<t}
# (b1**2 / b2)**k), whatever the gradients (equality for g_i proportional to (b1 / b2)**(t-i) and eps = 0; Keras's
# step is the same number, its epsilon mapped: module doc). B(1) = 1; with PyTorch's betas B(2) = 1.0014,
# B(3) = 1.0036, B(5) = 1.0108 (tests/test_gradients.py checks the bound against torch.optim.Adam).
# Elements whose update cannot be compared between the frameworks (their gradient is rounding noise) are held to
# lr * sum_t B(t). Such elements are expected where a gradient is zero by construction (a conv bias before a
# train-mode batch norm: every step, every element) and very rarely elsewhere: an element lands within the
# gradient atol (~1e-5 of the largest gradient) of zero about once in 1e4 element-steps. Measured on the shipped
# cases (cases/training.yaml, cases/batch_norm2d.yaml: 60 Adam update verdicts): 4 elements not compared, all of
# them the zero-by-construction conv bias of training.yaml::conv_bn_train_mode, none otherwise. More than
# MAX_NOT_COMPARED of a weight's elements (at least one element allowed) left out although their gradient was real
# at some step means the comparison would mostly not be one: the verdict fails and says so.
MAX_NOT_COMPARED = 0.01


def adam_step_bound(beta_1: float, beta_2: float, step: int) -> float:
    """B(step): Adam's update of one element at 1-based `step` is at most learning_rate * B(step) in magnitude,
    whatever the gradients (derivation above); inf where the betas give no bound (beta_2 = 0; the loader refuses
    betas of 1)."""
    if not (0.0 < beta_2 < 1.0 and beta_1 < 1.0):
        return math.inf
    geometric = sum((beta_1 * beta_1 / beta_2) ** k for k in range(step))
    return ((1.0 - beta_1) * math.sqrt(1.0 - beta_2**step) / ((1.0 - beta_1**step) * math.sqrt(1.0 - beta_2))
            * math.sqrt(geometric))


def _judge_not_compared(verdict: Verdict, point: Point, opt: dict[str, Any], skip: np.ndarray, quiet: np.ndarray,
                        torch_update: np.ndarray, keras_update: np.ndarray, largest_weight: float) -> str:
    """The Adam update elements left out of `verdict` (`skip`): each framework's update there must lie within
    Adam's bound, and at most MAX_NOT_COMPARED of the weight may be left out unless its gradient was zero up to
    rounding at every step (`quiet`). Fails `verdict` otherwise; returns the note for its message."""
    dtype = point.input.dtype
    steps = sum(adam_step_bound(opt["beta_1"], opt["beta_2"], t) for t in range(1, point.steps + 1))
    # The steps' own arithmetic rounds (relative eps), and the weight rounds to its dtype once per step.
    bound = (opt["learning_rate"] * steps * (1.0 + ULP_FACTOR * EPS[dtype])
             + ULP_FACTOR * EPS[dtype] * point.steps * largest_weight)
    n_skip, n_partial = int(skip.sum()), int((skip & ~quiet).sum())
    allowed = max(1, math.floor(MAX_NOT_COMPARED * skip.size))
    largest = {name: float(np.max(np.abs(np.where(skip, update, 0.0)))) for name, update in
               (("torch", torch_update), ("keras", keras_update))}
    over = skip & ~((np.abs(torch_update) <= bound) & (np.abs(keras_update) <= bound))  # NaN counts as over
    verdict.metrics.update(n_not_compared=n_skip, n_not_compared_real_gradient=n_partial, adam_bound=bound,
                           largest_not_compared_update=largest)
    note = (f" ({n_skip} of {skip.size} elements not compared with each other: their gradient was zero up to "
            "rounding in both frameworks at some step, and Adam scales that noise up to a step of the learning "
            f"rate; there each framework's update is held to Adam's bound lr * sum_t B(t) = {bound:.3g}: largest "
            f"torch {largest['torch']:.3g}, keras {largest['keras']:.3g})")
    problems = []
    if over.any():
        idx = [int(i) for i in np.unravel_index(int(np.argmax(over)), skip.shape)]
        problems.append(("adam bound", f"{int(over.sum())} of the {n_skip} elements not compared exceed Adam's "
                         f"bound {bound:.6g} on {point.steps} step(s) of learning rate {opt['learning_rate']:g} "
                         f"(no Adam update can): first at {idx}: torch {torch_update[tuple(idx)]:.9g}, keras "
                         f"{keras_update[tuple(idx)]:.9g}"))
    if n_partial > allowed:
        problems.append(("not compared", f"{n_partial} of {skip.size} elements ({100.0 * n_partial / skip.size:.3g}%) "
                         f"are not compared although their gradient was above rounding at some step; at most "
                         f"{allowed} may be ({MAX_NOT_COMPARED:.0%}, at least one): most of the weight's updates "
                         "would go unchecked (gradients spanning many orders of magnitude, or a case atol as large "
                         "as the gradients?)"))
    if problems:
        verdict.passed = False
        verdict.check = verdict.check if verdict.check != "ok" else problems[0][0]
        verdict.message = "\n".join([*(text for _, text in problems), verdict.message])
    return note


def update_tolerance(point: Point, reduction_length: int, summed_steps: float, largest_weight: float) -> Tolerance:
    """rtol of the gradients; atol = rtol * (sum of the per-step largest updates) + the rounding of the weights to
    their dtype once per step (module doc)."""
    dtype = point.input.dtype
    rtol = point.tolerance.rtol if point.tolerance is not None else default_tolerance(dtype, reduction_length).rtol
    rounding = ULP_FACTOR * EPS[dtype] * point.steps * largest_weight
    source = "rtol set by the case" if point.tolerance is not None else f"gradient rtol at reduction length " \
        f"{reduction_length}"
    return Tolerance(atol=rtol * summed_steps + rounding, rtol=rtol,
                     source=f"{source}; atol = rtol * {summed_steps:.3g} (summed step sizes) + "
                            f"{ULP_FACTOR:g} * eps * {point.steps} step(s) * {largest_weight:.3g} (max |weight|)")


# --- running statistics ----------------------------------------------------------------------------------------

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
                y = keras_chain(point, layers, tf.constant(point.sites[0].layout.to_keras(x)))[-1]
    finally:
        for hook in hooks:
            hook.remove()
    verdicts = []
    steps = point.steps
    if steps > 1:
        torch_out, keras_out = to_numpy(t), out_layout.to_channels_first(to_numpy(y))
        verdicts.append(compare(keras_out, torch_out, _tolerance_for(point, torch_out), f"output at step {steps}",
                                ("keras", "torch")))
    k = forward_reduction_length(point)
    for state in states:
        torch_value = state.convert(to_numpy(state.torch_tensor))
        keras_value = to_numpy(state.keras_variable)
        if point.defaults != "native":  # a hand port (defaults: native) keeps each framework's own convention
            keras_value = reconcile_running_state(state.owner, state.buffer, keras_value, seen[id(state.owner)])
        tolerance = tolerance_for(point.input.dtype, k, torch_value, point.tolerance)
        verdict = compare(keras_value, torch_value, tolerance, f"{state.name} after {steps} step(s)",
                          ("keras", "torch"))
        if state.buffer == "running_var" and point.defaults != "native":
            verdict.message = ("Keras's moving_variance keeps the biased batch variance, PyTorch's running_var the "
                               "unbiased one; compared after adding the exact difference, from the batches PyTorch's "
                               "layer received: " + verdict.message)
        verdicts.append(verdict)
    return verdicts


# --- the runner's entry ----------------------------------------------------------------------------------------

def training_verdicts(point: Point, device: str, x: np.ndarray, modules: list[Any], layers: list[Any]
                      ) -> list[Verdict]:
    """The verdicts beyond the forward comparison that the point asks for: running statistics (train mode),
    gradients (`check: backward`), optimiser steps (`check: train_step`, one set per optimiser), after a failed
    "weights mapped" verdict for each weight or state the block's weight_copies leave out (those cannot be
    compared)."""
    trainables, states, verdicts = mapped_weights(point, modules, layers)
    if point.mode == "train" and states:  # rebuilt afresh for its steps: only where there is state to compare
        verdicts += running_state_verdicts(point, device)
    if "backward" in point.checks:
        verdicts += backward_verdicts(point, device, x, modules, layers, trainables)
    if "train_step" in point.checks:
        for opt in point.optimizers:
            verdicts += train_step_verdicts(point, device, opt)
    return verdicts
