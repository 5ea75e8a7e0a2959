"""Python source text from the objects the runner builds: what `xfw-harness show` and `xfw-harness new` print with.

A value becomes the source that evaluates to it (`source_of`), a PyTorch module or a Keras layer the constructor
call that builds it (`torch_node`, `keras_node`): PyTorch constructors are read off the modules (inspect.signature
and their attributes), Keras constructors from `get_config()`, so the printed code cannot drift from what runs.
Calls are `Node`s, formatted on one line or, beyond WIDTH, one argument per line (`format_source`). Also: a case
value as YAML flow text (`yaml_flow`) and text as wrapped comment lines (`comment_lines`).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.blocks import Layer
from xfw_harness.core.frameworks import keras, torch

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


@dataclass
class Node:
    """A call or a bracketed literal, formatted on one line or, when long, one item per line."""

    head: str  # "torch.nn.Conv2d", or "" for a literal list/tuple
    items: list[Any] = field(default_factory=list)  # str, Node, or (keyword, str | Node)
    brackets: str = "()"
    single_tuple: bool = False  # a one-element tuple needs its trailing comma


def format_source(node: Any, indent: int = 0) -> str:
    """The source text of a Node (or a str, as it is) starting at column `indent`: on one line where it fits WIDTH,
    else one item per line."""
    if isinstance(node, str):
        return node
    parts = [f"{item[0]}={format_source(item[1], indent + 4)}" if isinstance(item, tuple)
             else format_source(item, indent + 4) for item in node.items]
    opening, closing = node.brackets
    one = f"{node.head}{opening}{', '.join(parts)}{',' if node.single_tuple else ''}{closing}"
    if "\n" not in one and indent + len(one) <= WIDTH:
        return one
    pad = " " * (indent + 4)
    return f"{node.head}{opening}\n" + "".join(f"{pad}{p},\n" for p in parts) + " " * indent + closing


@dataclass
class SourceContext:
    """What the code being generated needs: imports, and notes on the classes it uses."""

    imports: dict[str, None] = field(default_factory=dict)  # ordered set of import lines
    layout_names: dict[str, None] = field(default_factory=dict)  # xfw_harness.core.layout functions the code calls
    notes: dict[str, None] = field(default_factory=dict)  # comment lines for the statement being built

    def take_notes(self) -> list[str]:
        notes, self.notes = list(self.notes), {}
        return notes


class ShowError(Exception):
    """Something the runner built that this module does not know how to print (a bug of xfw_harness.tools.show)."""


def first_paragraph(doc: str | None) -> str:
    """A docstring's first paragraph on one line."""
    text = inspect.cleandoc(doc or "").split("\n\n")[0]
    return " ".join(text.split())


def source_of(value: Any, ctx: SourceContext) -> Any:
    """Python source (a str or a Node) that evaluates to `value`."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return string_literal(value)
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, list):
        return Node("", [source_of(v, ctx) for v in value], "[]")
    if isinstance(value, tuple):
        return Node("", [source_of(v, ctx) for v in value], "()", single_tuple=len(value) == 1)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{format_source(source_of(k, ctx))}: {format_source(source_of(v, ctx))}"
                               for k, v in value.items()) + "}"
    if isinstance(value, functools.partial):
        ctx.imports["import functools"] = None
        return Node("functools.partial", [source_of(value.func, ctx), *(source_of(a, ctx) for a in value.args),
                                          *((k, source_of(v, ctx)) for k, v in value.keywords.items())])
    if callable(value):
        name = getattr(value, "__name__", "")
        if getattr(keras.activations, name, None) is value:
            return f"keras.activations.{name}"
        module = getattr(value, "__module__", "") or ""
        if module.startswith("xfw_harness.") and getattr(importlib.import_module(module), name, None) is value:
            ctx.imports[f"import {module}"] = None
            return f"{module}.{name}"
    raise ShowError(f"cannot print {value!r} ({type(value).__name__}) as Python source")


def string_literal(text: str) -> str:
    """A string literal, in double quotes where that needs no escaping."""
    return f'"{text}"' if text.isprintable() and '"' not in text and "\\" not in text else repr(text)


def _class_path(cls: type, ctx: SourceContext, public: Any, public_name: str) -> str:
    """`torch.nn.Conv2d` / `keras.layers.Conv2D` for a framework class, `xfw_harness.blocks.<family>.<Class>` (with a
    note on why it exists) for the harness's own."""
    if getattr(public, cls.__name__, None) is cls:
        return f"{public_name}.{cls.__name__}"
    module = importlib.import_module(cls.__module__)
    if cls.__module__.startswith("xfw_harness.") and getattr(module, cls.__qualname__, None) is cls:
        path = f"{cls.__module__}.{cls.__qualname__}"
        ctx.imports[f"import {cls.__module__}"] = None
        ctx.notes[f"{path}, the harness's own: {first_paragraph(cls.__doc__)}"] = None
        return path
    raise ShowError(f"cannot print {cls.__module__}.{cls.__qualname__}: neither {public_name} nor the harness's own")


def torch_node(module: Any, ctx: SourceContext) -> Node:
    """The call that builds `module`: its constructor, every argument read off the module (device and dtype aside:
    the runner builds in float32 on the CPU and moves the modules with .to()), inside the block's initialiser where
    the block draws its own initial state (batch_norm2d: `draw_state(torch.nn.BatchNorm2d(...))`)."""
    if isinstance(module, torch.nn.Sequential):
        return Node("torch.nn.Sequential", [torch_node(m, ctx) for m in module])
    node = _torch_constructor(module, ctx)
    initialiser = module.__dict__.get("harness_initialiser")
    return node if initialiser is None else Node(source_of(initialiser, ctx), [node])


def _torch_constructor(module: Any, ctx: SourceContext) -> Node:
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
        items.append((p.name, torch_node(value, ctx) if isinstance(value, torch.nn.Module) else source_of(value, ctx)))
    return Node(head, items)


def _keras_config(layer: Any) -> dict[str, Any]:
    lists = getattr(type(layer), "layer_lists", ())
    # a harness composite (xfw_harness/blocks/composite.py): its own config and its lists of layers as they are
    if lists:
        return {**keras.layers.Layer.get_config(layer), **{key: getattr(layer, key) for key in lists}}
    if isinstance(layer, keras.layers.Activation):  # the function itself, not its serialised name ("harness>...")
        return {**keras.layers.Layer.get_config(layer), "activation": layer.activation}
    return layer.get_config()


def keras_node(layer: Any, ctx: SourceContext) -> Node:
    """The constructor call that builds `layer`: every get_config() argument that changes what it computes."""
    if isinstance(layer, keras.Sequential):
        return Node("keras.Sequential", [Node("", [keras_node(sub, ctx) for sub in layer.layers], "[]")])
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
            items.append((key, Node("", [keras_node(sub, ctx) for sub in value], "[]")))
            continue
        items.append((key, source_of(value, ctx)))
    items.append(("dtype", string_literal(layer.dtype_policy.name)))
    return Node(head, items)


def attribute_source(base: str, path: str) -> str:
    """Source for a dotted WeightCopy path: `t0` + `1.weight` -> `t0[1].weight`."""
    return base + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in path.split("."))


def yaml_flow(value: Any) -> str:
    """A value as YAML flow text: [3, 3], true, null, same."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Layer):  # a composite block's nested layer (a residual's `layers`), as the case writes it
        return yaml_flow({"block": value.block.name, **({"params": value.params} if value.params else {})})
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value and value.strip() == value else repr(value)
    if isinstance(value, float) and "e" in repr(value) and "." not in repr(value):
        return repr(value).replace("e", ".0e")  # YAML 1.1 (PyYAML) reads 1e-05 as a string, 1.0e-05 as a float
    return repr(value)



def comment_lines(text: str, indent: int = 0, lead: str = "") -> list[str]:
    """`text` as comment lines of at most WIDTH characters, continuation lines indented."""
    pad = " " * indent
    return textwrap.wrap(text, WIDTH, initial_indent=f"{pad}# {lead}", subsequent_indent=f"{pad}# {lead}  ",
                         break_on_hyphens=False)


