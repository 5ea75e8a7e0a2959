"""The harness's own pooling layers (xfw_harness/blocks/pooling_layers.py) on every installed Keras backend, in float64:
DilatedMaxPooling and AdaptivePooling must be exact there, as on TensorFlow. Each backend runs in its own Python
(KERAS_BACKEND is fixed at import), which prints its figures as JSON; each check also runs on the code the harness
had before (keras.ops.maximum, keras.ops.mean), to show that the check catches it: off TensorFlow those compute a
float64 input in float32 (keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE). Also avg_pool2d's `same` with
unequal padding, which Keras's torch backend averages over replicated cells (cases/backend_differences.yaml)."""

from __future__ import annotations

from typing import Any

from tests.blocks.backend_scripts import figures_on_every_backend

SCRIPT = r'''
import json
import numpy as np
from xfw_harness.core.frameworks import keras, keras_tensor, to_numpy
from xfw_harness.core.autodiff import keras_value_and_grad
from xfw_harness.core.spatial import adaptive_windows
from xfw_harness.blocks import pooling_layers as pl

x = np.random.default_rng(0).standard_normal((2, 7, 6, 3))
out = {}

def err(layer, expected):
    y = to_numpy(layer(keras_tensor(x)))
    return {"dtype": str(y.dtype), "err": float(np.abs(y - expected).max())}

taps = [x[:, i * 2:i * 2 + 5, j:j + 5] for i in range(2) for j in range(2)]
dilated = np.maximum.reduce(taps)
out["dilated"] = err(pl.DilatedMaxPooling((2, 2), (1, 1), (2, 1), dtype="float64"), dilated)
fixed = pl.first_maximum
pl.first_maximum = keras.ops.maximum  # the harness's combine before this fix
out["dilated_old"] = err(pl.DilatedMaxPooling((2, 2), (1, 1), (2, 1), dtype="float64"), dilated)
pl.first_maximum = fixed

size = (3, 4)
wh, ww = adaptive_windows(7, size[0]), adaptive_windows(6, size[1])
adaptive = np.stack([np.stack([x[:, a:b, c:d].mean(axis=(1, 2)) for c, d in ww], 1) for a, b in wh], 1)
out["adaptive"] = err(pl.AdaptivePooling("avg", size, dtype="float64"), adaptive)

class OldAdaptive(pl.AdaptivePooling):  # the call before this fix: keras.ops.mean per window
    def call(self, t):
        for axis, n in enumerate(self.output_size, start=1):
            pieces = []
            for start, end in adaptive_windows(int(t.shape[axis]), n):
                index = [slice(None)] * len(t.shape)
                index[axis] = slice(start, end)
                pieces.append(keras.ops.mean(t[tuple(index)], axis=axis, keepdims=True))
            t = keras.ops.concatenate(pieces, axis=axis)
        return t

out["adaptive_old"] = err(OldAdaptive("avg", size, dtype="float64"), adaptive)

# Ties: the whole gradient to the first argument, on every backend (PyTorch's max pooling: to the first maximum).
a = np.array([1.0, 2.0, 3.0])
b = np.array([1.0, 5.0, 3.0])
for name, f in (("first_maximum", pl.first_maximum), ("maximum", keras.ops.maximum)):
    _, (ga, gb) = keras_value_and_grad(lambda u, v: keras.ops.sum(f(u, v)), [a, b], [])
    out[name + "_grads"] = [to_numpy(ga).tolist(), to_numpy(gb).tolist()]
nan = to_numpy(pl.first_maximum(keras_tensor(np.array([np.nan, 1.0])), keras_tensor(np.array([1.0, np.nan]))))
out["nan"] = [bool(v) for v in np.isnan(nan)]

# avg_pool2d, `same` padded (0, 1) on 12x12, real cells only: PyTorch's ceil-mode windows are the same windows.
import torch
from xfw_harness.blocks import Site, get_block
from xfw_harness.core.schema import normalise_params
block = get_block("avg_pool2d")
params = normalise_params(block.params, {"pool_size": 3, "strides": 2, "padding": "same", "count_include_pad": False})
site = Site(params, (2, 3, 12, 12), "float64", "eval")
xc = np.random.default_rng(1).standard_normal((2, 3, 12, 12))
expected = torch.nn.AvgPool2d(3, 2, ceil_mode=True, count_include_pad=False)(torch.from_numpy(xc)).numpy()
for name, layer in (("avg_same", block.keras_layer(site)),
                    ("avg_same_old", keras.layers.AveragePooling2D(3, 2, padding="same", dtype="float64"))):
    y = np.moveaxis(to_numpy(layer(keras_tensor(np.moveaxis(xc, 1, -1)))), -1, 1)
    out[name] = float(np.abs(y - expected).max())

# Keras's own AdaptiveMaxPooling2D (defaults: native) where TensorFlow's kills the process: 4x5 -> 2x1.
from xfw_harness.core.errors import Refusal
block = get_block("adaptive_max_pool2d")
site = Site(normalise_params(block.params, {"output_size": [2, 1]}), (2, 3, 4, 5), "float64", "eval")
try:
    layer = block.native_keras_layer(site)
except Refusal:
    out["adaptive_max_native"] = "refused"
else:
    xc = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    expected = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(xc), (2, 1)).numpy()
    y = np.moveaxis(to_numpy(layer(keras_tensor(np.moveaxis(xc, 1, -1)))), -1, 1)
    out["adaptive_max_native"] = float(np.abs(y - expected).max())
print("RESULT " + json.dumps(out))
'''


figures = figures_on_every_backend(SCRIPT)


def test_dilated_max_pooling_is_exact_in_float64(figures: tuple[str, dict[str, Any]]) -> None:
    backend, out = figures
    assert out["dilated"] == {"dtype": "float64", "err": 0.0}, backend
    if backend == "torch":  # the old combine, keras.ops.maximum, casts float64 to float32 there: caught
        assert out["dilated_old"]["dtype"] == "float32" and out["dilated_old"]["err"] > 1e-9


def test_adaptive_average_pooling_is_float64_exact(figures: tuple[str, dict[str, Any]]) -> None:
    backend, out = figures
    assert out["adaptive"]["dtype"] == "float64" and out["adaptive"]["err"] < 1e-15, (backend, out["adaptive"])
    if backend != "tensorflow":  # keras.ops.mean computes float64 in float32 there: the old layer is caught
        assert out["adaptive_old"]["err"] > 1e-10, (backend, out["adaptive_old"])


def test_average_pooling_same_with_unequal_padding_averages_real_cells(figures: tuple[str, dict[str, Any]]) -> None:
    backend, out = figures
    assert out["avg_same"] < 1e-14, (backend, out["avg_same"])
    if backend == "torch":  # Keras's AveragePooling2D('same'), which the block built before: caught
        assert out["avg_same_old"] > 0.1, out["avg_same_old"]
    else:
        assert out["avg_same_old"] < 1e-14, (backend, out["avg_same_old"])


def test_keras_adaptive_max_pooling_is_refused_only_where_it_kills_the_process(
        figures: tuple[str, dict[str, Any]]) -> None:
    """TensorFlow's AdaptiveMaxPooling dies with SIGFPE at 4x5 -> 2x1 (xfw_harness/blocks/global_pooling.py): refused
    there, built and exact on JAX and torch."""
    backend, out = figures
    assert out["adaptive_max_native"] == ("refused" if backend == "tensorflow" else 0.0), backend


def test_first_maximum_sends_a_tie_to_its_first_argument(figures: tuple[str, dict[str, Any]]) -> None:
    backend, out = figures
    assert out["first_maximum_grads"] == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], backend
    assert out["nan"] == [True, True], backend
    if backend != "tensorflow":  # keras.ops.maximum splits a tie's gradient there: the check would catch it
        assert out["maximum_grads"] == [[0.5, 0.0, 0.5], [0.5, 1.0, 0.5]], (backend, out["maximum_grads"])
