"""The data model of a case: the vocabulary a case file may use, and what the loader makes of it: `InputSpec`,
`Point` (one case at one sweep combination, everything needed to run it), `RefusedPoint`, `CaseEntry`; and the
sweep part of a test id.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xfw_harness.blocks import MAX_ELEMENTS, Layer, Site
from xfw_harness.core.backend_choice import home_backend
from xfw_harness.core.errors import CaseError
from xfw_harness.core.tolerance import Tolerance

CASE_KEYS = ("name", "description", "block", "params", "layers", "nodes", "input", "weights", "sweep", "mode",
             "tolerance", "expect", "devices", "check", "steps", "optimizer", "compare", "defaults", "torch_params",
             "keras_params", "max_elements", "backends")
CHECKS = ("forward", "backward", "train_step")  # `check:` what is compared (forward only by default)
# `compare:` torch vs keras (default), each framework's cpu vs gpu, or Keras on each backend against the others
COMPARES = ("frameworks", "devices", "backends")
DEFAULTS = ("harness", "native")  # `defaults:` every parameter explicit (default), or only those written
FRAMEWORKS = ("torch", "keras")
MAX_STEPS = 100
# `defaults: native` only: parameters a hand port wrote for one framework alone (merged over `params` there).
PORT_KEYS = ("torch_params", "keras_params")
LAYER_KEYS = ("block", "params", "weights", *PORT_KEYS)
NODE_KEYS = ("name", "inputs", *LAYER_KEYS)  # a graph's nodes: each named, with the names of its inputs
GRAPH_INPUT = "input"  # in a node's `inputs`: the network's input
NODE_NAME_RE = re.compile(r"^[\w.\-]+$")
INPUT_KEYS = ("shape", "dtype", "fill", "seed", "values", "path")
FILLS = ("normal", "uniform", "arange", "values", "file")
FILL_KEYS = {"values": "values", "file": "path"}  # a fill that reads its data from a key of `input`: that key
DTYPES = ("float32", "float64", "float16", "bfloat16")  # a bfloat16 array is ml_dtypes.bfloat16 (NUMPY_DTYPES)
MODES = ("eval", "train")
INPUT_SWEEP_KEYS = ("input.shape", "input.dtype", "input.seed")
CASE_SWEEP_KEYS = ("mode",)  # case keys a sweep may vary, besides a block's parameters and INPUT_SWEEP_KEYS
TOLERANCE_KEYS = ("atol", "rtol")
EXPECT_KEYS = ("shape", "output", "fails", "plant", "divergent", "reference", "refuses", "backends")
# `expect.plant:` a canary's planted difference in one comparison of the run (xfw_harness.engine.plants)
PLANT_KEYS = ("in", "side", "at", "value", "plus", "times")
PLANT_CHANGES = ("value", "plus", "times")  # what a plant does to its array's elements: one of them
NAME_RE = re.compile(r"^[\w.\-]+$")


@dataclass(frozen=True)
class Plant:
    """`expect.plant`: a difference planted into one comparison of a canary's run, so that the check that compares
    it must report it (xfw_harness.engine.plants applies it; docs/writing-cases.md, "Canaries").

    The comparison `what` names ("keras vs torch", "grad input", "reference": the float64 reference itself, "torch
    dropout sample": a sample's check, whose arrays are its input and output): the elements `at` (an index, or its
    leading part: a sub-array; every element when None) of its array named `side` get `change` ("value": set to
    `amount`, "plus": plus `amount`, "times": times `amount`)."""

    what: str
    side: str
    at: tuple[int, ...] | None
    change: str  # one of PLANT_CHANGES
    amount: float

    def describe(self) -> str:
        where = "every element" if self.at is None else f"{list(self.at)}"
        return f"{self.what}: {self.side}'s {where} {self.change} {self.amount!r}"


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"
    fill: str = "normal"
    seed: int = 0
    values: Any = None
    path: Path | None = None

    def make(self) -> np.ndarray:
        """The channels-first input array; the same for the same spec, on every machine. float16 and bfloat16
        (ml_dtypes.bfloat16) values are drawn in float64 like the others and rounded once to the dtype: both
        frameworks are fed this one array."""
        if self.fill == "values":
            return np.asarray(self.values, dtype=self.dtype)
        if self.fill == "file":
            return np.load(self.path, allow_pickle=False).astype(self.dtype)
        if self.fill == "arange":
            return np.arange(math.prod(self.shape), dtype=np.float64).reshape(self.shape).astype(self.dtype)
        rng = np.random.default_rng(self.seed)
        if self.fill == "uniform":
            return rng.uniform(-1.0, 1.0, self.shape).astype(self.dtype)
        return rng.standard_normal(self.shape).astype(self.dtype)


@dataclass
class Point:
    """One case at one sweep combination: everything needed to run it on a device."""

    file: str
    case: str
    sweep: dict[str, Any]  # the swept keys and their values at this point, as written
    layers: list[Layer]
    sequential: bool  # a network (its layers compared one by one): a chain, or a graph
    input: InputSpec
    mode: str
    sites: list[Site]
    output_shape: tuple[int, ...]
    tolerance: Tolerance | None
    expect_shape: tuple[int, ...] | None
    expect_output: np.ndarray | None
    devices: tuple[str, ...] | None
    raw: dict[str, Any] = field(default_factory=dict)  # the case at this point, sweep applied
    source_yaml: str = ""  # the case as written, sweep included (YAML, made once per case: see case_yaml)
    expect_fails: str | None = None  # a canary: the check that every comparison with the expectation must fail
    expect_plant: Plant | None = None  # a canary's planted difference (`expect.plant`), instead of an expectation
    checks: tuple[str, ...] = ("forward",)  # `check:` what is compared, in CHECKS
    steps: int = 1  # `steps:` train-mode forward passes (running statistics) and optimiser steps
    optimizers: tuple[dict[str, Any], ...] = ()  # `optimizer:` for check train_step, normalised (OPTIMIZERS)
    compare_with: str = "frameworks"  # `compare:` one of COMPARES
    defaults: str = "harness"  # `defaults:` one of DEFAULTS
    expect_divergent: str | None = None  # `expect.divergent: WHY`: a documented real difference (known_differences)
    # `expect.reference`: None (unset) computes the float64 reference at every point and holds both frameworks to
    # it where there is one; True also requires one (and, in a known difference, a side that agrees); False computes
    # it only when the frameworks disagree (xfw_harness.engine.third_opinion.wanted)
    expect_reference: bool | None = None
    expect_refuses: str | None = None  # `expect.refuses: TEXT`: Keras's refusal (ValueError) of a hand port says TEXT
    # `defaults: native` with torch_params / keras_params: each framework's own sites (else both build from `sites`)
    framework_sites: dict[str, list[Site]] = field(default_factory=dict)
    max_elements: int = MAX_ELEMENTS  # `max_elements:` the budget of every array (xfw_harness.blocks.plan)
    graph: bool = False  # a graph's nodes (each naming its inputs), not a chain of layers
    backends: tuple[str, ...] | None = None  # `backends:` the Keras backends it runs on (None: every one selected)
    # `expect.backends:` the Keras backends on which expect.divergent holds (None: every backend)
    expect_backends: tuple[str, ...] | None = None

    @property
    def network_key(self) -> str:
        """The case key that holds a network's layers: `nodes` in a graph, `layers` in a chain."""
        return "nodes" if self.graph else "layers"

    def sites_for(self, framework: str) -> list[Site]:
        """The sites `framework` ("torch" or "keras") builds its layers from."""
        return self.framework_sites.get(framework, self.sites)

    def training(self, framework: str) -> bool | None:
        """The training flag `framework` runs with: the case's mode; in `defaults: native` mode without a written
        `mode`, None: each framework's own default, as a hand port leaves it (a PyTorch module is built in training
        mode, a Keras layer called without `training` runs in inference)."""
        if self.defaults == "native" and "mode" not in self.raw:
            return True if framework == "torch" else None
        return self.mode == "train"

    @property
    def sampled(self) -> bool:
        """Train mode with a stochastic last layer (dropout): the output is a random sample, which the block's
        check_sample judges in each framework (on each device) alone; what comes before it is compared."""
        return self.mode == "train" and self.layers[-1].block.stochastic

    def layer_label(self, index: int) -> str:
        """How messages name layer `index`: `layers[2] (conv2d)` in a network, the block's name in a one-block case."""
        layer = self.layers[index]
        if layer.name is not None:
            return f"{self.network_key}[{index}] {layer.name} ({layer.block.name})"
        return f"layers[{index}] ({layer.block.name})" if self.sequential else layer.block.name

    @property
    def sweep_id(self) -> str:
        return sweep_id(self.sweep)

    @property
    def address(self) -> str:
        """`FILE::CASE[SWEEP-ID]` (no sweep: `FILE::CASE`): the point on every device and backend it runs on."""
        return f"{self.file}::{self.case}" + (f"[{self.sweep_id}]" if self.sweep_id else "")

    def test_id(self, device: str, backend: str | None = None) -> str:
        """`FILE::CASE[SWEEP-ID-DEVICE-BACKEND]`; the backend is Keras's in this process unless given (a
        `compare: backends` test's is `backends`)."""
        return f"{self.file}::{self.case}[{'-'.join(filter(None, [self.sweep_id, device, backend or home_backend()]))}]"

    def divergent_here(self, backend: str | None = None) -> bool:
        """Whether the case's known difference (expect.divergent) holds on `backend` (this process's Keras backend
        unless given): every backend unless expect.backends names some."""
        backend = backend or home_backend()
        return self.expect_divergent is not None and (self.expect_backends is None or backend in self.expect_backends)

    @property
    def blocks(self) -> list[str]:
        return [layer.block.name for layer in self.layers]


@dataclass
class RefusedPoint:
    """A sweep point that cannot run; the rest of its case still runs."""

    sweep: dict[str, Any]
    error: CaseError

    @property
    def sweep_id(self) -> str:
        return sweep_id(self.sweep)


@dataclass
class CaseEntry:
    """A case as loaded: its points, or the error that stops it from running."""

    file: str
    name: str
    block: str
    points: list[Point | RefusedPoint] = field(default_factory=list)
    error: CaseError | None = None


def sweep_id(sweep: dict[str, Any]) -> str:
    """The sweep part of a test id: `strides=3x2-padding=same`."""
    return "-".join(f"{k}={format_value(v)}" for k, v in sweep.items())


def format_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(format_value(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def display_path(path: Path) -> str:
    """A path as users see it in messages: relative to the working folder where it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
