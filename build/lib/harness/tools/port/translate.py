"""From the model's leaf modules to blocks, for `harness port`: which block reads each leaf, and its case params.

Each leaf must be read by a registered block: the blocks declare the PyTorch classes they read (`torch_types`,
matched by class name as the blocks themselves check) and translate a module into case params
(`params_from_torch(module, in_shape)`, given the leaf's real input shape from the probe run). Every leaf that
cannot be ported is named with its place in the model, all of them at once (`translate`): without a block
(`features.3: torch.nn.LSTM has no block`), refused by its block (`has no exact translation`), called more than
once or not with a tensor, or not reached because the model's forward failed first.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from harness.blocks import Block, all_blocks
from harness.cases import InputSpec
from harness.core.errors import CaseError, Refusal
from harness.core.frameworks import torch
from harness.tools.port.model import ForwardError, Leaf, PortError, probe


class Translation(NamedTuple):
    """The model as a chain of blocks: its leaves in the order its forward calls them, each one's block and params,
    the input shape (channels-first, batch included), the case's input and the model's output on it."""

    leaves: list[Leaf]
    mapped: list[tuple[Block, dict]]
    input_shape: tuple[int, ...]
    x: np.ndarray
    model_out: np.ndarray


def readers() -> dict[str, list[Block]]:
    """Each PyTorch class name that a block reads, and the blocks that read it in the order they are tried: those
    that read it as one of their `torch_types`, then those that read it only where none of those does
    (`torch_fallback_types`: an AdaptiveAvgPool2d that global pooling refuses may be window pooling)."""
    by_type: dict[str, list[Block]] = {}
    for attribute in ("torch_types", "torch_fallback_types"):
        for block in all_blocks().values():
            for name in getattr(block, attribute):
                by_type.setdefault(name, []).append(block)
    return by_type


def _supported_text(by_type: dict[str, list[Block]]) -> str:
    return ", ".join(sorted(by_type))


def no_block(leaf: Leaf, by_type: dict[str, list[Block]]) -> str | None:
    """A line naming the leaf and its place in the model when no block reads its class; None when one does."""
    cls = type(leaf.module)
    if cls.__name__ in by_type:
        return None
    base = next((c for c in cls.__mro__[1:] if c.__module__.startswith("torch.nn") and c.__name__ in by_type), None)
    why = (f" (it subclasses torch.nn.{base.__name__}, but its forward may differ: only the class itself is read)"
           if base is not None else "")
    return f"{leaf.where}: {leaf.type_name} has no block{why}"


def default_shape(leaves: list[Leaf]) -> tuple[int, ...]:
    """The input shape when --input-shape is not given: only a model that starts with nn.Linear fixes it."""
    first = leaves[0].module if leaves else None
    if isinstance(first, torch.nn.Linear):
        return 2, first.in_features
    kind = type(first).__name__ if first is not None else "nothing"
    raise PortError(f"give --input-shape N,C,H,W: the model's first layer ({kind}) does not fix its input's size")


def translate(leaves: list[Leaf], by_type: dict[str, list[Block]], input_shape: tuple[int, ...] | None,
              model: Any, dtype: str) -> Translation:
    """Each leaf's block and params, the leaves in the order the forward calls them; the input shape, the case's
    input and the model's output on it. Else PortError naming, in the model's order and in one run, every leaf that
    cannot be ported: those no block reads and those whose block refuses them."""
    problems = {i: line for i, leaf in enumerate(leaves) if (line := no_block(leaf, by_type)) is not None}
    # The supported classes follow the lines when a leaf has no block.
    supported = [f"supported: {_supported_text(by_type)}"] if problems else []
    try:
        shape = input_shape or default_shape(leaves)
    except PortError:
        if problems:
            raise PortError("\n".join([*problems.values(), *supported])) from None
        raise
    x = InputSpec(shape=shape, dtype=dtype, seed=0).make()  # the case's own input: `input: {shape, dtype, seed: 0}`
    # The model runs with its unsupported layers too: the others need their real input shapes to be translated.
    stopped: PortError | None = None
    try:
        model_out = probe(model, leaves, x)
    except PortError as e:
        if not problems:
            raise
        stopped = e  # most likely an unsupported layer's doing (an LSTM's tuple): said after those
    unchecked = []
    mapped: dict[int, tuple[Block, dict]] = {}
    for i, leaf in enumerate(leaves):
        if i in problems:
            continue
        if isinstance(stopped, ForwardError) and (not leaf.inputs or leaf is stopped.leaf):
            unchecked.append(leaf.where)  # not reached, or the forward failed in it
        elif len(leaf.inputs) != 1:
            problems[i] = (f"{leaf.where}: {leaf.type_name} is called {len(leaf.inputs)} times by the model's "
                           "forward; a layer of a chain is called once")
        elif leaf.inputs[0] is None:
            problems[i] = f"{leaf.where}: {leaf.type_name} is not called with a tensor as its first argument"
        else:
            try:
                mapped[i] = block_for(leaf, tuple(leaf.inputs[0].shape), by_type)
            except PortError as e:
                problems[i] = str(e)
    if unchecked:
        at = f"in {stopped.leaf.where} ({stopped.leaf.type_name})" if stopped.leaf else "between its layers"
        problems[len(leaves)] = (f"{', '.join(unchecked)}: not checked (the model's forward failed {at}: "
                                 f"{stopped.error})")
    if problems:
        raise PortError("\n".join([*(problems[i] for i in sorted(problems)), *supported]))
    order = sorted(range(len(leaves)), key=lambda i: leaves[i].order)
    return Translation([leaves[i] for i in order], [mapped[i] for i in order], shape, x, model_out)


def block_for(leaf: Leaf, in_shape: tuple[int, ...], by_type: dict[str, list[Block]]) -> tuple[Block, dict]:
    """The block that reads the leaf, and its case params; PortError naming the leaf's place otherwise."""
    refusals = []
    for block in by_type[type(leaf.module).__name__]:  # `no_block` has named the leaves no block reads
        try:
            params = block.params_from_torch(leaf.module, in_shape)
        except (Refusal, CaseError) as e:
            refusals.append(f"{block.name}: {e.message}")
            continue
        except NotImplementedError as e:
            refusals.append(f"{block.name}: {e}")
            continue
        return block, params
    raise PortError(f"{leaf.where}: {leaf.type_name} has no exact translation ({'; '.join(refusals)})")
