"""Keras's gradients on the backend this process runs: tf.GradientTape on TensorFlow, jax.value_and_grad on JAX,
torch.autograd on the torch backend. `check: backward`, `train_step` and the per-node gradients all differentiate
Keras through `keras_value_and_grad`, so every backend's own autodiff is what is compared with PyTorch's.

The JAX backend is functional: the loss is a function of the inputs and of the differentiated variables' values,
passed through keras.StatelessScope (as Keras's own JAX trainer does with stateless_call). Updates a layer makes
while computing it (batch norm's running statistics in train mode, a dropout seed generator's state) are recorded
in the scope rather than applied: they are read back and assigned afterwards, so that a step leaves every variable
as TensorFlow's and torch's eager steps do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xfw_harness.core.frameworks import BACKEND, jax, keras, keras_tensor, tf, torch


def keras_value_and_grad(loss_of: Callable[..., Any], inputs: Sequence[np.ndarray], variables: Sequence[Any],
                         state: Sequence[Any] = ()) -> tuple[Any, list[Any]]:
    """(loss, gradients): `loss_of(*tensors)` is a scalar computed by Keras from the inputs (NumPy arrays, made
    Keras tensors on the current device); the gradients are with respect to each input, then each of `variables`
    (Keras variables), None where the loss does not depend on one (TensorFlow, torch; JAX gives zeros).
    `state`: every variable the computation may update (the layers' variables), which JAX's functional call must
    assign afterwards (module doc)."""
    if BACKEND == "tensorflow":
        xs = [keras_tensor(a) for a in inputs]
        with tf.GradientTape() as tape:
            for x in xs:
                tape.watch(x)
            loss = loss_of(*xs)
        grads = tape.gradient(loss, [*xs, *variables])
        return loss, list(grads)
    if BACKEND == "torch":
        xs = [keras_tensor(a).requires_grad_(True) for a in inputs]
        loss = loss_of(*xs)
        return loss, list(torch.autograd.grad(loss, [*xs, *(v.value for v in variables)], allow_unused=True))
    return _jax_value_and_grad(loss_of, inputs, variables, state)


def _jax_value_and_grad(loss_of: Callable[..., Any], inputs: Sequence[np.ndarray], variables: Sequence[Any],
                        state: Sequence[Any]) -> tuple[Any, list[Any]]:
    seen = {id(v) for v in variables}
    others = []
    for v in state:  # Keras variables are unhashable: by identity
        if id(v) not in seen:
            seen.add(id(v))
            others.append(v)

    def loss_and_updates(xs: list[Any], values: list[Any]) -> tuple[Any, list[Any]]:
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            loss = loss_of(*xs)
        return loss, [scope.get_current_value(v) for v in [*variables, *others]]

    xs = [keras_tensor(a) for a in inputs]
    (loss, updates), (gx, gv) = jax.value_and_grad(loss_and_updates, argnums=(0, 1), has_aux=True)(
        xs, [v.value for v in variables])
    for variable, value in zip([*variables, *others], updates):
        if value is not None:
            variable.assign(value)
    return loss, [*gx, *gv]

