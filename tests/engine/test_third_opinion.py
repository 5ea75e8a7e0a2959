"""The third opinion (xfw_harness/third_opinion.py): when PyTorch and Keras disagree, the float64 reference says which
one computes the block's stated semantics; `expect: {reference: true}` holds both frameworks to it.

Each test plants a mistake in one adapter (or in both, alike) and checks that the verdicts and the message name the
right side. A block without a reference, or a reference that raises, is a note in the message, never an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import pytest
import torch

from xfw_harness.blocks import get_block
from xfw_harness.engine import Result
from xfw_harness.engine.third_opinion import KERAS_VS_REFERENCE, TORCH_VS_REFERENCE, UNAVAILABLE

LEAKY = """
- name: leaky
  block: leaky_relu
  params: {negative_slope: 0.01}
  input: {shape: [2, 3, 4, 4]}
  {extra}
"""

NETWORK = """
- name: conv_relu_dense
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 3, kernel_size: [3, 2], padding: 1}}
    - {block: relu}
    - {block: flatten}
    - {block: dense, params: {units: 4}}
  input: {shape: [2, 2, 5, 4]}
"""


def _leaky(extra: str = "") -> str:
    return LEAKY.replace("{extra}", extra)


def _verdicts(result: Result) -> dict[str, Any]:
    return {v.what: v for v in result.verdicts}


def _one(run_case: Callable[[str], list[Result]], text: str) -> Result:
    (result,) = run_case(text)
    return result


@pytest.fixture
def leaky() -> Any:
    return get_block("leaky_relu")


def _wrong_keras_slope(monkeypatch: pytest.MonkeyPatch, block: Any) -> None:
    """Keras's LeakyReLU left at its own default slope 0.3 (the harness passes 0.01)."""
    monkeypatch.setattr(block, "keras_layer", lambda site: keras.layers.LeakyReLU(negative_slope=0.3,
                                                                                  dtype=site.dtype))


def _wrong_torch_slope(monkeypatch: pytest.MonkeyPatch, block: Any) -> None:
    monkeypatch.setattr(block, "torch_module", lambda site: torch.nn.LeakyReLU(negative_slope=0.3))


def test_a_wrong_keras_adapter_is_named(run_case: Callable, leaky: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _wrong_keras_slope(monkeypatch, leaky)
    result = _one(run_case, _leaky())
    verdicts = _verdicts(result)
    assert result.status == "failed"
    assert verdicts[TORCH_VS_REFERENCE].passed and not verdicts[KERAS_VS_REFERENCE].passed
    assert result.message.splitlines()[0] == "the reference agrees with torch; keras differs"


def test_a_wrong_torch_adapter_is_named(run_case: Callable, leaky: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _wrong_torch_slope(monkeypatch, leaky)
    result = _one(run_case, _leaky())
    verdicts = _verdicts(result)
    assert result.status == "failed"
    assert verdicts[KERAS_VS_REFERENCE].passed and not verdicts[TORCH_VS_REFERENCE].passed
    assert result.message.splitlines()[0] == "the reference agrees with keras; torch differs"


def test_two_different_mistakes_agree_with_neither(run_case: Callable, leaky: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _wrong_keras_slope(monkeypatch, leaky)
    monkeypatch.setattr(leaky, "torch_module", lambda site: torch.nn.LeakyReLU(negative_slope=0.2))
    result = _one(run_case, _leaky())
    assert result.message.splitlines()[0] == "the reference agrees with neither torch nor keras"


def test_the_third_opinion_is_computed_at_every_point_unless_the_case_opts_out(run_case: Callable) -> None:
    """By default both frameworks are held to the reference even when they agree (issue 18: a mistake both sides
    share passes otherwise); `expect.reference: false` computes it only on a disagreement."""
    verdicts = _verdicts(result := _one(run_case, _leaky()))
    assert result.status == "passed", result.message
    assert verdicts[TORCH_VS_REFERENCE].passed and verdicts[KERAS_VS_REFERENCE].passed
    result = _one(run_case, _leaky("expect: {reference: false}"))
    assert result.status == "passed"
    assert not set(_verdicts(result)) & {TORCH_VS_REFERENCE, KERAS_VS_REFERENCE, UNAVAILABLE}


def test_expect_reference_checks_both_frameworks_when_they_agree(run_case: Callable) -> None:
    result = _one(run_case, _leaky("expect: {reference: true}"))
    verdicts = _verdicts(result)
    assert result.status == "passed", result.message
    assert verdicts[TORCH_VS_REFERENCE].passed and verdicts[KERAS_VS_REFERENCE].passed


def test_expect_reference_catches_a_mistake_both_adapters_share(run_case: Callable, leaky: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Both frameworks given Keras's slope 0.3 instead of the case's 0.01: they agree with each other, so only the
    reference can tell. By default (and with expect.reference: true) the case fails on both sides; opted out
    (expect.reference: false) it passes, which is what the opt-out costs."""
    _wrong_keras_slope(monkeypatch, leaky)
    _wrong_torch_slope(monkeypatch, leaky)
    assert _one(run_case, _leaky("expect: {reference: false}")).status == "passed"
    for expect in ("", "expect: {reference: true}"):
        result = _one(run_case, _leaky(expect))
        verdicts = _verdicts(result)
        assert result.status == "failed"
        assert not verdicts[TORCH_VS_REFERENCE].passed and not verdicts[KERAS_VS_REFERENCE].passed
        assert "the reference agrees with neither torch nor keras" in result.message


def test_a_network_chains_the_references_with_the_copied_weights(run_case: Callable,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """conv2d > relu > flatten > dense, with a planted mistake in Keras's dense after flatten (the kernel rows
    not permuted from (C, H, W) to Keras's (H, W, C)): the chained reference, given PyTorch's initial weights (the
    ones copied), agrees with PyTorch. The same network unplanted, with expect.reference, agrees with both."""
    assert _one(run_case, NETWORK + "  expect: {reference: true}").status == "passed"
    dense = get_block("dense")
    original = dense.weight_copies

    def unpermuted(site: Any, module: Any, layer: Any) -> Any:
        return original(dataclasses.replace(site, layout=dataclasses.replace(site.layout, flattened_from=None)),
                        module, layer)

    monkeypatch.setattr(dense, "weight_copies", unpermuted)
    result = _one(run_case, NETWORK)
    assert result.status == "failed"
    assert "the reference agrees with torch; keras differs" in result.message


def test_a_block_without_a_reference_says_so_and_never_errors(run_case: Callable, leaky: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _wrong_keras_slope(monkeypatch, leaky)

    def missing(site: Any, x: Any, weights: Any) -> Any:
        raise NotImplementedError("leaky_relu has no reference implementation")

    monkeypatch.setattr(leaky, "reference", missing)
    result = _one(run_case, _leaky())
    assert result.status == "failed"  # for the frameworks' disagreement, not for the missing reference
    assert result.message.splitlines()[0] == "no third opinion: leaky_relu has no reference implementation"
    assert _verdicts(result)[UNAVAILABLE].passed

    asked = _one(run_case, _leaky("expect: {reference: true}"))
    assert asked.status == "failed"
    assert not _verdicts(asked)[UNAVAILABLE].passed
    assert "expect.reference asks for one" in asked.message


def test_a_reference_that_raises_is_a_note_not_an_error(run_case: Callable, leaky: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _wrong_keras_slope(monkeypatch, leaky)
    monkeypatch.setattr(leaky, "reference", lambda site, x, weights: 1 / 0)
    result = _one(run_case, _leaky())
    assert result.status == "failed"
    first = result.message.splitlines()[0]
    assert first == "no third opinion: the reference raised ZeroDivisionError: division by zero"


def test_dropout_in_train_mode_has_no_reference(run_case: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sample check that fails (Keras's survivors planted unscaled) asks for a third opinion; dropout in train
    mode has none (a random mask): the message says so."""
    dropout = get_block("dropout")
    monkeypatch.setattr(dropout, "keras_layer", lambda site: keras.layers.Lambda(
        lambda x: x * keras.ops.cast(keras.random.uniform(keras.ops.shape(x), seed=1) >= 0.5, x.dtype)))
    result = _one(run_case, """
- name: dropout_train
  block: dropout
  params: {rate: 0.5}
  mode: train
  input: {shape: [4, 50, 50], fill: uniform}
""")
    assert result.status == "failed"
    assert result.message.startswith("no third opinion: dropout in train mode draws a random mask")


