"""Reading the layers of a case: a block with its params (and weights file), or a network's `layers` (the case's
block `holds_network`), each item read the same way at any depth so that a mistake is located
(`layers[2].layers[1].params.filters`); and what a hand port wrote for one framework alone (`defaults: native`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xfw_harness.blocks import MAX_ELEMENTS, NETWORK_INPUT, REGISTRY, Block, Layer, get_block, network_block
from xfw_harness.cases.arrays import read_weights
from xfw_harness.cases.fields import check_keys
from xfw_harness.cases.model import GRAPH_INPUT, LAYER_KEYS, NODE_KEYS, NODE_NAME_RE, PORT_KEYS
from xfw_harness.core.errors import CaseError, show
from xfw_harness.core.schema import normalise_params


def layer_list(items: list, base: Path, key: str, nested: bool = False, graph: bool = False,
               limit: int = MAX_ELEMENTS) -> list[Layer]:
    """A network's `layers`, or a composite block's nested list (`nested`: a residual's `layers`, `shortcut`),
    each item {block, params, weights} (and a composite's own lists, read the same way, so that a mistake at any
    depth is located: layers[2].layers[1].params.filters). A graph's `nodes` (`graph`) also have a `name` and
    `inputs` (node_inputs)."""
    layers: list[Layer] = []
    names: dict[str, int] = {}
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, dict) or "block" not in item:
            raise CaseError("must be a mapping with `block` (and optional params, weights)", field=where)
        try:
            block = get_block(item["block"])
            if block.holds_network:
                raise CaseError(f"{block.name} cannot be nested", field="block")
            lists = block.nested  # a composite block's keys that hold lists of layers (required?)
            check_keys(item, (NODE_KEYS if graph else LAYER_KEYS) + tuple(lists), "")
            node_name, inputs = node_inputs(item, i, names) if graph else (None, None)
            params = normalise_params(block.params, item.get("params"))
            for name, required in lists.items():
                value = item.get(name, None if required else [])
                if not isinstance(value, list) or (required and not value):
                    raise CaseError(f"{block.name} needs `{name}`: a {'non-empty ' if required else ''}list of "
                                    "{block, params}", field=name)
                params[name] = tuple(layer_list(value, base, name, nested=True, limit=limit))
            if nested and "weights" in item:  # the runner loads weight files into its top-level modules only
                raise CaseError(f"a layer inside {key} cannot read a weights file yet; give the network's weights "
                                "by layer at the top level", field="weights")
            weights = read_weights(item.get("weights"), base, block, "weights", limit)
            written, ported = read_ported(block, item, params)
        except CaseError as e:
            raise e.located(field_prefix=where) from None
        layers.append(Layer(block, params, weights, written, ported, name=node_name, inputs=inputs))
        if node_name is not None:
            names[node_name] = i
    if graph:
        check_all_used(layers, key)
    return layers


def node_inputs(item: dict, index: int, names: dict[str, int]) -> tuple[str, tuple[int, ...]]:
    """A graph node's name and the indices of its inputs (NETWORK_INPUT for `input`). `inputs` defaults to the node
    before it (the input for the first): a chain needs none written. How many a block takes is its own check
    (Block.check_arity, when the graph is planned)."""
    name = item.get("name")
    if not isinstance(name, str) or not NODE_NAME_RE.fullmatch(name) or name == GRAPH_INPUT:
        raise CaseError(f"got {show(name)}; allowed: a name of letters, digits, '_', '.', '-' other than "
                        f"{GRAPH_INPUT!r}, unique among the nodes", field="name")
    if name in names:
        raise CaseError(f"duplicate node name {name!r} (also nodes[{names[name]}])", field="name")
    if "inputs" not in item:  # the node before it; for the first, index - 1 is NETWORK_INPUT
        return name, (index - 1,)
    written = item["inputs"]
    if isinstance(written, str):
        written = [written]
    if not isinstance(written, list) or not written:
        raise CaseError(f"got {show(written)}; allowed: a non-empty list of node names written before this one, "
                        f"or {GRAPH_INPUT!r} (the network's input)", field="inputs")
    inputs = []
    for j, source in enumerate(written):
        if source == GRAPH_INPUT:
            inputs.append(NETWORK_INPUT)
        elif isinstance(source, str) and source in names:
            inputs.append(names[source])
        else:
            raise CaseError(f"got {show(source)}; allowed: {GRAPH_INPUT!r} or the name of a node written before "
                            "this one (a graph's nodes are listed in an order where each comes after its inputs)",
                            field=f"inputs[{j}]")
    return name, tuple(inputs)


def check_all_used(layers: list[Layer], key: str) -> None:
    """Refuse a node whose output nothing takes: the last node is the graph's output, every other one feeds a later
    node (a dead branch would be built and run for nothing, and its mistakes never seen)."""
    used = {j for i, layer in enumerate(layers) for j in layer.input_indices(i)}
    for i, layer in enumerate(layers[:-1]):
        if i not in used:
            raise CaseError(f"node {layer.name!r} feeds no later node and is not the output (the last node): a "
                            "graph's every node must reach its output", field=f"{key}[{i}].name")


def read_ported(block: Block, item: dict, params: dict[str, Any]) -> tuple[frozenset[str], dict[str, Any]]:
    """The names of the params a case (or a layer) wrote, and each framework's own params where `torch_params` /
    `keras_params` give values a hand port wrote for that framework alone (see Layer.ported)."""
    raw = item.get("params")
    written = frozenset(raw) if isinstance(raw, dict) else frozenset()
    ported = {}
    for key in PORT_KEYS:
        if key not in item:
            continue
        extra = item[key]
        if not isinstance(extra, dict) or not extra:
            raise CaseError(f"got {show(extra)}; allowed: a mapping of parameter names to the values the hand port "
                            "wrote for that framework alone", field=key)
        try:
            own = normalise_params(block.params, {**(raw or {}), **extra})
        except CaseError as e:
            raise CaseError(e.message, field=f"{key}.{(e.field or '').removeprefix('params.')}") from None
        ported[key.removesuffix("_params")] = ({**params, **own}, written | frozenset(extra))
    return written, ported


def case_block(raw: dict) -> Block | None:
    """The registered block a case names, or None (none named, or an unknown name: reported by case_layers)."""
    name = raw.get("block")
    return REGISTRY.get(name) if isinstance(name, str) else None


def is_network(raw: dict) -> bool:
    """Whether a case is a whole network: its block `holds_network` (sequential)."""
    block = case_block(raw)
    return block is not None and block.holds_network


def network_key(raw: dict) -> str:
    """The key of a network case that holds its layers (`layers`)."""
    return next(iter(case_block(raw).nested))


def network_keys() -> dict[str, str]:
    """Each case key that holds a whole network's layers, and the block whose cases read it (`layers`: sequential,
    `nodes`: graph)."""
    return {key: b.name for b in REGISTRY.values() if b.holds_network for key in b.nested}


def case_layers(raw: dict, base: Path) -> tuple[list[Layer], bool]:
    """The case's layers, from `block` + `params` or from a network's `layers`; and whether it is a network."""
    block = case_block(raw)
    if block is not None and block.holds_network:
        key = network_key(raw)
        # another network's key would be silently ignored: refused, with the block that reads it
        if other := next((k for k in network_keys() if k in raw and k != key), None):
            raise CaseError(f"a {block.name} case has no `{other}` (that is block: {network_keys()[other]}'s); its "
                            f"layers go in `{key}`", field=other)
        if extra := next((k for k in ("params", "weights", *PORT_KEYS) if k in raw), None):
            raise CaseError(f"a {block.name} case has no `{extra}`; give them on each of its layers", field=extra)
        items = raw.get(key)
        if not isinstance(items, list) or not items:
            raise CaseError(f"a {block.name} case needs `{key}`: a non-empty list of {{block, params, weights}}",
                            field=key)
        return layer_list(items, base, key, graph=block.graph, limit=read_max_elements(raw.get("max_elements"))), True
    if block is not None and block.nested:
        network = network_block().name
        raise CaseError(f"{block.name} is a layer of a {network}, not a case by itself: write block: {network}, "
                        f"layers: [{{block: {block.name}, layers: [...]}}, ...]", field="block")
    if found := next((k for k in network_keys() if k in raw), None):
        raise CaseError(f"`{found}` is only for block: {network_keys()[found]}", field=found)
    if "block" not in raw:
        raise CaseError("missing; allowed: a registered block name (see `python -m xfw_harness list`) or "
                        f"{network_block().name}", field="block")
    block = get_block(raw["block"])
    params = normalise_params(block.params, raw.get("params"))
    limit = read_max_elements(raw.get("max_elements"))
    return [Layer(block, params, read_weights(raw.get("weights"), base, block, "weights", limit),
                  *read_ported(block, raw, params))], False


def read_max_elements(raw: Any) -> int:
    """`max_elements`: the budget of every array the case makes, raised above the default (MAX_ELEMENTS) for a large
    model's weights; a case written by hand rarely needs it."""
    if raw is None:
        return MAX_ELEMENTS
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < MAX_ELEMENTS:
        raise CaseError(f"got {show(raw)}; allowed: an integer of at least {MAX_ELEMENTS:,} (the default budget)",
                        field="max_elements")
    return raw
