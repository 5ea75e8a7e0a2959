"""The comparisons of `xfw-harness verify`: the user's PyTorch model against an artefact, seed by seed, end to end.

For each seed s in 0 .. seeds-1: x = numpy.random.default_rng(s).standard_normal(input shape) as float32
(channels-first), then the same generator draws one weight array r_i per PyTorch output, in the output's
channels-first shape. PyTorch runs on x, the artefact on x in its input layout (xfw_harness.tools.crosscheck.alignment).

- Outputs are paired by key when both sides are mappings with the same keys, else by position; a different number
  of outputs is a failure. Each pair is judged (xfw_harness.tools.crosscheck.judge, VerdictKind.FORWARD) in the reading
  its shape allows; when a rank-2 output fails as it is but passes read in Keras's channels-last flatten order of
  a tensor the PyTorch model computed, the check fails with a finding saying so (the artefact's features are
  PyTorch's, permuted).
- The input gradient of sum_i sum(output_i * r_i), r_i moved into each artefact output's layout, is judged against
  PyTorch's autograd (VerdictKind.GRADIENT) where the artefact is differentiable; a .tflite file is not, and each
  seed says so.
- When a forward check failed and the artefact is a Keras model with layers, xfw_harness.tools.crosscheck.localize
  aligns its layers with the PyTorch model's leaves on the first failing seed. Otherwise, a PyTorch model that
  flattens a channels-first tensor, checked against a channels-last artefact, gets a hint about the flatten order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.tools.crosscheck.alignment import (
    NHWC,
    InputLayout,
    View,
    choose_input_layout,
    flatten_view,
    output_views,
)
from xfw_harness.tools.crosscheck.artefact import Artefact, one_line
from xfw_harness.tools.crosscheck.judge import judge
from xfw_harness.tools.crosscheck.localize import localize
from xfw_harness.tools.crosscheck.torch_side import (
    Recorded,
    flatten_points,
    input_gradient,
    run_model,
    unflattened_shapes,
)

NAMES = ("artefact", "torch")


@dataclass
class Check:
    """One comparison of one seed: an output or the input gradient. verdict None: not compared (`note` says why)."""

    seed: int
    target: str
    verdict: Verdict | None
    note: str = ""
    finding: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict is not None and not self.verdict.passed


@dataclass
class Outcome:
    header: list[str]
    checks: list[Check] = field(default_factory=list)
    location: list[str] = field(default_factory=list)  # the layer alignment, or a hint

    @property
    def failed(self) -> bool:
        return any(c.failed for c in self.checks)


def _key(name: str) -> str:
    match = re.fullmatch(r"output\[['\"](.*)['\"]\]", name)
    return match.group(1) if match else name


def pair_outputs(torch_names: list[str], artefact_names: list[str]) -> list[tuple[int, int]] | None:
    """(PyTorch index, artefact index) of each pair: by key when both sides name the same keys, else by position;
    None when the counts differ."""
    if len(torch_names) != len(artefact_names):
        return None
    keys = [_key(n) for n in artefact_names]
    if all(n.startswith("output[") and not n[7].isdigit() for n in torch_names) and \
            sorted(_key(n) for n in torch_names) == sorted(keys):
        return [(i, keys.index(_key(n))) for i, n in enumerate(torch_names)]
    return list(enumerate(range(len(torch_names))))


def _output_check(seed: int, target: str, t: np.ndarray, a: np.ndarray, layout: InputLayout,
                  recorded: list[Recorded], k: int) -> tuple[Check, View | None]:
    what = f"artefact vs torch, {target}"
    views = output_views(a.shape, t.shape, layout.layout)
    if not views:
        verdict = judge(a, t, what, NAMES, k, VerdictKind.FORWARD)  # the shape check names both shapes
        verdict.message += " (read as is and channels-last: neither has PyTorch's shape)"
        return Check(seed, target, verdict), None
    verdict = judge(views[0].to_channels_first(a), t, what, NAMES, k, VerdictKind.FORWARD)
    note = f"read {views[0].label}" if views[0].layout is not None else ""
    if verdict.passed:
        return Check(seed, target, verdict, note), views[0]
    for other in views[1:]:
        alternative = judge(other.to_channels_first(a), t, what, NAMES, k, VerdictKind.FORWARD)
        if alternative.passed:
            return Check(seed, target, alternative, f"its shape reads both ways; it matches read {other.label}"), other
    if a.ndim == 2:
        for shape in unflattened_shapes(recorded, a.shape[1]):
            view = flatten_view(shape)
            if judge(view.to_channels_first(a), t, what, NAMES, k, VerdictKind.FORWARD).passed:
                finding = (f"flatten order: {target} differs as PyTorch orders its features but matches read "
                           f"{view.label}: the artefact flattens a channels-last tensor and keeps Keras's feature "
                           "order, so its features are PyTorch's permuted "
                           "(xfw_harness.core.layout.flatten_permutation)")
                return Check(seed, target, verdict, note, finding), views[0]
    return Check(seed, target, verdict, note), views[0]


def _gradient_check(seed: int, model: Any, artefact: Artefact, x: np.ndarray, layout: InputLayout,
                    weights: list[np.ndarray], artefact_weights: list[np.ndarray | None], k: int) -> Check:
    target = "input gradient"
    if not artefact.differentiable:
        return Check(seed, target, None, artefact.why_not_differentiable)
    if any(w is None for w in artefact_weights):
        return Check(seed, target, None, "not compared: an output's shape fits no reading of PyTorch's")
    expected = input_gradient(model, x, weights)
    try:
        got = artefact.input_gradient(layout.to_artefact(x), artefact_weights)
    except Exception as e:  # noqa: BLE001 - an op without a registered gradient, a runtime that cannot
        return Check(seed, target, None, f"not differentiable: {one_line(e)}")
    verdict = judge(layout.to_channels_first(got), expected,
                    f"artefact vs torch, {target} (of sum(output * r))", NAMES, k, VerdictKind.GRADIENT)
    return Check(seed, target, verdict)


def verify(model: Any, artefact: Artefact, input_shape: tuple[int, ...], seeds: int, layout: str, k: int
           ) -> Outcome:
    """Compare `model` (eval mode, set by the caller) with `artefact` on `seeds` seeded inputs (module doc)."""
    chosen = choose_input_layout(artefact.input_shape, input_shape, layout, artefact.path)
    outcome = Outcome([f"artefact: {artefact.describe()}", f"input: {chosen.reason}",
                       f"tolerance: the harness's default rule for reduction length K={k} (--tolerance-k): "
                       "rtol = 16 * eps * sqrt(K), atol = rtol * max(1, max |expected|)",
                       *(f"note: {n}" for n in artefact.notes)])
    recorded: list[Recorded] = []
    first_failing: np.ndarray | None = None
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(input_shape).astype(np.float32)
        ran = run_model(model, x, record=seed == 0)
        recorded = recorded or ran.recorded
        got = artefact.run(chosen.to_artefact(x))
        weights = [rng.standard_normal(t.shape).astype(np.float32) for _, t in ran.outputs]
        pairs = pair_outputs([n for n, _ in ran.outputs], [n for n, _ in got])
        if pairs is None:
            message = (f"the artefact has {len(got)} output(s) ({', '.join(n for n, _ in got)}), the PyTorch model "
                       f"{len(ran.outputs)} ({', '.join(n for n, _ in ran.outputs)})")
            outcome.checks.append(Check(seed, "outputs", Verdict("artefact vs torch, outputs", False, "structure",
                                                                message, kind=VerdictKind.FORWARD)))
            return outcome
        artefact_weights: list[np.ndarray | None] = [None] * len(got)
        for ti, ai in pairs:
            (tname, t), (aname, a) = ran.outputs[ti], got[ai]
            target = tname if _key(tname) == _key(aname) or len(got) == 1 else f"{tname} (artefact {aname})"
            check, view = _output_check(seed, target, t, a, chosen, recorded, k)
            outcome.checks.append(check)
            artefact_weights[ai] = None if view is None else view.to_artefact(weights[ti])
            if check.failed and first_failing is None:
                first_failing = x
        outcome.checks.append(_gradient_check(seed, model, artefact, x, chosen, weights, artefact_weights, k))
    if first_failing is not None:
        found = any(c.finding for c in outcome.checks)
        outcome.location = _locate(model, artefact, first_failing, chosen, k, hint=not found)
    return outcome


def _locate(model: Any, artefact: Artefact, x: np.ndarray, chosen: InputLayout, k: int, hint: bool) -> list[str]:
    recorded = run_model(model, x, record=True).recorded
    if artefact.keras_model is not None:
        return localize(artefact.keras_model, chosen.to_artefact(x), recorded, k)
    lines = [f"layers: not aligned: a {artefact.kind} keeps no layers to align (a functional .keras model can be "
             "aligned layer by layer); the checks above are per output"]
    if chosen.layout == NHWC and hint:
        for where, shape in flatten_points(recorded):
            if where.startswith("(the model's"):  # a flat output: the output checks try its order themselves
                continue
            lines.append(f"hint: the PyTorch model flattens a {list(shape)} tensor (seen at {where}); a channels-last "
                         "conversion must permute the rows of the next Dense kernel from PyTorch's (C, H, W) flatten "
                         "order to Keras's (H, W, C) (xfw_harness.core.layout.dense_after_flatten_kernel_to_keras): a "
                         "common cause of a difference after a flatten, not a diagnosis")
    return lines
