"""The normalisation blocks on Keras's JAX and torch backends (issue 16): what the harness translates for them, and
the per-backend facts behind cases/backend_differences.yaml's normalisation entries.

- The weight transfer hands Keras a COPY of each PyTorch weight (xfw_harness/blocks/base.py, transfer_weights): JAX's
  Keras variable keeps a CPU NumPy array zero-copy, and the NumPy view of a torch tensor shares its memory, so
  PyTorch's in-place updates (running statistics in train mode, an optimiser's step) changed Keras's variable too:
  instance_norm's running statistics on JAX were updated twice, 0.022 off PyTorch's after 3 steps.
- Keras's `backend.result_type` maps float64 to float32 on JAX and torch (keras/src/backend/common/dtypes.py,
  BIT64_TO_BIT32_DTYPE), and BatchNormalization, GroupNormalization and LayerNormalization pick their compute dtype
  with it: a float64 layer computes in float32 there (catalogued, not translated; a subprocess runs each backend).
  keras.ops.mean and ops.var do too: the harness's own InstanceNormalization (instance_norm with running
  statistics) computes its statistics as sums over counts instead (xfw_harness/blocks/group_normalization.py), and
  its moving-average momentum as a tensor of the variable's dtype: the torch backend's ops.multiply (a Keras
  variable's `*`) makes a Python float a float32 tensor (keras/src/backend/torch/numpy.py, multiply).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xfw_harness.blocks import get_block
from xfw_harness.core.frameworks import installed_backends, torch

PROJECT = Path(__file__).resolve().parents[2]


class _KeepsTheArray:
    """A Keras variable as JAX's is on the CPU: `assign` keeps the very NumPy array it is given."""

    def __init__(self) -> None:
        self.value: Any = None

    def assign(self, value: Any) -> None:
        self.value = value


class _Layer:
    def __init__(self) -> None:
        self.gamma, self.beta = _KeepsTheArray(), _KeepsTheArray()
        self.moving_mean, self.moving_variance = _KeepsTheArray(), _KeepsTheArray()


def _transferred_then_trained(transfer: Any) -> tuple[_Layer, dict[str, np.ndarray]]:
    """instance_norm's weights transferred by `transfer` into a layer that keeps what it is given, then PyTorch's
    module run once in train mode (its running statistics updated in place) and its weights stepped in place."""
    module = torch.nn.InstanceNorm2d(4, affine=True, track_running_stats=True)
    with torch.no_grad():
        module.running_mean.uniform_(-1.0, 1.0)
        module.weight.uniform_(0.5, 1.5)
    layer = _Layer()
    transfer(get_block("instance_norm"), module, layer)
    before = {"moving_mean": module.running_mean.numpy().copy(), "gamma": module.weight.detach().numpy().copy()}
    module.train()
    with torch.no_grad():
        module(torch.randn(3, 4, 5, 5))
        module.weight.add_(1.0)  # an optimiser's in-place step
    return layer, before


def test_the_transfer_gives_keras_a_copy_that_pytorchs_in_place_updates_leave_alone() -> None:
    layer, before = _transferred_then_trained(lambda block, module, layer: block.transfer_weights(None, module, layer))
    np.testing.assert_array_equal(layer.moving_mean.value, before["moving_mean"])
    np.testing.assert_array_equal(layer.gamma.value, before["gamma"])


def test_a_transfer_that_hands_over_the_view_is_caught() -> None:
    """The old transfer (the NumPy view of the torch tensor, assigned as it is) fails the check above."""
    from xfw_harness.blocks.site import resolve_path
    from xfw_harness.core.frameworks import to_numpy

    def view_transfer(block: Any, module: Any, layer: Any) -> None:
        for copy in block.weight_copies(None, module, layer):
            resolve_path(layer, copy.keras_path).assign(to_numpy(resolve_path(module, copy.torch_path)))

    layer, before = _transferred_then_trained(view_transfer)
    assert not np.array_equal(layer.moving_mean.value, before["moving_mean"])
    assert not np.array_equal(layer.gamma.value, before["gamma"])


# --- the per-backend facts behind the catalogue (one subprocess per backend: a process has one Keras backend) --------

_FACTS = r"""
import json
from xfw_harness.core.frameworks import keras, BACKEND
import numpy as np
from keras import ops
from keras.src.backend.common import dtypes
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 5, 4, 6))
out = {"result_type": dtypes.result_type("float64", "float32")}
g = keras.layers.GroupNormalization(groups=2, epsilon=1e-3, dtype="float64")
xr = x.reshape(2, 5, 4, 2, 3)
m, v = xr.mean(axis=(1, 2, 4), keepdims=True), xr.var(axis=(1, 2, 4), keepdims=True)
out["group"] = float(np.abs(ops.convert_to_numpy(g(x)) - ((xr - m) / np.sqrt(v + 1e-3)).reshape(x.shape)).max())
b = keras.layers.BatchNormalization(epsilon=1e-3, dtype="float64")
m, v = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
out["batch"] = float(np.abs(ops.convert_to_numpy(b(x, training=True)) - (x - m) / np.sqrt(v + 1e-3)).max())
n = keras.layers.LayerNormalization(epsilon=1e-3, dtype="float64")
m, v = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
out["layer"] = float(np.abs(ops.convert_to_numpy(n(x)) - (x - m) / np.sqrt(v + 1e-3)).max())
x2 = rng.standard_normal((4, 12))
d = keras.layers.Dense(7, dtype="float64")
y = ops.convert_to_numpy(d(x2))
out["dense"] = float(np.abs(y - (x2 @ ops.convert_to_numpy(d.kernel) + ops.convert_to_numpy(d.bias))).max())
from xfw_harness.blocks.group_normalization import instance_running_statistics
from xfw_harness.blocks.group_normalization_layers import InstanceNormalization
xc = np.moveaxis(x, -1, 1)
m, v = xc.mean(axis=(2, 3), keepdims=True), xc.var(axis=(2, 3), keepdims=True)
want = np.moveaxis((xc - m) / np.sqrt(v + 1e-5), 1, -1)
running = instance_running_statistics(0.1, [xc], np.zeros(6), np.ones(6))


def instance(layer):
    y = ops.convert_to_numpy(layer(ops.convert_to_tensor(x, "float64"), training=True))
    return float(max(np.abs(y - want).max(), np.abs(ops.convert_to_numpy(layer.moving_mean) - running[0]).max(),
                     np.abs(ops.convert_to_numpy(layer.moving_variance) - running[1]).max()))


out["instance"] = instance(InstanceNormalization(momentum=0.9, epsilon=1e-5, dtype="float64"))


class Planted(InstanceNormalization):  # the statistics through ops.mean and ops.var, as before the fix
    def call(self, x, training=None):
        axes = [1, 2]
        mean, var = ops.mean(x, axis=axes, keepdims=True), ops.var(x, axis=axes, keepdims=True)
        self._update(self.moving_mean, ops.mean(mean, axis=[0, 1, 2]))
        self._update(self.moving_variance, ops.mean(var, axis=[0, 1, 2]) * (20 / 19))
        return (x - mean) * ops.rsqrt(var + self.epsilon)


out["instance_planted"] = instance(Planted(momentum=0.9, epsilon=1e-5, dtype="float64"))


class PlantedMomentum(InstanceNormalization):  # the momentum as a Python float, as before the fix
    def _update(self, variable, batch):
        variable.assign(variable * self.momentum + ops.cast(batch, variable.dtype) * (1.0 - self.momentum))


out["instance_planted_momentum"] = instance(PlantedMomentum(momentum=0.9, epsilon=1e-5, dtype="float64"))
print(json.dumps(out))
"""


@functools.cache
def _facts(backend: str) -> dict[str, Any]:
    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run([sys.executable, "-c", _FACTS], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_keras_normalises_float64_in_float32_on_jax_and_torch(backend: str) -> None:
    """The catalogue's float64 entries: exact (1e-15) on TensorFlow, float32-rounded (1e-8 to 1e-6) on JAX and torch
    for the three normalisations; Dense through ops.matmul on torch only (JAX's matmul keeps float64)."""
    if backend not in installed_backends():
        pytest.skip(f"Keras's {backend} backend is not installed")
    facts = _facts(backend)
    float32 = {"tensorflow": set(), "jax": {"group", "batch", "layer"}, "torch": {"group", "batch", "layer", "dense"}}
    assert facts["result_type"] == ("float64" if backend == "tensorflow" else "float32")
    for name in ("group", "batch", "layer", "dense"):
        if name in float32[backend]:
            assert 1e-8 < facts[name] < 1e-5, (backend, name, facts[name])
        else:
            assert facts[name] < 1e-14, (backend, name, facts[name])


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_the_harness_instance_norm_keeps_float64_on_every_backend(backend: str) -> None:
    """The harness's own Keras InstanceNormalization (train mode: output, moving mean and variance) is exact in
    float64 on every backend; the same layer through ops.mean and ops.var (before the fix) is caught on JAX and
    torch, where those compute float64 in float32, and with its momentum a Python float (before the fix) on torch,
    whose ops.multiply rounds it to float32."""
    if backend not in installed_backends():
        pytest.skip(f"Keras's {backend} backend is not installed")
    facts = _facts(backend)
    assert facts["instance"] < 1e-13, (backend, facts["instance"])
    if backend == "tensorflow":
        assert facts["instance_planted"] < 1e-13
    else:
        assert 1e-9 < facts["instance_planted"] < 1e-5, (backend, facts["instance_planted"])
    # A Python-float momentum is rounded to float32 by the torch backend's ops.multiply (a variable's `*`) only.
    if backend == "torch":
        assert 1e-9 < facts["instance_planted_momentum"] < 1e-6, facts["instance_planted_momentum"]
    else:
        assert facts["instance_planted_momentum"] < 1e-13, (backend, facts["instance_planted_momentum"])
