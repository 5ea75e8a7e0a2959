"""Blocks of several inputs, the joins of a graph: `add` (a residual connection), `multiply` (a squeeze-and-excite
gate) and `concatenate` (DenseNet's and Inception's channel joins), as Keras's merging layers (Add, Multiply,
Concatenate) against PyTorch's `+`, `*` and `torch.cat`.

They are nodes of a `graph` case (xfw_harness/blocks/graph.py), each naming its inputs. Their PyTorch modules take the
inputs as arguments; their Keras layers take their list. What must hold for an exact translation:
- every input is laid out alike in Keras (a flattened tensor in Keras's own (H, W, C) feature order cannot meet a
  channels-last one elementwise: `xfw_harness.core.layout.Layout`);
- `add` and `multiply` broadcast as PyTorch does (an SE gate (N, C, 1, 1) times (N, C, H, W)), which moving the
  channels axis to the end preserves only where the inputs have the same rank;
- `concatenate` joins along a channels-first `axis`, which the layout maps to Keras's (channels, axis 1, is Keras's
  last axis in NHWC); a flattened tensor's features are refused (each input would need its own permutation).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks.base import Block, SkeletonWriter
from xfw_harness.blocks.registry import get_block, register
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, lazy_module
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
merging_layers = lazy_module("xfw_harness.blocks.merging_layers")

# Two inputs of the benchmark's size: the block's input and a copy of it (benchmarks build them as a graph).
_GRAPH_BENCHMARK = {"input": {"shape": [8, 32, 32, 32]}}


class _Merge(Block):
    """What the merging blocks share: several inputs laid out alike in Keras."""

    family = "merging"
    arity: ClassVar[int | None] = None
    any_layout = True  # elementwise, or along an axis the layout maps (all inputs laid out alike)
    benchmark: ClassVar[dict[str, Any]] = _GRAPH_BENCHMARK

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        layouts = set(site.in_layouts)
        if len(layouts) > 1:
            raise Refusal(f"{self.name}'s inputs are laid out differently in Keras ("
                          + ", ".join(layout.describe() for layout in site.in_layouts)
                          + "): a flattened tensor in Keras's (H, W, C) feature order cannot be joined elementwise "
                          "with one in another order", field="inputs")

    # No parameters a hand port could leave out: the layers a port by hand writes are the harness's own.
    def native_torch_module(self, site: Site) -> Any:
        return self.torch_module(site)

    def native_keras_layer(self, site: Site) -> Any:
        return self.keras_layer(site)

    def skeleton(self, writer: SkeletonWriter) -> list[str]:
        """A graph whose two branches of the input are joined by this block (a join is a node of a graph)."""
        line = writer.line
        lines = line(0, f"- name: {self.name}_case", "unique in its file; part of the test id")
        lines += line(2, "block: graph", f"`{self.name}` is a node of a graph, joining the nodes it names")
        lines += line(2, "nodes:", "each {name, block, params, inputs}; inputs default: the node before")
        lines += line(4, "- {name: a, block: conv2d, params: {filters: 4, kernel_size: 3, padding: 1}, "
                         "inputs: [input]}")
        lines += line(4, "- {name: b, block: conv2d, params: {filters: 4, kernel_size: 1}, inputs: [input]}")
        lines += line(4, "- name: join", "the output: the last node")
        lines += line(6, f"block: {self.name}", self.doc)
        lines += line(6, "inputs: [a, b]", "two or more")
        if self.params:
            lines += line(6, "params:")
            for p in self.params:
                lines += line(8, f"{p.name}: {p.default}", f"{p.doc}; allowed: {p.allowed()}")
        lines += writer.input_lines(get_block("conv2d"), [2, 3, 8, 8], "the first node, conv2d,")
        lines += writer.tolerance_line()
        lines += line(2, "# expect: {reference: true}", "optional checks beyond torch vs keras")
        lines += line(2, "# sweep:", "each combination of these lists is its own test")
        lines += line(2, "#   input.shape: [[2, 3, 8, 8], [1, 2, 5, 7]]")
        lines += line(2, "#   input.dtype: [float32, float64]")
        return lines

    def benchmark_case(self) -> dict[str, Any]:
        # A join is a node of a graph, never a case by itself: two branches of the input joined.
        return {"name": self.name, "block": "graph", "input": _GRAPH_BENCHMARK["input"],
                "nodes": [{"name": "a", "block": "relu", "inputs": ["input"]},
                          {"name": "b", "block": "sigmoid", "inputs": ["input"]},
                          {"name": "join", "block": self.name, "inputs": ["a", "b"]}]}


class _Elementwise(_Merge):
    """add and multiply: PyTorch's broadcasting over inputs of one rank."""

    def output_shape(self, site: Site) -> tuple[int, ...]:
        ranks = {len(shape) for shape in site.in_shapes}
        if len(ranks) > 1:
            shapes = ", ".join(str(list(s)) for s in site.in_shapes)
            raise Refusal(f"{self.name}'s inputs have different ranks ({shapes}): PyTorch broadcasts them from "
                          "the last axis, which is not the last axis in Keras's channels-last layout", field="inputs")
        try:
            return tuple(int(d) for d in np.broadcast_shapes(*site.in_shapes))
        except ValueError:
            raise Refusal(f"{self.name}'s inputs {', '.join(str(list(s)) for s in site.in_shapes)} do not broadcast "
                          "together", field="inputs") from None


@register
class Add(_Elementwise):
    name = "add"
    doc = "The sum of its inputs, broadcast as PyTorch's `+` (a residual connection, `out += identity`)."
    torch_functions = ("add",)

    def torch_module(self, site: Site) -> merging_layers.TorchAdd:
        return merging_layers.TorchAdd()

    def keras_layer(self, site: Site) -> Any:
        return keras.layers.Add(dtype=site.dtype)

    def reduction_length(self, site: Site) -> int:
        return len(site.in_shapes)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> np.ndarray:
        return functools.reduce(np.add, x)

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        _tensors_only(self.name, args, kwargs, allowed={"alpha": 1})
        return {}


@register
class Multiply(_Elementwise):
    name = "multiply"
    doc = "The product of its inputs, broadcast as PyTorch's `*` (a squeeze-and-excite gate, (N, C, 1, 1) * x)."
    torch_functions = ("mul",)

    def torch_module(self, site: Site) -> merging_layers.TorchMultiply:
        return merging_layers.TorchMultiply()

    def keras_layer(self, site: Site) -> Any:
        return keras.layers.Multiply(dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> np.ndarray:
        return functools.reduce(np.multiply, x)

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        _tensors_only(self.name, args, kwargs, allowed={})
        return {}


@register
class Concatenate(_Merge):
    name = "concatenate"
    doc = "Its inputs joined along a channels-first `axis` (torch.cat); Keras joins along the axis the layout gives."
    params = (Param("axis", "axis", 1, doc="the channels-first axis joined along (1: channels; negative counts from "
                    "the end)"),)
    torch_functions = ("cat",)

    def _axis(self, site: Site) -> int:
        rank = len(site.in_shape)
        axis = site.params["axis"]
        if not -rank <= axis < rank:
            raise Refusal(f"axis {axis} is outside a rank-{rank} input", field="params.axis")
        axis %= rank
        if site.layout.flattened_from is not None:
            raise Refusal("the inputs are flattened, their features in Keras's (H, W, C) order: joined, the features "
                          "of each would need their own permutation; concatenate before the flatten",
                          field="params.axis")
        return axis

    def output_shape(self, site: Site) -> tuple[int, ...]:
        axis = self._axis(site)
        first = site.in_shapes[0]
        for shape in site.in_shapes[1:]:
            if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(shape, first)) if i != axis):
                raise Refusal(f"concatenate along axis {axis} needs inputs equal on every other axis, got "
                              f"{', '.join(str(list(s)) for s in site.in_shapes)}", field="inputs")
        return (*first[:axis], sum(s[axis] for s in site.in_shapes), *first[axis + 1:])

    def torch_module(self, site: Site) -> merging_layers.TorchConcatenate:
        return merging_layers.TorchConcatenate(self._axis(site))

    def keras_layer(self, site: Site) -> Any:
        return keras.layers.Concatenate(axis=site.layout.keras_axis(self._axis(site), site.rank), dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> np.ndarray:
        return np.concatenate(x, axis=self._axis(site))

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if not isinstance(dim, int):
            raise Refusal(f"torch.cat's dim is {dim!r}, not an integer", field="cat.dim")
        return {"axis": dim % len(in_shapes[0])}


def _tensors_only(name: str, args: tuple, kwargs: dict[str, Any], allowed: dict[str, Any]) -> None:
    """Refuse a call with a constant operand (x + 3) or a keyword the block does not take at another value."""
    constants = [a for a in args if a is not None]
    if constants:
        what = (f"a parameter of shape {list(constants[0].shape)}" if isinstance(constants[0], np.ndarray)
                else repr(constants[0]))
        raise Refusal(f"{name} with a constant operand ({what}) has no block: only tensors are joined",
                      field=f"{name}.other")
    for key, value in kwargs.items():
        if key not in allowed or value != allowed[key]:
            raise Refusal(f"{name}'s {key}={value!r} has no translation", field=f"{name}.{key}")
