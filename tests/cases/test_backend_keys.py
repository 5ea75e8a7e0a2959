"""The case keys of Keras's backends: `backends:` (where a case runs), `compare: backends` (Keras on each backend
against the others) and `expect.backends` (the backends a known difference holds on). Every refusal names the
file, the case and the field; what is accepted is read as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from tests.cases.test_loader import DELETE, RELU, assert_located, case, case_error, points

DIVERGENT = {"divergent": "a known difference"}


def test_backends_is_read_in_order_once_each(tmp_path: Path) -> None:
    (point,) = points(tmp_path, case(RELU, backends=["torch", "jax", "torch"]))
    assert point.backends == ("torch", "jax")  # as written, each once (the run orders them: BACKENDS)
    (point,) = points(tmp_path, RELU)
    assert point.backends is None and point.expect_backends is None


@pytest.mark.parametrize(("value", "needles"), [
    (["tensorflw"], ("got ['tensorflw'] (did you mean 'tensorflow'?)", "allowed: a list of tensorflow, jax, torch")),
    (["jax", "pytorch"], ("(did you mean 'torch'?)",)),
    ("jax", ("got 'jax' (a list: [jax])", "a list of")),
    ([], ("got []", "a list of")),
    ([["jax"]], ("a list of",)),
    ({"jax": 1}, ("a list of",)),
])
def test_a_bad_backends_list_is_refused_naming_the_field(tmp_path: Path, value: Any, needles: tuple[str, ...]) -> None:
    path, err = case_error(tmp_path, case(RELU, backends=value))
    assert_located(err, path, "c", "backends", *needles)


def test_compare_backends_is_accepted_with_two_backends_or_all(tmp_path: Path) -> None:
    (point,) = points(tmp_path, case(RELU, compare="backends"))
    assert point.compare_with == "backends" and point.backends is None
    (point,) = points(tmp_path, case(RELU, compare="backends", backends=["tensorflow", "jax"]))
    assert point.backends == ("tensorflow", "jax")


@pytest.mark.parametrize(("changes", "field", "needle"), [
    ({"backends": ["jax"]}, "backends", "compares Keras on two backends or more: got ['jax']"),
    ({"check": "backward"}, "check", "compares forward outputs"),
    ({"check": ["forward", "train_step"]}, "check", "compares forward outputs"),
    ({"expect": {"shape": [1, 3, 8, 8]}}, "expect", "put shape in a case with compare: frameworks"),
    ({"expect": {"output": [0.0]}}, "expect", "put output in a case with compare: frameworks"),
])
def test_what_compare_backends_cannot_take_is_refused(tmp_path: Path, changes: dict, field: str, needle: str) -> None:
    path, err = case_error(tmp_path, case(RELU, compare="backends", **changes))
    assert_located(err, path, "c", field, needle)


def test_expect_backends_is_read_with_divergent(tmp_path: Path) -> None:
    (point,) = points(tmp_path, case(RELU, expect={**DIVERGENT, "backends": ["jax", "jax"]}))
    assert point.expect_backends == ("jax",) and point.expect_divergent == "a known difference"
    assert point.divergent_here("jax") and not point.divergent_here("tensorflow") and not point.divergent_here("torch")
    (point,) = points(tmp_path, case(RELU, expect=DIVERGENT))
    assert all(point.divergent_here(b) for b in ("tensorflow", "jax", "torch"))  # no expect.backends: everywhere
    (point,) = points(tmp_path, case(RELU, backends=["jax", "torch"], expect={**DIVERGENT, "backends": ["torch"]}))
    assert point.backends == ("jax", "torch") and point.expect_backends == ("torch",)


@pytest.mark.parametrize(("expect", "backends", "field", "needles"), [
    ({"backends": ["jax"]}, DELETE, "expect.backends", ("is only read with expect.divergent",)),
    ({"divergent": None, "backends": ["jax"]}, DELETE, "expect.backends", ("is only read with expect.divergent",)),
    ({**DIVERGENT, "backends": ["jaxx"]}, DELETE, "expect.backends", ("(did you mean 'jax'?)", "a list of")),
    ({**DIVERGENT, "backends": "torch"}, DELETE, "expect.backends", ("a list of",)),
    ({**DIVERGENT, "backends": []}, DELETE, "expect.backends", ("a list of",)),
    ({**DIVERGENT, "backends": ["jax"]}, ["tensorflow", "torch"], "expect.backends",
     ("names jax, where the case does not run (backends: ['tensorflow', 'torch'])",)),
])
def test_a_bad_expect_backends_is_refused_naming_the_field(tmp_path: Path, expect: dict, backends: Any, field: str,
                                                           needles: tuple[str, ...]) -> None:
    path, err = case_error(tmp_path, case(RELU, expect=expect, backends=backends))
    assert_located(err, path, "c", field, *needles)
