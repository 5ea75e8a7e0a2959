"""xfw_harness.core.verdicts.headline: which verdict's figures head a test's line and report row, for each status."""

from __future__ import annotations

import pytest

from xfw_harness.core.verdicts import Status, Verdict, VerdictKind, headline


def verdict(kind: VerdictKind, passed: bool, max_abs: float | None = 0.0) -> Verdict:
    metrics = {} if max_abs is None else {"max_abs": max_abs, "max_rel": max_abs}
    return Verdict(str(kind), passed, "ok" if passed else "values", "", metrics, kind=kind)


FORWARD_OK = verdict(VerdictKind.FORWARD, True)


@pytest.mark.parametrize(("status", "verdicts", "index"), [
    (Status.PASSED, [FORWARD_OK, verdict(VerdictKind.GOLDEN, True)], 0),
    # a failed expectation, not the agreeing frameworks (issue 17's 'FAIL ... max abs 0.00e+00')
    (Status.FAILED, [FORWARD_OK, verdict(VerdictKind.GOLDEN, True), verdict(VerdictKind.GOLDEN, False, 0.5)], 2),
    (Status.FAILED, [FORWARD_OK, verdict(VerdictKind.GOLDEN, False, None)], 1),  # an expected shape: no figures
    (Status.FAILED, [FORWARD_OK, verdict(VerdictKind.GRADIENT, False, 1.0)], 1),
    (Status.FAILED, [verdict(VerdictKind.FORWARD, False, 2.0), verdict(VerdictKind.LOCATION, False, None)], 0),
    (Status.FAILED, [FORWARD_OK, verdict(VerdictKind.LOCATION, False, None), verdict(VerdictKind.UPDATE, False)], 2),
    (Status.DIVERGENT, [verdict(VerdictKind.FORWARD, False, 3.0), verdict(VerdictKind.REFERENCE, True)], 0),
    (Status.FAILED, [FORWARD_OK, verdict(VerdictKind.GOLDEN, True)], 0),  # a canary whose planted value passed
    (Status.PASSED, [verdict(VerdictKind.SAMPLE, True, None), FORWARD_OK], 1),  # the first with figures
    # none with figures (two dropout samples): the first still heads the line (mutmut: a default of None or 1 passed)
    (Status.PASSED, [verdict(VerdictKind.SAMPLE, True, None), verdict(VerdictKind.SAMPLE, True, None)], 0),
    (Status.ERROR, [], None),
])
def test_the_headline_is_the_comparison_that_decided(status: Status, verdicts: list[Verdict],
                                                     index: int | None) -> None:
    assert headline(status, verdicts) == index
    assert headline(str(status), [v.to_dict() for v in verdicts]) == index  # the results file's form alike
