"""Dropout's Keras layers build on every installed Keras backend inside xfw_harness.core.frameworks.keras_device, as
the engine builds them (xfw_harness/engine/build.py). On the torch backend a device scope named "cpu:0" made every
layer with a seed generator (Dropout, SpatialDropout2D, AlphaDropout, StochasticDepth's dropout) fail to build:
the backend moves a new variable with Parameter.to("cpu:0"), which copies a CPU tensor into a plain one, and
TorchLayer's ParameterDict re-wraps it as a Parameter that requires gradients, which the seed generator's int32
state refuses (keras/src/backend/torch/core.py, Variable._initialize; keras/src/backend/torch/layer.py,
_track_variables). The old scope runs too, to show the check catches it."""

from __future__ import annotations

from typing import Any

from tests.blocks.backend_scripts import figures_on_every_backend

SCRIPT = r'''
import json
from xfw_harness.core.frameworks import keras, keras_device, keras_tensor, to_numpy
import numpy as np

def build(scope):
    try:
        with scope:
            layers = [keras.layers.Dropout(0.5, seed=3), keras.layers.SpatialDropout2D(0.5, seed=3),
                      keras.layers.AlphaDropout(0.1, seed=3)]
            y = to_numpy(layers[0](keras_tensor(np.ones((64, 64))), training=True))
        return {"ok": True, "zeros": float((y == 0).mean()), "trainable": [len(l.trainable_variables) for l in layers]}
    except Exception as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}

print("RESULT " + json.dumps({"harness": build(keras_device("cpu")), "cpu:0": build(keras.device("cpu:0"))}))
'''


figures = figures_on_every_backend(SCRIPT)


def test_seeded_dropout_layers_build_in_the_harness_device_scope(figures: tuple[str, dict[str, Any]]) -> None:
    backend, out = figures
    built = out["harness"]
    assert built["ok"], (backend, built)
    assert built["trainable"] == [0, 0, 0] and 0.4 < built["zeros"] < 0.6, (backend, built)
    if backend == "torch":  # the scope the harness named before: caught
        assert not out["cpu:0"]["ok"] and "require gradients" in out["cpu:0"]["error"], out["cpu:0"]
