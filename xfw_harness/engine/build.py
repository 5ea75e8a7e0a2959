"""Building a point's layers in both frameworks and running them: the PyTorch modules (initialised from the case's
seed, or loaded from weight files), the Keras layers (built for their channels-last input, given PyTorch's weights
through each block's `weight_copies`), and each chain of layers on an input. A framework that raises while building,
filling or running a layer becomes a `StageError` naming the stage and the layer.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from xfw_harness.blocks import Layer, run_layers
from xfw_harness.cases import Point
from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import (
    TORCH_DTYPES,
    keras_device,
    keras_tensor,
    to_numpy,
    to_torch,
    torch,
    torch_device,
)


def load_weights(point: Point, modules: list[Any]) -> None:
    for i, (layer, module) in enumerate(zip(point.layers, modules)):
        if layer.weights is None:
            continue
        fld = f"{point.network_key}[{i}].weights.path" if point.sequential else "weights.path"
        params = layer.block.torch_parameters(module)
        with np.load(layer.weights, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        missing = set(params) - set(arrays)
        if missing:
            raise CaseError(f"{layer.weights.name} lacks {', '.join(sorted(missing))}; the layer has "
                            f"{', '.join(f'{k} {list(v.shape)}' for k, v in params.items())}", field=fld)
        for name, tensor in params.items():
            if tuple(arrays[name].shape) != tuple(tensor.shape):
                raise CaseError(f"{layer.weights.name}: {name} has shape {list(arrays[name].shape)}, the layer needs "
                                f"{list(tensor.shape)} (PyTorch layout)", field=fld)
            with torch.no_grad():
                tensor.copy_(torch.from_numpy(np.asarray(arrays[name])))


class StageError(Exception):
    """A framework raised while the harness built, filled or ran one layer; the message says which and where."""


@contextlib.contextmanager
def _stage(point: Point, index: int, what: str) -> Iterator[None]:
    try:
        yield
    except CaseError:
        raise
    except Exception as e:
        where = point.layer_label(index)
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
            # Keras's wrapper line says nothing; the cause follows, in terminal colours, after TF's op name
            lines = [re.sub(r"\x1b\[[0-9;]*m|\{\{.*?\}\}\s*", "", lines[1])]
        text = lines[0] if lines else ""
        text = text if len(text) <= 300 else text[:300] + " ..."  # Keras appends whole variable values
        if point.input.dtype in ("float16", "bfloat16"):  # some CPU kernels have no half form (docs/tolerances.md)
            where += f" in {point.input.dtype}"
        raise StageError(f"{type(e).__name__} while {what} {where}: {text}") from e


def build_torch(point: Point, device: str) -> list[Any]:
    """The PyTorch modules of a point, initialised by PyTorch from the case's seed (or loaded from files)."""
    # Modules are built on the CPU: seeding its generator gives every device the same initial weights.
    # (torch.manual_seed would also queue a lazy CUDA seeding, with a traceback captured on every call: slow.)
    torch.random.default_generator.manual_seed(point.input.seed)
    if device == "gpu":  # dropout on CUDA draws from the CUDA generator: seeded too, for repeatable samples
        torch.cuda.manual_seed(point.input.seed)
    modules = []
    native = point.defaults == "native"  # each framework's own layer, given only what the case wrote
    for i, (layer, site) in enumerate(zip(point.layers, point.sites_for("torch"))):
        with _stage(point, i, "building the PyTorch module of"):
            modules.append((layer.block.native_torch_module if native else layer.block.torch_module)(site))
    load_weights(point, modules)
    for m in modules:
        m.to(device=torch_device(device), dtype=TORCH_DTYPES[point.input.dtype])
        m.train(point.training("torch"))
    return modules


def build_keras(point: Point, modules: list[Any], device: str) -> list[Any]:
    """The Keras layers of a point, built for their input shapes and given the PyTorch modules' weights."""
    layers = []
    with keras_device(device):
        for i, (layer, site, module) in enumerate(zip(point.layers, point.sites_for("keras"), modules)):
            with _stage(point, i, "building the Keras layer of"):
                k = (layer.block.native_keras_layer if point.defaults == "native" else layer.block.keras_layer)(site)
                k.build(site.layout.keras_shape(site.in_shape) if not site.in_shapes
                        else [layout.keras_shape(shape) for layout, shape in zip(site.in_layouts, site.in_shapes)])
            with _stage(point, i, "transferring the weights into Keras for"):
                layer.block.transfer_weights(site, module, k)
            layers.append(k)
    return layers


def torch_chain(point: Point, modules: list[Any], t: Any) -> list[Any]:
    """Each PyTorch module in turn on the tensor `t` (each on the outputs it takes, in a graph): every layer's output
    tensor. Autograd is the caller's: the forward comparison runs it under torch.no_grad, xfw_harness.engine.training
    differentiates through it."""

    def call(i: int, layer: Any, args: list[Any]) -> Any:
        with _stage(point, i, "running PyTorch's"):
            return modules[i](*args)

    return run_layers(point.layers, t, call)


def keras_chain(point: Point, layers: list[Any], t: Any) -> list[Any]:
    """Each Keras layer in turn on the tensor `t` (Keras's layout), with the point's training flag: every layer's
    output tensor. The device and any GradientTape are the caller's."""
    training = point.training("keras")  # the runner's flag (a native-defaults case may leave Keras's own)

    def call(i: int, layer: Any, args: list[Any]) -> Any:
        with _stage(point, i, "running Keras's"):
            return layers[i](keras_arguments(layer, args), training=training)

    return run_layers(point.layers, t, call)


def keras_arguments(layer: Layer, args: list[Any]) -> Any:
    """What a Keras layer is called with: its one input, or the list of them (Keras's merging layers)."""
    return args if layer.block.arity != 1 else args[0]


def keras_inputs(point: Point, index: int, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Channels-first arrays fed to layer `index`, each in Keras's layout at that input (its site's layouts)."""
    site = point.sites_for("keras")[index]
    layouts = site.in_layouts or (site.layout,)
    return [layout.to_keras(a) for layout, a in zip(layouts, arrays)]


def forward_torch(point: Point, modules: list[Any], x: np.ndarray, device: str) -> list[np.ndarray]:
    """Every layer's channels-first output."""
    with torch.no_grad():
        return [to_numpy(t) for t in torch_chain(point, modules, to_torch(x).to(torch_device(device)))]


def forward_keras(point: Point, layers: list[Any], x: np.ndarray, device: str) -> list[np.ndarray]:
    """Every layer's output, converted back to channels-first through its layout."""
    with keras_device(device):
        outs = keras_chain(point, layers, keras_tensor(point.sites[0].layout.to_keras(x)))
    return [layer.block.output_layout(site).to_channels_first(to_numpy(t))
            for layer, site, t in zip(point.layers, point.sites_for("keras"), outs)]

