"""Composite blocks, made of other blocks: `residual`.

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

Nothing here knows any nested block: the loader (harness.cases.loader) reads and validates the nested layers as it reads a
sequential's, `harness.cases.loader.plan` walks their shapes (so a nested mistake is located as
`layers[2].layers[1].params.filters`), and the PyTorch module, the Keras layer, the weight transfer (WeightCopy lists
with path prefixes, which `harness show` prints) and the float64 reference are the nested blocks' own, composed.
The body and the shortcut must give the same shape and the same layout (a flatten in one only is refused).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

import keras
import torch

from harness.blocks.registry import Block, Site, WeightCopy, register
from harness.core.errors import CaseError, Refusal
from harness.core.layout import Layout

# The case key of each branch, and the attribute that holds it in the PyTorch module and in the Keras layer.
BRANCHES = {"layers": "body", "shortcut": "shortcut"}


class TorchResidual(torch.nn.Module):
    """body(x) + shortcut(x), each an nn.Sequential (an empty one is the identity): the harness's residual block."""

    def __init__(self, body: torch.nn.Sequential, shortcut: torch.nn.Sequential) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


@keras.saving.register_keras_serializable(package="harness")
class KerasResidual(keras.layers.Layer):
    """body(x) + shortcut(x), each a list of Keras layers applied in order (an empty one is the identity): the
    harness's residual block; it saves into and loads from a .keras file like any Keras layer."""

    layer_lists: ClassVar[tuple[str, ...]] = ("body", "shortcut")  # constructor arguments that are lists of layers

    def __init__(self, body: list[keras.Layer], shortcut: list[keras.Layer], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Keras tracks the lists' layers and their variables; a WeightCopy path such as `body.0.kernel` resolves.
        self.body = list(body)
        self.shortcut = list(shortcut)

    def build(self, input_shape: tuple) -> None:
        for branch in (self.body, self.shortcut):  # each sublayer built for its own input, as a functional model
            x = keras.KerasTensor(tuple(input_shape), dtype=self.compute_dtype)
            for sub in branch:
                x = sub(x)
        self.built = True

    def call(self, x: Any, training: bool | None = None) -> Any:
        y, s = x, x
        for sub in self.body:
            y = sub(y, training=training)
        for sub in self.shortcut:
            s = sub(s, training=training)
        return keras.ops.add(y, s)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                **{key: [keras.saving.serialize_keras_object(sub) for sub in getattr(self, key)]
                   for key in self.layer_lists}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KerasResidual:
        config = dict(config)
        branches = {key: [keras.saving.deserialize_keras_object(sub) for sub in config.pop(key)]
                    for key in cls.layer_lists}
        return cls(**branches, **config)


@register
class Residual(Block):
    name = "residual"
    family = "composite"
    doc = ("body(x) + shortcut(x): `layers` (the body) and `shortcut` (default: none, the identity) are lists of "
           "layers like a sequential's, written beside `block` (not under params).")
    # The case keys holding lists of layers, which harness.cases.loader reads like a sequential's `layers` into
    # params[key] (a tuple of harness.cases.loader.Layer); True: required and non-empty.
    nested: ClassVar[dict[str, bool]] = {"layers": True, "shortcut": False}

    # --- semantics: the nested layers' own, walked by harness.cases.loader.plan -----------------------------------
    def branches(self, site: Site) -> dict[str, tuple[list[Any], list[Site], tuple[int, ...], Layout]]:
        """Per branch key: its layers, their sites, its output shape and layout. Raises Refusal located in the
        branch (`layers[1].params.filters`, `shortcut[0].block`) for what cannot work."""
        from harness.cases.loader import plan

        out = {}
        for key in BRANCHES:
            layers = list(site.params[key])
            for i, layer in enumerate(layers):
                if layer.block.stochastic and site.mode == "train":
                    raise Refusal(f"{layer.block.name} in train mode cannot be inside a residual: the frameworks' "
                                  "random masks differ, so the sum cannot be compared", field=f"{key}[{i}].block")
                if layer.ported:  # plan gets no framework here: they would be silently ignored
                    raise Refusal("torch_params / keras_params are not read inside a residual; write them in params",
                                  field=f"{key}[{i}].{next(iter(layer.ported))}_params")
            try:
                # `defaults: native` (site.written set): the nested layers too pass only the params they wrote.
                sites, shape = plan(layers, site.in_shape, site.dtype, site.mode, site.seed, True,
                                    layout=site.layout, key=key, native=None if site.written is None else "common")
            except CaseError as e:
                if e.field == "input.shape":  # the branch's first layer refused the residual's own input
                    raise Refusal(f"{e.message} (the residual's input)", field=f"{key}[0].block") from None
                raise
            layout = layers[-1].block.output_layout(sites[-1]) if layers else site.layout
            out[key] = (layers, sites, shape, layout)
        return out

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        if not site.params["layers"]:
            raise Refusal("a residual needs a non-empty body: `layers`, a list of {block, params}", field="layers")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        branches = self.branches(site)
        (_, _, body, body_layout), (_, _, short, short_layout) = branches["layers"], branches["shortcut"]
        what = "the shortcut's" if site.params["shortcut"] else "the input's (the shortcut is the identity)"
        if body != short:
            raise Refusal(f"the body's output shape {list(body)} differs from {what} {list(short)}: they cannot be "
                          "added; give a `shortcut` that makes the same shape (e.g. a strided 1x1 conv2d)",
                          field="shortcut" if site.params["shortcut"] else "layers")
        if body_layout != short_layout:
            raise Refusal(f"in Keras the body's output is {_layout_text(body_layout)} and {what} is "
                          f"{_layout_text(short_layout)}: a flatten in one branch only cannot be added elementwise",
                          field="shortcut")
        return body

    def output_layout(self, site: Site) -> Layout:
        return self.branches(site)["layers"][3]

    def reduction_length(self, site: Site) -> int:
        # The sum adds one term to the longest sum of either branch.
        return 1 + max((layer.block.reduction_length(s) for layers, sites, _, _ in self.branches(site).values()
                        for layer, s in zip(layers, sites)), default=0)

    def largest_array(self, site: Site) -> int:
        return max((layer.block.largest_array(s) for layers, sites, _, _ in self.branches(site).values()
                    for layer, s in zip(layers, sites)), default=0)

    def known_difference(self, site: Site) -> str | None:
        # The sum carries a nested layer's documented difference: the first one, in either branch.
        for layers, sites, _, _ in self.branches(site).values():
            for layer, s in zip(layers, sites):
                if (name := layer.block.known_difference(s)) is not None:
                    return name
        return None

    # --- builders: the nested blocks' own, composed ---------------------------------------------------------
    def _torch(self, site: Site, build: Callable[[Block, Site], Any]) -> TorchResidual:
        # Built body first, then shortcut: the order PyTorch draws their initial weights in (harness show prints
        # the same order: TorchResidual(body=..., shortcut=...)).
        branches = self.branches(site)
        body, shortcut = (torch.nn.Sequential(*(build(layer.block, s) for layer, s in zip(*branches[key][:2])))
                          for key in BRANCHES)
        module = TorchResidual(body, shortcut)
        module.blocks = {key: [layer.block for layer in branches[key][0]] for key in BRANCHES}  # torch_parameters
        return module

    def _keras(self, site: Site, build: Callable[[Block, Site], Any]) -> KerasResidual:
        branches = self.branches(site)
        return KerasResidual(**{attr: [build(layer.block, s) for layer, s in zip(*branches[key][:2])]
                                for key, attr in BRANCHES.items()}, dtype=site.dtype)

    def torch_module(self, site: Site) -> TorchResidual:
        return self._torch(site, lambda block, s: block.torch_module(s))

    def keras_layer(self, site: Site) -> KerasResidual:
        return self._keras(site, lambda block, s: block.keras_layer(s))

    def native_torch_module(self, site: Site) -> TorchResidual:
        return self._torch(site, lambda block, s: block.native_torch_module(s))

    def native_keras_layer(self, site: Site) -> KerasResidual:
        return self._keras(site, lambda block, s: block.native_keras_layer(s))

    def torch_parameters(self, module: TorchResidual) -> dict[str, Any]:
        """The nested layers' weights, named `<branch>.<index>.<name>` (`layers.0.weight`, `shortcut.1.bias`)."""
        by_name = {}
        for key in BRANCHES:  # no site here: the module keeps the blocks it was built from
            for i, (block, m) in enumerate(zip(module.blocks[key], getattr(module, BRANCHES[key]))):
                by_name.update({f"{key}.{i}.{name}": t for name, t in block.torch_parameters(m).items()})
        return by_name

    def weight_copies(self, site: Site, module: TorchResidual, layer: KerasResidual) -> list[WeightCopy]:
        copies = []
        for key, (layers, sites, _, _) in self.branches(site).items():
            attr = BRANCHES[key]
            for i, (nested, s, m, k) in enumerate(zip(layers, sites, getattr(module, attr), getattr(layer, attr))):
                at = f"{attr}.{i}."
                copies += [replace(c, torch_path=at + c.torch_path, keras_path=at + c.keras_path)
                           for c in nested.block.weight_copies(s, m, k)]
        return copies

    # --- the third opinion: the nested blocks' references, composed ------------------------------------------
    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        results = []
        for key, (layers, sites, _, _) in self.branches(site).items():
            y = x
            for i, (nested, s) in enumerate(zip(layers, sites)):
                prefix = f"{key}.{i}."
                y = nested.block.reference(s, y, {name.removeprefix(prefix): w for name, w in weights.items()
                                                  if name.startswith(prefix)})
            results.append(y)
        return results[0] + results[1]


def _layout_text(layout: Layout) -> str:
    if layout.flattened_from is None:
        return "channels-last"
    return f"flattened from a {list(layout.flattened_from)} (C, H, W) tensor in (H, W, C) order"
