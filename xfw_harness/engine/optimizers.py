"""The optimisers of `check: train_step` in both frameworks, from PyTorch's parameters (xfw_harness.cases.OPTIMIZERS).

The optimisers' parameters are PyTorch's (xfw_harness.cases.loader.OPTIMIZERS);
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
  Adam's beta_1 and beta_2 reach update_step through ops.cast(value, variable.dtype), which on every backend makes a
  Python float a float32 tensor first (beta_2 = 0.999 becomes 0.99900001, 6.7e-6 relative in Adam's first
  step): in float64 cases the harness sets them to float64 tensors. Then float64 updates agree to rounding.

Adam's bound (`adam_step_bound`): no Adam update of one element exceeds the learning rate times B(t).
"""

from __future__ import annotations

import math
from typing import Any

from xfw_harness.core.frameworks import keras, torch


def keras_sgd_momentum(momentum: float) -> float:
    """Keras's SGD momentum for PyTorch's: the same number (module doc)."""
    return momentum


def keras_adam_epsilon(epsilon: float, beta_2: float, step: int) -> float:
    """Keras's Adam epsilon at 1-based step `step` for PyTorch's: eps * sqrt(1 - beta_2**step) (module doc)."""
    return epsilon * math.sqrt(1.0 - beta_2**step)


def describe_optimizer(opt: dict[str, Any]) -> str:
    return f"{opt['name']}(" + ", ".join(f"{k}={v:g}" for k, v in opt.items() if k != "name") + ")"


def before_keras_step(keras_opt: Any, opt: dict[str, Any], step: int) -> None:
    """What Keras's optimiser needs before its 1-based step `step`: Adam's epsilon for that step (module doc)."""
    if opt["name"] == "adam":
        keras_opt.epsilon = keras_adam_epsilon(opt["epsilon"], opt["beta_2"], step)


def torch_optimizer(opt: dict[str, Any], params: list[Any]) -> Any:
    if opt["name"] == "sgd":
        return torch.optim.SGD(params, lr=opt["learning_rate"], momentum=opt["momentum"])
    return torch.optim.Adam(params, lr=opt["learning_rate"], betas=(opt["beta_1"], opt["beta_2"]),
                            eps=opt["epsilon"])


def keras_optimizer(opt: dict[str, Any], dtype: str) -> Any:
    lr = opt["learning_rate"]
    # A callable giving a float64 tensor: Keras casts it to each variable's dtype (a float would live in a float32
    # variable, and a callable's Python float becomes a float32 tensor on its way to update_step).
    learning_rate = lambda: keras.ops.convert_to_tensor(lr, "float64")  # noqa: E731
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
            setattr(optimizer, name, keras.ops.convert_to_tensor(getattr(optimizer, name), "float64"))
    return optimizer


# Adam's bound. PyTorch's step t (1-based) moves an element by lr * |m_hat| / (sqrt(v_hat) + eps) <= lr * |m_hat| /
# sqrt(v_hat), m_hat = m / (1 - b1**t), v_hat = v / (1 - b2**t), m = (1 - b1) * sum_i b1**(t-i) g_i and
# v = (1 - b2) * sum_i b2**(t-i) g_i**2. Cauchy-Schwarz on sum_i (b1**(t-i) / b2**((t-i)/2)) * (b2**((t-i)/2) g_i):
#   |m| / sqrt(v) <= (1 - b1) / sqrt(1 - b2) * sqrt(sum_{k<t} (b1**2 / b2)**k),
# so |step t| <= lr * B(t), B(t) = (1 - b1) * sqrt(1 - b2**t) / ((1 - b1**t) * sqrt(1 - b2)) * sqrt(sum_{k<t}
# (b1**2 / b2)**k), whatever the gradients (equality for g_i proportional to (b1 / b2)**(t-i) and eps = 0; Keras's
# step is the same number, its epsilon mapped: module doc). B(1) = 1; with PyTorch's betas B(2) = 1.0014,
# B(3) = 1.0036, B(5) = 1.0108 (tests/engine/test_gradients.py checks the bound against torch.optim.Adam).
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


