"""The block registry and the interface every block family implements.

A block is one class in its family's module (harness/blocks/<family>.py) with everything about it side by
side: its parameter schema, its shape semantics (which also refuse what cannot work), its PyTorch builder,
its Keras builder and its weight transfer. `@register` adds it here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.core.errors import CaseError, Refusal, did_you_mean, show
from harness.core.frameworks import to_numpy
from harness.core.layout import CHANNELS_LAST, Layout
from harness.core.schema import Param


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

    @property
    def rank(self) -> int:
        return len(self.in_shape)

    # The one reading of `written` for the native builders. They only run in `defaults: native` mode, where
    # `written` is set; a site without it (harness mode, a test building a native layer by hand) counts every
    # parameter as written: the harness's own build writes them all (tests/test_blocks_pooling_reshaping.py).
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
    into PyTorch's before the two are compared after train-mode steps (harness.engine.statistics).

    `reconcile(keras_value, batches)` gets Keras's value (float64) and the channels-first inputs the PyTorch module
    holding the state received, one per step; `note` says in words what was reconciled, for the verdict's message.
    """

    reconcile: Callable[[Any, Any], Any]
    note: str


@dataclass(frozen=True)
class WeightCopy:
    """One PyTorch parameter copied into one Keras variable, as data.

    `Block.transfer_weights` runs these and `harness show` prints them: one home for the mapping, so the printed
    weight transfer is the one that runs. Paths are dotted attribute paths in which an integer part indexes
    (`1.weight` is `module[1].weight`; `layers.1.kernel` is `layer.layers[1].kernel`).
    """

    torch_path: str  # the parameter inside the PyTorch module: "weight", "1.weight", "linear.bias"
    keras_path: str  # the variable inside the built Keras layer: "kernel", "layers.1.bias"
    convert: Callable[..., Any] | None = None  # a harness.core.layout function, called convert(array, *args); None: as is
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


class Block:
    name: ClassVar[str]
    family: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    ranks: ClassVar[tuple[int, ...] | None] = None  # accepted input ranks; None: any rank >= 2
    # Names of the PyTorch-layout arrays a `weights: {path: ...}` file may give (e.g. weight, bias).
    weight_names: ClassVar[tuple[str, ...]] = ()
    # Stochastic in train mode: outputs are compared statistically (see compare.check_dropout_sample).
    stochastic: ClassVar[bool] = False

    # --- semantics -------------------------------------------------------------------------------------
    def check_input(self, site: Site) -> None:
        rank = site.rank
        if rank < 2 or (self.ranks is not None and rank not in self.ranks):
            want = " or ".join(str(r) for r in self.ranks) if self.ranks else ">= 2"
            raise Refusal(f"{self.name} needs an input of rank {want} (channels-first), got shape "
                          f"{list(site.in_shape)}", field="input.shape")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        """Channels-first output shape. Raises Refusal for what cannot work or has no exact translation."""
        return site.in_shape

    def output_layout(self, site: Site) -> Layout:
        """How the Keras output maps onto the channels-first output (only flatten changes it)."""
        return site.layout

    def reduction_length(self, site: Site) -> int:
        """How many terms one output element sums (drives the default tolerance)."""
        return 1

    def largest_array(self, site: Site) -> int:
        """Elements of the largest array the block makes besides its output (a padded input, a weight): the loader
        refuses a point over its memory budget (harness.cases.loader.MAX_ELEMENTS) before anything is allocated."""
        return 0

    # --- builders --------------------------------------------------------------------------------------
    def torch_module(self, site: Site) -> Any:
        raise NotImplementedError

    def keras_layer(self, site: Site) -> Any:
        raise NotImplementedError

    def torch_parameters(self, module: Any) -> dict[str, Any]:
        """The module's weights by PyTorch-layout name (`weight_names`)."""
        return {}

    def weight_copies(self, site: Site, module: Any, layer: Any) -> list[WeightCopy]:
        """Which PyTorch parameter goes into which variable of the built Keras layer, through which conversion.

        Data rather than code so that `transfer_weights` and `harness show` read the same mapping. Default: none.
        """
        return []

    # --- documented framework differences -------------------------------------------------------------------
    def known_difference(self, site: Site) -> str | None:
        """The name of the cases/known_differences.yaml entry (marked `expect.divergent`) saying that PyTorch and
        Keras differ at this site for a documented framework reason no adapter can remove (TensorFlow's float64
        GELU), or None (the default): they must agree. `harness fuzz` does not search such sites unless asked
        (--include-known); tests/test_fuzz.py checks that each name is such an entry and that it really differs."""
        return None

    # --- the third opinion ----------------------------------------------------------------------------------
    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        """The block's stated semantics in float64, computed by neither framework: ONNX's reference runtime
        (harness.blocks.reference.onnx_op) or NumPy where it is a line of arithmetic.

        `x` is the channels-first float64 input; `weights` the module's `torch_parameters`, PyTorch layout, float64
        (what was copied into both frameworks). Returns the channels-first output. A block with no deterministic
        semantics at `site` (dropout in train mode) raises Refusal.
        """
        raise NotImplementedError(f"{self.name} has no reference implementation")

    # --- native defaults: the layer as a person porting by hand writes it -----------------------------------
    def native_torch_module(self, site: Site) -> Any:
        """PyTorch's own layer given only the parameters the case wrote (`site.written`), under PyTorch's names:
        every other argument is left to PyTorch's default. Raises Refusal for a written value PyTorch's layer
        cannot take as it is (a port by hand would not compile either)."""
        raise NotImplementedError(f"{self.name} has no native builders")

    def native_keras_layer(self, site: Site) -> Any:
        """Keras's own layer given only the parameters the case wrote, under Keras's names (see above)."""
        raise NotImplementedError(f"{self.name} has no native builders")

    # --- porting a PyTorch model (harness port) ------------------------------------------------------------
    # The PyTorch module classes (by name, e.g. "Conv2d") that `params_from_torch` reads.
    torch_types: ClassVar[tuple[str, ...]] = ()

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        """The case `params` (as a person would write them in YAML) describing a PyTorch module of one of
        `torch_types` that receives a channels-first input of `in_shape`. Raises Refusal naming the attribute that
        has no translation."""
        raise NotImplementedError(f"{self.name} cannot be read from a PyTorch module")

    def transfer_weights(self, site: Site, module: Any, layer: Any) -> None:
        """Copy the PyTorch module's weights into the built Keras layer, converting layouts (harness.core.layout)."""
        for copy in self.weight_copies(site, module, layer):
            value = to_numpy(resolve_path(module, copy.torch_path))
            if copy.convert is not None:
                value = copy.convert(value, *copy.args)
            resolve_path(layer, copy.keras_path).assign(value)


REGISTRY: dict[str, Block] = {}


def register(cls: type[Block]) -> type[Block]:
    if cls.name in REGISTRY:
        raise ValueError(f"block {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    return cls


def get_block(name: Any) -> Block:
    """The registered block called `name`, or a CaseError that suggests the closest names."""
    if not isinstance(name, str) or name not in REGISTRY:
        names = sorted(REGISTRY) + ["sequential"]
        raise CaseError(f"unknown block {show(name)}{did_you_mean(name, names)}; known blocks: {', '.join(names)}",
                        field="block")
    return REGISTRY[name]


def all_blocks() -> dict[str, Block]:
    return dict(sorted(REGISTRY.items()))




def find_keras_layer(layer: Any, cls: type) -> Any:
    """The first `cls` layer inside `layer` (itself, or one of a keras.Sequential's layers)."""
    if isinstance(layer, cls):
        return layer
    for sub in getattr(layer, "layers", ()):
        if isinstance(sub, cls):
            return sub
    raise LookupError(f"no {cls.__name__} in {layer!r}")
