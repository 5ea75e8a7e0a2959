"""The third opinion: when PyTorch and Keras disagree, which one computes the block's stated semantics?

Each block's `reference` (xfw_harness/blocks/<family>.py, mostly ONNX's reference runtime through
xfw_harness.blocks.reference.onnx_op) computes its semantics in float64, with neither framework. For a point, the
references are chained layer by layer from the point's own input, each given the weights that were copied into both
frameworks (the PyTorch modules' parameters, as float64), and the final output is compared with each framework's:
verdicts "torch vs reference" and "keras vs reference".

The runner asks for it when a comparison of the two frameworks failed (the user's next question is "which one is
right?"), and for every run of a case with `expect: {reference: true}`, where those verdicts decide the test too.
The tolerance is the point's own (its dtype's default, or the case's): the reference is exact relative to it.

A block with no reference (NotImplementedError), a point with no deterministic semantics (dropout in train mode:
Refusal) or a reference that raises gives a verdict "reference" with check "unavailable" that says so: never an
error of the test. It passes, except under `expect: {reference: true}`, whose check then could not be made.

In `defaults: native` mode the reference computes the harness's semantics of the parameters written for PyTorch
(`params`, and `torch_params`), the others at the harness's defaults (`xfw-harness list`): what the PyTorch model being
ported means.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.blocks import run_layers
from xfw_harness.cases import Point
from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import to_numpy
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine.comparing import compare
from xfw_harness.engine.plants import plant_reference
from xfw_harness.engine.tolerances import point_tolerance

TORCH_VS_REFERENCE = "torch vs reference"
KERAS_VS_REFERENCE = "keras vs reference"
UNAVAILABLE = "reference"  # the `what` of the verdict saying that no reference could be computed


def wanted(point: Point, verdicts: list[Verdict]) -> bool:
    """A third opinion is computed at every point unless the case opts out (`expect.reference: false`), and then
    still when PyTorch and Keras disagree. Computed only on disagreement, a mistake both sides share (an emulation
    the harness builds for both frameworks, a padding or size it computes for both) would pass unseen: the reference
    computes the block's stated semantics with neither framework and none of the harness's translation."""
    return point.expect_reference is not False or any(not v.passed for v in verdicts if v.compares_frameworks())


def copied_weights(point: Point, modules: list[Any]) -> list[dict[str, np.ndarray]]:
    """Each layer's weights as copied into Keras (PyTorch layout, float64), taken before anything runs: a PyTorch
    module in train mode updates its running statistics during the forward pass."""
    return [{name: np.asarray(to_numpy(tensor), dtype=np.float64)
             for name, tensor in layer.block.torch_parameters(module).items()}
            for layer, module in zip(point.layers, modules)]


def reference_outputs(point: Point, x: np.ndarray, weights: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Every layer's float64 reference output, chained from the point's input with the copied weights.

    The sites are PyTorch's: in `defaults: native` mode with torch_params / keras_params, what the PyTorch model
    (the one being ported) was written with, read with the harness's semantics (unwritten parameters at the
    harness's defaults). Raises NotImplementedError (a block without a reference) or Refusal (no deterministic
    semantics here).
    """
    sites = point.sites_for("torch")

    def call(i: int, layer: Any, args: list[np.ndarray]) -> np.ndarray:
        given = args if layer.block.arity != 1 else args[0]
        return np.asarray(layer.block.reference(sites[i], given, weights[i]), dtype=np.float64)

    return run_layers(point.layers, np.asarray(x, dtype=np.float64), call)


def opinion(point: Point, x: np.ndarray, weights: list[dict[str, np.ndarray]], torch_out: np.ndarray,
            keras_out: np.ndarray) -> list[Verdict]:
    """The verdicts "torch vs reference" and "keras vs reference" (or one "reference" verdict saying why there is
    none), under the point's own tolerance. `weights`: copied_weights()."""
    try:
        reference = reference_outputs(point, x, weights)[-1]
    except Exception as e:  # noqa: BLE001 - a missing or failing reference is information, never the test's error
        if isinstance(e, NotImplementedError):
            why = str(e) or "a block of this point has no reference implementation"
        elif isinstance(e, CaseError):
            why = e.message
        else:
            why = f"the reference raised {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        required = point.expect_reference is True
        asked = " (expect.reference asks for one: this check could not be made)" if required else ""
        return [Verdict(UNAVAILABLE, not required, "unavailable", f"no third opinion: {why}{asked}",
                        kind=VerdictKind.REFERENCE)]
    tolerance = point_tolerance(point, reference)
    reference, planted = plant_reference(reference)  # a canary's wrong reference (xfw_harness.engine.plants)
    verdicts = [compare(torch_out, reference, tolerance, TORCH_VS_REFERENCE, ("torch", "reference"),
                        kind=VerdictKind.REFERENCE),
                compare(keras_out, reference, tolerance, KERAS_VS_REFERENCE, ("keras", "reference"),
                        kind=VerdictKind.REFERENCE)]
    for verdict in verdicts if planted else ():
        verdict.planted = planted
    return verdicts


def agreement(verdicts: list[Verdict]) -> str | None:
    """One line saying which framework the reference agrees with, or why there is no reference; None when no
    third opinion was computed."""
    by_what = {v.what: v for v in verdicts if v.kind == VerdictKind.REFERENCE}
    if UNAVAILABLE in by_what:
        return by_what[UNAVAILABLE].message
    if TORCH_VS_REFERENCE not in by_what or KERAS_VS_REFERENCE not in by_what:
        return None
    torch_ok, keras_ok = by_what[TORCH_VS_REFERENCE].passed, by_what[KERAS_VS_REFERENCE].passed
    if torch_ok and keras_ok:
        return "the reference agrees with both torch and keras (each lies within tolerance of the exact float64 value)"
    if torch_ok:
        return "the reference agrees with torch; keras differs"
    if keras_ok:
        return "the reference agrees with keras; torch differs"
    return "the reference agrees with neither torch nor keras"


def sides(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts holding each framework to the reference ("torch vs reference", "keras vs reference")."""
    return [v for v in verdicts if v.kind == VerdictKind.REFERENCE and v.what != UNAVAILABLE]
