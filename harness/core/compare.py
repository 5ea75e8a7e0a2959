"""The comparator: arrays in, a `Verdict` with metrics out. Pure NumPy; knows nothing of frameworks or cases.

Order of checks (the first that fails names the verdict): shape, then NaN/Inf in the same places, then
`|actual - expected| <= atol + rtol * |expected|` elementwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Unit roundoff of each dtype. The default tolerance is a multiple of it that grows with the reduction
# length K (how many products a sum in the block adds up): float32 summation-order differences between two
# correct implementations grow like sqrt(K): measured about 0.4 * sqrt(K) ulp of the output scale for conv2d
# with K from 9 to 2016 (tests/test_compare.py), so 16 * sqrt(K) leaves 37x headroom, while a later
# layer's mistake in a network (a GELU form mix-up, 2.3e-4, after a K=2016 conv) still lies 1.5x above it.
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps),
       "float16": float(np.finfo(np.float16).eps), "bfloat16": 2.0 ** -7}  # bfloat16: 8 significand bits
ULP_FACTOR = 16.0
# float16 and bfloat16 (measured with scripts/dtype_tolerances.py on this project's CPU machine: every shipped
# case point re-run in each dtype): both frameworks accumulate their sums in float32 and round each layer's output
# once to the dtype, so the difference is output rounding, not summation order, and does not grow with K:
#   worst |keras - torch| / (eps(dtype) * max(1, scale)), per family (float16 / bfloat16):
#     activations 0.65 / 0.65 (gelu, hard_swish, silu; elementwise, K = 1), softmax 0.50 / 0.25, conv2d
#     0.98 / 0.99 (K up to 1600), depthwise 1.39 / 0.90, conv2d_transpose 1.72 / 0.96, dense 0.48 / 0.96,
#     batch_norm2d 1.00 / 1.00, avg_pool2d 1.50 / 0.88, upsampling2d 1.50 / 1.00, max pooling, flatten, relu,
#     dropout 0, networks (sequential, up to 12 layers, K up to 2048) 1.63 / 1.22; the worst elementwise
#     |keras - torch| / (atol + rtol * |torch|) under the formula below: 0.121 / 0.125.
# So their tolerance is the float32 accumulation term (16 * eps(float32) * sqrt(K)) plus a floor of
# OUTPUT_ULPS * eps(dtype) for the roundings of the outputs: 8 ulps leaves 8x headroom (elementwise ratio; 4.6x
# over the worst error counted against the floor alone), and is K-independent, so that a mistake of more than
# 8 ulps of the output scale (0.8% in float16, 6% in bfloat16) fails at any K. A GELU form mix-up (at most
# 4.7e-4, at |y| = 2.7 where a float16 ulp is 2e-3) is below float16's resolution: rounding hides it in both.
ACCUMULATOR = {"float32": "float32", "float64": "float64", "float16": "float32", "bfloat16": "float32"}
OUTPUT_ULPS = {"float32": 0.0, "float64": 0.0, "float16": 8.0, "bfloat16": 8.0}


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    source: str = "case"  # "case" when the case set it, else how the default was derived

    def describe(self) -> str:
        return f"atol={self.atol:.3g}, rtol={self.rtol:.3g} ({self.source})"


def default_tolerance(dtype: str, reduction_length: int = 1, scale: float = 1.0) -> Tolerance:
    """The tolerance used when a case sets none.

    rtol = 16 * eps * sqrt(K); atol = rtol * max(1, scale) where scale is the largest |expected| value, so that
    elements that cancel to near zero in a long sum are judged against the size of the terms, not their sum.
    float16 and bfloat16 sum in float32: rtol = 16 * eps(float32) * sqrt(K) + 8 * eps(dtype) (see OUTPUT_ULPS).
    """
    k = max(1, int(reduction_length))
    rtol = ULP_FACTOR * EPS[ACCUMULATOR[dtype]] * math.sqrt(k) + OUTPUT_ULPS[dtype] * EPS[dtype]
    return Tolerance(
        atol=rtol * max(1.0, float(scale)),
        rtol=rtol,
        source=f"{dtype} default, reduction length {k}, scale {max(1.0, float(scale)):.3g}",
    )


def tolerance_for(dtype: str, reduction_length: int, expected: Any, override: Tolerance | None = None) -> Tolerance:
    """The tolerance of a comparison against `expected`: `override` (the case's own `tolerance`) as it is when
    given; else the default for `dtype` and K, scaled by the largest finite |expected| (1 when none is finite:
    an all-NaN or empty array has no size to scale by)."""
    if override is not None:
        return override
    magnitudes = np.abs(np.asarray(expected, np.float64))
    finite = magnitudes[np.isfinite(magnitudes)]
    return default_tolerance(dtype, reduction_length, float(finite.max()) if finite.size else 1.0)


@dataclass
class Verdict:
    """The outcome of one comparison. `metrics` is kept on success too, for the report."""

    what: str  # e.g. "keras vs torch", "torch vs expected"
    passed: bool
    check: str  # "shape" | "nonfinite" | "values" | "dropout" | "ok"
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "passed": self.passed, "check": self.check, "message": self.message,
                "metrics": self.metrics}


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def compare(actual: np.ndarray, expected: np.ndarray, tolerance: Tolerance, what: str = "actual vs expected",
            names: tuple[str, str] = ("actual", "expected")) -> Verdict:
    """Compare `actual` against `expected` (both channels-first)."""
    a = np.asarray(actual)
    b = np.asarray(expected)
    na, nb = names
    shapes = {"shape_" + na: list(a.shape), "shape_" + nb: list(b.shape)}
    if a.shape != b.shape:
        return Verdict(what, False, "shape",
                       f"shape mismatch: {na} {_fmt_shape(a.shape)} vs {nb} {_fmt_shape(b.shape)}", shapes)
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
                       f"{na}={float(a64[idx])!r}, {nb}={float(b64[idx])!r}", metrics)

    finite = np.isfinite(a64) & np.isfinite(b64)
    with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity: masked out just below
        diff = np.where(finite, np.abs(a64 - b64), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # a difference from an expected 0 is infinitely relative
        rel = np.where(diff == 0, 0.0, diff / np.abs(b64))
    bad = diff > tolerance.atol + tolerance.rtol * np.abs(np.where(finite, b64, 0.0))
    n_bad = int(bad.sum())
    worst_flat = int(np.argmax(diff)) if n else 0
    worst = tuple(int(i) for i in np.unravel_index(worst_flat, a.shape)) if n else ()
    metrics.update(
        max_abs=float(diff.max()) if n else 0.0,
        max_rel=float(rel.max()) if n else 0.0,
        n_bad=n_bad,
        pct_bad=100.0 * n_bad / n if n else 0.0,
        worst_index=list(worst),
        worst_actual=float(a64[worst]) if n else None,
        worst_expected=float(b64[worst]) if n else None,
    )
    if n_bad == 0:
        return Verdict(what, True, "ok",
                       f"equal within {tolerance.describe()}: max abs {metrics['max_abs']:.3g}, "
                       f"max rel {metrics['max_rel']:.3g}", metrics)
    lines = [
        f"values differ: {n_bad} of {n} elements ({metrics['pct_bad']:.3g}%) outside {tolerance.describe()}",
        f"shapes: {na} {_fmt_shape(a.shape)}, {nb} {_fmt_shape(b.shape)} (channels-first)",
        f"max abs error {metrics['max_abs']:.6g}, max rel error {metrics['max_rel']:.6g}",
        f"worst element at {list(worst)}: {na}={a64[worst]:.9g}, {nb}={b64[worst]:.9g}",
    ]
    return Verdict(what, False, "values", "\n".join(lines), metrics)


def binomial_interval(n: int, p: float, sigmas: float = 5.0) -> tuple[float, float]:
    """Acceptance interval for the fraction of n Bernoulli(p) trials that come up: the exact binomial quantiles
    (scipy.stats.binom) at the two-sided false-alarm rate of `sigmas` normal sigmas (5: 5.7e-7 per check).

    Not the normal approximation p +- sigmas * sqrt(p(1-p)/n): with few trials it is wrong exactly where fuzzing
    goes, e.g. one channel at rate 0.03 gives [0, 0.88], which rejects the single drop that happens 3% of the time.
    """
    if n <= 0:
        return 0.0, 1.0
    from scipy.stats import binom  # a second's import, paid only by runs that check a dropout sample

    lo, hi = binom.interval(1.0 - math.erfc(sigmas / math.sqrt(2.0)), n, p)
    return float(lo) / n, float(hi) / n


@dataclass(frozen=True)
class _Sample:
    """The elementwise facts of one dropout sample y of input x, both channels-first: which inputs are live (x != 0:
    a zero input gives a zero output whether dropped or not), which of them came out 0 (dropped), which came out
    neither 0 nor x/(1-rate) within `ulps` of the output's dtype (a wrong scale or not dropout at all)."""

    x: np.ndarray
    y: np.ndarray
    scaled: np.ndarray
    live: np.ndarray
    dropped: np.ndarray
    neither: np.ndarray
    scale_err: float  # largest relative error of the kept outputs against x/(1-rate)

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, rate: float, ulps: float) -> _Sample:
        x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
        live = x64 != 0
        scaled = x64 / (1.0 - rate)
        dropped = (y64 == 0) & live
        kept = live & ~dropped
        neither = kept & (np.abs(y64 - scaled) > ulps * EPS.get(np.asarray(y).dtype.name, EPS["float64"])
                          * np.abs(scaled))
        scale_err = float(np.max(np.abs(y64[kept] - scaled[kept]) / np.abs(scaled[kept]))) if kept.any() else 0.0
        return cls(x64, y64, scaled, live, dropped, neither, scale_err)

    def wrong_outputs(self, what: str, rate: float, ulps: float, metrics: dict[str, Any]) -> Verdict:
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(self.neither)), self.x.shape))
        return Verdict(what, False, "dropout",
                       f"{int(self.neither.sum())} of {int(self.live.sum())} outputs are neither 0 nor input/(1-rate) "
                       f"(rate {rate}, within {ulps:g} ulp); first at {list(idx)}: input={self.x[idx]:.9g}, "
                       f"output={self.y[idx]:.9g}, expected 0 or {self.scaled[idx]:.9g}", metrics)


def _shape_metrics(x: np.ndarray, y: np.ndarray, rate: float) -> dict[str, Any]:
    return {"shape_input": list(np.shape(x)), "shape_output": list(np.shape(y)), "rate": rate}


def _shape_mismatch(what: str, x: np.ndarray, y: np.ndarray, metrics: dict[str, Any]) -> Verdict:
    return Verdict(what, False, "shape",
                   f"shape mismatch: output {_fmt_shape(np.shape(y))} vs input {_fmt_shape(np.shape(x))}", metrics)


def check_dropout_sample(x: np.ndarray, y: np.ndarray, rate: float, what: str, ulps: float = 4.0) -> Verdict:
    """What can be compared of one dropout sample: y is 0 or x/(1-rate) elementwise, and the zero fraction is
    within the binomial interval for `rate`. Masks of two frameworks are never compared: they cannot match.

    Only elements with x != 0 count: a zero input gives a zero output whether dropped or not.
    """
    metrics = _shape_metrics(x, y, rate)
    if np.shape(x) != np.shape(y):
        return _shape_mismatch(what, x, y, metrics)
    sample = _Sample.of(x, y, rate, ulps)
    n = int(sample.live.sum())
    zero_frac = float(sample.dropped.sum()) / n if n else 0.0
    lo, hi = binomial_interval(n, rate)
    metrics.update(n=n, zero_fraction=zero_frac, interval=[lo, hi], n_bad=int(sample.neither.sum()),
                   max_scale_rel_error=sample.scale_err)
    if sample.neither.any():
        return sample.wrong_outputs(what, rate, ulps, metrics)
    if not lo <= zero_frac <= hi:
        return Verdict(what, False, "dropout",
                       f"zero fraction {zero_frac:.4f} of {n} non-zero inputs is outside the 5-sigma interval "
                       f"[{lo:.4f}, {hi:.4f}] for rate {rate}", metrics)
    return Verdict(what, True, "ok",
                   f"zero fraction {zero_frac:.4f} in [{lo:.4f}, {hi:.4f}] (rate {rate}, n={n}); survivors scaled "
                   f"by 1/(1-rate) (max rel error {sample.scale_err:.3g})", metrics)


def check_channel_dropout_sample(x: np.ndarray, y: np.ndarray, rate: float, what: str, ulps: float = 4.0) -> Verdict:
    """What can be compared of one channel-wise (spatial) dropout sample of channels-first arrays (N, C, ...):
    every output is 0 or x/(1-rate); each (n, c) channel is dropped or kept whole; and the fraction of dropped
    channels is within the 5-sigma binomial interval for `rate`, counted over channels (the unit of the draw: an
    element-level count would see C*H*W correlated draws as independent).

    Only elements with x != 0 count, and only channels with at least one of them.
    """
    metrics = {**_shape_metrics(x, y, rate), "unit": "channels"}
    if np.shape(x) != np.shape(y):
        return _shape_mismatch(what, x, y, metrics)
    if np.ndim(x) < 3:
        return Verdict(what, False, "shape",
                       f"channel-wise dropout needs (N, C, ...) arrays, got {_fmt_shape(np.shape(x))}", metrics)
    sample = _Sample.of(x, y, rate, ulps)
    per_channel = (*sample.x.shape[:2], -1)
    n_live = sample.live.reshape(per_channel).sum(-1)
    n_dropped = sample.dropped.reshape(per_channel).sum(-1)
    channels = n_live > 0
    n = int(channels.sum())
    partial = (n_dropped > 0) & (n_dropped < n_live)
    channel_frac = float((channels & (n_dropped == n_live)).sum()) / n if n else 0.0
    lo, hi = binomial_interval(n, rate)
    metrics.update(n=n, zero_fraction=channel_frac, interval=[lo, hi], n_bad=int(sample.neither.sum()),
                   n_partial=int(partial.sum()), max_scale_rel_error=sample.scale_err)
    if sample.neither.any():
        return sample.wrong_outputs(what, rate, ulps, metrics)
    if partial.any():
        first = tuple(int(i) for i in np.argwhere(partial)[0])
        return Verdict(what, False, "dropout",
                       f"{int(partial.sum())} of {n} channels are partly zeroed: channel-wise dropout zeroes a whole "
                       f"(n, c) channel or none of it; first: channel {list(first)}, {int(n_dropped[first])} of "
                       f"{int(n_live[first])} non-zero inputs zeroed (an element-wise dropout?)", metrics)
    if not lo <= channel_frac <= hi:
        return Verdict(what, False, "dropout",
                       f"dropped-channel fraction {channel_frac:.4f} of {n} channels is outside the 5-sigma interval "
                       f"[{lo:.4f}, {hi:.4f}] for rate {rate}", metrics)
    return Verdict(what, True, "ok",
                   f"dropped-channel fraction {channel_frac:.4f} in [{lo:.4f}, {hi:.4f}] (rate {rate}, n={n} "
                   f"channels); every channel all zero or all scaled by 1/(1-rate) (max rel error "
                   f"{sample.scale_err:.3g})", metrics)
