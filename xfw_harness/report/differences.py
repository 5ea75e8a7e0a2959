"""The report's "Known differences" section: every test whose status is divergent (a documented real difference,
`expect: divergent`), grouped by case, each with the reason the case gives, which side the float64 reference takes,
the worst element of the comparison that differs, and the Keras backends it holds on. Static HTML: it reads
without JavaScript.

Read from a result's data, never from the words of its verdicts' `what`: the reason from the judge's first line
("known difference (expect.divergent[ on BACKENDS]): WHY", xfw_harness.engine.judge), the side from the verdicts of
kind reference (xfw_harness.engine.third_opinion.agreement), the worst element from the headline verdict's metrics
(worst_index, worst_actual, worst_expected; the comparator names its arrays in `shape_<actual>`, `shape_<expected>`).
"""

from __future__ import annotations

from typing import Any

from xfw_harness.core.compare import compared_names
from xfw_harness.core.verdicts import Status, Verdict, VerdictKind, headline
from xfw_harness.suite.results import backend_of, backend_order, case_key, point_id

_REASON_OPENING = "known difference (expect.divergent"


def reason(message: str) -> str:
    """WHY of the judge's first line `known difference (expect.divergent[ on X]): WHY`; the line itself otherwise."""
    first = message.splitlines()[0] if message else ""
    if first.startswith(_REASON_OPENING) and "): " in first:
        return first.split("): ", 1)[1]
    return first


def reference_side(verdicts: list[dict[str, Any]]) -> str | None:
    """The third opinion's line ("the reference agrees with torch; keras differs", or why there is none); None when
    no reference was computed."""
    from xfw_harness.engine.third_opinion import agreement  # the one wording of it; loads the engine only when needed

    return agreement([Verdict(v.get("what", ""), bool(v.get("passed")), v.get("check", ""), v.get("message", ""),
                              v.get("metrics") or {}, kind=VerdictKind(v["kind"]))
                      for v in verdicts if v.get("kind") == VerdictKind.REFERENCE])


def _number(x: Any) -> str:
    return f"{x:.6g}" if isinstance(x, (int, float)) else str(x)


def worst_element(result: dict[str, Any]) -> dict[str, Any]:
    """The comparison that differs (the headline verdict) and its worst element: `what`, `text`, `tolerance_ratio`."""
    verdicts = result.get("verdicts") or []
    i = headline(result.get("status", ""), verdicts)
    if i is None:
        return {"what": "", "text": "", "tolerance_ratio": None}
    v = verdicts[i]
    m = v.get("metrics") or {}
    if "worst_index" in m and m.get("worst_actual") is not None:
        a, b = compared_names(m) or ("actual", "expected")
        text = f"at {m['worst_index']}: {a} {_number(m['worst_actual'])}, {b} {_number(m['worst_expected'])}"
    else:  # a comparison without elements (a dropout sample's statistics, a refusal): its own first line
        text = (v.get("message") or v.get("check", "")).splitlines()[0] if (v.get("message") or v.get("check")) else ""
    tolerance_ratio = m.get("tolerance_ratio")
    return {"what": v.get("what", ""), "text": text,
            "tolerance_ratio": tolerance_ratio if isinstance(tolerance_ratio, (int, float, str)) else None}


def known_differences(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per case with a divergent test (in the order of the results): its reason(s) and one row per test point and
    finding, with the backends it holds on (backends whose side and worst element read the same share a row) and
    how the point did on the other backends."""
    by_case: dict[str, dict[str, Any]] = {}
    on_point: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        on_point.setdefault(point_id(r), []).append(r)
    for r in results:
        if r.get("status") != Status.DIVERGENT:
            continue
        case = by_case.setdefault(case_key(r), {"case": case_key(r), "reasons": [], "rows": {}})
        why = reason(r.get("message", ""))
        if why not in case["reasons"]:
            case["reasons"].append(why)
        worst = worst_element(r)
        side = reference_side(r.get("verdicts") or [])
        row = case["rows"].setdefault((point_id(r), side, worst["what"], worst["text"]),
                                      {"point": point_id(r), "side": side, **worst, "backends": []})
        row["backends"].append(backend_of(r))
        if isinstance(worst["tolerance_ratio"], (int, float)) and isinstance(row["tolerance_ratio"], (int, float)):
            row["tolerance_ratio"] = max(row["tolerance_ratio"], worst["tolerance_ratio"])
    out = []
    for case in by_case.values():
        rows = list(case["rows"].values())
        for row in rows:
            row["backends"] = backend_order(row["backends"])
            row["elsewhere"] = ", ".join(f"{backend_of(o)}: {o['status']}" for o in on_point[row["point"]]
                                         if o.get("status") != Status.DIVERGENT)
        out.append({"case": case["case"], "reasons": case["reasons"], "rows": rows,
                    "tests": sum(len(row["backends"]) for row in rows)})
    return out
