"""Planning a chain of layers: walking their shape semantics from an input shape, one `Site` per layer (what the
layer is given: its parameters, its input shape, the layout of its Keras input), refusing what cannot work before
anything is built or allocated. Networks (`sequential`) and composite blocks (`residual`'s branches) are planned
with it; a mistake in a nested list is located at its place (`layers[2].layers[1].params.filters`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xfw_harness.blocks.base import Block
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import CaseError, Refusal
from xfw_harness.core.layout import CHANNELS_LAST, Layout

# Refuse inputs larger than this before allocating anything (4 GiB of float64 would stall a 24 GiB runner). The
# same budget holds for every array a point makes: each layer's output, a padded input, a weight, golden values.
MAX_ELEMENTS = 1 << 26


@dataclass(frozen=True)
class Layer:
    """One layer of a case as loaded: its block, its normalised params, and where its weights come from."""

    block: Block
    params: dict[str, Any]  # normalised
    weights: Path | None = None
    written: frozenset[str] = frozenset()  # the params the case wrote: all that `defaults: native` passes on
    # `defaults: native`: per framework ("torch", "keras") that has torch_params / keras_params, its own params
    # (normalised, merged over `params`) and the names written for it.
    ported: dict[str, tuple[dict[str, Any], frozenset[str]]] = field(default_factory=dict)
    # In a graph (a network block whose `graph` is set): the node's name, and the indices of the layers whose
    # outputs it takes, in order (NETWORK_INPUT: the network's input). None: the layer before it (a chain).
    name: str | None = None
    inputs: tuple[int, ...] | None = None

    def input_indices(self, index: int) -> tuple[int, ...]:
        """The indices of the outputs this layer (at `index` in its list) takes: NETWORK_INPUT for the input."""
        return self.inputs if self.inputs is not None else (index - 1,)


NETWORK_INPUT = -1  # in Layer.inputs: the network's input (an index one before the first layer, as in a chain)


def plan(layers: list[Layer], shape: tuple[int, ...], dtype: str, mode: str, seed: int,
         sequential: bool, layout: Layout = CHANNELS_LAST, key: str = "layers",
         native: str | None = None, max_elements: int = MAX_ELEMENTS) -> tuple[list[Site], tuple[int, ...]]:
    """Walk the layers' shape semantics: one Site per layer, and the final channels-first output shape.

    Raises Refusal (field located at the layer: `key[i]`) for what cannot work or cannot be compared. A composite
    block plans its nested lists with this too, from its own input `layout`, under their own `key`.
    `native` (`defaults: native`): "common" gives the sites the params written for both frameworks (Site.written
    set), "torch" or "keras" that framework's own (its torch_params / keras_params applied); None: harness mode.
    `max_elements`: the budget of every array (a case's `max_elements` raises it, as `xfw-harness port` writes for a
    model with larger weights).
    """
    shape0, layout0 = tuple(shape), layout
    sites: list[Site] = []
    shapes, layouts = [], []  # each layer's output shape and Keras layout, for the graph's later nodes
    for i, layer in enumerate(layers):
        params, written = layer.params, None
        if native is not None:
            params, written = layer.ported.get(native, (layer.params, layer.written))
        sources = layer.input_indices(i)
        given = [(shapes[j], layouts[j]) if j != NETWORK_INPUT else (shape0, layout0) for j in sources]
        many = {} if layer.block.arity == 1 else {"in_shapes": tuple(s for s, _ in given),
                                                  "in_layouts": tuple(lay for _, lay in given)}
        site = Site(params=params, in_shape=given[0][0], dtype=dtype, mode=mode, layout=given[0][1], seed=seed,
                    written=written, **many)
        try:
            layer.block.check_arity(site, len(sources))
            layer.block.check_input(site)
            if layer.block.stochastic and mode == "train" and (i != len(layers) - 1 or sources != (i - 1,)):
                raise Refusal(f"{layer.block.name} in train mode must be the last layer, on the output of the one "
                              "before it: the frameworks' random masks differ, so nothing after it can be compared",
                              field="block")
            out = layer.block.output_shape(site)
            _check_budget(layer.block, site, out, max_elements)
        except CaseError as e:
            if e.field == "input.shape" and sources[0] != NETWORK_INPUT:
                e = CaseError(f"{e.message} (the output of {key}[{sources[0]}])", field="block")
            raise e.located(field_prefix=f"{key}[{i}]" if sequential and e.field != "input.shape" else None) from None
        sites.append(site)
        shapes.append(tuple(out))
        layouts.append(layer.block.output_layout(site))
    return sites, (shapes[-1] if shapes else shape)


def _check_budget(block: Block, site: Site, out: tuple[int, ...], limit: int) -> None:
    """Refuse a layer whose output, padded input or weights would exceed the budget, before anything runs."""
    raise_it = "; a case may raise it with `max_elements`" if limit == MAX_ELEMENTS else " (the case's max_elements)"
    if math.prod(out) > limit:
        raise Refusal(f"{block.name}'s output {list(out)} would have {math.prod(out):,} elements; the limit is "
                      f"{limit:,}{raise_it}", field="params")
    need = block.largest_array(site)
    if need > limit:
        raise Refusal(f"{block.name} would make an array of {need:,} elements (its padded input or weights); the "
                      f"limit is {limit:,}{raise_it}", field="params")


def run_layers(layers: list[Layer], x: Any, call: Callable[[int, Layer, list[Any]], Any]) -> list[Any]:
    """Every layer's output, in order: `call(index, layer, inputs)` with the outputs it takes (`x` for the network's
    input): a chain or a graph alike. The one place that walks a network's data flow; the engine's forward and
    backward passes, the references and the port's Keras model all run through it."""
    outs: list[Any] = []
    for i, layer in enumerate(layers):
        outs.append(call(i, layer, [x if j == NETWORK_INPUT else outs[j] for j in layer.input_indices(i)]))
    return outs
