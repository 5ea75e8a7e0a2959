"""Locating the first divergence in a network (xfw_harness/localize.py): a mistake planted in layer k of a network is
named at exactly k, both with each layer fed PyTorch's input and end to end; a passing network gets no
localisation; the per-layer curves reach results.json and the report's page (and are drawn in a real browser)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

import xfw_harness.blocks.dense as dense
from xfw_harness.blocks import get_block
from xfw_harness.cli import main
from xfw_harness.core.frameworks import BACKEND, keras
from xfw_harness.core.layout import dense_kernel_to_keras
from xfw_harness.engine import run_point
from xfw_harness.engine.localize import LAYER_BY_LAYER, WHAT, first_divergence
from xfw_harness.report.browser import browser_unavailable_reason, chromium, open_report
from xfw_harness.report.html import unpack

# layers[3] is the GELU, after a conv of reduction length 64 * 3 * 3 = 576.
GELU_NETWORK = """
- name: gelu_after_wide_conv
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 16, kernel_size: 3, padding: same}}
    - {block: relu}
    - {block: conv2d, params: {filters: 16, kernel_size: 3, padding: same}}
    - {block: gelu}
    - {block: max_pool2d, params: {pool_size: 2}}
    - {block: flatten}
  input: {shape: [2, 64, 10, 10]}
"""

# layers[4] is the dense after the flatten. (No softmax after it: in bfloat16 the probabilities' changes lie within
# the 8-ulp floor of the outputs' rounding, 6% of max(1, scale); the logits' do not.)
FLATTEN_NETWORK = """
- name: conv_flatten_dense
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 8, kernel_size: 3}}
    - {block: relu}
    - {block: max_pool2d, params: {pool_size: 2}}
    - {block: flatten}
    - {block: dense, params: {units: 10}}
    - {block: relu}
  input: {shape: [2, 3, 12, 12], dtype: DTYPE}
"""


def gelu_keras_tanh(mp: pytest.MonkeyPatch) -> None:
    """The GELU form mix-up: Keras given the tanh approximation where the case says exact (at most 4.7e-4 off)."""
    mp.setattr(type(get_block("gelu")), "keras_layer", lambda self, site: keras.layers.Activation(
        functools.partial(keras.activations.gelu, approximate=True), dtype=site.dtype))


def flatten_not_permuted(mp: pytest.MonkeyPatch) -> None:
    """The dense after a flatten given a plain transpose: Keras's (H, W, C) features meet rows in (C, H, W) order."""
    mp.setattr(dense, "dense_after_flatten_kernel_to_keras", lambda w, unflattened: dense_kernel_to_keras(w))


def _first_failing(curve: list[dict]) -> int | None:
    return next((e["layer"] for e in curve if not e["passed"]), None)


@pytest.mark.parametrize(("network", "plant", "k", "block", "dtype"), [
    (GELU_NETWORK, gelu_keras_tanh, 3, "gelu", "float32"),
    (FLATTEN_NETWORK, flatten_not_permuted, 4, "dense", "float32"),
    (FLATTEN_NETWORK, flatten_not_permuted, 4, "dense", "float16"),
    (FLATTEN_NETWORK, flatten_not_permuted, 4, "dense", "bfloat16"),
])
def test_a_mistake_in_layer_k_is_located_at_k(case_points, monkeypatch, network, plant, k, block, dtype) -> None:
    (point,) = case_points(network.replace("DTYPE", dtype))
    assert run_point(point, "cpu").status == "passed"  # the correct adapters
    plant(monkeypatch)
    result = run_point(point, "cpu")
    assert result.status == "failed"
    loc = result.localization
    n = len(point.layers)
    assert [e["layer"] for e in loc["layer_by_layer"]] == list(range(n)) == [e["layer"] for e in loc["end_to_end"]]
    assert _first_failing(loc["layer_by_layer"]) == k == _first_failing(loc["end_to_end"])
    assert loc["first_layer"] == k and loc["mode"] == "layer by layer"
    # Fed PyTorch's input, every other layer agrees: the mistake is layer k's alone.
    assert [e["passed"] for e in loc["layer_by_layer"]] == [i != k for i in range(n)]
    located = result.verdicts[-1]
    assert located.what == WHAT and not located.passed and located.check == "values"
    assert located.metrics["layer"] == k and located.metrics["block"] == block
    assert located.message.startswith(f"layers[{k}] ({block}): max abs ")
    assert f"layers 0-{k - 1} agree" in located.message
    assert f"[{WHAT}] {located.message}" in result.message
    entry = loc["layer_by_layer"][k]
    assert entry["max_abs"] > entry["atol"] and entry["block"] == block


def test_per_layer_tolerance_uses_each_layers_own_reduction_length(case_points, monkeypatch) -> None:
    """Layer by layer the GELU is judged at its own K = 1; end to end at the longest K so far (576), where the
    mix-up is only a few times above the bound: the layer-by-layer margin is much larger."""
    (point,) = case_points(GELU_NETWORK)
    gelu_keras_tanh(monkeypatch)
    loc = run_point(point, "cpu").localization
    assert [e["reduction_length"] for e in loc["layer_by_layer"]] == [576, 1, 144, 1, 1, 1]  # max pooling sums nothing
    assert [e["reduction_length"] for e in loc["end_to_end"]] == [576] * 6
    alone, chain = loc["layer_by_layer"][3], loc["end_to_end"][3]
    assert alone["max_abs"] / alone["atol"] > 10 * chain["max_abs"] / chain["atol"] > 10


def test_the_gelu_mix_up_alone_at_k_0_says_it_is_the_first_layer(case_points, monkeypatch) -> None:
    (point,) = case_points("""
        - name: gelu_first
          block: sequential
          layers: [{block: gelu}, {block: relu}]
          input: {shape: [2, 3, 8, 8]}
        """)
    gelu_keras_tanh(monkeypatch)
    result = run_point(point, "cpu")
    assert result.localization["first_layer"] == 0
    assert "layers[0] (gelu)" in result.verdicts[-1].message and "it is the first layer" in result.verdicts[-1].message


def test_a_passing_network_has_no_localisation(case_points) -> None:
    (point,) = case_points(GELU_NETWORK)
    result = run_point(point, "cpu")
    assert result.status == "passed"
    assert result.localization is None and "localization" not in result.to_dict()
    assert all(v.what != WHAT for v in result.verdicts)


# The mix-up that the end-to-end comparison alone let through: the GELU (layers[3]) after 64-channel convolutions is
# followed by more wide layers, which set the network's tolerance (K = 576) and dilute the 1e-4 difference.
DILUTED_NETWORK = """
- name: gelu_diluted
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 64, kernel_size: 3, padding: same}}
    - {block: relu}
    - {block: conv2d, params: {filters: 64, kernel_size: 3, padding: same}}
    - {block: gelu}
    - {block: conv2d, params: {filters: 8, kernel_size: 3}}
    - {block: flatten}
    - {block: dense, params: {units: 10}}
  input: {shape: [2, 64, 8, 8]}
"""


def test_a_mistake_diluted_end_to_end_is_still_caught_layer_by_layer(case_points, monkeypatch) -> None:
    (point,) = case_points(DILUTED_NETWORK)
    right = run_point(point, "cpu")
    assert right.status == "passed", right.message
    assert [v.passed for v in right.verdicts if v.what == LAYER_BY_LAYER] == [True]
    gelu_keras_tanh(monkeypatch)
    result = run_point(point, "cpu")
    end_to_end = next(v for v in result.verdicts if v.what == "keras vs torch")
    assert end_to_end.passed  # what let the mistake through before every network was judged layer by layer
    assert result.status == "failed"
    (alone,) = [v for v in result.verdicts if v.what == LAYER_BY_LAYER]
    assert not alone.passed and alone.metrics["layer"] == 3 and "layers[3] (gelu)" in alone.message
    assert result.localization["first_layer"] == 3


def test_a_single_block_that_fails_has_no_localisation(case_points, monkeypatch) -> None:
    (point,) = case_points("- {name: g, block: gelu, input: {shape: [2, 3, 8, 8]}}")
    gelu_keras_tanh(monkeypatch)
    result = run_point(point, "cpu")
    assert result.status == "failed" and result.localization is None


def test_dropout_in_train_mode_is_left_out_of_the_curves(case_points, monkeypatch) -> None:
    (point,) = case_points("""
        - name: gelu_dropout
          block: sequential
          layers: [{block: dense, params: {units: 32}}, {block: gelu}, {block: dropout, params: {rate: 0.2}}]
          mode: train
          input: {shape: [64, 16]}
        """)
    gelu_keras_tanh(monkeypatch)
    result = run_point(point, "cpu")
    assert result.status == "failed"
    assert [e["block"] for e in result.localization["layer_by_layer"]] == ["dense", "gelu"]
    assert result.localization["first_layer"] == 1


def _curve(passed: list[bool]) -> list[dict]:
    return [{"layer": i, "block": "conv2d", "max_abs": 1e-6 if ok else 1e-3, "max_rel": 1e-5, "atol": 1e-5,
             "rtol": 1e-5, "reduction_length": 9, "passed": ok, "check": "ok" if ok else "values"}
            for i, ok in enumerate(passed)]


def test_differences_that_add_up_with_no_single_wrong_layer_are_told_apart(case_points) -> None:
    (point,) = case_points(GELU_NETWORK)
    verdict = first_divergence(point, {"layer_by_layer": _curve([True] * 6),
                                       "end_to_end": _curve([True, True, False, False, False, False])})
    assert not verdict.passed and verdict.metrics["layer"] == 2 and verdict.metrics["mode"] == "end to end"
    assert verdict.message.startswith("none alone")
    assert "first leave the tolerance after layers[2] (conv2d)" in verdict.message
    # Located layer by layer, but the chains part earlier: both are said.
    verdict = first_divergence(point, {"layer_by_layer": _curve([True, True, True, False, True, True]),
                                       "end_to_end": _curve([True, True, False, False, False, False])})
    assert verdict.metrics["layer"] == 3 and "end to end the outputs first differ after layers[2]" in verdict.message


def test_the_curves_reach_results_json_and_the_report(tmp_path: Path, monkeypatch, capsys) -> None:
    gelu_keras_tanh(monkeypatch)
    cases = tmp_path / "net.yaml"
    cases.write_text(GELU_NETWORK, encoding="utf-8")
    html, results = tmp_path / "report.html", tmp_path / "results.json"
    main(["run", str(cases), "--keras-backend", BACKEND, "--json", str(results), "--html", str(html), "-q"])
    (r,) = json.loads(results.read_text(encoding="utf-8"))["results"]
    assert r["status"] == "failed" and r["localization"]["first_layer"] == 3
    assert len(r["localization"]["layer_by_layer"]) == 6 and len(r["localization"]["end_to_end"]) == 6
    assert any(v["what"] == WHAT for v in r["verdicts"])
    page = html.read_text(encoding="utf-8")
    (row,) = unpack(page)["rows"]
    assert row["localization"] == r["localization"]
    assert "function layerCurve" in page and "Error per layer" in page


BROWSER = browser_unavailable_reason()
if BROWSER and os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"HARNESS_REQUIRE_BROWSER=1 but {BROWSER}")


@pytest.mark.skipif(BROWSER is not None, reason=f"report browser test: {BROWSER}")
def test_the_report_draws_the_per_layer_curve_in_a_browser(tmp_path: Path, monkeypatch) -> None:
    gelu_keras_tanh(monkeypatch)
    cases = tmp_path / "net.yaml"
    cases.write_text(GELU_NETWORK, encoding="utf-8")
    html = tmp_path / "report.html"
    main(["run", str(cases), "--keras-backend", BACKEND, "--html", str(html), "-q"])
    with chromium() as browser:
        page, problems = open_report(browser, html)
        box = page.locator("details.failure").first
        assert "Error per layer" in box.inner_text() and f"[{WHAT}] layers[3] (gelu): max abs" in box.inner_text()
        chart = box.locator("svg.layer-curve")
        assert chart.count() == 1
        for mode in ("layer_by_layer", "end_to_end"):
            assert chart.locator(f"polyline.error[data-mode='{mode}']").count() == 1
            assert chart.locator(f"polyline.tolerance[data-mode='{mode}']").count() == 1
            assert chart.locator(f"circle[data-mode='{mode}']").count() == 6
        # Layer by layer only the GELU is outside its tolerance; end to end everything from it on.
        assert chart.locator("circle[data-mode='layer_by_layer'][data-passed='false']").count() == 1
        assert chart.locator("circle[data-mode='end_to_end'][data-passed='false']").count() == 3
        assert chart.locator("line.first-divergent").count() == 1
        labels = chart.text_content()
        assert "[3]" in labels and "gelu" in labels and "1e-" in labels
        chart.screenshot(path=str(tmp_path / "curve.png"))
        assert problems == [], problems
