"""The registry: every block by name. `@register` on a block class (in its family's module) adds it; importing
`xfw_harness.blocks` imports every family, so the registry is complete wherever a block is looked up."""

from __future__ import annotations

from typing import Any

from xfw_harness.blocks.base import Block
from xfw_harness.core.errors import CaseError, did_you_mean, show

REGISTRY: dict[str, Block] = {}


def register(cls: type[Block]) -> type[Block]:
    if cls.name in REGISTRY:
        raise ValueError(f"block {cls.name!r} registered twice")
    cls.__reduce__ = _pickled_by_name  # type: ignore[method-assign]
    REGISTRY[cls.name] = cls()
    return cls


def _pickled_by_name(block: Block) -> tuple[Any, tuple[str]]:
    """A block pickles as its name (a point sent to a worker process running another Keras backend): the process
    that unpickles it has the same registry, and a block stays one instance per process."""
    return get_block, (block.name,)


def get_block(name: Any) -> Block:
    """The registered block called `name`, or a CaseError that suggests the closest names."""
    if not isinstance(name, str) or name not in REGISTRY:
        names = sorted(REGISTRY)
        raise CaseError(f"unknown block {show(name)}{did_you_mean(name, names)}; known blocks: {', '.join(names)}",
                        field="block")
    return REGISTRY[name]


def all_blocks() -> dict[str, Block]:
    """Every registered block, by name, sorted."""
    return dict(sorted(REGISTRY.items()))


def network_block() -> Block:
    """The block whose cases are whole networks (`holds_network`: `sequential`), for messages that tell a user to
    write one."""
    return next(block for block in all_blocks().values() if block.holds_network and not block.graph)


def graph_block() -> Block:
    """The network block whose layers are a graph's named nodes (`graph`), for the tools that write one."""
    return next(block for block in all_blocks().values() if block.holds_network and block.graph)
