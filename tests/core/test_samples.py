"""The statistical checks of one dropout-like sample (xfw_harness/core/samples.py), pinned by what a user reads: the
verdict (passed, which check decided, its kind), its message word for word, and its metrics, for samples built by
hand so that every figure is known: a dropped fraction just inside and just outside the binomial interval, outputs
just within and just beyond the tolerance, partly zeroed units, zero and ambiguous inputs.

Genuine framework samples are checked in tests/core/test_compare.py and tests/blocks; these tests hold the checks'
arithmetic and wording to the documented rules.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest

from xfw_harness.core.samples import (
    SELU_SATURATION,
    alpha_dropout_affine,
    binomial_interval,
    check_alpha_dropout_sample,
    check_channel_dropout_sample,
    check_dropout_sample,
    check_unit_dropout_sample,
)
from xfw_harness.core.tolerance import EPS
from xfw_harness.core.verdicts import Verdict, VerdictKind

EPS32 = EPS["float32"]
EPS64 = EPS["float64"]


def _assert_verdict(v: Verdict, what: str, passed: bool, check: str, message: str) -> None:
    assert v.what == what
    assert v.passed is passed
    assert v.check == check
    assert v.kind is VerdictKind.SAMPLE
    assert v.message == message


def _positive(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Inputs in [2, 4): non-zero, and far from SELU's saturation value (where alpha dropout's two values meet)."""
    return np.random.default_rng(seed).uniform(2.0, 4.0, shape).astype(np.float32)


def _first_k(shape: tuple[int, ...], k: int) -> np.ndarray:
    """A drop mask over `shape` whose first k entries (row-major) are True."""
    return (np.arange(int(np.prod(shape))) < k).reshape(shape)


def _zeroed(x: np.ndarray, dropped: np.ndarray, rate: float) -> np.ndarray:
    """An exact dropout output: 0 where dropped, x / (1 - rate) elsewhere (rate 0.5: x * 2, exact in float32)."""
    return np.where(dropped, np.float32(0), x / np.float32(1 - rate)).astype(x.dtype)


def _alpha(x: np.ndarray, dropped: np.ndarray, rate: float) -> np.ndarray:
    """An alpha-dropout output in x's dtype, each value a*x + b or a*alpha' + b computed in float64, then rounded."""
    a, b = alpha_dropout_affine(rate)
    x64 = x.astype(np.float64)
    return np.where(dropped, a * SELU_SATURATION + b, a * x64 + b).astype(x.dtype)


# --- every check: a dropped fraction at the interval's ends -----------------------------------------------------------

# Each check with a sample of 100 units (elements, channels, samples) at rate 0.5, k of them dropped.
def _elements(k: int) -> Verdict:
    x = _positive((100,))
    return check_dropout_sample(x, _zeroed(x, _first_k(x.shape, k), 0.5), 0.5, "torch")


def _channels(k: int) -> Verdict:
    x = _positive((5, 20, 3))
    return check_channel_dropout_sample(x, _zeroed(x, _first_k((5, 20), k)[:, :, None], 0.5), 0.5, "torch")


def _samples(k: int) -> Verdict:
    x = _positive((100, 3))
    return check_unit_dropout_sample(x, _zeroed(x, _first_k((100,), k)[:, None], 0.5), 0.5, "torch", "samples")


def _alpha_elements(k: int) -> Verdict:
    x = _positive((100,))
    return check_alpha_dropout_sample(x, _alpha(x, _first_k(x.shape, k), 0.5), 0.5, "torch")


CHECKS = {"dropout": _elements, "channel dropout": _channels, "sample dropout": _samples,
          "alpha dropout": _alpha_elements}


def test_binomial_interval_of_100_trials_at_half() -> None:
    """The interval the boundary tests below stand on: 26 to 74 of 100 at rate 0.5 (5 sigmas)."""
    assert binomial_interval(100, 0.5) == (0.26, 0.74)


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize(("k", "passed"), [(25, False), (26, True), (50, True), (74, True), (75, False)])
def test_dropped_fraction_at_the_interval_ends(check: str, k: int, passed: bool) -> None:
    """A dropped fraction equal to either end of the interval passes (the interval is closed); one unit more
    outside it fails, on the sample check, with the fraction and the interval in the metrics."""
    v = CHECKS[check](k)
    assert v.passed is passed, v.message
    assert v.check == ("ok" if passed else "sample")
    assert v.metrics["n"] == 100 and v.metrics["zero_fraction"] == k / 100
    assert v.metrics["interval"] == [0.26, 0.74]
    assert v.metrics["n_bad"] == 0


# --- shapes ---------------------------------------------------------------------------------------------------------

SHAPE_CHECKS: dict[str, tuple[Callable[..., Verdict], dict[str, str]]] = {
    "dropout": (check_dropout_sample, {}),
    "channel dropout": (check_channel_dropout_sample, {"unit": "channels"}),
    "sample dropout": (lambda x, y, rate, what: check_unit_dropout_sample(x, y, rate, what, "samples"),
                       {"unit": "samples"}),
    "alpha dropout": (check_alpha_dropout_sample, {}),
}


@pytest.mark.parametrize("check", SHAPE_CHECKS)
def test_shape_mismatch_verdict(check: str) -> None:
    """An output of another shape than the input fails on "shape", naming both shapes, with both in the metrics."""
    fn, extra = SHAPE_CHECKS[check]
    x = _positive((2, 3, 4))
    v = fn(x, x[:, :, :-1], 0.3, "keras")
    _assert_verdict(v, "keras", False, "shape", "shape mismatch: output [2, 3, 3] vs input [2, 3, 4]")
    assert v.metrics == {"shape_input": [2, 3, 4], "shape_output": [2, 3, 3], "rate": 0.3, **extra}


def test_channel_dropout_of_arrays_without_channels() -> None:
    """Channel-wise dropout of a 2-D array (no (N, C, ...) layout) is refused on "shape" (an output of another shape
    is reported as such first); a 3-D (N, C, L) one is judged per channel."""
    x = _positive((4, 5))
    v = check_channel_dropout_sample(x, x * 2, 0.5, "keras")
    _assert_verdict(v, "keras", False, "shape", "channel-wise dropout needs (N, C, ...) arrays, got [4, 5]")
    assert v.metrics == {"shape_input": [4, 5], "shape_output": [4, 5], "rate": 0.5, "unit": "channels"}
    v = check_channel_dropout_sample(x, x[:, :-1], 0.5, "keras")  # a shape mismatch is named first
    _assert_verdict(v, "keras", False, "shape", "shape mismatch: output [4, 4] vs input [4, 5]")
    x3 = _positive((4, 5, 2))
    v = check_channel_dropout_sample(x3, _zeroed(x3, _first_k((4, 5), 10)[:, :, None], 0.5), 0.5, "keras")
    assert v.passed and v.check == "ok" and v.metrics["n"] == 20 and v.metrics["unit"] == "channels"


# --- element-wise dropout -------------------------------------------------------------------------------------------

def test_dropout_pass_verdict() -> None:
    """A good sample: the message gives the fraction, the interval, the rate, n and the scale's error; the metrics
    hold the same figures."""
    v = _elements(40)
    _assert_verdict(v, "torch", True, "ok", "zero fraction 0.4000 in [0.2600, 0.7400] (rate 0.5, n=100); survivors "
                    "scaled by 1/(1-rate) (max rel error 0)")
    assert v.metrics == {"shape_input": [100], "shape_output": [100], "rate": 0.5, "n": 100, "zero_fraction": 0.4,
                         "interval": [0.26, 0.74], "n_bad": 0, "max_scale_rel_error": 0.0}


def test_dropout_fraction_outside_verdict() -> None:
    """A dropped fraction outside the interval: the message names it, the n non-zero inputs and the interval."""
    v = _elements(80)
    _assert_verdict(v, "torch", False, "sample", "zero fraction 0.8000 of 100 non-zero inputs is outside the 5-sigma "
                    "interval [0.2600, 0.7400] for rate 0.5")
    assert v.metrics["zero_fraction"] == 0.8


def test_dropout_wrong_outputs_verdict() -> None:
    """Outputs neither 0 nor x/(1-rate): how many of the non-zero inputs, the first one's index, input, output and
    the expected value."""
    x = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]], np.float32)
    y = np.array([[0.0, 4.5, 0.0], [6.0, 0.0, 7.0]], np.float32)  # [0, 1] should be 4, [1, 2] 10
    v = check_dropout_sample(x, y, 0.5, "keras")
    _assert_verdict(v, "keras", False, "sample", "2 of 5 outputs are neither 0 nor input/(1-rate) (rate 0.5, within "
                    "4 ulp); first at [0, 1]: input=2, output=4.5, expected 0 or 4")
    assert v.metrics["n_bad"] == 2 and v.metrics["n"] == 5


@pytest.mark.parametrize(("steps", "ulps", "passed"), [(4, None, True), (5, None, False), (5, 5.0, True),
                                                       (0, 0.0, True), (1, 0.0, False)])
def test_dropout_scale_tolerance_in_ulps(steps: int, ulps: float | None, passed: bool) -> None:
    """A kept output may be off x/(1-rate) by up to `ulps` (default 4) of the output dtype's epsilon, relative:
    exactly 4 passes, 5 fails; at ulps 0 only the exact value passes. x = 1 at rate 0.5: expected 2, float32 steps
    of 2 * eps."""
    x = np.ones(10, np.float32)
    y = np.full(10, 2.0 * (1 + steps * EPS32), np.float32)
    y[:5] = 0.0
    v = check_dropout_sample(x, y, 0.5, "torch", *([] if ulps is None else [ulps]))
    assert v.passed is passed, v.message
    assert v.metrics["max_scale_rel_error"] == pytest.approx(steps * EPS32, rel=1e-9, abs=0)


def test_dropout_tolerance_follows_the_output_dtype() -> None:
    """The tolerance is in ulps of the output's dtype: 3 float32 ulps pass in a float32 output and fail in a float64
    one; a dtype without a known epsilon (integers) is judged with float64's."""
    x = np.ones(10, np.float32)
    y = np.where(_first_k((10,), 5), 0.0, 2.0 * (1 + 3 * EPS32))
    assert check_dropout_sample(x, y.astype(np.float32), 0.5, "torch").passed
    v = check_dropout_sample(x, y, 0.5, "torch")
    assert not v.passed and v.metrics["n_bad"] == 5
    xi = np.array([1, 2, 3, 4, 5, 6]), np.array([0, 4, 0, 8, 0, 12])
    assert check_dropout_sample(*xi, 0.5, "torch").passed
    assert not check_dropout_sample(xi[0], xi[1] + 1, 0.5, "torch").passed


def test_dropout_float32_outputs_are_judged_in_float64() -> None:
    """x/(1-rate) is computed in float64: at rate 0.3 a float32 sample's reported error is its float32 rounding of
    x/0.7 (a float32 computation of x/0.7 would read 0)."""
    x = _positive((50,))
    y = np.where(_first_k(x.shape, 15), np.float32(0), x / np.float32(0.7)).astype(np.float32)
    v = check_dropout_sample(x, y, 0.3, "torch")
    kept = y != 0
    expected = x[kept].astype(np.float64) / 0.7
    rounding = np.max(np.abs(y[kept] - expected) / expected)
    assert v.passed and v.metrics["max_scale_rel_error"] == pytest.approx(rounding, rel=1e-12)
    assert 0 < rounding < 2 * EPS32


def test_dropout_zero_inputs_do_not_count() -> None:
    """A zero input gives 0 whether dropped or not: it counts neither as dropped nor in n."""
    x = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0], np.float32)
    y = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 6.0, 8.0], np.float32)
    v = check_dropout_sample(x, y, 0.5, "torch")
    assert v.passed and v.metrics["n"] == 4 and v.metrics["zero_fraction"] == 0.5
    v = check_dropout_sample(np.zeros(5, np.float32), np.zeros(5, np.float32), 0.5, "torch")
    assert v.passed and v.metrics["n"] == 0 and v.metrics["zero_fraction"] == 0.0 and v.metrics["interval"] == [0, 1]
    assert v.metrics["max_scale_rel_error"] == 0.0


# --- whole-unit dropout (channels, samples, the batch) ---------------------------------------------------------------

@pytest.mark.parametrize(("unit", "shape", "units", "message"), [
    ("channels", (5, 20, 3), (5, 20, 1), "dropped-channel fraction 0.3000 in [0.2600, 0.7400] (rate 0.5, n=100 "
     "channels); every channel all zero or all scaled by 1/(1-rate) (max rel error 0)"),
    ("samples", (100, 3), (100, 1), "dropped-sample fraction 0.3000 in [0.2600, 0.7400] (rate 0.5, n=100 samples); "
     "every sample all zero or all scaled by 1/(1-rate) (max rel error 0)"),
])
def test_unit_dropout_pass_verdict(unit: str, shape: tuple[int, ...], units: tuple[int, ...], message: str) -> None:
    """A good whole-unit sample: the message names the unit, the fraction, the interval, the rate and n; the
    metrics hold the same figures and no partly zeroed unit."""
    x = _positive(shape)
    v = check_unit_dropout_sample(x, _zeroed(x, _first_k(units[:-1], 30).reshape(units), 0.5), 0.5, "torch", unit)
    _assert_verdict(v, "torch", True, "ok", message)
    assert v.metrics == {"shape_input": list(shape), "shape_output": list(shape), "rate": 0.5, "unit": unit,
                         "n": 100, "zero_fraction": 0.3, "interval": [0.26, 0.74], "n_bad": 0, "n_partial": 0,
                         "max_scale_rel_error": 0.0}


@pytest.mark.parametrize(("unit", "k", "message"), [
    ("channels", 80, "dropped-channel fraction 0.8000 of 100 channels is outside the 5-sigma interval "
     "[0.2600, 0.7400] for rate 0.5"),
    ("samples", 20, "dropped-sample fraction 0.2000 of 100 samples is outside the 5-sigma interval "
     "[0.2600, 0.7400] for rate 0.5"),
])
def test_unit_dropout_fraction_outside_verdict(unit: str, k: int, message: str) -> None:
    """A dropped-unit fraction outside the interval: the message names the unit, n and the interval."""
    v = (_channels if unit == "channels" else _samples)(k)
    _assert_verdict(v, "torch", False, "sample", message)
    assert v.metrics["zero_fraction"] == k / 100 and v.metrics["unit"] == unit


@pytest.mark.parametrize(("unit", "shape", "zeroed", "message"), [
    ("channels", (2, 3, 4), [(0, 1, 2), (1, 2, 0), (1, 2, 3)], "2 of 6 channels are partly zeroed: this dropout "
     "zeroes a whole channel or none of it; first: channel [0, 1], 1 of 4 non-zero inputs zeroed (an element-wise "
     "dropout?)"),
    ("samples", (4, 3), [(1, 0), (1, 2), (3, 1)], "2 of 4 samples are partly zeroed: this dropout zeroes a whole "
     "sample or none of it; first: sample 1, 2 of 3 non-zero inputs zeroed (an element-wise drop?)"),
    ("batch", (2, 3), [(1, 1)], "1 of 1 batch are partly zeroed: this dropout zeroes a whole batch or none of it; "
     "first: the batch, 1 of 6 non-zero inputs zeroed (an element-wise or per-sample drop?)"),
])
def test_unit_dropout_partly_zeroed_verdict(unit: str, shape: tuple[int, ...], zeroed: list[tuple[int, ...]],
                                            message: str) -> None:
    """A unit partly zeroed (even one element of it) fails: how many units, the first one by its index, how many
    of its inputs were zeroed, and a guess at the mistake for that unit."""
    x = _positive(shape)
    y = x * np.float32(2)
    for idx in zeroed:
        y[idx] = 0.0
    v = check_unit_dropout_sample(x, y, 0.5, "keras", unit)
    _assert_verdict(v, "keras", False, "sample", message)
    assert v.metrics["n_partial"] == int(message.split(" of ")[0])


def test_channel_dropout_partly_zeroed_through_the_channel_check() -> None:
    """check_channel_dropout_sample is the channels unit: same verdict, named by its caller."""
    x = _positive((2, 3, 4))
    y = x * np.float32(2)
    y[1, 0, 3] = 0.0
    v = check_channel_dropout_sample(x, y, 0.5, "keras")
    _assert_verdict(v, "keras", False, "sample", "1 of 6 channels are partly zeroed: this dropout zeroes a whole "
                    "channel or none of it; first: channel [1, 0], 1 of 4 non-zero inputs zeroed (an element-wise "
                    "dropout?)")


def test_unit_dropout_wrong_outputs_verdict() -> None:
    """Outputs neither 0 nor x/(1-rate) are reported before any partly zeroed unit, with the rate and the ulps."""
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    y = np.array([[2.0, 4.0], [0.0, 9.0]], np.float32)  # [1, 1] should be 8; sample 1 is also partly zeroed
    v = check_unit_dropout_sample(x, y, 0.5, "torch", "samples")
    _assert_verdict(v, "torch", False, "sample", "1 of 4 outputs are neither 0 nor input/(1-rate) (rate 0.5, within "
                    "4 ulp); first at [1, 1]: input=4, output=9, expected 0 or 8")
    assert v.metrics["n_bad"] == 1 and v.metrics["n_partial"] == 1


@pytest.mark.parametrize("check", ["channels", "channel check"])
@pytest.mark.parametrize(("steps", "ulps", "passed"), [(4, None, True), (5, None, False), (5, 5.0, True)])
def test_unit_dropout_scale_tolerance_in_ulps(check: str, steps: int, ulps: float | None, passed: bool) -> None:
    """Kept outputs may be off x/(1-rate) by up to `ulps` (default 4) float32 epsilons, relative, through either
    entry point."""
    x = np.ones((2, 2, 3), np.float32)
    y = np.full(x.shape, 2.0 * (1 + steps * EPS32), np.float32)
    y[0] = 0.0
    extra = [] if ulps is None else [ulps]
    v = (check_unit_dropout_sample(x, y, 0.5, "torch", "channels", *extra) if check == "channels"
         else check_channel_dropout_sample(x, y, 0.5, "torch", *extra))
    assert v.passed is passed, v.message
    assert v.metrics["max_scale_rel_error"] == pytest.approx(steps * EPS32, rel=1e-9)


def test_unit_dropout_counts_units_with_one_non_zero_input() -> None:
    """A unit counts when it holds at least one non-zero input (one is enough); an all-zero unit does not count."""
    x = np.zeros((2, 3, 4), np.float32)
    x[:, :, 1] = 1.0
    x[0, 0] = 0.0  # channel (0, 0): no non-zero input
    y = x * np.float32(2)
    y[1] = 0.0  # channels (1, *) dropped
    v = check_unit_dropout_sample(x, y, 0.5, "torch", "channels")
    assert v.passed and v.metrics["n"] == 5 and v.metrics["zero_fraction"] == 3 / 5
    assert v.message.startswith("dropped-channel fraction 0.6000 in [0.0000, 1.0000] (rate 0.5, n=5 channels)")


def test_unit_dropout_with_no_non_zero_input() -> None:
    """No unit holds a non-zero input: nothing is counted, the fraction reads 0 and the sample passes."""
    x = np.zeros((3, 4), np.float32)
    v = check_unit_dropout_sample(x, x.copy(), 0.5, "torch", "samples")
    _assert_verdict(v, "torch", True, "ok", "dropped-sample fraction 0.0000 in [0.0000, 1.0000] (rate 0.5, n=0 "
                    "samples); every sample all zero or all scaled by 1/(1-rate) (max rel error 0)")
    assert v.metrics["n"] == 0 and v.metrics["zero_fraction"] == 0.0 and v.metrics["max_scale_rel_error"] == 0.0


def test_unit_dropout_at_rate_one_drops_everything_quietly() -> None:
    """At rate 1 every unit is dropped and nothing is divided: an all-zero output passes with no NumPy warning
    (x / 0 is never shown to the user); a kept batch fails on its dropped fraction, outside [1, 1]."""
    x = _positive((4, 3))
    x[0, 0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = check_unit_dropout_sample(x, np.zeros_like(x), 1.0, "torch", "samples")
        assert v.passed and v.metrics["zero_fraction"] == 1.0 and v.metrics["interval"] == [1.0, 1.0]
        v = check_unit_dropout_sample(x, x.copy(), 1.0, "torch", "batch")
        _assert_verdict(v, "torch", False, "sample", "dropped-batch fraction 0.0000 of 1 batch is outside the 5-sigma "
                        "interval [1.0000, 1.0000] for rate 1.0")


def test_batch_dropout_is_one_draw() -> None:
    """In batch mode the whole tensor is one unit: n is 1 and either outcome passes at a rate between 0 and 1."""
    x = _positive((3, 4))
    for y, frac in ((np.zeros_like(x), 1.0), (x * np.float32(2), 0.0)):
        v = check_unit_dropout_sample(x, y, 0.5, "torch", "batch")
        assert v.passed and v.metrics["n"] == 1 and v.metrics["zero_fraction"] == frac
        assert "(rate 0.5, n=1 batch); every batch all zero" in v.message


# --- alpha dropout --------------------------------------------------------------------------------------------------

def test_alpha_dropout_affine_values() -> None:
    """a and b as torch and Keras compute them (a kept x becomes a*x + b, a dropped one a*alpha' + b): rate 0 is the
    identity; at 0.5, a = ((1 - 0.5)(1 + 0.5 alpha'^2))^-1/2 and b = -0.5 a alpha'."""
    assert alpha_dropout_affine(0.0) == (1.0, 0.0)
    a, b = alpha_dropout_affine(0.5)
    assert a == pytest.approx(0.886404894665932, rel=1e-15) and b == pytest.approx(0.7791939305180317, rel=1e-15)


def test_alpha_dropout_pass_verdict() -> None:
    """A good sample: the message gives the fraction, the interval, a*alpha'+b, a, b and the largest relative error;
    the metrics hold the same figures."""
    x = np.array([2.0, 3.0, -1.0, 0.0, 2.5, 4.0, 1.0, -2.0], np.float64)
    v = check_alpha_dropout_sample(x, _alpha(x, _first_k(x.shape, 3), 0.5), 0.5, "torch")
    _assert_verdict(v, "torch", True, "ok", "dropped fraction 0.3750 in [0.0000, 1.0000] (rate 0.5, n=8); kept "
                    "a*x+b, dropped a*alpha'+b = -0.779194 (a=0.886405, b=0.779194; max rel error 0)")
    a, b = alpha_dropout_affine(0.5)
    assert v.metrics == {"shape_input": [8], "shape_output": [8], "rate": 0.5, "n": 8, "zero_fraction": 0.375,
                         "interval": [0.0, 1.0], "n_bad": 0, "a": a, "b": b, "dropped_value": a * SELU_SATURATION + b,
                         "max_scale_rel_error": 0.0}


def test_alpha_dropout_fraction_outside_verdict() -> None:
    """A dropped fraction outside the interval: the message names it, n and the interval."""
    v = _alpha_elements(90)
    _assert_verdict(v, "torch", False, "sample", "dropped fraction 0.9000 of 100 inputs is outside the 5-sigma "
                    "interval [0.2600, 0.7400] for rate 0.5")
    assert v.metrics["zero_fraction"] == 0.9 and v.metrics["n"] == 100


def test_alpha_dropout_wrong_outputs_verdict() -> None:
    """Outputs neither a*x+b nor a*alpha'+b: how many of all outputs, a, b, a*alpha'+b, the ulps, and the first one's
    index, input, output and its two possible values."""
    x = np.array([[2.0, 3.0, 0.0], [1.0, -1.0, 4.0]], np.float64)
    y = _alpha(x, _first_k(x.shape, 1), 0.5)
    y[0, 1] = 5.0
    y[1, 2] = 0.0
    v = check_alpha_dropout_sample(x, y, 0.5, "keras")
    _assert_verdict(v, "keras", False, "sample", "2 of 6 outputs are neither a*x+b nor a*alpha'+b (rate 0.5: "
                    "a=0.886404895, b=0.779193931, a*alpha'+b=-0.779193931, within 4 ulp); first at [0, 1]: input=3, "
                    "output=5, expected 3.43840861 or -0.779193931")
    assert v.metrics["n_bad"] == 2 and v.metrics["n"] == 4


@pytest.mark.parametrize("where", ["kept", "dropped"])
@pytest.mark.parametrize(("error", "passed"), [(0.9, True), (1.1, False)])
def test_alpha_dropout_tolerance_and_error_metric(where: str, error: float, passed: bool) -> None:
    """An output off its value by `error` times the tolerance, ulps * eps * (|a x| + |b|) for a kept one and
    ulps * eps * (|a alpha'| + |b|) for a dropped one: 0.9 passes, 1.1 fails; the largest relative error of the
    counted outputs, |y - value| / (|a x| + |b|) or / (|a alpha'| + |b|), is the metric."""
    rate, ulps = 0.5, 1e6  # a tolerance of 2.2e-10: the planted error is far above float64's rounding
    a, b = alpha_dropout_affine(rate)
    x = _positive((20,)).astype(np.float64)
    dropped = _first_k(x.shape, 10)
    y = _alpha(x, dropped, rate)
    i = 15 if where == "kept" else 5
    scale = abs(a * x[i]) + abs(b) if where == "kept" else abs(a * SELU_SATURATION) + abs(b)
    y[i] += error * ulps * EPS64 * scale
    v = check_alpha_dropout_sample(x, y, rate, "torch", ulps)
    assert v.passed is passed, v.message
    if passed:
        assert v.metrics["max_scale_rel_error"] == pytest.approx(error * ulps * EPS64, rel=1e-5)
    else:
        assert v.metrics["n_bad"] == 1 and v.metrics["n"] == 19


@pytest.mark.parametrize(("steps", "ulps", "passed"), [(4, None, True), (5, None, False), (5, 5.0, True)])
def test_alpha_dropout_default_tolerance_is_4_ulps(steps: int, ulps: float | None, passed: bool) -> None:
    """At rate 0 (a = 1, b = 0) a kept x = 2 must give 2 within 4 float32 ulps of |a x|: 4 steps of 2 * eps pass,
    5 fail unless ulps=5 is given."""
    x = np.full(10, 2.0, np.float32)
    y = np.full(10, 2.0 * (1 + steps * EPS32), np.float32)
    v = check_alpha_dropout_sample(x, y, 0.0, "torch", *([] if ulps is None else [ulps]))
    assert v.passed is passed, v.message
    assert v.metrics["n"] == (10 if passed else 0)


@pytest.mark.parametrize("dropped", [False, True])
def test_alpha_dropout_exact_value_within_zero_ulps(dropped: bool) -> None:
    """The tolerance is inclusive: at ulps 0 an output exactly a*x+b (kept) or a*alpha'+b (dropped) still counts."""
    x = _positive((100,)).astype(np.float64)
    mask = _first_k(x.shape, 40 if dropped else 60)
    v = check_alpha_dropout_sample(x, _alpha(x, mask, 0.5), 0.5, "torch", 0.0)
    assert v.passed and v.metrics["n"] == 100 and v.metrics["n_bad"] == 0, v.message


def test_alpha_dropout_float32_outputs_are_judged_in_float64() -> None:
    """float32 inputs and outputs are compared with a*x+b and a*alpha'+b computed in float64: the reported error is
    the outputs' float32 rounding (a float32 computation would read 0), and 3 float32 ulps pass where the same
    values in float64 fail."""
    rate = 0.5
    a, b = alpha_dropout_affine(rate)
    x = _positive((100,))
    dropped = _first_k(x.shape, 50)
    y = _alpha(x, dropped, rate)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    kept_err = np.abs(y64 - (a * x64 + b)) / (np.abs(a * x64) + abs(b))
    dropped_err = np.abs(y64 - (a * SELU_SATURATION + b)) / (abs(a * SELU_SATURATION) + abs(b))
    v = check_alpha_dropout_sample(x, y, rate, "torch")
    assert v.passed and v.metrics["n"] == 100
    assert v.metrics["max_scale_rel_error"] == max(kept_err[~dropped].max(), dropped_err[0])
    assert 0 < dropped_err[0] < EPS32 and kept_err[~dropped].max() > 0
    v = check_alpha_dropout_sample(x[:4], y[:4], rate, "torch")  # all dropped: the error is a*alpha'+b's rounding
    assert v.passed and v.metrics["zero_fraction"] == 1.0 and v.metrics["max_scale_rel_error"] == dropped_err[0]
    off = np.full(10, 2.0 * (1 + 3 * EPS32))
    assert check_alpha_dropout_sample(np.full(10, 2.0), off.astype(np.float32), 0.0, "torch").passed
    assert not check_alpha_dropout_sample(np.full(10, 2.0), off, 0.0, "torch").passed


def test_alpha_dropout_integer_output_judged_with_float64_epsilon() -> None:
    """An output dtype without a known epsilon (integers, at rate 0: y = x) is judged with float64's."""
    x = np.arange(1, 7)
    assert check_alpha_dropout_sample(x, x.copy(), 0.0, "torch").passed
    assert not check_alpha_dropout_sample(x, x + 1, 0.0, "torch").passed


def test_alpha_dropout_ambiguous_outputs_do_not_count() -> None:
    """Where x is alpha', a*x+b equals a*alpha'+b: such an output is either, so it counts neither as kept nor as
    dropped; with only such outputs n is 0, the fraction and the error read 0, and the sample passes."""
    x = np.full(6, SELU_SATURATION)
    y = _alpha(x, _first_k(x.shape, 3), 0.5)
    v = check_alpha_dropout_sample(x, y, 0.5, "torch")
    _assert_verdict(v, "torch", True, "ok", "dropped fraction 0.0000 in [0.0000, 1.0000] (rate 0.5, n=0); kept "
                    "a*x+b, dropped a*alpha'+b = -0.779194 (a=0.886405, b=0.779194; max rel error 0)")
    assert v.metrics["n"] == 0 and v.metrics["zero_fraction"] == 0.0 and v.metrics["max_scale_rel_error"] == 0.0
    x[:2] = 1.0
    y = _alpha(x, _first_k(x.shape, 1), 0.5)  # one of the two unambiguous outputs dropped
    v = check_alpha_dropout_sample(x, y, 0.5, "torch")
    assert v.passed and v.metrics["n"] == 2 and v.metrics["zero_fraction"] == 0.5
