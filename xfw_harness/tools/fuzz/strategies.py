"""Hypothesis strategies for `xfw-harness fuzz`: case mappings drawn from the blocks' declared schemas.

A block's cases come from its parameter schema (xfw_harness.core.schema.Param: int, pair, padding, float, bool, choice,
axis; a kind of a block's own is probed through its `normalise`) and its accepted input ranks (Block.ranks);
the network block (`sequential`) draws random small networks of registered blocks, each next block one that accepts
the rank the
network has so far. So a new block is fuzzable with no extra code. Every strategy draws simplest first: hypothesis
shrinks a finding towards fewer layers, smaller dimensions and parameters, optional parameters left out and
simpler choices.

Bounds keep every drawn case small (channels and integers a few above their minimum, spatial sizes up to 8), so an
example runs in milliseconds and shrinking stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from xfw_harness.blocks import Block, all_blocks, get_block, graph_block, network_block
from xfw_harness.cases import MODES, Point, load_case
from xfw_harness.core.errors import CaseError
from xfw_harness.core.schema import Param
from xfw_harness.tools.fuzz.run import FUZZ_FILE

INT_SPAN = 3  # integers are drawn from [minimum, minimum + INT_SPAN]: small weights, small shapes
FLOAT_SPAN = 2.0  # a float with no maximum is drawn from [minimum, minimum + FLOAT_SPAN]
MAX_BATCH, MAX_CHANNELS, MAX_SIZE = 2, 4, 8  # input dimensions: batch, channels, each further axis
MAX_LAYERS = 4  # layers of a drawn `sequential`
MAX_NESTED = 2  # layers of a composite block's drawn nested list (a residual's body)
DEFAULT_DTYPES = ("float32", "float64")  # the input dtypes drawn unless --dtypes says otherwise
_OMIT = object()  # an optional parameter left out (its default applies)


def param_strategy(param: Param, rank: int) -> st.SearchStrategy[Any]:
    """Values of one parameter as a case writes them, small, simplest first (hypothesis shrinks towards the first
    alternative and towards the lower bound)."""
    low = int(param.minimum) if param.minimum is not None else 0
    ints = st.integers(low, low + INT_SPAN)
    kind = param.kind
    if kind == "int":
        return ints
    if kind == "pair":
        return st.one_of(ints, st.lists(ints, min_size=param.size, max_size=param.size))
    if kind == "padding":
        small = st.integers(0, 2)
        return st.one_of(st.sampled_from(["valid", "same"]), small,
                         st.lists(small, min_size=param.size, max_size=param.size))
    if kind == "float":
        lo = float(param.minimum) if param.minimum is not None else -FLOAT_SPAN / 2
        hi = float(param.maximum) if param.maximum is not None else lo + FLOAT_SPAN
        # No subnormals: a rate of 5e-324 is no value a port carries.
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                         exclude_min=param.open_minimum and param.minimum is not None,
                         exclude_max=param.open_maximum and param.maximum is not None)
    if kind == "bool":
        return st.booleans()
    if kind == "choice":
        return st.sampled_from(list(param.choices))
    if kind == "axis":
        return st.integers(-rank, rank - 1)
    return _probed(param)


def _probed(param: Param) -> st.SearchStrategy[Any]:
    """A kind this module does not know (a block's own Param subclass, e.g. zero_padding2d's `pads`): the YAML shapes
    a parameter is written in (small integers, pairs, pairs of pairs, the padding words, booleans, numbers), kept
    where the parameter's own `normalise` accepts them. So a new kind is fuzzable without code here."""
    small = st.integers(0, INT_SPAN)
    pair = st.lists(small, min_size=2, max_size=2)
    written = st.one_of(small, pair, st.lists(pair, min_size=2, max_size=2), st.sampled_from(["valid", "same"]),
                        st.booleans(), st.floats(0.0, FLOAT_SPAN, allow_nan=False, allow_subnormal=False))

    def accepted(value: Any) -> bool:
        try:
            param.normalise(value)
        except CaseError:
            return False
        return True

    return written.filter(accepted)


@st.composite
def params_strategy(draw: Callable[..., Any], block: Block, rank: int) -> dict[str, Any]:
    """A block's `params` mapping: every required parameter, each optional one drawn or left out."""
    params = {}
    for param in block.params:
        value = draw(param_strategy(param, rank)) if param.required else draw(
            st.one_of(st.just(_OMIT), param_strategy(param, rank)))
        if value is not _OMIT:
            params[param.name] = value
    return params


def _ranks(block: Block) -> list[int]:
    return sorted(block.ranks) if block.ranks else [2, 3, 4]


@st.composite
def shape_strategy(draw: Callable[..., Any], rank: int) -> list[int]:
    """An input shape of `rank`, channels-first: a small batch, a few channels, each further axis up to MAX_SIZE."""
    return [draw(st.integers(1, MAX_BATCH)), draw(st.integers(1, MAX_CHANNELS)),
            *(draw(st.integers(1, MAX_SIZE)) for _ in range(rank - 2))]


def _composites() -> dict[str, Block]:
    """The blocks made of other blocks (a residual; and the network block, which is never nested)."""
    return {name: b for name, b in all_blocks().items() if b.nested}


@st.composite
def layer_strategy(draw: Callable[..., Any], block: Block, rank: int, depth: int = 0) -> dict[str, Any]:
    """One layer mapping {block, params} (and a composite block's nested lists, of plain blocks)."""
    layer: dict[str, Any] = {"block": block.name}
    params = draw(params_strategy(block, rank))
    if params:
        layer["params"] = params
    for key, required in block.nested.items():
        plain = [b for name, b in all_blocks().items()
                 if name not in _composites() and rank in _ranks(b) and b.arity == 1]
        items = draw(st.lists(st.sampled_from(plain), min_size=1 if required else 0, max_size=MAX_NESTED))
        if items or required:
            layer[key] = [draw(layer_strategy(b, rank, depth + 1)) for b in items]
    return layer


def _common(dtypes: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"dtype": st.sampled_from(list(dtypes)), "seed": st.integers(0, 2**16),
                                  "mode": st.sampled_from(list(MODES))})


def _case(body: dict[str, Any], shape: list[int], common: dict[str, Any]) -> dict[str, Any]:
    case = {"name": "fuzz", **body, "input": {"shape": shape, "dtype": common["dtype"], "seed": common["seed"]}}
    if common["mode"] != "eval":
        case["mode"] = common["mode"]
    return case


@st.composite
def block_case_strategy(draw: Callable[..., Any], block: Block, dtypes: tuple[str, ...]) -> dict[str, Any]:
    """A case for one block: a plain `block:` case, or a one-layer network for a composite block (which the loader
    only reads as a layer)."""
    rank = draw(st.sampled_from(_ranks(block)))
    shape = draw(shape_strategy(rank))
    layer = draw(layer_strategy(block, rank))
    if block.arity != 1:  # a join is a node of a graph: here of copies of the input
        count = block.arity or draw(st.integers(2, 3))
        body = _graph([{"name": "join", **layer, "inputs": ["input"] * count}])
    else:
        body = _network([layer]) if block.nested else layer
    return _case(body, shape, draw(_common(dtypes)))


def _graph(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A graph case's body: the network block whose layers are named nodes, with `nodes`."""
    graph = graph_block()
    return {"block": graph.name, next(iter(graph.nested)): nodes}


def _output_rank(case: dict[str, Any]) -> int | None:
    """The rank of a drawn network's output by the loader's own shape semantics; None when the loader refuses it."""
    entry = load_case(FUZZ_FILE, 0, case, Path.cwd(), set())
    if entry.error is not None or not entry.points or not isinstance(entry.points[0], Point):
        return None
    return len(entry.points[0].output_shape)


def _network(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """A network case's body: the block that `holds_network` (sequential) with `layers`."""
    network = network_block()
    return {"block": network.name, next(iter(network.nested)): layers}


@st.composite
def network_case_strategy(draw: Callable[..., Any], dtypes: tuple[str, ...], graph: bool = False) -> dict[str, Any]:
    """A random small network of registered blocks: each next block is one that accepts the rank the network has so
    far (by the loader's shape semantics); a network the loader refuses stops growing (and counts as invalid)."""
    common = draw(_common(dtypes))
    shape = draw(shape_strategy(4))
    layers: list[dict[str, Any]] = []
    rank: int | None = 4
    for _ in range(draw(st.integers(1, MAX_LAYERS))):
        candidates = [b for b in all_blocks().values() if rank in _ranks(b) and not b.holds_network and b.arity == 1]
        if rank is None or not candidates:
            break
        layers.append(draw(layer_strategy(draw(st.sampled_from(candidates)), rank)))
        rank = _output_rank(_case(_network(layers), shape, common))
    return _case(_network(layers), shape, common) if not graph else _joined(draw, layers, shape, common, rank)


def _joined(draw: Callable[..., Any], layers: list[dict[str, Any]], shape: list[int], common: dict[str, Any],
            rank: int | None) -> dict[str, Any]:
    """The drawn chain as a graph's named nodes, its last node joined with itself (or with the input where the
    shapes agree) by a drawn join."""
    nodes = [{"name": f"n{i}", **layer} for i, layer in enumerate(layers)]
    joins = [b for b in all_blocks().values() if b.arity != 1 and rank is not None and rank in _ranks(b)]
    if nodes and joins:
        last = nodes[-1]["name"]
        other = draw(st.sampled_from([last, "input"]))
        join = draw(st.sampled_from(joins))
        nodes.append({"name": "join", **draw(layer_strategy(join, rank)), "inputs": [last, other]})
        case = _case(_graph(nodes), shape, common)
        if _output_rank(case) is not None or other == last:
            return case
        nodes[-1]["inputs"] = [last, last]  # the input's shape differs from the chain's: join the chain with itself
    return _case(_graph(nodes), shape, common)


def case_strategy(block: str, dtypes: tuple[str, ...] = DEFAULT_DTYPES) -> st.SearchStrategy[dict[str, Any]]:
    """Case mappings for `block`: random networks for the block that holds one (sequential), else cases of it."""
    found = get_block(block)
    if found.holds_network:
        return network_case_strategy(dtypes, graph=found.graph)
    return block_case_strategy(found, dtypes)


def fuzzable_blocks() -> list[str]:
    """Every name `xfw-harness fuzz` takes: each registered block."""
    return list(all_blocks())
