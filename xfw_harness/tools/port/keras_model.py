"""The Keras model `xfw-harness port` saves once the case passes both verdicts, and how to load it.

A Keras functional model of the runner's own Keras layers (the transferred weights) wired as the case's graph
behind a channels-last keras.Input (xfw_harness.blocks.functional_model),
saved as DIR/<name>.keras (`save_keras`): under a temporary name, moved into place once reloaded and found to give
the same output, so that a failed save leaves no partial file. Harness layers in it that Keras cannot find by
itself are listed (`keras_custom_objects`) in the load instructions (`load_instructions`), and a NOTE says where
its output is not laid out as PyTorch's (`output_note`: a flatten's (H, W, C) feature order, a channels-last
tensor).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xfw_harness.blocks import functional_model
from xfw_harness.cases import Point
from xfw_harness.core.frameworks import keras, to_numpy
from xfw_harness.core.layout import flatten_permutation, shape_to_channels_last
from xfw_harness.engine import build_keras, build_torch, forward_keras
from xfw_harness.tools.port.model import PortError
from xfw_harness.tools.port.ported import Ported


def keras_custom_objects(model: Any) -> dict[str, type]:
    """The harness's own Keras layer classes inside `model`, by class name: load_model's `custom_objects`. All of
    them, registered ones too: registration (keras.saving.register_keras_serializable) only happens when their
    module is imported, which a fresh Python that loads the file has not done; naming them imports them."""
    found: dict[str, type] = {}

    def walk(layer: Any) -> None:
        cls = type(layer)
        if cls.__module__.startswith("xfw_harness."):
            found[cls.__name__] = cls
        for sub in getattr(layer, "layers", None) or []:
            walk(sub)
        for name in getattr(cls, "layer_lists", ()):  # a harness composite (xfw_harness/blocks/composite.py)
            for sub in getattr(layer, name):
                walk(sub)

    for layer in model.layers:
        walk(layer)
    return found


def save_keras(point: Point, out: Path, name: str, x: np.ndarray, modules: list[Any] | None = None
               ) -> tuple[Path, dict[str, type]]:
    """The runner's Keras layers of the point (PyTorch's weights transferred) as one functional keras.Model behind a
    channels-last input, saved as DIR/<name>.keras; reloaded at once, it must give the same output. `modules`: the
    case's PyTorch modules where the caller has built them (their weights are what Keras gets)."""
    modules = modules if modules is not None else build_torch(point, "cpu")
    layers = build_keras(point, modules, "cpu")
    expected = forward_keras(point, layers, x, "cpu")[-1]
    model = functional_model(point.layers, point.sites, layers, name=name)
    custom = keras_custom_objects(model)
    path, partial = out / f"{name}.keras", partial_keras_path(out, name)
    # Saved under another name in the same folder and moved into place (os.replace: atomic) once it has reloaded
    # and given the same output: a failed or interrupted save never leaves a partial DIR/<name>.keras.
    try:
        model.save(partial)
        reloaded = keras.models.load_model(partial, custom_objects=custom)
        got = reloaded(point.sites[0].layout.to_keras(x), training=False)
        got = point.layers[-1].block.output_layout(point.sites[-1]).to_channels_first(to_numpy(got))
        if not np.array_equal(got, expected):
            raise PortError(f"reloaded, it gives another output than the Keras layers it was saved from (max abs "
                            f"difference {float(np.max(np.abs(got - expected))):.3g})")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path, custom


def partial_keras_path(out: Path, name: str) -> Path:
    """Where `save_keras` saves before moving the file into place (and what a failed run may have left)."""
    return out / f".{name}.partial.keras"  # Keras saves only to a name ending in .keras


def load_instructions(ported: Ported) -> list[str]:
    """How to load the saved model, as Python lines."""
    lines = []
    if ported.custom_objects:
        # The harness's layers first: xfw_harness.core.frameworks loads triton (where a CUDA build of torch has it)
        # before TensorFlow, which a later import of torchvision would otherwise kill the process with.
        modules = sorted({cls.__module__ for cls in ported.custom_objects.values()})
        lines += [f"import {m}" for m in modules]
    lines.append("import keras")
    if ported.custom_objects:
        objects = ", ".join(f'"{n}": {c.__module__}.{c.__name__}' for n, c in ported.custom_objects.items())
        lines.append(f'model = keras.models.load_model("{ported.keras_path}", custom_objects={{{objects}}})')
    else:
        lines.append(f'model = keras.models.load_model("{ported.keras_path}")')
    lines.append(f"y = model(x)  # x channels-last: {keras_input_shape_text(ported)}")
    return lines


def keras_input_shape_text(ported: Ported) -> str:
    """The Keras model's input shape, channels-last, any batch: `shape [None, 28, 28, 1]`."""
    return f"shape {[None, *shape_to_channels_last(ported.input_shape)[1:]]}"


def output_note(ported: Ported) -> str | None:
    """A NOTE where the Keras model's output is not laid out as PyTorch's: features flattened in Keras's (H, W, C)
    order (a model that ends in a flatten, no dense after it), or a channels-last tensor."""
    flat = ported.output_layout.flattened_from if ported.output_layout is not None else None
    if flat is not None:
        order = flatten_permutation(flat)
        if np.array_equal(order, np.arange(order.size)):  # (C, 1, 1): both orders are the same
            return None
        return (f"NOTE: the output's features are in Keras's flatten order (H, W, C), not PyTorch's (C, H, W), of the "
                f"{list(flat)} (C, H, W) tensor they flatten; PyTorch's order is "
                f"y[:, numpy.argsort(xfw_harness.core.layout.flatten_permutation({tuple(flat)}))]")
    if len(ported.output_shape) > 2:
        keras_shape = [None, *shape_to_channels_last(ported.output_shape)[1:]]
        return (f"NOTE: the output is channels-last like the input (shape {keras_shape}); PyTorch's layout is "
                "numpy.moveaxis(y, -1, 1)")
    return None
