"""`graph`: a whole network as a directed acyclic graph of named nodes, the case form of a real model (a ResNet's
residual adds, DenseNet's concatenations, a squeeze-and-excite gate, a module called twice).

    - name: small_resnet
      block: graph
      nodes:
        - {name: stem, block: conv2d, params: {filters: 8, kernel_size: 3, padding: 1}}   # inputs: [input]
        - {name: stem_relu, block: relu}                                                  # the node before
        - {name: conv1, block: conv2d, params: {filters: 8, kernel_size: 3, padding: 1}}
        - {name: join, block: add, inputs: [conv1, stem_relu]}
        - {name: out, block: relu}
      input: {shape: [2, 3, 8, 8]}

Each node is a layer `{block, params, weights}` with a `name` and `inputs`: the names of nodes written before it,
or `input` (the network's input); by default the node before it (the input for the first), so a chain needs no
`inputs`. A join (`add`, `multiply`, `concatenate`: xfw_harness/blocks/merging.py) names several. The last node is the
output; every other node must feed a later one. A `sequential` is the graph whose every node takes the one before.

Like `sequential`, a graph `holds_network`: its nodes are the point's layers, which the engine builds, runs and
compares one by one in the order written (a topological order: each node after its inputs), each node fed the same
inputs in both frameworks to locate the first divergent node, its weights read from its own file. Keras computes it
channels-last throughout: each tensor's `xfw_harness.core.layout.Layout` is tracked through the graph, so that a
concatenation along channels is Keras's last axis and a flatten's (H, W, C) order reaches the dense after it.

Its own builders (`TorchGraph`, and `functional_model`: a Keras functional model of standard Keras layers) are the
graph used as one model: `xfw-harness port` saves the latter as the .keras file of a ported model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from xfw_harness.blocks.base import Block, SkeletonWriter
from xfw_harness.blocks.composite import _Composite
from xfw_harness.blocks.planning import Layer, run_layers
from xfw_harness.blocks.registry import get_block, register
from xfw_harness.blocks.site import Site, WeightCopy
from xfw_harness.core.layout import Layout, shape_to_channels_last
from xfw_harness.core.lazy import keras, lazy_module

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
graph_layers = lazy_module("xfw_harness.blocks.graph_layers")


def functional_model(layers: list[Layer], sites: list[Site], keras_layers: list[Any], name: str | None = None) -> Any:
    """The nodes' Keras layers (built ones keep their weights) wired into a keras.Model behind a channels-last
    keras.Input: the graph as a Keras functional model of the nodes' own (standard, where one exists) layers."""
    inputs = keras.Input(shape=shape_to_channels_last(sites[0].in_shape)[1:], dtype=sites[0].dtype)

    def call(i: int, layer: Layer, args: list[Any]) -> Any:
        return keras_layers[i](args if layer.block.arity != 1 else args[0])

    outputs = run_layers(layers, inputs, call)[-1]
    model = keras.Model(inputs, outputs, name=name)
    model.node_layers = list(keras_layers)  # WeightCopy paths `node_layers.<index>.kernel` resolve in it
    return model


@register
class Graph(_Composite):
    name = "graph"
    family = "networks"
    doc = ("A directed acyclic graph of named `nodes`, each {name, block, params, weights, inputs}: `inputs` names "
           "earlier nodes or `input` (default: the node before); the last node is the output.")
    nested: ClassVar[dict[str, bool]] = {"nodes": True}
    holds_network = True
    graph = True
    benchmark: ClassVar[dict[str, Any]] = {
        "nodes": [{"name": "stem", "block": "conv2d", "params": {"filters": 32, "kernel_size": 3, "padding": 1}},
                  {"name": "stem_relu", "block": "relu"},
                  {"name": "conv", "block": "conv2d", "params": {"filters": 32, "kernel_size": 3, "padding": 1}},
                  {"name": "join", "block": "add", "inputs": ["conv", "stem_relu"]},
                  {"name": "pool", "block": "global_avg_pool2d"},
                  {"name": "head", "block": "dense", "params": {"units": 10}}],
        "input": {"shape": [8, 3, 32, 32]}}

    def output_shape(self, site: Site) -> tuple[int, ...]:
        return self.branches(site)["nodes"].shape

    def output_layout(self, site: Site) -> Layout:
        return self.branches(site)["nodes"].layout

    def reduction_length(self, site: Site) -> int:
        return max((block.reduction_length(s) for block, s in self.inner_sites(site)), default=1)

    def _torch(self, site: Site, build: Callable[[Block, Site], Any]) -> graph_layers.TorchGraph:
        branch = self.branches(site)["nodes"]
        module = graph_layers.TorchGraph(self._built(branch, build), branch.layers)
        module.blocks = [layer.block for layer in branch.layers]  # torch_parameters: no site there
        return module

    def _keras(self, site: Site, build: Callable[[Block, Site], Any]) -> Any:
        branch = self.branches(site)["nodes"]
        return functional_model(branch.layers, branch.sites, self._built(branch, build))


    def torch_parameters(self, module: graph_layers.TorchGraph) -> dict[str, Any]:
        """The nodes' weights, named `nodes.<index>.<name>`."""
        return self._nested_parameters("nodes", module.blocks, module.nodes)

    def weight_copies(self, site: Site, module: graph_layers.TorchGraph, layer: Any) -> list[WeightCopy]:
        return self._prefixed_copies(self.branches(site)["nodes"], module.nodes, layer.node_layers, "nodes.",
                                     "node_layers.")

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        branch = self.branches(site)["nodes"]

        def call(i: int, layer: Layer, args: list[Any]) -> Any:
            prefix = f"nodes.{i}."
            own = {name.removeprefix(prefix): w for name, w in weights.items() if name.startswith(prefix)}
            return layer.block.reference(branch.sites[i], args if layer.block.arity != 1 else args[0], own)

        return run_layers(branch.layers, x, call)[-1]

    def skeleton(self, writer: SkeletonWriter) -> list[str]:
        line = writer.line
        lines = line(0, "- name: graph_case", "unique in its file; part of the test id")
        lines += line(2, "block: graph", "named nodes, each after its inputs; the last is the output")
        lines += line(2, "nodes:", "each {name, block, params, weights, inputs}; inputs default: the node before")
        lines += line(4, "- {name: stem, block: conv2d, params: {filters: 4, kernel_size: 3, padding: 1}}")
        lines += line(4, "- {name: stem_relu, block: relu}")
        lines += line(4, "- {name: conv, block: conv2d, params: {filters: 4, kernel_size: 3, padding: 1}}")
        lines += line(4, "- {name: gate, block: sigmoid, inputs: [stem_relu]}")
        lines += line(4, "- {name: gated, block: multiply, inputs: [conv, gate]}", "a join names several inputs")
        lines += line(4, "- {name: join, block: concatenate, inputs: [gated, stem_relu], params: {axis: 1}}",
                      "along channels")
        lines += line(4, "- {name: pool, block: global_avg_pool2d}")
        lines += line(4, "- {name: head, block: dense, params: {units: 10}}")
        lines += writer.input_lines(get_block("conv2d"), [2, 3, 8, 8], "the first node, conv2d,")
        lines += line(2, "mode: eval", "eval | train: how stochastic blocks (dropout) run")
        lines += writer.tolerance_line()
        lines += line(2, "# expect: {shape: [2, 10]}", "optional checks beyond torch vs keras")
        lines += line(2, "# sweep:", "each combination of these lists is its own test")
        lines += line(2, "#   input.shape: [[2, 3, 8, 8], [1, 3, 6, 5]]", "a node's param: nodes.<index>.<param>")
        lines += line(2, "#   input.dtype: [float32, float64]")
        return lines
