"""The pass/fail policy: a test's `Status` and message from its verdicts, read by their kinds.

- Plain case: failed when a verdict failed, else passed.
- A canary (`expect.fails: CHECK`) turns that around for what it plants: its expectation (the GOLDEN verdicts), or
  with `expect.plant` the comparison the plant went into (the verdicts marked `planted`, xfw_harness.engine.plants,
  its GOLDEN verdicts then ordinary ones). It passes only when there is such a verdict, every one failed with CHECK,
  and every other verdict passed: a planted comparison that was never made (a check skipped) fails it too.
- A known difference (`expect.divergent: WHY`) is DIVERGENT only while PyTorch and Keras do differ (a verdict that
  compares the frameworks failed) and nothing else failed, and fails once they agree, so that someone updates the
  catalogue. With `expect.reference: true`, one framework must also agree with the float64 reference. With
  `expect.backends`, the difference is known on those Keras backends only: on the others the case is a plain one.
- The third opinion's REFERENCE verdicts (xfw_harness.engine.third_opinion), present at every point unless the
  case sets `expect.reference: false` (then when the frameworks disagree), count like any other; its one-line
  summary (which side the reference agrees with) leads the message.
"""

from __future__ import annotations

from xfw_harness.cases import Point
from xfw_harness.core.verdicts import Status, Verdict, VerdictKind
from xfw_harness.engine import third_opinion


def _lines(verdicts: list[Verdict]) -> list[str]:
    return [f"[{v.what}] {v.message}" for v in verdicts]


def judge(point: Point, verdicts: list[Verdict]) -> tuple[Status, str]:
    """A test's status and message from its verdicts (module doc)."""
    failed = [v for v in verdicts if not v.passed]
    side = [line] if (line := third_opinion.agreement(verdicts)) else []
    if point.divergent_here():
        return _known_difference(point, verdicts, failed, side)
    if point.expect_fails is None:
        return (Status.FAILED if failed else Status.PASSED), "\n".join(
            [*(side if failed else []), *_lines(failed or verdicts)])
    return _canary(point, verdicts)


def _known_difference(point: Point, verdicts: list[Verdict], failed: list[Verdict],
                      side: list[str]) -> tuple[Status, str]:
    frameworks = [v for v in verdicts if v.compares_frameworks()]
    differ = [v for v in frameworks if not v.passed]
    others = [v for v in failed if v not in frameworks and v.kind != VerdictKind.REFERENCE]
    sides = third_opinion.sides(verdicts)
    if differ and not others and point.expect_reference is True and not any(v.passed for v in sides):
        return Status.FAILED, "\n".join([
            "expect.reference: in a known difference one framework must compute the stated semantics, but the "
            "float64 reference agrees with neither (or could not be computed): the reference or an adapter is "
            f"wrong: {point.expect_divergent}", *side, *_lines([*differ, *sides])])
    if differ and not others:
        return Status.DIVERGENT, "\n".join([f"known difference (expect.divergent{_on_backends(point)}): "
                                            f"{point.expect_divergent}", *side,
                                            *_lines(differ)])
    why = (["the frameworks agree, but expect.divergent says they differ: a framework release may have removed "
            "the difference; update the catalogue (drop expect.divergent, or the case, and its row in the "
            f"manual): {point.expect_divergent}"] if not differ else [])
    return Status.FAILED, "\n".join([*why, *side, *_lines(others or frameworks)])


def _on_backends(point: Point) -> str:
    return f" on {', '.join(point.expect_backends)}" if point.expect_backends else ""


def _canary(point: Point, verdicts: list[Verdict]) -> tuple[Status, str]:
    plant = point.expect_plant
    planted = [v for v in verdicts if (v.planted is not None if plant is not None else v.kind == VerdictKind.GOLDEN)]
    ids = {id(v) for v in planted}
    wrong = [v for v in verdicts if (v.passed or v.check != point.expect_fails if id(v) in ids else not v.passed)]
    if wrong or not planted:
        if plant is None:
            lines = [f"canary: expect.fails is {point.expect_fails}: every comparison with the expectation must fail "
                     "that check, and the others pass; the harness said otherwise"]
            lines += _lines(wrong) or ["(no comparison with the expectation was made)"]
        else:
            lines = [f"canary: expect.fails is {point.expect_fails}: the comparison planted into ({plant.describe()}) "
                     "must fail that check, and the others pass; the harness said otherwise"]
            lines += _lines(wrong) + ([] if planted else [
                f"(the planted comparison {plant.what!r} was never made: a check skipped, or expect.plant.in "
                "misspelt)"])
        return Status.FAILED, "\n".join(lines)
    return Status.PASSED, "\n".join([f"canary: the planted difference was reported ({point.expect_fails}), as "
                                     "expected", *_lines(planted)])
