"""The comparator: arrays in, a `Verdict` with metrics out. Pure NumPy; knows nothing of frameworks or cases.

Order of checks (the first that fails names the verdict): shape, then NaN/Inf in the same places, then
`|actual - expected| <= atol + rtol * |expected|` elementwise.

Besides max abs and max rel, a verdict with values carries `tolerance_ratio` (error / tolerance): the largest over
the elements of |actual - expected| / (atol + rtol * |expected|), the very quantity the decision compares with 1
(<= 1 passes), so it is comparable across dtypes and tolerances where max rel is not (a bfloat16 value near zero
passes on atol with a max rel above 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xfw_harness.core.tolerance import Tolerance
from xfw_harness.core.verdicts import Verdict, VerdictKind


def format_shape(shape: tuple[int, ...]) -> str:
    """A shape as messages write it: [2, 3, 28, 28]."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


SHAPE_KEY = "shape_"  # a verdict's metrics name its two arrays: shape_<actual>, then shape_<expected>


def compared_names(metrics: Mapping[str, Any]) -> tuple[str, str] | None:
    """The names of a comparison's two arrays (actual, expected), read from its metrics; None where they are not
    two (a verdict of another kind)."""
    names = [k[len(SHAPE_KEY):] for k in metrics if k.startswith(SHAPE_KEY)]
    return (names[0], names[1]) if len(names) == 2 else None


def compare(actual: np.ndarray, expected: np.ndarray, tolerance: Tolerance, what: str = "actual vs expected",
            names: tuple[str, str] = ("actual", "expected"), *, kind: VerdictKind) -> Verdict:
    """Compare `actual` against `expected` (both channels-first); the verdict is of `kind`."""
    a = np.asarray(actual)
    b = np.asarray(expected)
    na, nb = names
    shapes = {SHAPE_KEY + na: list(a.shape), SHAPE_KEY + nb: list(b.shape)}
    if a.shape != b.shape:
        return Verdict(what, False, "shape",
                       f"shape mismatch: {na} {format_shape(a.shape)} vs {nb} {format_shape(b.shape)}", shapes,
                       kind=kind)
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    n = a64.size
    metrics: dict[str, Any] = {**shapes, "n": int(n), "atol": tolerance.atol, "rtol": tolerance.rtol}

    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    inf_a, inf_b = np.isinf(a64), np.isinf(b64)
    bad_nonfinite = (nan_a != nan_b) | (inf_a != inf_b) | (inf_a & inf_b & (np.sign(a64) != np.sign(b64)))
    if bad_nonfinite.any():
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad_nonfinite)), a.shape))
        count = int(bad_nonfinite.sum())
        metrics.update(n_bad=count, worst_index=list(idx), worst_actual=float(a64[idx]), worst_expected=float(b64[idx]))
        return Verdict(what, False, "nonfinite",
                       f"NaN/Inf in different places: {count} of {n} elements; first at {list(idx)}: "
                       f"{na}={float(a64[idx])!r}, {nb}={float(b64[idx])!r}", metrics, kind=kind)

    finite = np.isfinite(a64) & np.isfinite(b64)
    with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity: masked out just below
        diff = np.where(finite, np.abs(a64 - b64), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # a difference from an expected 0 is infinitely relative
        rel = np.where(diff == 0, 0.0, diff / np.abs(b64))
    allowed = tolerance.atol + tolerance.rtol * np.abs(np.where(finite, b64, 0.0))
    bad = diff > allowed
    # The same two arrays the decision compares: diff / allowed > 1 exactly where diff > allowed (IEEE division is
    # monotonic and x / y rounds to 1 only when x == y). Nothing allowed (atol = rtol = 0, or atol = 0 at an expected
    # 0): an equal element has used none of it, an unequal one infinitely much.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / allowed)
    n_bad = int(bad.sum())
    worst_flat = int(np.argmax(diff)) if n else 0
    worst = tuple(int(i) for i in np.unravel_index(worst_flat, a.shape)) if n else ()
    metrics.update(
        max_abs=float(diff.max()) if n else 0.0,
        max_rel=float(rel.max()) if n else 0.0,
        tolerance_ratio=float(ratio.max()) if n else 0.0,
        n_bad=n_bad,
        pct_bad=100.0 * n_bad / n if n else 0.0,
        worst_index=list(worst),
        worst_actual=float(a64[worst]) if n else None,
        worst_expected=float(b64[worst]) if n else None,
    )
    if n_bad == 0:
        return Verdict(what, True, "ok",
                       f"equal within {tolerance.describe()}: max abs {metrics['max_abs']:.3g}, "
                       f"max rel {metrics['max_rel']:.3g}", metrics, kind=kind)
    lines = [
        f"values differ: {n_bad} of {n} elements ({metrics['pct_bad']:.3g}%) outside {tolerance.describe()}",
        f"shapes: {na} {format_shape(a.shape)}, {nb} {format_shape(b.shape)} (channels-first)",
        f"max abs error {metrics['max_abs']:.6g}, max rel error {metrics['max_rel']:.6g}",
        f"worst element at {list(worst)}: {na}={a64[worst]:.9g}, {nb}={b64[worst]:.9g}",
    ]
    return Verdict(what, False, "values", "\n".join(lines), metrics, kind=kind)

