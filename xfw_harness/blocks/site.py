"""What a block is given and what it hands over: a `Site` (one block at one point of a network: its parameters and
what flows into it), and the weight transfer as data (`WeightCopy`, with a `StateConvention` where the frameworks
keep a state differently), with the path helpers that resolve a copy inside a PyTorch module or a Keras layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xfw_harness.core.layout import CHANNELS_LAST, Layout


@dataclass(frozen=True)
class Site:
    """One block at one point of a network: its normalised params and what flows into it."""

    params: dict[str, Any]
    in_shape: tuple[int, ...]  # channels-first, batch included
    dtype: str
    mode: str  # "eval" | "train"
    layout: Layout = CHANNELS_LAST  # how the Keras input maps onto the channels-first input
    seed: int = 0
    # `defaults: native` (issue 5): the names of the parameters the case wrote for this layer, which are all the
    # native builders may pass; None: the harness builds with every parameter explicit (its normal mode).
    # `Block.weight_copies` reads it too: with it set, a block returns the copies a hand port makes (a dense after a
    # flatten: Linear's weight transposed, rows NOT permuted into Keras's (H, W, C) order): the port's naivety lives
    # in each block, beside its correct copies, not in the runner.
    written: frozenset[str] | None = None
    # A block of several inputs (`Block.arity` other than 1: an add, a concatenation in a graph): every input's
    # channels-first shape and Keras layout, in order; `in_shape` and `layout` are the first's. Empty for one input.
    in_shapes: tuple[tuple[int, ...], ...] = ()
    in_layouts: tuple[Layout, ...] = ()

    @property
    def rank(self) -> int:
        return len(self.in_shape)

    # The one reading of `written` for the native builders. They only run in `defaults: native` mode, where
    # `written` is set; a site without it (harness mode, a test building a native layer by hand) counts every
    # parameter as written: the harness's own build writes them all (tests/blocks/test_pooling_reshaping.py).
    @property
    def written_names(self) -> frozenset[str]:
        """The names of the parameters a native builder passes: `written`, or every parameter when it is None."""
        return frozenset(self.params) if self.written is None else self.written

    @property
    def written_params(self) -> dict[str, Any]:
        """The written parameters (`written_names`) with their normalised values, in the schema's order."""
        names = self.written_names
        return {name: value for name, value in self.params.items() if name in names}

    def written_args(self, **names: str) -> dict[str, Any]:
        """The written parameters among `names`, under a framework's argument names:
        `site.written_args(strides="stride", use_bias="bias")` is {"stride": ...} when the case wrote only strides."""
        written = self.written_names
        return {arg: self.params[name] for name, arg in names.items() if name in written}


@dataclass(frozen=True)
class StateConvention:
    """Where the frameworks keep a state (a running statistic) in different conventions: how Keras's value is put
    into PyTorch's before the two are compared after train-mode steps (xfw_harness.engine.statistics).

    `reconcile(keras_value, batches)` gets Keras's value (float64) and the channels-first inputs the PyTorch module
    holding the state received, one per step; `note` says in words what was reconciled, for the verdict's message.
    """

    reconcile: Callable[[Any, Any], Any]
    note: str


@dataclass(frozen=True)
class WeightCopy:
    """One PyTorch parameter copied into one Keras variable, as data.

    `Block.transfer_weights` runs these and `xfw-harness show` prints them: one home for the mapping, so the printed
    weight transfer is the one that runs. Paths are dotted attribute paths in which an integer part indexes
    (`1.weight` is `module[1].weight`; `layers.1.kernel` is `layer.layers[1].kernel`).
    """

    torch_path: str  # the parameter inside the PyTorch module: "weight", "1.weight", "linear.bias"
    keras_path: str  # the variable inside the built Keras layer: "kernel", "layers.1.bias"
    # A xfw_harness.core.layout function, called convert(array, *args); None: copied as it is.
    convert: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    convention: StateConvention | None = None  # a state the frameworks keep differently (batch norm's variance)


def resolve_path(obj: Any, path: str) -> Any:
    """The object at a dotted `WeightCopy` path inside `obj` (an integer part indexes)."""
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def parameter_path(module: Any, tensor: Any) -> str:
    """The dotted name of `tensor` among the PyTorch module's parameters and buffers (running statistics), found by
    identity."""
    for name, param in (*module.named_parameters(), *module.named_buffers()):
        if param is tensor:
            return name
    raise LookupError(f"the tensor is not a parameter of {type(module).__name__}")


def sublayer_path(layer: Any, sub: Any) -> str:
    """The dotted path prefix of Keras layer `sub` inside `layer`: "" for itself, "layers.<i>." in a Sequential."""
    if sub is layer:
        return ""
    for i, candidate in enumerate(getattr(layer, "layers", ())):
        if candidate is sub:
            return f"layers.{i}."
    raise LookupError(f"{sub!r} is not inside {layer!r}")


def find_keras_layer(layer: Any, cls: type) -> Any:
    """The first `cls` layer inside `layer` (itself, or one of a keras.Sequential's layers)."""
    if isinstance(layer, cls):
        return layer
    for sub in getattr(layer, "layers", ()):
        if isinstance(sub, cls):
            return sub
    raise LookupError(f"no {cls.__name__} in {layer!r}")
