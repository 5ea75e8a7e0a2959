"""What can be checked of one sample of a stochastic block (dropout): which outputs are 0 or scaled, and whether
the fraction dropped is within the exact binomial interval for the rate. Two frameworks' masks are never compared:
they cannot match. Pure NumPy (and SciPy's binomial quantiles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xfw_harness.core.compare import format_shape
from xfw_harness.core.tolerance import EPS
from xfw_harness.core.verdicts import Verdict, VerdictKind

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


# The unit one draw of a whole-unit dropout zeroes or keeps: its name in messages, and how many leading axes of the
# (N, C, ...) array index one unit (channels: (n, c); samples: n; the batch: none).
UNIT_AXES = {"channels": 2, "samples": 1, "batch": 0}
UNIT_WORD = {"channels": "channel", "samples": "sample", "batch": "batch"}


def check_channel_dropout_sample(x: np.ndarray, y: np.ndarray, rate: float, what: str, ulps: float = 4.0) -> Verdict:
    """What can be compared of one channel-wise (spatial) dropout sample of channels-first arrays (N, C, ...):
    every output is 0 or x/(1-rate); each (n, c) channel is dropped or kept whole; and the fraction of dropped
    channels is within the 5-sigma binomial interval for `rate`, counted over channels (the unit of the draw: an
    element-level count would see C*H*W correlated draws as independent).

    Only elements with x != 0 count, and only channels with at least one of them.
    """
    if np.shape(x) == np.shape(y) and np.ndim(x) < 3:
        metrics = {**_shape_metrics(x, y, rate), "unit": "channels"}
        return Verdict(what, False, "shape",
                       f"channel-wise dropout needs (N, C, ...) arrays, got {format_shape(np.shape(x))}", metrics,
                       kind=SAMPLE)
    return check_unit_dropout_sample(x, y, rate, what, "channels", ulps)


def check_unit_dropout_sample(x: np.ndarray, y: np.ndarray, rate: float, what: str, unit: str,
                              ulps: float = 4.0) -> Verdict:
    """What can be compared of one sample of a dropout whose draw zeroes or keeps a whole unit (UNIT_AXES):
    "channels" (spatial dropout: each (n, c) channel), "samples" (stochastic depth's row mode: each sample along
    axis 0), "batch" (its batch mode: the whole tensor, one draw per call). Every output is 0 or x/(1-rate) (at rate
    1 every output is 0: nothing is kept, nothing divided), no unit is partly zeroed, and the fraction of dropped
    units lies in the 5-sigma binomial interval for `rate` over the units holding a non-zero input (the unit of the
    draw: an element-level count would see a unit's correlated draws as independent).

    In batch mode a call is one Bernoulli draw: its interval is [0, 1] for any rate strictly between 0 and 1, so one
    sample checks the drop's form and scale, and the rate only at rate 0 (always kept) and 1 (always dropped).
    """
    metrics = {**_shape_metrics(x, y, rate), "unit": unit}
    if np.shape(x) != np.shape(y):
        return _shape_mismatch(what, x, y, metrics)
    with np.errstate(divide="ignore", invalid="ignore"):  # rate 1: x / 0, and no output may be kept
        sample = _Sample.of(x, y, rate, ulps)
    units = (*sample.x.shape[:UNIT_AXES[unit]], -1)
    n_live = sample.live.reshape(units).sum(-1)
    n_dropped = sample.dropped.reshape(units).sum(-1)
    counted = n_live > 0
    n = int(counted.sum())
    partial = (n_dropped > 0) & (n_dropped < n_live)
    frac = float((counted & (n_dropped == n_live)).sum()) / n if n else 0.0
    lo, hi = binomial_interval(n, rate)
    metrics.update(n=n, zero_fraction=frac, interval=[lo, hi], n_bad=int(sample.neither.sum()),
                   n_partial=int(partial.sum()), max_scale_rel_error=sample.scale_err)
    word = UNIT_WORD[unit]
    if sample.neither.any():
        return sample.wrong_outputs(what, rate, ulps, metrics)
    if partial.any():
        first = tuple(int(i) for i in np.argwhere(partial)[0])
        where = "the batch" if unit == "batch" else f"{word} {list(first) if len(first) > 1 else first[0]}"
        guess = {"channels": "an element-wise dropout?", "samples": "an element-wise drop?",
                 "batch": "an element-wise or per-sample drop?"}[unit]
        return Verdict(what, False, "sample",
                       f"{int(partial.sum())} of {n} {unit} are partly zeroed: this dropout zeroes a whole {word} "
                       f"or none of it; first: {where}, {int(n_dropped[first])} of {int(n_live[first])} non-zero "
                       f"inputs zeroed ({guess})", metrics, kind=SAMPLE)
    if not lo <= frac <= hi:
        return Verdict(what, False, "sample",
                       f"dropped-{word} fraction {frac:.4f} of {n} {unit} is outside the 5-sigma interval "
                       f"[{lo:.4f}, {hi:.4f}] for rate {rate}", metrics, kind=SAMPLE)
    return Verdict(what, True, "ok",
                   f"dropped-{word} fraction {frac:.4f} in [{lo:.4f}, {hi:.4f}] (rate {rate}, n={n} {unit}); every "
                   f"{word} all zero or all scaled by 1/(1-rate) (max rel error {sample.scale_err:.3g})", metrics,
                   kind=SAMPLE)


# SELU's constants (Klambauer et al. 2017), as both torch.nn.AlphaDropout and keras.layers.AlphaDropout take them:
# alpha' = -scale * alpha is SELU's negative saturation value, where alpha dropout sets a dropped input.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
SELU_SATURATION = -SELU_SCALE * SELU_ALPHA


def alpha_dropout_affine(rate: float) -> tuple[float, float]:
    """The affine correction (a, b) of alpha dropout at `rate`, in float64: a kept input x becomes a*x + b, a dropped
    one a*alpha' + b, so that zero mean and unit variance are kept: a = ((1 - rate)(1 + rate alpha'^2))^-1/2,
    b = -a alpha' rate."""
    a = ((1.0 - rate) * (1.0 + rate * SELU_SATURATION ** 2)) ** -0.5
    return a, -a * SELU_SATURATION * rate


def check_alpha_dropout_sample(x: np.ndarray, y: np.ndarray, rate: float, what: str, ulps: float = 4.0) -> Verdict:
    """What can be compared of one alpha-dropout sample: every output is a*x + b (kept) or a*alpha' + b (dropped;
    alpha_dropout_affine), within `ulps` of the output's dtype of the terms' magnitudes (|a x| + |b|: the rounding of
    the product and the sum), and the dropped fraction lies in the 5-sigma binomial interval for `rate`.

    Every input counts (a dropped zero is distinguishable from a kept one), except where a*x + b and a*alpha' + b
    lie within the tolerance of each other (x near alpha'): such an output is either.
    """
    metrics = _shape_metrics(x, y, rate)
    if np.shape(x) != np.shape(y):
        return _shape_mismatch(what, x, y, metrics)
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    a, b = alpha_dropout_affine(rate)
    kept_value, dropped_value = a * x64 + b, a * SELU_SATURATION + b
    eps = ulps * EPS.get(np.asarray(y).dtype.name, EPS["float64"])
    kept = np.abs(y64 - kept_value) <= eps * (np.abs(a * x64) + abs(b))
    dropped = np.abs(y64 - dropped_value) <= eps * (abs(a * SELU_SATURATION) + abs(b))
    neither = ~kept & ~dropped
    counted = kept ^ dropped
    n = int(counted.sum())
    frac = float((dropped & counted).sum()) / n if n else 0.0
    lo, hi = binomial_interval(n, rate)
    errors = np.where(kept, np.abs(y64 - kept_value) / (np.abs(a * x64) + abs(b)),
                      np.abs(y64 - dropped_value) / (abs(a * SELU_SATURATION) + abs(b)))
    max_rel_error = float(np.max(errors[counted])) if n else 0.0  # of the counted outputs, against their value
    metrics.update(n=n, zero_fraction=frac, interval=[lo, hi], n_bad=int(neither.sum()), a=a, b=b,
                   dropped_value=dropped_value, max_scale_rel_error=max_rel_error)
    if neither.any():
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(neither)), x64.shape))
        return Verdict(what, False, "sample",
                       f"{int(neither.sum())} of {x64.size} outputs are neither a*x+b nor a*alpha'+b (rate {rate}: "
                       f"a={a:.9g}, b={b:.9g}, a*alpha'+b={dropped_value:.9g}, within {ulps:g} ulp); first at "
                       f"{list(idx)}: input={x64[idx]:.9g}, output={y64[idx]:.9g}, expected {kept_value[idx]:.9g} "
                       f"or {dropped_value:.9g}", metrics, kind=SAMPLE)
    if not lo <= frac <= hi:
        return Verdict(what, False, "sample",
                       f"dropped fraction {frac:.4f} of {n} inputs is outside the 5-sigma interval [{lo:.4f}, "
                       f"{hi:.4f}] for rate {rate}", metrics, kind=SAMPLE)
    return Verdict(what, True, "ok",
                   f"dropped fraction {frac:.4f} in [{lo:.4f}, {hi:.4f}] (rate {rate}, n={n}); kept a*x+b, dropped "
                   f"a*alpha'+b = {dropped_value:.6g} (a={a:.6g}, b={b:.6g}; max rel error {max_rel_error:.3g})",
                   metrics, kind=SAMPLE)
