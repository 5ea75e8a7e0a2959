"""xfw_harness.core.verdicts: a verdict as the results file and the report read it, which verdicts are about PyTorch
against Keras (what a known difference may excuse), and kinds and statuses as text. (The headline: test_headline.py.)"""

from __future__ import annotations

import json

import pytest

from xfw_harness.core.verdicts import FRAMEWORK_KINDS, Status, Verdict, VerdictKind, headline


def test_to_dict_is_the_verdict_as_the_results_file_holds_it() -> None:
    """Every field under its own name, the kind as its text; `planted` only where a canary planted something."""
    v = Verdict("keras vs torch", False, "values", "max abs 0.5", {"max_abs": 0.5}, kind=VerdictKind.FORWARD)
    assert v.to_dict() == {"what": "keras vs torch", "kind": "forward", "passed": False, "check": "values",
                           "message": "max abs 0.5", "metrics": {"max_abs": 0.5}}
    assert type(v.to_dict()["kind"]) is str
    v.planted = "rate 0.5 -> 0.6"
    assert v.to_dict()["planted"] == "rate 0.5 -> 0.6"


def test_a_results_file_verdict_heads_the_line_as_the_verdict_does() -> None:
    """The report reads verdicts back from JSON: the headline picks the same one from their dicts."""
    verdicts = [Verdict("keras vs torch", True, "ok", "", {"max_abs": 0.0}, kind=VerdictKind.FORWARD),
                Verdict("torch vs expected", False, "values", "", {"max_abs": 1.0}, kind=VerdictKind.GOLDEN)]
    read_back = json.loads(json.dumps([v.to_dict() for v in verdicts]))
    assert headline(Status.FAILED, read_back) == headline(Status.FAILED, verdicts) == 1
    assert headline(Status.PASSED, read_back) == headline(Status.PASSED, verdicts) == 0


@pytest.mark.parametrize("kind", list(VerdictKind))
def test_compares_frameworks_is_the_framework_kinds_except_a_missing_mapping(kind: VerdictKind) -> None:
    """A forward, gradient, sample, device or backend comparison is about the frameworks (a known difference may
    excuse it); an expectation, the reference or the model are not; a gradient one framework did not give (check
    "mapping") is the adapter's gap, whatever its kind."""
    assert Verdict("x", False, "values", "", kind=kind).compares_frameworks() == (kind in FRAMEWORK_KINDS)
    assert not Verdict("x", False, "mapping", "", kind=kind).compares_frameworks()


def test_the_framework_kinds_are_those_between_the_frameworks() -> None:
    assert {str(k) for k in FRAMEWORK_KINDS} == {"forward", "layers", "sample", "gradient", "update", "statistics",
                                                 "device", "backend"}


@pytest.mark.parametrize("member", [*Status, *VerdictKind])
def test_kinds_and_statuses_are_their_text_everywhere(member: Status | VerdictKind) -> None:
    """str(), f-strings, JSON and comparisons with text all see the value ("passed", "forward"), never the enum's
    name, since the results file and the report are read by other programs."""
    assert str(member) == f"{member}" == json.loads(json.dumps(member)) == member.value
    assert member == member.value
