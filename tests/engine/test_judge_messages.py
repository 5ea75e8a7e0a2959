"""The judge's messages, word for word (xfw_harness/engine/judge.py): what a user reads when a canary, a known
difference or a plain case goes the wrong way. Each branch of the policy is given verdicts made by hand, so the test
pins the message's lines and their order, not only the status (issue 18: mutmut's changes to these texts and to how
their lines are joined survived the tests that checked statuses).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xfw_harness.cases import Point
from xfw_harness.core.verdicts import Status, Verdict, VerdictKind
from xfw_harness.engine.judge import judge
from xfw_harness.engine.third_opinion import KERAS_VS_REFERENCE, TORCH_VS_REFERENCE

CASE = """
- name: c
  block: relu
  input: {shape: [1, 2]}
  {extra}
"""


@pytest.fixture
def point(case_points: Callable[[str], list[Point]]) -> Callable[[str], Point]:
    def make(extra: str = "") -> Point:
        (p,) = case_points(CASE.replace("{extra}", extra))
        return p

    return make


def _v(what: str, passed: bool, kind: VerdictKind, check: str | None = None, planted: str | None = None) -> Verdict:
    return Verdict(what, passed, check or ("ok" if passed else "values"), f"{what} {'ok' if passed else 'off'}",
                   kind=kind, planted=planted)


FORWARD_OFF = _v("keras vs torch", False, VerdictKind.FORWARD)
FORWARD_OK = _v("keras vs torch", True, VerdictKind.FORWARD)
TORCH_REF_OK = _v(TORCH_VS_REFERENCE, True, VerdictKind.REFERENCE)
KERAS_REF_OFF = _v(KERAS_VS_REFERENCE, False, VerdictKind.REFERENCE)
TORCH_REF_OFF = _v(TORCH_VS_REFERENCE, False, VerdictKind.REFERENCE)


def test_a_plain_failure_says_which_side_the_reference_takes_then_each_failed_comparison(point) -> None:
    status, message = judge(point(), [FORWARD_OFF, TORCH_REF_OK, KERAS_REF_OFF])
    assert status == Status.FAILED
    assert message.split("\n") == ["the reference agrees with torch; keras differs",
                                   "[keras vs torch] keras vs torch off",
                                   f"[{KERAS_VS_REFERENCE}] {KERAS_VS_REFERENCE} off"]


def test_a_plain_pass_lists_every_comparison(point) -> None:
    status, message = judge(point(), [FORWARD_OK])
    assert (status, message) == (Status.PASSED, "[keras vs torch] keras vs torch ok")


def test_a_pass_leads_with_no_reference_summary(point) -> None:
    """The reference's one-line summary explains a failure; beside a pass the verdicts speak for themselves."""
    keras_ref_ok = _v(KERAS_VS_REFERENCE, True, VerdictKind.REFERENCE)
    status, message = judge(point(), [FORWARD_OK, TORCH_REF_OK, keras_ref_ok])
    assert status == Status.PASSED
    assert message.split("\n") == ["[keras vs torch] keras vs torch ok",
                                   f"[{TORCH_VS_REFERENCE}] {TORCH_VS_REFERENCE} ok",
                                   f"[{KERAS_VS_REFERENCE}] {KERAS_VS_REFERENCE} ok"]


def test_a_known_difference_names_its_reason_its_backends_and_the_differing_comparison(point) -> None:
    p = point("expect: {divergent: 'slope kept in float32', backends: [tensorflow, jax]}\n"
              "  backends: [tensorflow, jax]")
    status, message = judge(p, [FORWARD_OFF, TORCH_REF_OK, KERAS_REF_OFF])
    assert status == Status.DIVERGENT
    assert message.split("\n") == [
        "known difference (expect.divergent on tensorflow, jax): slope kept in float32",
        "the reference agrees with torch; keras differs", "[keras vs torch] keras vs torch off"]
    status, message = judge(point("expect: {divergent: 'slope'}"), [FORWARD_OFF])
    assert (status, message) == (Status.DIVERGENT, "known difference (expect.divergent): slope\n"
                                                   "[keras vs torch] keras vs torch off")


def test_a_known_difference_whose_frameworks_agree_asks_for_the_catalogue_to_be_updated(point) -> None:
    status, message = judge(point("expect: {divergent: 'slope'}"), [FORWARD_OK])
    assert status == Status.FAILED
    assert message.split("\n") == [
        "the frameworks agree, but expect.divergent says they differ: a framework release may have removed the "
        "difference; update the catalogue (drop expect.divergent, or the case, and its row in the manual): slope",
        "[keras vs torch] keras vs torch ok"]


def test_a_known_difference_that_also_fails_elsewhere_shows_that_failure(point) -> None:
    golden = _v("torch vs expected", False, VerdictKind.GOLDEN)
    status, message = judge(point("expect: {divergent: 'slope'}"), [FORWARD_OFF, golden])
    assert (status, message) == (Status.FAILED, "[torch vs expected] torch vs expected off")


def test_a_known_difference_whose_reference_agrees_with_neither_fails_under_expect_reference(point) -> None:
    p = point("expect: {divergent: 'slope', reference: true}")
    status, message = judge(p, [FORWARD_OFF, TORCH_REF_OFF, KERAS_REF_OFF])
    assert status == Status.FAILED
    assert message.split("\n") == [
        "expect.reference: in a known difference one framework must compute the stated semantics, but the float64 "
        "reference agrees with neither (or could not be computed): the reference or an adapter is wrong: slope",
        "the reference agrees with neither torch nor keras", "[keras vs torch] keras vs torch off",
        f"[{TORCH_VS_REFERENCE}] {TORCH_VS_REFERENCE} off", f"[{KERAS_VS_REFERENCE}] {KERAS_VS_REFERENCE} off"]


def test_a_canary_whose_expectation_was_never_compared_says_so(point) -> None:
    p = point("expect: {fails: values, output: [[0.0, 1.0]]}")
    status, message = judge(p, [FORWARD_OK])
    assert status == Status.FAILED
    assert message.split("\n") == [
        "canary: expect.fails is values: every comparison with the expectation must fail that check, and the others "
        "pass; the harness said otherwise", "(no comparison with the expectation was made)"]


def test_a_canary_whose_expectation_passed_lists_it(point) -> None:
    p = point("expect: {fails: values, output: [[0.0, 1.0]]}")
    golden = _v("torch vs expected", True, VerdictKind.GOLDEN)
    status, message = judge(p, [FORWARD_OK, golden])
    assert status == Status.FAILED
    assert message.split("\n")[1:] == ["[torch vs expected] torch vs expected ok"]


def test_a_planted_canary_whose_comparison_was_never_made_names_it(point) -> None:
    p = point("expect: {fails: values, plant: {in: grad input, side: keras, plus: 1.0}}\n  check: [forward, backward]")
    status, message = judge(p, [FORWARD_OK])
    assert status == Status.FAILED
    assert message.split("\n") == [
        "canary: expect.fails is values: the comparison planted into (grad input: keras's every element plus 1.0) "
        "must fail that check, and the others pass; the harness said otherwise",
        "(the planted comparison 'grad input' was never made: a check skipped, or expect.plant.in misspelt)"]


def test_a_planted_canary_whose_comparison_passed_lists_it_and_only_it(point) -> None:
    p = point("expect: {fails: values, plant: {in: grad input, side: keras, plus: 1.0}}\n  check: [forward, backward]")
    grad = _v("grad input", True, VerdictKind.GRADIENT, planted="keras +1")
    status, message = judge(p, [FORWARD_OK, grad])
    assert status == Status.FAILED
    assert message.split("\n") == [
        "canary: expect.fails is values: the comparison planted into (grad input: keras's every element plus 1.0) "
        "must fail that check, and the others pass; the harness said otherwise", "[grad input] grad input ok"]


def test_a_canary_that_caught_its_plant_passes_and_shows_the_planted_comparison(point) -> None:
    p = point("expect: {fails: values, plant: {in: grad input, side: keras, plus: 1.0}}\n  check: [forward, backward]")
    grad = _v("grad input", False, VerdictKind.GRADIENT, planted="keras +1")
    status, message = judge(p, [FORWARD_OK, grad])
    assert (status, message) == (Status.PASSED, "canary: the planted difference was reported (values), as expected\n"
                                                "[grad input] grad input off")
