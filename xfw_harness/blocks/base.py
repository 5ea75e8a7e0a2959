"""The block contract: everything the rest of the harness may know about a block is an attribute or a method here.

A block is one class in its family's module (xfw_harness/blocks/<family>.py) with everything about it side by side, as
PyTorch's OpInfo entries and nobuco's converters keep an operator's facts in one place:
- what it is: `name`, `family`, `doc`, its parameter schema (`params`), the input ranks it takes;
- its semantics: the output shape (which also refuses what cannot work or has no exact translation), the layout of
  its Keras output, the reduction length that sizes its default tolerance, the largest array it makes;
- its PyTorch builder, its Keras builder and its weight transfer (`weight_copies`, data that `xfw-harness show` prints);
- its float64 reference (`reference`, the third opinion);
- the hand port's builders (`native_torch_module`, `native_keras_layer`: `defaults: native`);
- what `xfw-harness port` reads (`torch_types`, `params_from_torch`);
- the documented framework differences it is subject to (`known_differences`, in the manner of PyTorch's
  DecorateInfo on an OpInfo entry);
- every path where the harness computes something itself instead of a framework's layer (`emulations`), with the
  corners where a mistake in it would hide, so that a test can see each pinned by shipped cases;
- for a stochastic block, what can be checked of a sample (`check_sample`, `sample_rule`);
- for a block made of other blocks, the case keys holding its layers (`nested`), and whether a case of it is a
  whole network (`holds_network`);
- the case `xfw-harness new` prints (`skeleton`, where the generic one from the schema does not serve) and the case
  `make bench` times (`benchmark`).
Generic code (the loader, the engine, the tools, the report) asks the block and never names one. Adding a block is
one class in a family module plus its YAML cases; the registry, `xfw-harness list`, `xfw-harness new`, `xfw-harness
fuzz`, the docs and the generic tests take it up from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from xfw_harness.blocks.site import Site, WeightCopy, resolve_path
from xfw_harness.core.errors import Refusal
from xfw_harness.core.layout import Layout
from xfw_harness.core.lazy import frameworks
from xfw_harness.core.schema import Param
from xfw_harness.core.verdicts import Verdict

# The input `make bench` times a block on, unless it says otherwise: batch 8, 32 channels, 32x32.
BENCHMARK_INPUT: dict[str, Any] = {"shape": [8, 32, 32, 32]}


@dataclass(frozen=True)
class KnownDifference:
    """A documented, real difference between PyTorch and Keras at some sites of a block, that no adapter can remove
    (TensorFlow's float64 GELU is only float32-accurate): declared on the block, as a DecorateInfo is on an OpInfo.

    `entry` names its case in cases/known_differences.yaml (marked `expect: divergent`, with its source);
    `applies(site)` says where it holds. `xfw-harness fuzz` counts such sites as known and does not search them
    (unless --include-known); the docs list them under the block.
    """

    entry: str
    applies: Callable[[Site], bool]
    summary: str


@dataclass(frozen=True)
class Corner:
    """A corner of an emulation's arithmetic where a mistake hides (a kernel smaller than its stride, a size-1 axis,
    padding over half the window, an odd or an even size): `applies(site)` says where it holds."""

    name: str
    applies: Callable[[Site], bool]


# The corners every spatial block shares (their `applies`): a size-1 spatial axis, an odd one, an even one.
def size_one_axis(site: Site) -> bool:
    return 1 in site.in_shape[2:]


def odd_size(site: Site) -> bool:
    return any(n % 2 for n in site.in_shape[2:])


def even_size(site: Site) -> bool:
    return any(n % 2 == 0 for n in site.in_shape[2:])


# How an emulation can be checked from outside the harness's own arithmetic (Emulation.checked_by).
CHECKED_BY = ("reference", "shape", "output", "statistics", "sample", "framework")


@dataclass(frozen=True)
class Emulation:
    """A path where the harness computes something itself instead of a framework's layer doing it (padding steps,
    subsampling, inserted zeros, divisor corrections, crop arithmetic, variance reconciliation), on one side or on
    both: declared on the block, as a KnownDifference is.

    Where both frameworks run the harness's arithmetic they agree on whatever it computes, right or wrong: only a check
    outside it pins it. `checked_by` says which check can: "reference", the block's float64 reference computes the
    same thing without the harness's arithmetic (then any shipped case that computes the reference pins it);
    "shape", the reference reads the harness's own arithmetic for the output's size and only an expected output
    shape (`expect.shape`) pins it; "output", only expected values (`expect.output`) do; "statistics", a state both
    frameworks keep differently (batch norm's running variance), pinned by the comparison of the running statistics
    after train-mode steps; "sample", a stochastic layer's train-mode draw, pinned only by each framework's sample
    check (its statistics), since the random masks never match; "framework", an emulation on one side only whose
    reference shares its arithmetic, pinned by the other side's own framework layer (any comparison of PyTorch
    with Keras at that site).
    tests/blocks/test_emulations_pinned.py checks that shipped cases pin every emulation at each of its `corners`.
    """

    name: str  # unique in its block: "same_crop", "stride_1_subsample"
    summary: str  # what the harness computes, on which side, and why no framework layer serves
    applies: Callable[[Site], bool]
    checked_by: str  # one of CHECKED_BY
    corners: tuple[Corner, ...] = ()


class SkeletonWriter(Protocol):
    """What a block's own `skeleton` writes its lines with (xfw_harness.tools.new provides it): commented YAML lines."""

    def line(self, indent: int, text: str, comment: str = "") -> list[str]:
        """A YAML line at `indent`, its comment aligned (wrapped below it when long)."""

    def input_lines(self, block: Block, shape: list[int], who: str | None = None) -> list[str]:
        """The commented `input:` mapping of a case whose first layer is `block`."""

    def tolerance_line(self) -> list[str]:
        """The commented-out `tolerance:` line, with the default rule."""


class Block:
    """The contract (module doc). Subclasses set the class attributes and override the methods that apply."""

    name: ClassVar[str]
    family: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    ranks: ClassVar[tuple[int, ...] | None] = None  # accepted input ranks; None: any rank >= 2
    # Names of the PyTorch-layout arrays a `weights: {path: ...}` file may give (e.g. weight, bias).
    weight_names: ClassVar[tuple[str, ...]] = ()
    # Stochastic in train mode: each framework's sample is checked on its own (check_sample), never compared.
    stochastic: ClassVar[bool] = False
    # What check_sample checks, in words (`xfw-harness show` prints it); stochastic blocks only.
    sample_rule: ClassVar[str] = ""
    # What `padding: same` means for this block, where it is not the forward convolution's (xfw_harness.core.spatial):
    # `xfw-harness show` prints it beside the layer.
    padding_doc: ClassVar[str | None] = None
    # Documented framework differences at some of its sites (KnownDifference).
    known_differences: ClassVar[tuple[KnownDifference, ...]] = ()
    # Where the harness computes something itself instead of a framework layer (Emulation).
    emulations: ClassVar[tuple[Emulation, ...]] = ()
    # A block made of other blocks: the case keys that hold lists of layers, written like a network's `layers`
    # (True: required and non-empty). The loader reads them into params[key], a tuple of xfw_harness.blocks.Layer.
    nested: ClassVar[dict[str, bool]] = {}
    # A case of this block is a whole network: its nested `layers` are the point's layers, built, run and compared
    # one by one (per-layer localisation, per-layer weights). Only at the top of a case, never nested.
    holds_network: ClassVar[bool] = False
    # A network block whose layers are the named nodes of a directed acyclic graph, each naming its inputs
    # (`graph`); False: a chain (`sequential`).
    graph: ClassVar[bool] = False
    # How many inputs the block takes: 1, or None for two or more (an add, a concatenation: nodes of a graph). A
    # block of several inputs is given them all in its Site (`in_shapes`, `in_layouts`); its PyTorch module is
    # called with them as arguments, its Keras layer with their list (as Keras's merging layers are).
    arity: ClassVar[int | None] = 1
    # Takes an input in any Keras layout (`Layout.axes` set, after a permute in a PyTorch model): an elementwise block,
    # or one whose axis the layout maps. Others take channels-last (or flattened) inputs only (`check_input`).
    any_layout: ClassVar[bool] = False
    # The case `make bench` times (benchmarks/test_block_speed.py): params and input beside `block`.
    benchmark: ClassVar[dict[str, Any]] = {"input": BENCHMARK_INPUT}

    # --- semantics -------------------------------------------------------------------------------------------
    def check_arity(self, site: Site, count: int) -> None:
        """Refuse a node given a number of inputs the block does not take."""
        if self.arity == 1 and count != 1:
            raise Refusal(f"{self.name} takes one input, got {count}", field="inputs")
        if self.arity is None and count < 2:
            raise Refusal(f"{self.name} joins two or more inputs, got {count}", field="inputs")

    def check_input(self, site: Site) -> None:
        if not self.any_layout and not all(layout.standard for layout in (site.in_layouts or (site.layout,))):
            raise Refusal(f"{self.name} takes a channels-last Keras tensor; its input is held as "
                          f"{site.layout.describe()} after a permute: permute back to (N, C, ...) first",
                          field="input.shape")
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
        refuses a point over its memory budget (xfw_harness.blocks.planning.MAX_ELEMENTS) before anything is
        allocated."""
        return 0

    # --- builders ----------------------------------------------------------------------------------------------
    def torch_module(self, site: Site) -> Any:
        raise NotImplementedError

    def keras_layer(self, site: Site) -> Any:
        raise NotImplementedError

    def torch_parameters(self, module: Any) -> dict[str, Any]:
        """The module's weights by PyTorch-layout name (`weight_names`)."""
        return {}

    def weight_copies(self, site: Site, module: Any, layer: Any) -> list[WeightCopy]:
        """Which PyTorch parameter goes into which variable of the built Keras layer, through which conversion.

        Data rather than code so that `transfer_weights` and `xfw-harness show` read the same mapping. Default: none.
        """
        return []

    def transfer_weights(self, site: Site, module: Any, layer: Any) -> None:
        """Copy the PyTorch module's weights into the built Keras layer, converting layouts
        (xfw_harness.core.layout)."""
        for copy in self.weight_copies(site, module, layer):
            value = frameworks.to_numpy(resolve_path(module, copy.torch_path))
            if copy.convert is not None:
                value = copy.convert(value, *copy.args)
            # A copy: JAX's Keras variable keeps a CPU NumPy array zero-copy, and to_numpy of a torch tensor shares
            # its memory, so PyTorch's in-place updates (running statistics, optimiser steps) would change Keras's.
            resolve_path(layer, copy.keras_path).assign(np.array(value, copy=True))

    # --- documented framework differences ------------------------------------------------------------------------
    def known_difference(self, site: Site) -> str | None:
        """The cases/known_differences.yaml entry of the first of `known_differences` that applies at `site`, or
        None (the default): the frameworks must agree there. tests/tools/test_fuzz.py checks that each entry is a
        divergent case of the catalogue and that it really differs."""
        return next((d.entry for d in self.known_differences if d.applies(site)), None)

    # --- emulations ----------------------------------------------------------------------------------------------
    def inner_sites(self, site: Site) -> list[tuple[Block, Site]]:
        """The blocks nested in this one at `site`, each with its own site (a composite's layers): none by default."""
        return []

    def emulations_at(self, site: Site) -> list[tuple[Block, Emulation, Site]]:
        """Every emulation that runs at `site`: this block's own that apply, then its nested blocks' (recursively),
        each with the block that declares it and the site where it applies."""
        own = [(self, e, site) for e in self.emulations if e.applies(site)]
        return own + [found for block, inner in self.inner_sites(site) for found in block.emulations_at(inner)]

    def notes(self, site: Site) -> tuple[str, ...]:
        """What the harness computes itself at `site` because Keras (or its backend) offers no layer for it (strides
        with dilation, a padding_mode, a dilated pool): said beside a pass (`Result.notes`, printed by `xfw-harness
        run` and shown in the report), since a port that uses Keras's own layer there will not get this far.
        Default: none."""
        return ()

    # --- the third opinion -------------------------------------------------------------------------------------
    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        """The block's stated semantics in float64, computed by neither framework: ONNX's reference runtime
        (xfw_harness.blocks.reference.onnx_op) or NumPy where it is a line of arithmetic.

        `x` is the channels-first float64 input; `weights` the module's `torch_parameters`, PyTorch layout, float64
        (what was copied into both frameworks). Returns the channels-first output. A block with no deterministic
        semantics at `site` (dropout in train mode) raises Refusal.
        """
        raise NotImplementedError(f"{self.name} has no reference implementation")

    # --- a stochastic block's sample ---------------------------------------------------------------------------
    def check_sample(self, site: Site, x: Any, y: Any, what: str) -> Verdict:
        """What can be checked of one train-mode sample `y` of this block on input `x` (both channels-first), in one
        framework alone (`what` names it): the frameworks' random masks never match."""
        raise NotImplementedError(f"{self.name} is not stochastic")

    # --- native defaults: the layer as a person porting by hand writes it ----------------------------------------
    def native_torch_module(self, site: Site) -> Any:
        """PyTorch's own layer given only the parameters the case wrote (`site.written`), under PyTorch's names:
        every other argument is left to PyTorch's default. Raises Refusal for a written value PyTorch's layer
        cannot take as it is (a port by hand would not compile either)."""
        raise NotImplementedError(f"{self.name} has no native builders")

    def native_keras_layer(self, site: Site) -> Any:
        """Keras's own layer given only the parameters the case wrote, under Keras's names (see above)."""
        raise NotImplementedError(f"{self.name} has no native builders")

    # --- porting a PyTorch model (xfw-harness port) ------------------------------------------------------------------
    # The PyTorch module classes (by name, e.g. "Conv2d") that `params_from_torch` reads; and those it reads only
    # where no block reads them as one of its `torch_types` (AdaptiveAvgPool2d to a divisor of the input is window
    # pooling, where global pooling does not take it).
    torch_types: ClassVar[tuple[str, ...]] = ()
    torch_fallback_types: ClassVar[tuple[str, ...]] = ()
    # The PyTorch functions and tensor methods (by name: "add", "cat", "mul") whose calls in a model's forward
    # `params_from_call` reads (xfw-harness port's graph capture). Functional forms of a module (F.relu for nn.ReLU) are
    # read as that module and need not be listed.
    torch_functions: ClassVar[tuple[str, ...]] = ()

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        """The case `params` of a call of `function` (one of `torch_functions`) in a model's forward, given its
        non-tensor arguments as written (`args`, with None where a tensor input stands; `kwargs`) and its tensor
        inputs' channels-first shapes; a parameter of the model used directly in the call (ConvNeXt's
        `self.layer_scale * x`) stands as its NumPy value. Raises Refusal naming what has no translation."""
        raise NotImplementedError(f"{self.name} cannot be read from a function call")

    def weights_from_call(self, args: tuple) -> dict[str, Any]:
        """The block's weights (PyTorch layout, under `weight_names`) from a call's parameter operands (NumPy values
        among `args`): none by default."""
        return {}

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        """The case `params` (as a person would write them in YAML) describing a PyTorch module of one of
        `torch_types` (or `torch_fallback_types`) that receives a channels-first input of `in_shape`. Raises Refusal
        naming the attribute that has no translation."""
        raise NotImplementedError(f"{self.name} cannot be read from a PyTorch module")

    # --- the cases the tools write ---------------------------------------------------------------------------------
    def skeleton(self, writer: SkeletonWriter) -> list[str] | None:
        """The commented YAML case `xfw-harness new` prints for this block, or None (the default): the generic one made
        from the parameter schema serves."""
        return None

    def benchmark_case(self) -> dict[str, Any]:
        """The case `make bench` times for this block: a size a real network has."""
        return {"name": self.name, "block": self.name, **self.benchmark}
