"""The typed outcome of a run: a `Verdict` per comparison, each of a `VerdictKind`, and a test's `Status`.

Judging, the report, `xfw-harness port` and the results files read kinds and statuses, never the text of a verdict's
`what` (which is for people: "keras vs torch", "grad layers[0].weight").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class _Text(str, Enum):
    """An enum whose members are their values wherever text is expected (f-strings, JSON, comparisons with str)."""

    def __str__(self) -> str:
        return str(self.value)

    __format__ = str.__format__


class Status(_Text):
    """A test's outcome, in the order reports list them. DIVERGENT is a documented real difference that still
    differs (`expect: divergent`): it counts as a pass of the harness's own run."""

    PASSED = "passed"
    FAILED = "failed"
    DIVERGENT = "divergent"
    ERROR = "error"
    SKIPPED = "skipped"


STATUS_ORDER: tuple[Status, ...] = tuple(Status)


class VerdictKind(_Text):
    """What a verdict compares."""

    FORWARD = "forward"  # PyTorch's output against Keras's (before a sampled dropout too)
    LAYERS = "layers"  # a network's layers, each fed the same input (xfw_harness.engine.localize)
    LOCATION = "location"  # which layer of a failed network first differs: explains, never decides a status
    SEMANTICS = "semantics"  # a framework's output shape against the one the block's stated semantics give
    GOLDEN = "golden"  # against the case's own expectations (expect.shape, expect.output)
    SAMPLE = "sample"  # one framework's sample of a stochastic block (dropout), judged statistically
    GRADIENT = "gradient"  # gradients of the loss, input and weights (check: backward)
    UPDATE = "update"  # optimiser updates of the weights (check: train_step)
    STATISTICS = "statistics"  # running statistics, and the output after several train-mode steps
    MAPPING = "mapping"  # a weight or state the block's transfer leaves out: the adapter is incomplete
    REFERENCE = "reference"  # a framework against the float64 reference, or why there is none
    DEVICE = "device"  # one framework's GPU output against its own CPU output (compare: devices)
    BACKEND = "backend"  # Keras on one backend against Keras on another, same weights (compare: backends)
    MODEL = "model"  # xfw-harness port: the user's model itself against the case made of it


# The kinds that hold PyTorch against Keras (or each framework's own sample, or Keras on one backend against
# another): what a known difference (`expect: divergent`) is about. Not the others: expectations, stated shapes,
# the reference and an incomplete mapping are never a difference between the frameworks.
FRAMEWORK_KINDS = frozenset({VerdictKind.FORWARD, VerdictKind.LAYERS, VerdictKind.SAMPLE, VerdictKind.GRADIENT,
                             VerdictKind.UPDATE, VerdictKind.STATISTICS, VerdictKind.DEVICE, VerdictKind.BACKEND})


@dataclass
class Verdict:
    """The outcome of one comparison. `metrics` is kept on success too, for the report."""

    what: str  # for people: "keras vs torch", "torch vs expected", "grad layers[0].weight"
    passed: bool
    check: str  # which check decided: "shape" | "nonfinite" | "values" | "sample" | "mapping" | ... | "ok"
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)
    kind: VerdictKind = field(kw_only=True)  # required: every verdict says what it compares
    # A canary's planted difference went into this comparison (`expect.plant`: xfw_harness.engine.plants); what it was.
    planted: str | None = field(default=None, kw_only=True)

    def compares_frameworks(self) -> bool:
        """Whether this verdict is about PyTorch against Keras (see FRAMEWORK_KINDS); a gradient that one framework
        did not give (check "mapping") is the adapter's gap, not a difference."""
        return self.kind in FRAMEWORK_KINDS and self.check != "mapping"

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "kind": str(self.kind), "passed": self.passed, "check": self.check,
                "message": self.message, "metrics": self.metrics,
                **({"planted": self.planted} if self.planted is not None else {})}


def headline(status: str, verdicts: Sequence[Verdict | Mapping[str, Any]]) -> int | None:
    """The index of the verdict whose figures a test's headline shows (its line in `xfw-harness run`, its row in the
    report), or None when it has none. A test that passed shows its first with figures (PyTorch against Keras);
    one that failed, errored or is a known difference shows the first comparison that failed, the one that decided
    (a golden value, an expected shape, a gradient): the torch-vs-keras figures of a failed golden value would read
    0.00e+00 beside FAIL. The location only explains a failure, never decides one. `verdicts`: Verdicts or their
    to_dict()s."""
    def read(v: Verdict | Mapping[str, Any]) -> tuple[bool, Any, Mapping[str, Any]]:
        return (v.passed, v.kind, v.metrics) if isinstance(v, Verdict) else (
            bool(v.get("passed")), v.get("kind"), v.get("metrics") or {})

    if not verdicts:
        return None
    seen = [read(v) for v in verdicts]
    if status != Status.PASSED:
        return next((i for i, (passed, kind, _) in enumerate(seen) if not passed and kind != VerdictKind.LOCATION), 0)
    # a pass: the first verdict with figures (a dropout sample before a layer's comparison has none)
    return next((i for i, (_, _, metrics) in enumerate(seen) if "max_abs" in metrics), 0)
