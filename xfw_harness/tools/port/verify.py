"""Does the case describe the model? `model_verdicts`: the second of `xfw-harness port`'s two verdicts.

The first verdict is the case's own run (PyTorch against Keras, node by node, by the runner, as for every case).
This one holds the case's PyTorch modules (xfw_harness.engine.build_torch, built from the case as any case's) to the
model's own computation, which the capture recorded node by node (xfw_harness.tools.port.capture):
- **each node**: the case's module for the node, fed the model's own values of the node's inputs, must give the
  model's own value of the node. A node whose module computes something else than its block with the params written
  (a subclass with its own forward, a mistranslated argument) is named.
- **the whole**: the case's modules chained from the input must give the model's output (a wrong wiring, a join
  whose operands were swapped, a dropped gate).
Each comparison is judged relative to the size of the values compared (`relative_tolerance`): a random network's
activations may be tiny (1e-9), and a tolerance with an absolute floor would pass an output that vanished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.compare import compare
from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import to_numpy, torch
from xfw_harness.core.tolerance import Tolerance, default_tolerance
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine import StageError, build_torch, forward_torch
from xfw_harness.tools.port.translate import Mapped

MODEL_OUTPUT = "model vs case output"  # the verdict on the model's own output (the others are per node)
TINY = 1e-30  # the scale of an all-zero array: anything visibly non-zero then differs


def relative_tolerance(dtype: str, reduction_length: int, expected: np.ndarray) -> Tolerance:
    """The default tolerance's rtol at K, with atol = rtol * max|expected| (no floor of 1): relative to the values'
    own size, however small."""
    rtol = default_tolerance(dtype, reduction_length).rtol
    magnitudes = np.abs(np.asarray(expected, np.float64))
    finite = magnitudes[np.isfinite(magnitudes)]
    scale = max(float(finite.max()) if finite.size else 0.0, TINY)
    return Tolerance(atol=rtol * scale, rtol=rtol, source=f"{dtype} default at K={reduction_length}, relative to the "
                     f"values' size {scale:.3g}")


def model_verdicts(point: Point, mapped: list[Mapped], model_out: np.ndarray, x: np.ndarray,
                   progress: Callable[[int, int], None] | None = None, modules: list[Any] | None = None
                   ) -> tuple[list[Verdict], str | None]:
    """The model's own values (the capture) against the case's PyTorch modules, node by node and at the end; and
    the first place where they differ, in words (None where they agree). `progress(done, total)` hears each node;
    `modules`: the case's PyTorch modules where the caller has built them (they are only run, in eval mode)."""
    try:
        modules = modules if modules is not None else build_torch(point, "cpu")
        outs = forward_torch(point, modules, x, "cpu")
    except (StageError, CaseError) as e:
        message = f"the case's PyTorch modules cannot run: {e}"
        return [Verdict(MODEL_OUTPUT, False, "error", message, {}, kind=VerdictKind.MODEL)], message
    values = {"input": x, **{m.name: m.node.value for m in mapped}}
    verdicts, first = [], None
    for i, (m, layer, site) in enumerate(zip(mapped, point.layers, point.sites)):
        if progress is not None:
            progress(i, len(mapped))
        label = f"{point.layer_label(i)}, the model's {m.node.where}"
        args = [torch.from_numpy(np.array(values[name])) for name in m.inputs]  # copies: in-place modules
        with torch.no_grad():
            own = to_numpy(modules[i](*args))
        expected = np.asarray(m.node.value)
        k = max(1, layer.block.reduction_length(site))
        verdict = compare(own, expected, relative_tolerance(point.input.dtype, k, expected),
                          f"case vs model at {label}", ("case", "model"), kind=VerdictKind.MODEL)
        verdicts.append(verdict)
        if not verdict.passed and first is None:
            first = (f"{label}: the case's {layer.block.name} with the params written computes something else than "
                     f"the model's call: {verdict.message}")
    end = compare(outs[-1], model_out, relative_tolerance(point.input.dtype, whole_length(point), model_out),
                  MODEL_OUTPUT, ("case", "model"), kind=VerdictKind.MODEL)
    verdicts.append(end)
    if not end.passed and first is None:
        first = f"the model's output: {end.message} (each node alone agrees: the nodes are wired differently)"
    return verdicts, first


def whole_length(point: Point) -> int:
    """The reduction length the whole model's output is judged at: the chain's differences add up along the
    longest path, so the sum of the nodes' reduction lengths (at least the largest one)."""
    lengths = [max(1, layer.block.reduction_length(site)) for layer, site in zip(point.layers, point.sites)]
    return max(max(lengths), sum(lengths))


def worst_headroom(verdicts: list[Verdict]) -> float | None:
    """The largest max-abs error over atol among the verdicts (1.0 is the tolerance's edge), None when none has
    figures: how close the worst comparison came to failing."""
    ratios = [v.metrics["max_abs"] / v.metrics["atol"] for v in verdicts
              if v.metrics.get("max_abs") is not None and v.metrics.get("atol")]
    return max(ratios, default=None)

