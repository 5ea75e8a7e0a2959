"""`harness show` and `harness new`: a case as the PyTorch and Keras code that compute it, and a case skeleton.

`harness show FILE::CASE` teaches the mapping between the frameworks, as the tutorial this project grew from did by
hand: the layer constructors with every argument, the padding steps, the weight transfer with its layout
conversion, the NCHW/NHWC transposes. The code is generated from the objects the runner builds for the point
(`runner.build_torch` / `runner.build_keras`): PyTorch constructors are read off the modules (inspect.signature
and their attributes), Keras constructors from `get_config()`, and the weight transfer from the blocks'
`weight_copies`, the same data `transfer_weights` runs. So the printed code cannot drift from what runs, and
tests/test_show.py executes it for every shipped case and checks that it computes the runner's outputs.

`harness new BLOCK` prints a commented YAML skeleton of a case: every parameter of the block with its default,
and what the rest of a case may say, from the registry.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
import harness.core.layout
from harness.blocks import Block, get_block, parameter_path
from harness.cases import (
    DTYPES,
    FILLS,
    CaseEntry,
    InputSpec,
    Layer,
    Point,
    RefusedPoint,
    display_path,
    load_file,
    plan,
)
from harness.core.errors import CaseError, did_you_mean
from harness.core.frameworks import DEVICES, gpu_unavailable_reason, keras, torch
from harness.core.layout import CHANNELS_LAST, shape_to_channels_last
from harness.core.schema import Param
from harness.core.spatial import same_padding_1d
from harness.core.tolerance import ACCUMULATOR, EPS, OUTPUT_ULPS, ULP_FACTOR, default_tolerance
from harness.engine import build_keras, build_torch

GPU_SETTINGS = "import harness.core.frameworks  # the runner's settings: TF32 off in both frameworks, full float32 on GPU"
WIDTH = 110  # printed code wraps a call's arguments one per line beyond this

# Facts about framework APIs that the constructor arguments alone do not tell a reader.
TORCH_NOTES = {
    torch.nn.ZeroPad2d: "ZeroPad2d's padding is (left, right, top, bottom)",
    torch.nn.ConstantPad2d: "ConstantPad2d's padding is (left, right, top, bottom)",
    torch.nn.ReflectionPad2d: "ReflectionPad2d's padding is (left, right, top, bottom)",
    torch.nn.ReplicationPad2d: "ReplicationPad2d's padding is (left, right, top, bottom)",
    torch.nn.CircularPad2d: "CircularPad2d's padding is (left, right, top, bottom)",
}
KERAS_NOTES = {
    keras.layers.ZeroPadding2D: "ZeroPadding2D's padding is ((top, bottom), (left, right))",
    keras.layers.Cropping2D: "Cropping2D's cropping is ((top, bottom), (left, right))",
}
# get_config() keys that do not change what a layer computes once the PyTorch weights are copied in. (trainable is
# kept when false: a frozen BatchNormalization runs in inference mode, cases/known_differences.yaml.)
KERAS_NOISE = ("name", "autocast", "build_config")
KERAS_NOISE_IF_TRUE = ("trainable",)
KERAS_NOISE_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
KERAS_NOISE_IF_NONE = ("quantization_config", "lora_rank", "lora_alpha")


# --- source text ---------------------------------------------------------------------------------------------

@dataclass
class _Node:
    """A call or a bracketed literal, formatted on one line or, when long, one item per line."""

    head: str  # "torch.nn.Conv2d", or "" for a literal list/tuple
    items: list[Any] = field(default_factory=list)  # str, _Node, or (keyword, str | _Node)
    brackets: str = "()"
    single_tuple: bool = False  # a one-element tuple needs its trailing comma


def _format(node: Any, indent: int = 0) -> str:
    if isinstance(node, str):
        return node
    parts = [f"{item[0]}={_format(item[1], indent + 4)}" if isinstance(item, tuple) else _format(item, indent + 4)
             for item in node.items]
    opening, closing = node.brackets
    one = f"{node.head}{opening}{', '.join(parts)}{',' if node.single_tuple else ''}{closing}"
    if "\n" not in one and indent + len(one) <= WIDTH:
        return one
    pad = " " * (indent + 4)
    return f"{node.head}{opening}\n" + "".join(f"{pad}{p},\n" for p in parts) + " " * indent + closing


@dataclass
class _Context:
    """What the code being generated needs: imports, and notes on the classes it uses."""

    imports: dict[str, None] = field(default_factory=dict)  # ordered set of import lines
    layout_names: dict[str, None] = field(default_factory=dict)  # harness.core.layout functions the code calls
    notes: dict[str, None] = field(default_factory=dict)  # comment lines for the statement being built

    def take_notes(self) -> list[str]:
        notes, self.notes = list(self.notes), {}
        return notes


class ShowError(Exception):
    """Something the runner built that this module does not know how to print (a bug of harness.tools.show)."""


def _first_paragraph(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "").split("\n\n")[0]
    return " ".join(text.split())


def _py(value: Any, ctx: _Context) -> Any:
    """Python source (a str or a _Node) that evaluates to `value`."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return _str(value)
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, list):
        return _Node("", [_py(v, ctx) for v in value], "[]")
    if isinstance(value, tuple):
        return _Node("", [_py(v, ctx) for v in value], "()", single_tuple=len(value) == 1)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_format(_py(k, ctx))}: {_format(_py(v, ctx))}" for k, v in value.items()) + "}"
    if isinstance(value, functools.partial):
        ctx.imports["import functools"] = None
        return _Node("functools.partial", [_py(value.func, ctx), *(_py(a, ctx) for a in value.args),
                                           *((k, _py(v, ctx)) for k, v in value.keywords.items())])
    if callable(value):
        name = getattr(value, "__name__", "")
        if getattr(keras.activations, name, None) is value:
            return f"keras.activations.{name}"
        module = getattr(value, "__module__", "") or ""
        if module.startswith("harness.") and getattr(importlib.import_module(module), name, None) is value:
            ctx.imports[f"import {module}"] = None
            return f"{module}.{name}"
    raise ShowError(f"cannot print {value!r} ({type(value).__name__}) as Python source")


def _str(text: str) -> str:
    """A string literal, in double quotes where that needs no escaping."""
    return f'"{text}"' if text.isprintable() and '"' not in text and "\\" not in text else repr(text)


def _class_path(cls: type, ctx: _Context, public: Any, public_name: str) -> str:
    """`torch.nn.Conv2d` / `keras.layers.Conv2D` for a framework class, `harness.blocks.<family>.<Class>` (with a
    note on why it exists) for the harness's own."""
    if getattr(public, cls.__name__, None) is cls:
        return f"{public_name}.{cls.__name__}"
    module = importlib.import_module(cls.__module__)
    if cls.__module__.startswith("harness.") and getattr(module, cls.__qualname__, None) is cls:
        path = f"{cls.__module__}.{cls.__qualname__}"
        ctx.imports[f"import {cls.__module__}"] = None
        ctx.notes[f"{path}, the harness's own: {_first_paragraph(cls.__doc__)}"] = None
        return path
    raise ShowError(f"cannot print {cls.__module__}.{cls.__qualname__}: neither {public_name} nor the harness's own")


def _torch_node(module: Any, ctx: _Context) -> _Node:
    """The call that builds `module`: its constructor, every argument read off the module (device and dtype aside:
    the runner builds in float32 on the CPU and moves the modules with .to()), inside the block's initialiser where
    the block draws its own initial state (batch_norm2d: `draw_state(torch.nn.BatchNorm2d(...))`)."""
    if isinstance(module, torch.nn.Sequential):
        return _Node("torch.nn.Sequential", [_torch_node(m, ctx) for m in module])
    node = _torch_constructor(module, ctx)
    initialiser = module.__dict__.get("harness_initialiser")
    return node if initialiser is None else _Node(_py(initialiser, ctx), [node])


def _torch_constructor(module: Any, ctx: _Context) -> _Node:
    cls = type(module)
    head = _class_path(cls, ctx, torch.nn, "torch.nn")
    if cls in TORCH_NOTES:
        ctx.notes[TORCH_NOTES[cls]] = None
    items: list[Any] = []
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in ("device", "dtype"):
            continue
        if not hasattr(module, p.name):
            raise ShowError(f"{cls.__name__} keeps no attribute {p.name!r}: its constructor argument cannot be read")
        value = getattr(module, p.name)
        if isinstance(p.default, bool) and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None  # e.g. Conv2d(bias=True) keeps the bias tensor itself as .bias
        items.append((p.name, _torch_node(value, ctx) if isinstance(value, torch.nn.Module) else _py(value, ctx)))
    return _Node(head, items)


def _keras_config(layer: Any) -> dict[str, Any]:
    lists = getattr(type(layer), "layer_lists", ())
    if lists:  # a harness composite (harness/blocks/composite.py): its own config and its lists of layers as they are
        return {**keras.layers.Layer.get_config(layer), **{key: getattr(layer, key) for key in lists}}
    if isinstance(layer, keras.layers.Activation):  # the function itself, not its serialised name ("harness>...")
        return {**keras.layers.Layer.get_config(layer), "activation": layer.activation}
    return layer.get_config()


def _keras_node(layer: Any, ctx: _Context) -> _Node:
    """The constructor call that builds `layer`: every get_config() argument that changes what it computes."""
    if isinstance(layer, keras.Sequential):
        return _Node("keras.Sequential", [_Node("", [_keras_node(sub, ctx) for sub in layer.layers], "[]")])
    cls = type(layer)
    head = _class_path(cls, ctx, keras.layers, "keras.layers")
    if cls in KERAS_NOTES:
        ctx.notes[KERAS_NOTES[cls]] = None
    items: list[Any] = []
    for key, value in _keras_config(layer).items():
        if key in KERAS_NOISE or key.endswith(KERAS_NOISE_SUFFIXES) or key == "dtype" or (
                key in KERAS_NOISE_IF_NONE and value is None) or (key in KERAS_NOISE_IF_TRUE and value is True):
            continue
        if key in getattr(cls, "layer_lists", ()):  # a harness composite's lists of layers, as constructor calls
            items.append((key, _Node("", [_keras_node(sub, ctx) for sub in value], "[]")))
            continue
        items.append((key, _py(value, ctx)))
    items.append(("dtype", _str(layer.dtype_policy.name)))
    return _Node(head, items)


def _attr(base: str, path: str) -> str:
    """Source for a dotted WeightCopy path: `t0` + `1.weight` -> `t0[1].weight`."""
    return base + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in path.split("."))


def _yaml_flow(value: Any) -> str:
    """A value as YAML flow text: [3, 3], true, null, same."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Layer):  # a composite block's nested layer (a residual's `layers`), as the case writes it
        return _yaml_flow({"block": value.block.name, **({"params": value.params} if value.params else {})})
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value and value.strip() == value else repr(value)
    if isinstance(value, float) and "e" in repr(value) and "." not in repr(value):
        return repr(value).replace("e", ".0e")  # YAML 1.1 (PyYAML) reads 1e-05 as a string, 1.0e-05 as a float
    return repr(value)


# --- harness show --------------------------------------------------------------------------------------------

def _input_lines(spec: InputSpec) -> list[str]:
    """The input as InputSpec.make makes it, in NumPy."""
    shape, dtype = repr(tuple(spec.shape)), _str(spec.dtype)
    if spec.fill == "values":
        return [f"x = {_format(_Node('np.asarray', [_py(spec.values, _Context()), ('dtype', dtype)]))}"]
    if spec.fill == "file":
        return ["# the path is relative to the folder harness show ran in",
                f"x = np.load({_str(display_path(spec.path))}, allow_pickle=False).astype({dtype})"]
    if spec.fill == "arange":
        return [f"x = np.arange({math.prod(spec.shape)}, dtype=np.float64).reshape({shape}).astype({dtype})"]
    draw = "uniform(-1.0, 1.0, " if spec.fill == "uniform" else "standard_normal("
    return [f"rng = np.random.default_rng({spec.seed})", f"x = rng.{draw}{shape}).astype({dtype})"]


def _layer_label(point: Point, i: int) -> str:
    layer = point.layers[i]
    name = f"layers[{i}] {layer.block.name}" if point.sequential else layer.block.name
    return f"{name} {_yaml_flow(layer.params)}" if layer.params else name


def _layer_comment(point: Point, i: int, indent: int = 0) -> list[str]:
    """The comment above a layer's construction: the block and its parameters, and what `same` means."""
    lines = _comment(_layer_label(point, i), indent)
    if point.layers[i].params.get("padding") == "same":
        # A block whose `same` is not the forward convolution's (conv2d_transpose) says what its own means.
        meaning = getattr(point.layers[i].block, "same_padding_doc", None) or same_padding_1d.__doc__
        lines += _comment(f"padding same: {_first_paragraph(meaning)}", indent)
    return lines


def _torch_device(device: str) -> str:
    return "cuda" if device == "gpu" else "cpu"


def _keras_device(device: str) -> str:
    return ('"/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"' if device == "gpu"
            else '"/CPU:0"')


def _torch_build(point: Point, modules: list[Any], device: str, ctx: _Context) -> list[str]:
    """Seed, construct (the runner's order), load weight files, move to device and dtype, set the mode."""
    lines = [
        "# PyTorch draws the initial weights from its global generator: seeded with input.seed and the modules",
        "# built in the runner's order, they get the runner's weights. Built in PyTorch's default float32 on the",
        "# CPU (so the draws match), then moved to the device and dtype.",
        f"torch.manual_seed({point.input.seed})",
    ]
    for i, module in enumerate(modules):
        node = _torch_node(module, ctx)
        lines += [*_layer_comment(point, i), *(line for n in ctx.take_notes() for line in _comment(n))]
        lines.append(f"t{i} = {_format(node)}")
    for i, (layer, module) in enumerate(zip(point.layers, modules)):
        if layer.weights is None:
            continue
        params = layer.block.torch_parameters(module)
        lines.append(f"# layers[{i}].weights: PyTorch-layout arrays from a file, over the initial weights"
                     if point.sequential else "# weights: PyTorch-layout arrays from a file, over the initial weights")
        lines.append(f"with np.load({_str(display_path(layer.weights))}, allow_pickle=False) as npz, torch.no_grad():")
        for name, tensor in params.items():
            target = _attr(f"t{i}", parameter_path(module, tensor))
            lines.append(f"    {target}.copy_(torch.from_numpy(npz[{_str(name)}]))")
    names = ", ".join(f"t{i}" for i in range(len(modules)))
    lines += [
        f"for m in ({names}{',' if len(modules) == 1 else ''}):",
        f"    m.to(device={_str(_torch_device(device))}, dtype=torch.{point.input.dtype})",
        f"    m.train({point.training('torch')})  # mode: "
        + (point.mode if point.training("torch") == (point.mode == "train") else "not written: PyTorch's default")
        + (" (dropout is the identity)" if point.mode == "eval" and any(
            layer.block.stochastic for layer in point.layers) else ""),
    ]
    return lines


def _conversion(copy: Any, ctx: _Context) -> tuple[str, str]:
    """(comment, function name) of a WeightCopy's layout conversion, which must be a harness.core.layout function."""
    name = getattr(copy.convert, "__name__", "")
    if getattr(harness.core.layout, name, None) is not copy.convert:
        raise ShowError(f"the weight conversion {copy.convert!r} is not a harness.core.layout function")
    ctx.layout_names[name] = None
    return _first_paragraph(copy.convert.__doc__), name


def _keras_transfer(point: Point, i: int, module: Any, klayer: Any, ctx: _Context) -> list[str]:
    layer, site = point.layers[i], point.sites[i]
    lines = []
    for copy in layer.block.weight_copies(site, module, klayer):
        src = f"{_attr(f't{i}', copy.torch_path)}.detach().cpu(){'.float()' * (site.dtype == 'bfloat16')}.numpy()"
        dst = _attr(f"k{i}", copy.keras_path)
        if copy.convert is None:
            lines.append(f"{dst}.assign({src})  # the same layout in both")
            continue
        comment, name = _conversion(copy, ctx)
        extra = "".join(f", {_format(_py(a, ctx))}" for a in copy.args)
        lines += [f"# {comment}", f"{dst}.assign({name}({src}{extra}))"]
    return lines


def _stdlib(ctx: _Context, *extra: str) -> list[str]:
    return sorted({*extra, *(line for line in ctx.imports if not line.startswith("import harness."))})


def _harness_imports(ctx: _Context) -> list[str]:
    return sorted(line for line in ctx.imports if line.startswith("import harness."))


_BF16_IMPORT = ("import ml_dtypes  # NumPy's bfloat16 (the dtype name 'bfloat16' is known once it is imported)",)


def _torch_script(point: Point, modules: list[Any], device: str) -> str:
    ctx = _Context()
    build = _torch_build(point, modules, device, ctx)
    bf16 = point.input.dtype == "bfloat16"  # torch.from_numpy and Tensor.numpy() have no bfloat16: via float32
    tensor = "torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16)" if bf16 else "torch.from_numpy(x)"
    run = ["with torch.no_grad():", f"    t = {tensor}.to({_str(_torch_device(device))})"]
    run += [f"    t = t{i}(t)" for i in range(len(modules))]
    run.append("torch_out = t.detach().cpu()" + (".float().numpy().astype(ml_dtypes.bfloat16)" if bf16 else ".numpy()")
               + "  # channels-first")
    head = [*_stdlib(ctx, *_BF16_IMPORT * bf16), "import numpy as np", "import torch"]
    head += [GPU_SETTINGS] if device == "gpu" else []
    head += _harness_imports(ctx)
    body = ["", "# The input, channels-first, as the case's `input` makes it (harness.cases.loader.InputSpec.make)",
            *_input_lines(point.input), "", *build, "", *run]
    return "\n".join(head + body) + "\n"


def _keras_script(point: Point, modules: list[Any], klayers: list[Any], device: str) -> str:
    ctx = _Context()
    copies = any(layer.block.weight_copies(site, module, klayer)
                 for layer, site, module, klayer in zip(point.layers, point.sites, modules, klayers))
    build = _torch_build(point, modules, device, ctx) if copies else []
    kbuild = [f"with tf.device({_keras_device(device)}):"]
    for i, (site, module, klayer) in enumerate(zip(point.sites, modules, klayers)):
        node = _keras_node(klayer, ctx)
        kbuild += [*_layer_comment(point, i, 4), *(line for n in ctx.take_notes() for line in _comment(n, 4))]
        kbuild.append(f"    k{i} = {_format(node, 4)}")
        kbuild.append(f"    k{i}.build({tuple(shape_to_channels_last(site.in_shape))!r})  # channels-last input shape")
        kbuild += [f"    {line}" for line in _keras_transfer(point, i, module, klayer, ctx)]
    training = point.training("keras")  # the case's mode; None: Keras's default (defaults: native, mode not written)
    first, last = point.sites[0].layout, point.layers[-1].block.output_layout(point.sites[-1])
    if first == CHANNELS_LAST:
        ctx.layout_names["to_channels_last"] = None
        to_keras, note = "to_channels_last(x)", _first_paragraph(harness.core.layout.to_channels_last.__doc__)
    else:  # plan() starts every network channels-last; kept general in case that changes
        ctx.layout_names["Layout"] = None
        to_keras, note = f"{first!r}.to_keras(x)", "the input in the Keras layout of the first layer"
    if last == CHANNELS_LAST:
        ctx.layout_names["to_channels_first"] = None
        back = [f"# {_first_paragraph(harness.core.layout.to_channels_first.__doc__)}",
                "keras_out = to_channels_first(keras.ops.convert_to_numpy(y))"]
    else:
        ctx.layout_names["Layout"] = None
        back = ["# Keras flattened its channels-last tensor in (H, W, C) order: put the features back in PyTorch's",
                "# (C, H, W) order to compare",
                f"keras_out = {last!r}.to_channels_first(keras.ops.convert_to_numpy(y))"]
    run = [f"with tf.device({_keras_device(device)}):", f"    y = tf.constant({to_keras})  # {note}"]
    run += [f"    y = k{i}(y, training={training})" for i in range(len(klayers))]
    run += back
    head = [*_stdlib(ctx, "import os", *_BF16_IMPORT * (point.input.dtype == "bfloat16")), "",
            'os.environ["KERAS_BACKEND"] = "tensorflow"  # before keras is imported: the harness runs Keras on '
            "TensorFlow", "import keras", "import numpy as np", "import tensorflow as tf"]
    head += ["import torch"] if copies else []
    head += [GPU_SETTINGS] if device == "gpu" else []
    head += _harness_imports(ctx)
    head.append(f"from harness.core.layout import {', '.join(sorted(ctx.layout_names))}")
    if copies:
        build = ["# The PyTorch modules, built exactly as in the PyTorch script: their weights go into Keras.",
                 *build, ""]
    body = ["", "# The input, channels-first, as the case's `input` makes it (harness.cases.loader.InputSpec.make)",
            *_input_lines(point.input), "", *build,
            *_comment("The Keras layers, each built for its channels-last input shape"
                      + (", then given the PyTorch weights through harness.core.layout's conversions" if copies else "")),
            *kbuild, "",
            f"# Run channels-last, training={training} (mode: {point.mode})", *run]
    return "\n".join(head + body) + "\n"


def _built(point: Point, device: str) -> tuple[list[Any], list[Any]]:
    """The runner's own PyTorch modules and Keras layers of the point: what the printed code is read from.

    The structure does not depend on the device; without a GPU here, a `gpu` listing is read off CPU objects.
    """
    here = device if device == "cpu" or gpu_unavailable_reason() is None else "cpu"
    modules = build_torch(point, here)
    return modules, build_keras(point, modules, here)


def point_code(point: Point, device: str = "cpu") -> dict[str, str]:
    """{"torch": ..., "keras": ...}: two complete Python programs that compute what the runner computes for the
    point on `device`, leaving the channels-first outputs in `torch_out` and `keras_out` (NumPy).

    The Keras program builds the PyTorch modules first, the same way, because their weights are what the Keras
    layers get.
    """
    if device not in DEVICES:
        raise ValueError(f"device {device!r}; allowed: {', '.join(DEVICES)}")
    modules, klayers = _built(point, device)
    return {"torch": _torch_script(point, modules, device), "keras": _keras_script(point, modules, klayers, device)}


def _comment(text: str, indent: int = 0, lead: str = "") -> list[str]:
    """`text` as comment lines of at most WIDTH characters, continuation lines indented."""
    pad = " " * indent
    return textwrap.wrap(text, WIDTH, initial_indent=f"{pad}# {lead}", subsequent_indent=f"{pad}# {lead}  ",
                         break_on_hyphens=False)


def _header(point: Point, device: str) -> list[str]:
    spec = point.input
    where = f"{point.file}::{point.case}" + (f"[{point.sweep_id}]" if point.sweep_id else "")
    lines = [f"# {where} on {device} (test id {point.test_id(device)})"]
    if point.sequential:
        lines.append(f"# sequential of {len(point.layers)} layers (parameters with the defaults filled in):")
        lines += [line for i in range(len(point.layers)) for line in _comment(_layer_label(point, i), lead="  ")]
    else:
        lines += _comment(f"block: {_layer_label(point, 0)} (parameters with the defaults filled in)")
    source = {"values": "inline values", "file": f"from {display_path(spec.path) if spec.path else '?'}"}.get(
        spec.fill, f"fill {spec.fill}, seed {spec.seed}")
    lines.append(f"# input: shape {list(spec.shape)} (channels-first), {spec.dtype}, {source}; PyTorch's initial "
                 f"weights from seed {spec.seed}")
    lines.append(f"# mode: {point.mode}; output: shape {list(point.output_shape)} (channels-first)")
    return lines


def _footer(point: Point) -> list[str]:
    """How the runner compares the two outputs (harness.engine.run.compare_outputs and _tolerance_for)."""
    dtype = point.input.dtype
    if point.tolerance is not None:
        tol = f"atol={point.tolerance.atol:g}, rtol={point.tolerance.rtol:g} (set by the case)"
    else:
        k = max(layer.block.reduction_length(site) for layer, site in zip(point.layers, point.sites))
        rtol = default_tolerance(dtype, k).rtol
        acc, floor = ACCUMULATOR[dtype], OUTPUT_ULPS[dtype]
        rounding = f" + {floor:g} * eps({dtype}) (the outputs' rounding; sums run in {acc})" if floor else ""
        tol = (f"the default tolerance (harness.core.compare.default_tolerance): rtol = {ULP_FACTOR:g} * eps({acc}) * "
               f"sqrt(K){rounding} = {ULP_FACTOR:g} * {EPS[acc]:.3g} * sqrt({k})"
               f"{f' + {floor:g} * {EPS[dtype]:.3g}' if floor else ''} = {rtol:.3g}, K = {k} being the most terms "
               "one output element sums; atol = rtol * max(1, max |torch_out|), so that an element a long sum "
               "cancels to near zero is judged against the size of the terms")
    rule = ("shapes equal, NaN/Inf in the same places, and |keras_out - torch_out| <= atol + rtol * |torch_out| "
            f"elementwise, with {tol}.")
    texts = []
    if point.sampled:
        texts.append("Dropout in train mode draws different masks in the two frameworks, so the harness checks each "
                     f"framework's sample on its own ({point.layers[-1].block.sample_rule}).")
        if len(point.layers) > 1:
            texts.append(f"The outputs before the dropout are compared: {rule}")
    else:
        texts.append(f"The harness compares keras_out with torch_out: {rule}")
    texts.append(f"Each output's shape must also be the one the block semantics give, {list(point.output_shape)}.")
    meaning = {"backward": "backward compares the gradients of sum(output * R), R seeded, with respect to the input "
               "and every weight", "train_step": f"train_step the weights' updates after {point.steps} step(s) of "
               "each optimiser"}
    if beyond := [meaning[c] for c in point.checks if c in meaning]:
        texts.append(f"Not printed here (harness/gradients.py): {'; '.join(beyond)}.")
    if point.expect_shape is not None:
        texts.append(f"expect.shape: {list(point.expect_shape)}.")
    if point.expect_output is not None:
        texts.append("expect.output: torch_out and keras_out are each compared with the golden values, by the same "
                     "rule.")
    if point.expect_fails is not None:
        texts.append(f"expect.fails: {point.expect_fails}: a canary. The test passes only when every comparison with "
                     f"the expectation fails the {point.expect_fails} check (and keras_out still matches torch_out).")
    lines = ["# --- How the harness compares them ---"]
    for text in texts:
        lines += _comment(text)
    return lines


def show_text(point: Point, device: str = "cpu", parts: tuple[str, ...] = ("torch", "keras")) -> str:
    """What `harness show` prints for one point: a header (case, blocks, parameters with defaults, input, mode),
    the PyTorch and/or Keras program (`parts`), and how the harness compares their outputs."""
    code = point_code(point, device)
    lines = _header(point, device)
    for part in parts:
        lines += ["", f"# --- {'PyTorch' if part == 'torch' else 'Keras'} ---", code[part].rstrip("\n")]
    lines += ["", *_footer(point)]
    return "\n".join(lines) + "\n"


def _split_spec(spec: str) -> tuple[str, str, str | None]:
    if "::" not in spec:
        raise CaseError(f"{spec!r}: expected FILE::CASE or FILE::CASE[SWEEP-ID], e.g. "
                        "cases/conv2d.yaml::stride_padding_grid[strides=2-padding=same-input.shape=2x3x28x28]")
    file, case = spec.rsplit("::", 1)
    point_id = None
    if case.endswith("]") and "[" in case:
        case, point_id = case[:-1].split("[", 1)
    if not file or not case:
        raise CaseError(f"{spec!r}: expected FILE::CASE or FILE::CASE[SWEEP-ID]")
    return file, case, point_id


def _point_ids(point: Point | RefusedPoint) -> set[str]:
    """The ids a point answers to: its sweep id, and the test ids' bracket (sweep id and device)."""
    sid = point.sweep_id
    return {sid, *("-".join(filter(None, [sid, dev])) for dev in DEVICES)}


def find_points(spec: str) -> list[Point]:
    """The points `FILE::CASE` (all of the case's runnable points) or `FILE::CASE[SWEEP-ID]` (one) names.

    SWEEP-ID is as in test ids (`strides=2-padding=same`, a device suffix such as `-cpu` allowed). Raises a
    CaseError naming the file and the case, with close names, when either is not there or the case is invalid.
    """
    file, case, point_id = _split_spec(spec)
    path = Path(file)
    if not path.is_file():
        raise CaseError("no such case file" + (" (it is a folder)" if path.is_dir() else ""), file=file)
    entries, error = load_file(path)
    if error is not None:
        raise error
    by_name: dict[str, CaseEntry] = {entry.name: entry for entry in entries}
    display = entries[0].file if entries else display_path(path)
    if case not in by_name:
        names = list(by_name)
        raise CaseError(f"no case named {case!r}{did_you_mean(case, names)}; the file's cases: "
                        f"{', '.join(names) or 'none'}", file=display, case=case)
    entry = by_name[case]
    if entry.error is not None:
        raise entry.error
    if point_id is None:
        points = [p for p in entry.points if isinstance(p, Point)]
        if not points:
            refused = next(p for p in entry.points if isinstance(p, RefusedPoint))
            raise refused.error
        return points
    for p in entry.points:
        if point_id in _point_ids(p):
            if isinstance(p, RefusedPoint):
                raise p.error
            return [p]
    ids = [p.sweep_id for p in entry.points]
    listed = ", ".join(ids[:12]) + (f", ... ({len(ids)} in all)" if len(ids) > 12 else "")
    raise CaseError(f"no sweep point [{point_id}]{did_you_mean(point_id, ids)}; its points: {listed or '(none)'}",
                    file=display, case=case)


# --- harness new -----------------------------------------------------------------------------------------------

COLUMN = 34  # where a skeleton line's comment starts


def _example(p: Param) -> Any:
    """A valid value for a required parameter (any value does; this one gives a small, quick case)."""
    low = p.minimum if p.minimum is not None else 0
    if p.kind == "int":
        return max(int(low), 4)
    if p.kind == "pair":
        return max(int(low), 3)
    if p.kind == "float":
        return 0.5 if low <= 0.5 and (p.maximum is None or p.maximum >= 0.5) else float(low)
    if p.kind == "choice":
        return p.choices[0]
    if p.kind == "bool":
        return True
    if p.kind == "padding":
        return "valid"
    if p.kind == "axis":
        return 1
    raise AssertionError(p.kind)


def _alternative(p: Param) -> Any:
    """A second valid value of an optional parameter, for the sweep example."""
    d = p.default
    if p.kind == "bool":
        return not d
    if p.kind == "choice":
        return next(c for c in p.choices if c != d)
    if p.kind == "padding":
        return "same" if d != "same" else 1
    if p.kind == "pair":
        return 1 if d is None else d[0] + 1
    if p.kind == "pads":  # zero_padding2d's per-side padding
        return [[0, 1], [2, 0]]
    if p.kind == "int":
        return d + 1
    if p.kind == "float":
        return d * 2 if p.maximum is None or d * 2 <= p.maximum else (p.minimum or 0.0)
    if p.kind == "axis":
        return -1
    raise AssertionError(p.kind)


def _default_yaml(p: Param) -> str:
    """The default as YAML: the way `harness list` writes it where that means the same value (1 for [1, 1])."""
    text = p.describe_default()
    try:
        if p.normalise(yaml.safe_load(text)) == p.default:
            return text
    except (CaseError, yaml.YAMLError):
        pass
    return _yaml_flow(p.default)


def _line(indent: int, text: str, comment: str = "") -> list[str]:
    """A YAML line with its comment at COLUMN (wrapped below it when long)."""
    head = " " * indent + text
    if not comment:
        return [head]
    pad = max(COLUMN, len(head) + 2)
    room = max(WIDTH - pad - 2, 40)
    parts = textwrap.wrap(comment, room, break_on_hyphens=False)
    return [f"{head:<{pad}}# {parts[0]}", *(f"{'':<{pad}}#   {part}" for part in parts[1:])]


def _input_shape(block: Block) -> list[int]:
    rank = block.ranks[0] if block.ranks else 4
    return [2, 3, *([8] * (rank - 2))]


def _block_skeleton(block: Block) -> list[str]:
    params = {p.name: _example(p) if p.required else p.default for p in block.params}
    shape = _input_shape(block)
    site_params = {p.name: p.normalise(v) for p, v in zip(block.params, params.values())}
    out = None
    with contextlib.suppress(CaseError):  # the example always plans; the expect.shape hint is only left out if not
        _, out = plan([Layer(block, site_params)], tuple(shape), "float32", "eval", 0, False)
    lines = _line(0, f"- name: {block.name}_case", "unique in its file; part of the test id")
    lines += _line(2, f"block: {block.name}", block.doc)
    if block.params:
        lines += _line(2, "params:", "one left out takes the default shown, passed explicitly to both frameworks")
        for p in block.params:
            if p.required:
                value, note = _yaml_flow(_example(p)), f"REQUIRED (an example value); {p.doc}"
            else:
                value, note = _default_yaml(p), f"default; {p.doc}"
            lines += _line(4, f"{p.name}: {value}", f"{note}. Allowed: {p.allowed()}")
    else:
        lines += _line(2, "# params: none", f"{block.name} takes no parameters")
    lines += _input_skeleton(block, shape)
    lines += _line(2, "mode: eval", "eval | train: how stochastic blocks (dropout) run"
                   + ("; train compares each framework's sample statistically" if block.stochastic else ""))
    lines += _optional_skeleton(block, out)
    alt = next((p for p in block.params if not p.required), None)
    lines += _line(2, "# sweep:", "each combination of these lists is its own test")
    if alt is not None:
        values = [_default_yaml(alt), _yaml_flow(_alternative(alt))]
        lines += _line(2, f"#   {alt.name}: [{', '.join(values)}]")
    lines += _line(2, "#   input.dtype: [float32, float64]")
    return lines


def _input_skeleton(block: Block, shape: list[int], who: str | None = None) -> list[str]:
    ranks = "rank " + " or ".join(str(r) for r in block.ranks) if block.ranks else "any rank >= 2"
    return [*_line(2, "input:"),
            *_line(4, f"shape: {_yaml_flow(shape)}", f"channels-first (N, C, ...); {who or block.name} takes {ranks}"),
            *_line(4, "dtype: float32", " | ".join(DTYPES)),
            *_line(4, "fill: normal", f"{' | '.join(FILLS)} (uniform: [-1, 1); values: an inline list `values`; "
                   "file: a .npy `path`)"),
            *_line(4, "seed: 0", "the fill, PyTorch's initial weights and dropout's seed derive from it")]


def _optional_skeleton(block: Block, out: tuple[int, ...] | None) -> list[str]:
    lines = _line(2, "# check: [forward, backward, train_step]",
                  "default: [forward]; backward: gradients of sum(output * R); train_step: optimiser updates "
                  "(with steps: N, optimizer: [{name: sgd, ...}, {name: adam, ...}]; README)")
    lines += _line(2, "# tolerance: {atol: 1.0e-5, rtol: 1.0e-5}",
                  f"default: rtol = {ULP_FACTOR:g} * eps * sqrt(K), K the terms one output sums; atol = rtol * "
                  "max(1, max |torch output|)")
    lines += _line(2, "# expect:", "optional checks beyond torch vs keras")
    if out is not None:
        lines += _line(2, f"#   shape: {_yaml_flow(list(out))}", "channels-first; what the input above gives")
    lines += _line(2, "#   output: [[...]]", "golden values, channels-first, inline or a .npy path")
    if block.weight_names:
        lines += _line(2, "# weights: {path: weights.npz}",
                       f"PyTorch-layout arrays named {', '.join(block.weight_names)}; default: PyTorch's init")
    lines += _line(2, f"# devices: [{', '.join(DEVICES)}]", "default: every device present")
    return lines


def _sequential_skeleton() -> list[str]:
    lines = _line(0, "- name: sequential_case", "unique in its file; part of the test id")
    lines += _line(2, "block: sequential", "the layers applied in order")
    lines += _line(2, "layers:", "each {block, params, weights}; a block's parameters: harness new BLOCK")
    lines += _line(4, "- {block: conv2d, params: {filters: 4, kernel_size: 3}}")
    lines += _line(4, "- {block: relu}")
    lines += _line(4, "- {block: max_pool2d, params: {pool_size: 2}}")
    lines += _line(4, "- {block: flatten}")
    lines += _line(4, "- {block: dense, params: {units: 10}}")
    lines += _input_skeleton(get_block("conv2d"), [2, 3, 8, 8], "the first layer, conv2d,")
    lines += _line(2, "mode: eval", "eval | train: how stochastic blocks (dropout) run; dropout in train mode "
                   "must be the last layer")
    lines += _line(2, "# tolerance: {atol: 1.0e-5, rtol: 1.0e-5}",
                   f"default: rtol = {ULP_FACTOR:g} * eps * sqrt(K), K the most terms one output of any layer sums")
    lines += _line(2, "# expect: {shape: [2, 10]}", "optional checks beyond torch vs keras")
    lines += _line(2, "# sweep:", "each combination of these lists is its own test")
    lines += _line(2, "#   layers.0.filters: [4, 8]", "layers.<index>.<param>")
    lines += _line(2, "#   input.dtype: [float32, float64]")
    return lines


def _residual_skeleton(block: Block) -> list[str]:
    """A residual is a layer of a sequential (harness/blocks/composite.py): a ResNet-style stage of two blocks."""
    lines = _line(0, "- name: residual_case", "unique in its file; part of the test id")
    lines += _line(2, "block: sequential", "a residual is a layer of a sequential")
    lines += _line(2, "layers:", "each {block, params}; a block's parameters: harness new BLOCK")
    lines += _line(4, "- block: residual", block.doc)
    lines += _line(6, "layers:", "REQUIRED: the body, a non-empty list of layers applied in order")
    lines += _line(8, "- {block: conv2d, params: {filters: 8, kernel_size: 3, strides: 2, padding: 1}}")
    lines += _line(8, "- {block: relu}")
    lines += _line(8, "- {block: conv2d, params: {filters: 8, kernel_size: 3, padding: 1}}")
    lines += _line(6, "shortcut:", "default: none, the identity; here a projection to the body's output shape")
    lines += _line(8, "- {block: conv2d, params: {filters: 8, kernel_size: 1, strides: 2}}")
    lines += _line(4, "- {block: relu}", "after the sum, as in ResNet")
    lines += _line(4, "- block: residual", "the identity shortcut: the body keeps the shape")
    lines += _line(6, "layers:")
    lines += _line(8, "- {block: conv2d, params: {filters: 8, kernel_size: 3, padding: same}}")
    lines += _line(4, "- {block: relu}")
    lines += _input_skeleton(block, [2, 4, 8, 8])
    lines += _line(2, "mode: eval", "eval | train: how stochastic blocks run; dropout in train mode cannot be inside a "
                   "residual")
    lines += _line(2, "# tolerance: {atol: 1.0e-5, rtol: 1.0e-5}",
                   f"default: rtol = {ULP_FACTOR:g} * eps * sqrt(K), K the most terms one output of any layer sums")
    lines += _line(2, "# expect: {shape: [2, 8, 4, 4]}", "optional checks beyond torch vs keras")
    lines += _line(2, "# sweep:", "each combination of these lists is its own test")
    lines += _line(2, "#   input.shape: [[2, 4, 8, 8], [2, 4, 7, 9]]")
    lines += _line(2, "#   input.dtype: [float32, float64]")
    return lines


def case_skeleton(block_name: str) -> str:
    """A commented YAML case for `block_name` (`harness new`): every parameter with its default (a required one
    with an example value, marked REQUIRED), the input, mode, and the optional keys commented out. As printed it
    loads and passes; the format is README.md's "Writing a case".
    """
    if block_name == "sequential":
        lines = _sequential_skeleton()
    elif block_name == "residual":
        lines = _residual_skeleton(get_block(block_name))
    else:
        block = get_block(block_name)  # a CaseError with close names for an unknown block
        lines = _block_skeleton(block)
    intro = _comment(f"A case skeleton from `harness new {block_name}`: save it in a .yaml file (pytest collects "
                     "those under cases/), change what you need, and run it with `harness run FILE`. The format: "
                     "README.md, \"Writing a case\"; every block and parameter: `harness list`.")
    return "\n".join(intro + lines) + "\n"
