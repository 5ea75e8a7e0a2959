"""What can be checked of one sample of a stochastic block (dropout): which outputs are 0 or scaled, and whether
the fraction dropped is within the exact binomial interval for the rate. Two frameworks' masks are never compared:
they cannot match. Pure NumPy (and SciPy's binomial quantiles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.core.compare import format_shape
from harness.core.tolerance import EPS
from harness.core.verdicts import Verdict, VerdictKind

SAMPLE = VerdictKind.SAMPLE


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
        return Verdict(what, False, "sample",
                       f"{int(self.neither.sum())} of {int(self.live.sum())} outputs are neither 0 nor input/(1-rate) "
                       f"(rate {rate}, within {ulps:g} ulp); first at {list(idx)}: input={self.x[idx]:.9g}, "
                       f"output={self.y[idx]:.9g}, expected 0 or {self.scaled[idx]:.9g}", metrics, kind=SAMPLE)


def _shape_metrics(x: np.ndarray, y: np.ndarray, rate: float) -> dict[str, Any]:
    return {"shape_input": list(np.shape(x)), "shape_output": list(np.shape(y)), "rate": rate}


def _shape_mismatch(what: str, x: np.ndarray, y: np.ndarray, metrics: dict[str, Any]) -> Verdict:
    return Verdict(what, False, "shape",
                   f"shape mismatch: output {format_shape(np.shape(y))} vs input {format_shape(np.shape(x))}", metrics,
                   kind=SAMPLE)


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
        return Verdict(what, False, "sample",
                       f"zero fraction {zero_frac:.4f} of {n} non-zero inputs is outside the 5-sigma interval "
                       f"[{lo:.4f}, {hi:.4f}] for rate {rate}", metrics, kind=SAMPLE)
    return Verdict(what, True, "ok",
                   f"zero fraction {zero_frac:.4f} in [{lo:.4f}, {hi:.4f}] (rate {rate}, n={n}); survivors scaled "
                   f"by 1/(1-rate) (max rel error {sample.scale_err:.3g})", metrics, kind=SAMPLE)


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
                       f"channel-wise dropout needs (N, C, ...) arrays, got {format_shape(np.shape(x))}", metrics,
                       kind=SAMPLE)
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
        return Verdict(what, False, "sample",
                       f"{int(partial.sum())} of {n} channels are partly zeroed: channel-wise dropout zeroes a whole "
                       f"(n, c) channel or none of it; first: channel {list(first)}, {int(n_dropped[first])} of "
                       f"{int(n_live[first])} non-zero inputs zeroed (an element-wise dropout?)", metrics, kind=SAMPLE)
    if not lo <= channel_frac <= hi:
        return Verdict(what, False, "sample",
                       f"dropped-channel fraction {channel_frac:.4f} of {n} channels is outside the 5-sigma interval "
                       f"[{lo:.4f}, {hi:.4f}] for rate {rate}", metrics, kind=SAMPLE)
    return Verdict(what, True, "ok",
                   f"dropped-channel fraction {channel_frac:.4f} in [{lo:.4f}, {hi:.4f}] (rate {rate}, n={n} "
                   f"channels); every channel all zero or all scaled by 1/(1-rate) (max rel error "
                   f"{sample.scale_err:.3g})", metrics, kind=SAMPLE)
