"""`check: train_step`: the weights' updates after `steps` optimiser steps from identical weights.

train_step. From identical weights (both frameworks built afresh from the case's seed), `steps` optimiser steps,
each on step s's input and R (step 0: the case's input; step s > 0: the same fill drawn with seed input.seed + s;
fixed fills (values, arange, file) repeat the case's input), then every trainable weight's update (weight after
minus weight before, Keras layout) is compared.
The optimisers' mappings: xfw_harness.engine.optimizers.

Tolerance of an update: rtol from the gradient tolerance's rule (K the largest gradient reduction length), and
atol = rtol * S + 16 * eps(dtype) * steps * max|w|, S the sum over steps of PyTorch's largest per-step update
(gradient differences propagate into the updates at most that much) and the second term the rounding of the
weights to their dtype once per step. Where both frameworks' gradient of an element is zero up to rounding (below
the gradient atol, not exactly 0) at some step, Adam divides rounding noise by its own size and steps by up to the
learning rate in a random direction: those elements of an Adam update are not compared with each other; instead each
framework's update there must lie within the bound no Adam update exceeds (lr * sum_t B(t), `adam_step_bound`), and
no more than 1% of a weight (MAX_NOT_COMPARED) may be left out whose gradient was real at some step. The message
counts them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.frameworks import keras_device, to_numpy, to_torch, torch_device
from xfw_harness.core.tolerance import EPS, ULP_FACTOR, Tolerance, default_tolerance
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine.backward import (
    gradient_tolerance,
    in_keras_layout,
    keras_pass,
    layer_of,
    loss_weights,
    step_input,
    weight_reduction_length,
)
from xfw_harness.engine.build import build_keras, build_torch, torch_chain
from xfw_harness.engine.comparing import compare
from xfw_harness.engine.optimizers import (
    MAX_NOT_COMPARED,
    adam_step_bound,
    before_keras_step,
    describe_optimizer,
    keras_optimizer,
    torch_optimizer,
)
from xfw_harness.engine.weights_map import mapped_weights


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
    lengths = [weight_reduction_length(point, layer_of(t.name, point)) for t in trainables]
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
        before_keras_step(keras_opt, opt, step + 1)
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
                          ("keras", "torch"), kind=VerdictKind.UPDATE)
        note = ""
        if skip.any() and skip.shape == keras_update.shape:
            note = _judge_not_compared(verdict, point, opt, skip, quiet, torch_update, keras_update, largest_weight)
        verdict.message = (f"{label}, {point.steps} step(s); the update (weight after - before) is compared{note}: "
                           + verdict.message)
        verdicts.append(in_keras_layout(verdict, trainable))
    return verdicts


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


