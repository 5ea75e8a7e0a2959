"""A network's gradients node by node (xfw_harness.engine.node_gradients): where the end-to-end gradients of a network
differ, each node's vector-Jacobian product, both frameworks fed the same values, decides. All agree: the end-to-end
differences pass, explained (kinks). One differs: the point fails and that node is named. Planted: a join whose Keras
gradient is wrong for one operand (its forward exact) is caught and located."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.blocks import get_block
from xfw_harness.cases import load_file
from xfw_harness.core.frameworks import keras, tf
from xfw_harness.core.layout import to_channels_last
from xfw_harness.core.tolerance import Tolerance
from xfw_harness.engine import backward, run_point
from xfw_harness.engine.build import build_keras, build_torch
from xfw_harness.engine.node_gradients import WHAT, node_gradient_verdicts
from xfw_harness.engine.training import mapped_weights

GRAPHS = Path(__file__).resolve().parents[2] / "cases" / "graphs.yaml"


def _point(name: str, sweep: str = "") -> Any:
    entries, error = load_file(GRAPHS)
    assert error is None
    entry = next(e for e in entries if e.name == name)
    return next(p for p in entry.points if sweep in p.sweep_id)


def test_every_node_of_a_shipped_graph_agrees() -> None:
    point = _point("residual_add", "mode=eval")
    modules = build_torch(point, "cpu")
    layers = build_keras(point, modules, "cpu")
    trainables, _, _ = mapped_weights(point, modules, layers)
    summary, failing = node_gradient_verdicts(point, "cpu", point.input.make(), modules, layers, trainables)
    assert summary.passed and not failing, summary.message
    assert summary.metrics["compared"] > len(point.layers)  # inputs and weights of every node


def test_end_to_end_differences_that_every_node_explains_pass_with_the_reason(monkeypatch: pytest.MonkeyPatch
                                                                              ) -> None:
    """An end-to-end tolerance of zero in float32 fails on rounding alone; in float64 (its own tolerance) and node by
    node all agree."""
    point = _point("residual_add", "mode=eval")
    real = backward.gradient_tolerance
    monkeypatch.setattr(backward, "gradient_tolerance", lambda p, e, k: Tolerance(0.0, 0.0)
                        if p.input.dtype == "float32" else real(p, e, k))
    result = run_point(point, "cpu")
    assert result.status == "passed", result.message
    explained = [v for v in result.verdicts if v.check == "kinks"]
    assert explained and all("in float64 the frameworks agree" in v.message for v in explained)
    assert any(v.what == WHAT and v.passed for v in result.verdicts)


class _WrongGradientAdd(keras.layers.Layer):
    """x0 + x1 exactly, but the gradient of x1 doubled: a backward-only mistake."""

    def call(self, xs: list[Any]) -> Any:
        @tf.custom_gradient
        def add(a: Any, b: Any) -> Any:
            return a + b, lambda g: (g, 2 * g)

        return add(xs[0], xs[1])


def test_planted_a_join_with_a_wrong_gradient_is_caught_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    point = _point("residual_add", "mode=eval")
    monkeypatch.setattr(type(get_block("add")), "keras_layer", lambda self, site: _WrongGradientAdd())
    result = run_point(point, "cpu")
    assert result.status == "failed"
    assert "grad input 1 of nodes[8] add (add)" in result.message, result.message


def test_planted_a_mistake_of_the_end_to_end_machinery_is_not_explained_away(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loss weights given to Keras in PyTorch's order, not Keras's layout: every node agrees (their own loss
    weights are right), but the float64 end-to-end gradients differ too: not rounding, a failure."""
    point = _point("residual_add", "mode=eval")
    monkeypatch.setattr(backward, "keras_loss_weights", lambda p, r: np.ascontiguousarray(r.reshape(
        to_channels_last(r).shape)))
    result = run_point(point, "cpu")
    assert result.status == "failed"
    assert any(v.what == "grad input in float64" and not v.passed for v in result.verdicts)
    assert not any(v.check == "kinks" for v in result.verdicts)
