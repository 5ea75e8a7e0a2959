"""Composite blocks, made of other blocks: `residual`, and `sequential`, the block of a whole network.

`residual` is y = body(x) + shortcut(x): `layers` (the body) and `shortcut` are lists of layers applied in order,
written like a sequential's (`{block, params}`); a missing or empty shortcut is the identity. It is a layer of a
sequential, so a ResNet-style stack is a chain of residual blocks, each followed by its own `relu` (or anything else)
as the next layer:

    - block: residual
      layers:
        - {block: conv2d, params: {filters: 8, kernel_size: 3, strides: 2, padding: 1}}
        - {block: batch_norm2d}
        - {block: relu}
        - {block: conv2d, params: {filters: 8, kernel_size: 3, padding: 1}}
        - {block: batch_norm2d}
      shortcut:                      # a projection where the shapes change
        - {block: conv2d, params: {filters: 8, kernel_size: 1, strides: 2, use_bias: false}}
        - {block: batch_norm2d}
    - {block: relu}

`sequential` is a whole network: `layers`, a list of layers applied in order. It `holds_network`: a case of it is its
layers, which the engine builds, runs and compares one by one (each layer fed the same input, the first divergent
layer, per-layer weight files); it is never nested. Its own builders compose its layers (an nn.Sequential, a
keras.Sequential) like residual's, for a network used as one layer.

Nothing here knows any nested block: the loader (xfw_harness.cases) reads and validates the nested layers as it reads a
network's, `xfw_harness.blocks.planning.plan` walks their shapes (so a nested mistake is located as
`layers[2].layers[1].params.filters`), and the PyTorch module, the Keras layer, the weight transfer (WeightCopy lists
with path prefixes, which `xfw-harness show` prints) and the float64 reference are the nested blocks' own, composed.
The body and the shortcut must give the same shape and the same layout (a flatten in one only is refused).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block, Corner, Emulation, SkeletonWriter
from xfw_harness.blocks.planning import Layer, plan
from xfw_harness.blocks.registry import get_block, register
from xfw_harness.blocks.site import Site, WeightCopy
from xfw_harness.core.errors import CaseError, Refusal
from xfw_harness.core.layout import Layout
from xfw_harness.core.lazy import keras, lazy_module, torch

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
composite_layers = lazy_module("xfw_harness.blocks.composite_layers")

# Residual's case key of each branch, and the attribute that holds it in the PyTorch module and in the Keras layer.
BRANCHES = {"layers": "body", "shortcut": "shortcut"}


@dataclass(frozen=True)
class Branch:
    """One nested list of a composite block at a site: its layers, their sites, its output shape and layout."""

    layers: list[Layer]
    sites: list[Site]
    shape: tuple[int, ...]
    layout: Layout


class _Composite(Block):
    """What the composite blocks share: their nested lists planned as chains, the nested blocks' builders, weight
    copies, known differences and references composed."""

    family = "composite"

    def branches(self, site: Site) -> dict[str, Branch]:
        """Per nested key: its planned Branch. Raises Refusal located in the branch (`layers[1].params.filters`,
        `shortcut[0].block`) for what cannot work."""
        out = {}
        for key in self.nested:
            layers = list(site.params[key])
            for i, layer in enumerate(layers):
                if layer.block.stochastic and site.mode == "train" and not self.holds_network:
                    raise Refusal(f"{layer.block.name} in train mode cannot be inside a {self.name}: the frameworks' "
                                  "random masks differ, so the sum cannot be compared", field=f"{key}[{i}].block")
                if layer.ported:  # plan gets no framework here: they would be silently ignored
                    raise Refusal(f"torch_params / keras_params are not read inside a {self.name}; write them in "
                                  "params", field=f"{key}[{i}].{next(iter(layer.ported))}_params")
            try:
                # `defaults: native` (site.written set): the nested layers too pass only the params they wrote.
                sites, shape = plan(layers, site.in_shape, site.dtype, site.mode, site.seed, True,
                                    layout=site.layout, key=key, native=None if site.written is None else "common")
            except CaseError as e:
                if e.field == "input.shape":  # the branch's first layer refused the composite's own input
                    raise Refusal(f"{e.message} (the {self.name}'s input)", field=f"{key}[0].block") from None
                raise
            layout = layers[-1].block.output_layout(sites[-1]) if layers else site.layout
            out[key] = Branch(layers, sites, shape, layout)
        return out

    def inner_sites(self, site: Site) -> list[tuple[Block, Site]]:
        return [(layer.block, s) for branch in self.branches(site).values()
                for layer, s in zip(branch.layers, branch.sites)]

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        key = next(iter(self.nested))  # the list a composite cannot do without (`layers`, a graph's `nodes`)
        if not site.params[key]:
            raise Refusal(f"a {self.name} needs a non-empty `{key}`: a list of {{block, params}}", field=key)

    def largest_array(self, site: Site) -> int:
        return max((block.largest_array(s) for block, s in self.inner_sites(site)), default=0)

    def notes(self, site: Site) -> tuple[str, ...]:
        # What a nested layer emulates, the composite does too (a residual branch's strided, dilated conv).
        return tuple(f"{block.name}: {note}" for block, s in self.inner_sites(site) for note in block.notes(s))

    def known_difference(self, site: Site) -> str | None:
        # The composite carries a nested layer's documented difference: the first one, in any branch.
        for block, s in self.inner_sites(site):
            if (name := block.known_difference(s)) is not None:
                return name
        return None

    # --- builders: each framework's container of the nested blocks' own layers (`_torch`, `_keras`), built by the
    # nested blocks' harness or native builders --------------------------------------------------------------------
    def _torch(self, site: Site, build: Callable[[Block, Site], Any]) -> Any:
        raise NotImplementedError

    def _keras(self, site: Site, build: Callable[[Block, Site], Any]) -> Any:
        raise NotImplementedError

    def torch_module(self, site: Site) -> Any:
        return self._torch(site, lambda block, s: block.torch_module(s))

    def keras_layer(self, site: Site) -> Any:
        return self._keras(site, lambda block, s: block.keras_layer(s))

    def native_torch_module(self, site: Site) -> Any:
        return self._torch(site, lambda block, s: block.native_torch_module(s))

    def native_keras_layer(self, site: Site) -> Any:
        return self._keras(site, lambda block, s: block.native_keras_layer(s))

    @staticmethod
    def _built(branch: Branch, build: Callable[[Block, Site], Any]) -> list[Any]:
        return [build(layer.block, s) for layer, s in zip(branch.layers, branch.sites)]

    def _nested_parameters(self, key: str, blocks: list[Block], modules: Any) -> dict[str, Any]:
        """The nested layers' weights of branch `key`, named `<key>.<index>.<name>` (`layers.0.weight`)."""
        return {f"{key}.{i}.{name}": t for i, (block, m) in enumerate(zip(blocks, modules))
                for name, t in block.torch_parameters(m).items()}

    def _prefixed_copies(self, branch: Branch, modules: Any, layers: Any, torch_at: str, keras_at: str
                         ) -> list[WeightCopy]:
        """The nested layers' weight copies, their paths prefixed with where each sits in the composite."""
        copies = []
        for i, (nested, s, m, k) in enumerate(zip(branch.layers, branch.sites, modules, layers)):
            copies += [replace(c, torch_path=f"{torch_at}{i}.{c.torch_path}",
                               keras_path=f"{keras_at}{i}.{c.keras_path}")
                       for c in nested.block.weight_copies(s, m, k)]
        return copies

    @staticmethod
    def _chain_reference(key: str, branch: Branch, x: Any, weights: dict[str, Any]) -> Any:
        y = x
        for i, (nested, s) in enumerate(zip(branch.layers, branch.sites)):
            prefix = f"{key}.{i}."
            y = nested.block.reference(s, y, {name.removeprefix(prefix): w for name, w in weights.items()
                                              if name.startswith(prefix)})
        return y


@register
class Residual(_Composite):
    name = "residual"
    doc = ("body(x) + shortcut(x): `layers` (the body) and `shortcut` (default: none, the identity) are lists of "
           "layers like a sequential's, written beside `block` (not under params).")
    nested: ClassVar[dict[str, bool]] = {"layers": True, "shortcut": False}
    emulations = (Emulation("branch_sum",
                            "body(x) + shortcut(x), written by the harness on both sides (TorchResidual's `+`, "
                            "KerasResidual's keras.ops.add over its own branch loops); the reference adds the nested "
                            "blocks' own references", lambda s: True, "reference",
                            (Corner("identity shortcut", lambda s: not s.params["shortcut"]),
                             Corner("projection shortcut", lambda s: bool(s.params["shortcut"])))),)
    benchmark: ClassVar[dict[str, Any]] = {
        "layers": [{"block": "conv2d", "params": {"filters": 32, "kernel_size": 3, "padding": 1, "use_bias": False}},
                   {"block": "batch_norm2d"}, {"block": "relu"},
                   {"block": "conv2d", "params": {"filters": 32, "kernel_size": 3, "padding": 1, "use_bias": False}},
                   {"block": "batch_norm2d"}]}

    # --- semantics: the nested layers' own, walked by xfw_harness.blocks.planning.plan --------------------------------
    def output_shape(self, site: Site) -> tuple[int, ...]:
        branches = self.branches(site)
        body, short = branches["layers"], branches["shortcut"]
        what = "the shortcut's" if site.params["shortcut"] else "the input's (the shortcut is the identity)"
        if body.shape != short.shape:
            raise Refusal(f"the body's output shape {list(body.shape)} differs from {what} {list(short.shape)}: they "
                          "cannot be added; give a `shortcut` that makes the same shape (e.g. a strided 1x1 conv2d)",
                          field="shortcut" if site.params["shortcut"] else "layers")
        if body.layout != short.layout:
            raise Refusal(f"in Keras the body's output is {_layout_text(body.layout)} and {what} is "
                          f"{_layout_text(short.layout)}: a flatten in one branch only cannot be added elementwise",
                          field="shortcut")
        return body.shape

    def output_layout(self, site: Site) -> Layout:
        return self.branches(site)["layers"].layout

    def reduction_length(self, site: Site) -> int:
        # The sum adds one term to the longest sum of either branch.
        return 1 + max((block.reduction_length(s) for block, s in self.inner_sites(site)), default=0)

    # --- builders: the nested blocks' own, composed -----------------------------------------------------------
    def _torch(self, site: Site, build: Callable[[Block, Site], Any]) -> composite_layers.TorchResidual:
        # Built body first, then shortcut: the order PyTorch draws their initial weights in (xfw-harness show prints
        # the same order: TorchResidual(body=..., shortcut=...)).
        branches = self.branches(site)
        body, shortcut = (torch.nn.Sequential(*self._built(branches[key], build)) for key in BRANCHES)
        module = composite_layers.TorchResidual(body, shortcut)
        module.blocks = {key: [layer.block for layer in branches[key].layers] for key in BRANCHES}  # torch_parameters
        return module

    def _keras(self, site: Site, build: Callable[[Block, Site], Any]) -> composite_layers.KerasResidual:
        branches = self.branches(site)
        return composite_layers.KerasResidual(
            **{attr: self._built(branches[key], build) for key, attr in BRANCHES.items()}, dtype=site.dtype)


    def torch_parameters(self, module: composite_layers.TorchResidual) -> dict[str, Any]:
        """The nested layers' weights, named `<branch>.<index>.<name>` (`layers.0.weight`, `shortcut.1.bias`)."""
        by_name = {}
        for key in BRANCHES:  # no site here: the module keeps the blocks it was built from
            by_name.update(self._nested_parameters(key, module.blocks[key], getattr(module, BRANCHES[key])))
        return by_name

    def weight_copies(self, site: Site, module: composite_layers.TorchResidual,
                      layer: composite_layers.KerasResidual) -> list[WeightCopy]:
        copies = []
        for key, branch in self.branches(site).items():
            attr = BRANCHES[key]
            copies += self._prefixed_copies(branch, getattr(module, attr), getattr(layer, attr), f"{attr}.", f"{attr}.")
        return copies

    # --- the third opinion: the nested blocks' references, composed ----------------------------------------------
    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        body, shortcut = (self._chain_reference(key, branch, x, weights)
                          for key, branch in self.branches(site).items())
        return body + shortcut

    # --- the cases the tools write ------------------------------------------------------------------------------
    def benchmark_case(self) -> dict[str, Any]:
        # A residual is a layer of a network, never a case by itself.
        return {"name": self.name, "block": "sequential", "input": BENCHMARK_INPUT,
                "layers": [{"block": self.name, **self.benchmark}]}

    def skeleton(self, writer: SkeletonWriter) -> list[str]:
        """A ResNet-style stage of two residual blocks, in a network (a residual is a layer of one)."""
        line = writer.line
        lines = line(0, "- name: residual_case", "unique in its file; part of the test id")
        lines += line(2, "block: sequential", "a residual is a layer of a sequential")
        lines += line(2, "layers:", "each {block, params}; a block's parameters: xfw-harness new BLOCK")
        lines += line(4, "- block: residual", self.doc)
        lines += line(6, "layers:", "REQUIRED: the body, a non-empty list of layers applied in order")
        lines += line(8, "- {block: conv2d, params: {filters: 8, kernel_size: 3, strides: 2, padding: 1}}")
        lines += line(8, "- {block: relu}")
        lines += line(8, "- {block: conv2d, params: {filters: 8, kernel_size: 3, padding: 1}}")
        lines += line(6, "shortcut:", "default: none, the identity; here a projection to the body's output shape")
        lines += line(8, "- {block: conv2d, params: {filters: 8, kernel_size: 1, strides: 2}}")
        lines += line(4, "- {block: relu}", "after the sum, as in ResNet")
        lines += line(4, "- block: residual", "the identity shortcut: the body keeps the shape")
        lines += line(6, "layers:")
        lines += line(8, "- {block: conv2d, params: {filters: 8, kernel_size: 3, padding: same}}")
        lines += line(4, "- {block: relu}")
        lines += writer.input_lines(self, [2, 4, 8, 8])
        lines += line(2, "mode: eval", "eval | train: how stochastic blocks run; dropout in train mode cannot be "
                      "inside a residual")
        lines += writer.tolerance_line()
        lines += line(2, "# expect: {shape: [2, 8, 4, 4]}", "optional checks beyond torch vs keras")
        lines += line(2, "# sweep:", "each combination of these lists is its own test")
        lines += line(2, "#   input.shape: [[2, 4, 8, 8], [2, 4, 7, 9]]")
        lines += line(2, "#   input.dtype: [float32, float64]")
        return lines


@register
class Sequential(_Composite):
    name = "sequential"
    family = "networks"
    doc = "A list of `layers`, each {block, params, weights}, applied in order."
    nested: ClassVar[dict[str, bool]] = {"layers": True}
    holds_network = True
    benchmark: ClassVar[dict[str, Any]] = {
        "layers": [{"block": "conv2d", "params": {"filters": 32, "kernel_size": 3, "padding": "same"}},
                   {"block": "relu"}, {"block": "max_pool2d", "params": {"pool_size": 2}},
                   {"block": "conv2d", "params": {"filters": 64, "kernel_size": 3, "padding": "same"}},
                   {"block": "relu"}, {"block": "global_avg_pool2d"}, {"block": "dense", "params": {"units": 10}}],
        "input": {"shape": [8, 3, 32, 32]}}

    # --- semantics: the chain of its layers -------------------------------------------------------------------------
    def output_shape(self, site: Site) -> tuple[int, ...]:
        return self.branches(site)["layers"].shape

    def output_layout(self, site: Site) -> Layout:
        return self.branches(site)["layers"].layout

    def reduction_length(self, site: Site) -> int:
        return max((block.reduction_length(s) for block, s in self.inner_sites(site)), default=1)

    # --- builders: its layers' own, in order ----------------------------------------------------------------------
    def _torch(self, site: Site, build: Callable[[Block, Site], Any]) -> torch.nn.Sequential:
        branch = self.branches(site)["layers"]
        module = torch.nn.Sequential(*self._built(branch, build))
        module.blocks = [layer.block for layer in branch.layers]  # torch_parameters: no site there
        return module

    def _keras(self, site: Site, build: Callable[[Block, Site], Any]) -> keras.Sequential:
        return keras.Sequential(self._built(self.branches(site)["layers"], build))


    def torch_parameters(self, module: torch.nn.Sequential) -> dict[str, Any]:
        """The layers' weights, named `layers.<index>.<name>`."""
        return self._nested_parameters("layers", module.blocks, module)

    def weight_copies(self, site: Site, module: torch.nn.Sequential, layer: keras.Sequential) -> list[WeightCopy]:
        return self._prefixed_copies(self.branches(site)["layers"], module, layer.layers, "", "layers.")

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        return self._chain_reference("layers", self.branches(site)["layers"], x, weights)

    # --- the cases the tools write --------------------------------------------------------------------------------
    def skeleton(self, writer: SkeletonWriter) -> list[str]:
        line = writer.line
        lines = line(0, "- name: sequential_case", "unique in its file; part of the test id")
        lines += line(2, "block: sequential", "the layers applied in order")
        lines += line(2, "layers:", "each {block, params, weights}; a block's parameters: xfw-harness new BLOCK")
        lines += line(4, "- {block: conv2d, params: {filters: 4, kernel_size: 3}}")
        lines += line(4, "- {block: relu}")
        lines += line(4, "- {block: max_pool2d, params: {pool_size: 2}}")
        lines += line(4, "- {block: flatten}")
        lines += line(4, "- {block: dense, params: {units: 10}}")
        lines += writer.input_lines(get_block("conv2d"), [2, 3, 8, 8], "the first layer, conv2d,")
        lines += line(2, "mode: eval", "eval | train: how stochastic blocks (dropout) run; dropout in train mode "
                      "must be the last layer")
        lines += writer.tolerance_line()
        lines += line(2, "# expect: {shape: [2, 10]}", "optional checks beyond torch vs keras")
        lines += line(2, "# sweep:", "each combination of these lists is its own test")
        lines += line(2, "#   layers.0.filters: [4, 8]", "layers.<index>.<param>")
        lines += line(2, "#   input.dtype: [float32, float64]")
        return lines


def _layout_text(layout: Layout) -> str:
    if layout.flattened_from is None:
        return "channels-last"
    return f"flattened from a {list(layout.flattened_from)} (C, H, W) tensor in (H, W, C) order"
