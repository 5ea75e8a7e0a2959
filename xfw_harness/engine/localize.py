"""Judging a network layer by layer, and locating its first divergence: for a `sequential` point whose comparison
failed, which layer's output first differs, so that a person debugging a port does not bisect by hand.

Two curves, one entry per layer (`{layer, block, max_abs, max_rel, atol, rtol, reduction_length, passed, check}`):

- **layer by layer**: each Keras layer is fed PyTorch's output of the layer before it (the network's input for
  layer 0), converted into Keras's layout at that point through the site's `xfw_harness.core.layout.Layout`, and its
  output is compared with PyTorch's output of the same layer. Both frameworks' layer k then sees the same input, so a
  difference there is layer k's own, judged against the tolerance of layer k's own reduction length. This is what
  names the first divergent layer.
- **end to end**: each framework's own chain, compared after every layer, with the tolerance of the longest
  reduction up to that layer (the tolerance the network would have if it ended there: differences of the wide
  layers before it are carried along). Shows how a difference grows and where it first leaves the tolerance.

A case that sets `tolerance` is judged with it at every layer. A dropout layer in train mode (always the last
layer) has no deterministic output and is left out of both curves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.blocks import NETWORK_INPUT
from xfw_harness.cases import Point
from xfw_harness.core.frameworks import keras_device, keras_tensor, to_numpy
from xfw_harness.core.tolerance import Tolerance, tolerance_for
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine.build import keras_arguments, keras_inputs
from xfw_harness.engine.comparing import compare
from xfw_harness.engine.result import Result

WHAT = "first divergent layer"
MODES = ("layer_by_layer", "end_to_end")


def _tolerance(point: Point, expected: np.ndarray, reduction_length: int) -> Tolerance:
    return tolerance_for(point.input.dtype, reduction_length, expected, point.tolerance)


def _entry(point: Point, i: int, k: int, verdict: Verdict) -> dict[str, Any]:
    m = verdict.metrics
    return {"layer": i, "block": point.layers[i].block.name, "label": point.layer_label(i),
            "max_abs": m.get("max_abs"), "max_rel": m.get("max_rel"),
            "atol": m.get("atol"), "rtol": m.get("rtol"), "reduction_length": k, "passed": verdict.passed,
            "check": verdict.check}


def keras_layer_fed(point: Point, i: int, keras_layer: Any, torch_in: list[np.ndarray], device: str) -> np.ndarray:
    """Keras layer i run on PyTorch's channels-first inputs to it (each converted into Keras's layout at that
    point); its output back in channels-first order."""
    site = point.sites_for("keras")[i]
    with keras_device(device):
        args = [keras_tensor(a) for a in keras_inputs(point, i, torch_in)]
        y = keras_layer(keras_arguments(point.layers[i], args), training=point.training("keras"))
    return point.layers[i].block.output_layout(site).to_channels_first(to_numpy(y))


def torch_inputs(point: Point, i: int, x: np.ndarray, torch_outs: list[np.ndarray]) -> list[np.ndarray]:
    """PyTorch's channels-first inputs to layer i: the outputs it takes (the network's input for NETWORK_INPUT)."""
    return [x if j == NETWORK_INPUT else torch_outs[j] for j in point.layers[i].input_indices(i)]


def per_layer_curves(point: Point, device: str, keras_layers: list[Any], x: np.ndarray,
                     torch_outs: list[np.ndarray], keras_outs: list[np.ndarray]) -> dict[str, list[dict[str, Any]]]:
    """Both curves (see the module's docstring); {"layer_by_layer": [...], "end_to_end": [...]}."""
    compared = len(point.layers) - (1 if point.sampled else 0)
    curves: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    longest = 1
    for i in range(compared):
        site, block = point.sites_for("keras")[i], point.layers[i].block
        own = max(1, block.reduction_length(site))
        longest = max(longest, own)
        expected = torch_outs[i]
        fed_in = torch_inputs(point, i, x, torch_outs)
        try:
            alone = keras_layer_fed(point, i, keras_layers[i], fed_in, device)
            verdict = compare(alone, expected, _tolerance(point, expected, own), point.layer_label(i),
                              ("keras", "torch"), kind=VerdictKind.LAYERS)
        except Exception as e:  # noqa: BLE001 - a layer that cannot take the other framework's input says so here
            verdict = Verdict(point.layer_label(i), False, "error", f"{type(e).__name__}: {str(e)[:300]}",
                              kind=VerdictKind.LAYERS)
        curves["layer_by_layer"].append(_entry(point, i, own, verdict))
        verdict = compare(keras_outs[i], expected, _tolerance(point, expected, longest), point.layer_label(i),
                          ("keras", "torch"), kind=VerdictKind.LAYERS)
        curves["end_to_end"].append(_entry(point, i, longest, verdict))
    return curves


def _first_failing(curve: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((e for e in curve if not e["passed"]), None)


def _numbers(e: dict[str, Any]) -> str:
    if e["check"] != "values":
        return {"shape": "the output shapes differ", "nonfinite": "NaN/Inf in different places",
                "error": "Keras cannot run it on PyTorch's input"}.get(e["check"], e["check"])
    return (f"max abs {e['max_abs']:.3g} > atol {e['atol']:.3g} (rtol {e['rtol']:.3g}, reduction length "
            f"{e['reduction_length']}), max rel {e['max_rel']:.3g}")


def _label(entry: dict[str, Any]) -> str:
    """How a curve's entry names its layer: its point's label (`nodes[4] head (add)`), or, in an entry without one
    (a results file written before graphs), `layers[K] (block)`."""
    return entry.get("label") or f"layers[{entry['layer']}] ({entry['block']})"


def _agree(k: int, key: str = "layers") -> str:
    if k == 0:
        return f"it is the first {key.removesuffix('s')}"
    return f"{key.removesuffix('s')} 0 agrees" if k == 1 else f"{key} 0-{k - 1} agree"


def first_divergence(point: Point, curves: dict[str, list[dict[str, Any]]]) -> Verdict:
    """The verdict that names the first divergent layer, from the curves."""
    alone, chain = _first_failing(curves["layer_by_layer"]), _first_failing(curves["end_to_end"])
    if alone is not None:
        k = alone["layer"]
        message = (f"{_label(alone)}: {_numbers(alone)}, fed PyTorch's input to it; "
                   f"{_agree(k, point.network_key)}")
        if chain is not None and chain["layer"] != k:
            message += f"; end to end the outputs first differ after {_label(chain)}"
        return Verdict(WHAT, False, alone["check"], message,
                       {"layer": k, "block": alone["block"], "mode": "layer by layer",
                        **{key: alone[key] for key in ("max_abs", "max_rel", "atol", "rtol", "reduction_length")}},
                       kind=VerdictKind.LOCATION)
    if chain is not None:
        k = chain["layer"]
        message = (f"none alone: every layer agrees with PyTorch's when fed PyTorch's input to it; end to "
                   f"end the outputs first leave the tolerance after {_label(chain)}: "
                   f"{_numbers(chain)}: the small differences of correct layers add up through the network")
        return Verdict(WHAT, False, chain["check"], message,
                       {"layer": k, "block": chain["block"], "mode": "end to end",
                        **{key: chain[key] for key in ("max_abs", "max_rel", "atol", "rtol", "reduction_length")}},
                       kind=VerdictKind.LOCATION)
    return Verdict(WHAT, True, "ok", "none: every layer agrees, layer by layer and end to end, within its "
                   "own tolerance (the network's failure is in a comparison after the last compared layer)", {},
                   kind=VerdictKind.LOCATION)


LAYER_BY_LAYER = "each layer fed the same input"


def network_curves(point: Point, device: str, keras_layers: list[Any], x: np.ndarray, torch_outs: list[np.ndarray],
                   keras_outs: list[np.ndarray]) -> dict[str, list[dict[str, Any]]] | None:
    """Both per-layer curves of a sequential point of two or more layers; None for any other point.

    Computed for every network, passing or not, right after the forward comparison (before an optimiser step can
    change the layers' weights): `layer_by_layer_verdict` counts in the status.
    """
    if not point.sequential or len(point.layers) < 2:
        return None
    return per_layer_curves(point, device, keras_layers, x, torch_outs, keras_outs)


def layer_by_layer_verdict(curves: dict[str, list[dict[str, Any]]]) -> Verdict:
    """Every layer of the network, fed PyTorch's input to it, agrees within its own tolerance.

    Why it counts in the status: the end-to-end comparison judges a network with the tolerance of its widest
    layer, under which a later, narrow layer's mistake can be diluted and pass. Measured: a GELU form mix-up
    (1.1e-4) at layers[3] of a network of 64-channel convolutions, then a conv, flatten and dense, passed end to end
    against the K=576 tolerance, and is 55x above its own K=1 tolerance here.
    """
    entries = curves["layer_by_layer"]
    failing = [e for e in entries if not e["passed"]]
    if failing:
        e = failing[0]
        return Verdict(LAYER_BY_LAYER, False, e["check"],
                       f"{_label(e)} differs when both frameworks' layer is fed PyTorch's "
                       f"input to it: {_numbers(e)}",
                       {key: e[key] for key in ("layer", "block", "max_abs", "max_rel", "atol", "rtol",
                                                "reduction_length")}, kind=VerdictKind.LAYERS)
    ratios = [e["max_abs"] / e["atol"] for e in entries if e["atol"] and e["max_abs"] is not None]
    return Verdict(LAYER_BY_LAYER, True, "ok",
                   f"all {len(entries)} compared layers agree when fed PyTorch's input, each within its own "
                   "tolerance", {"layers": len(entries), "worst_error_over_atol": max(ratios, default=0.0)},
                   kind=VerdictKind.LAYERS)


def locate(point: Point, curves: dict[str, list[dict[str, Any]]] | None,
           verdicts: list[Verdict]) -> tuple[Verdict, dict[str, Any]] | None:
    """For a network (`curves` from `network_curves`) whose torch-vs-keras or layer-by-layer comparison failed:
    the first-divergence verdict and the per-layer curves; None for any other point.

    `attach` adds the outcome to the result once its status is judged, so that this verdict, which only explains
    the failure, never decides a status (a known difference, `expect.divergent`, stays divergent).
    """
    if curves is None or all(v.passed for v in verdicts if v.kind in (VerdictKind.FORWARD, VerdictKind.LAYERS)):
        return None
    verdict = first_divergence(point, curves)
    return verdict, {**curves, "first_layer": verdict.metrics.get("layer"), "mode": verdict.metrics.get("mode")}


def attach(result: Result, located: tuple[Verdict, dict[str, Any]] | None) -> None:
    """Add `locate`'s verdict to the result's verdicts and message, and its curves as `result.localization`
    (carried into results.json and drawn in the report)."""
    if located is None:
        return
    verdict, result.localization = located
    result.verdicts.append(verdict)
    result.message = f"{result.message}\n[{verdict.what}] {verdict.message}" if result.message else verdict.message
