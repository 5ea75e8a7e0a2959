"""The comparator (xfw_harness/compare.py): verdicts, tolerance semantics, default tolerances, the dropout check,
and a measurement that the default float32 tolerance has headroom over real PyTorch-vs-Keras differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xfw_harness.core.compare import compare
from xfw_harness.core.frameworks import keras, to_numpy, torch
from xfw_harness.core.samples import binomial_interval, check_channel_dropout_sample, check_dropout_sample
from xfw_harness.core.tolerance import EPS, ULP_FACTOR, Tolerance, default_tolerance, tolerance_for
from xfw_harness.core.verdicts import VerdictKind

TOL = Tolerance(atol=1e-6, rtol=1e-6)


def _x(shape=(2, 3, 4, 5), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- compare -------------------------------------------------------------------------------------------

def test_equal_arrays_pass_and_keep_metrics() -> None:
    a = _x()
    v = compare(a, a.copy(), TOL, "keras vs torch", ("keras", "torch"), kind=VerdictKind.FORWARD)
    assert v.passed and v.check == "ok"
    assert v.what == "keras vs torch"
    m = v.metrics
    assert m["max_abs"] == 0.0 and m["max_rel"] == 0.0 and m["n_bad"] == 0
    assert m["n"] == a.size
    assert m["shape_keras"] == list(a.shape) and m["shape_torch"] == list(a.shape)
    assert m["atol"] == TOL.atol and m["rtol"] == TOL.rtol
    assert v.to_dict()["metrics"] is m


def test_shape_mismatch() -> None:
    v = compare(np.zeros((2, 3, 4)), np.zeros((2, 4, 3)), TOL, names=("keras", "torch"), kind=VerdictKind.FORWARD)
    assert not v.passed and v.check == "shape"
    assert "shape mismatch" in v.message
    assert "keras [2, 3, 4]" in v.message and "torch [2, 4, 3]" in v.message
    assert v.metrics["shape_keras"] == [2, 3, 4] and v.metrics["shape_torch"] == [2, 4, 3]


def test_same_size_other_shape_is_a_shape_mismatch() -> None:
    a = _x((2, 6))
    v = compare(a, a.reshape(2, 3, 2), TOL, kind=VerdictKind.FORWARD)
    assert v.check == "shape" and not v.passed


def test_nan_in_one_place_only() -> None:
    b = _x()
    a = b.copy()
    a[1, 2, 3, 4] = np.nan
    v = compare(a, b, TOL, kind=VerdictKind.FORWARD)
    assert not v.passed and v.check == "nonfinite"
    assert v.metrics["n_bad"] == 1 and v.metrics["worst_index"] == [1, 2, 3, 4]
    assert "NaN/Inf in different places" in v.message and "[1, 2, 3, 4]" in v.message
    # The other way round too.
    v = compare(b, a, TOL, kind=VerdictKind.FORWARD)
    assert v.check == "nonfinite" and not v.passed


def test_nan_in_the_same_places_passes() -> None:
    b = _x()
    b[0, 0, 0, 0] = b[1, 1, 1, 1] = np.nan
    a = b.copy()
    a[0, 1, 0, 0] = a[0, 1, 0, 0] + np.float32(1e-7)
    v = compare(a, b, TOL, kind=VerdictKind.FORWARD)
    assert v.passed, v.message
    # ... but the finite elements are still compared.
    a[0, 2, 0, 0] += 1.0
    v = compare(a, b, TOL, kind=VerdictKind.FORWARD)
    assert v.check == "values" and v.metrics["n_bad"] == 1


@pytest.mark.filterwarnings("error")  # inf - inf in matching places must not warn either
def test_inf_signs() -> None:
    b = _x()
    b[0, 0, 0, 0] = np.inf
    a = b.copy()
    assert compare(a, b, TOL, kind=VerdictKind.FORWARD).passed
    a[0, 0, 0, 0] = -np.inf
    v = compare(a, b, TOL, kind=VerdictKind.FORWARD)
    assert not v.passed and v.check == "nonfinite"
    assert v.metrics["worst_actual"] == -np.inf and v.metrics["worst_expected"] == np.inf
    # inf against a large finite value is a non-finite mismatch, not a value error.
    a[0, 0, 0, 0] = 3e38
    assert compare(a, b, TOL, kind=VerdictKind.FORWARD).check == "nonfinite"


def test_single_off_element() -> None:
    b = _x(seed=1)
    a = b.copy()
    idx = (1, 0, 2, 3)
    a[idx] = b[idx] + np.float32(0.5)
    v = compare(a, b, TOL, names=("keras", "torch"), kind=VerdictKind.FORWARD)
    assert not v.passed and v.check == "values"
    m = v.metrics
    assert m["n_bad"] == 1
    assert m["worst_index"] == list(idx)
    want_abs = abs(float(a[idx]) - float(b[idx]))
    assert m["max_abs"] == pytest.approx(want_abs, rel=1e-12)
    assert m["max_rel"] == pytest.approx(want_abs / abs(float(b[idx])), rel=1e-12)
    assert m["worst_actual"] == float(a[idx]) and m["worst_expected"] == float(b[idx])
    assert m["pct_bad"] == pytest.approx(100.0 / b.size)
    assert "values differ: 1 of 120" in v.message
    assert f"keras={float(a[idx]):.9g}" in v.message and f"torch={float(b[idx]):.9g}" in v.message
    assert "[1, 0, 2, 3]" in v.message


def test_max_rel_of_element_other_than_worst_abs() -> None:
    b = np.array([100.0, 0.01])
    a = np.array([101.0, 0.02])  # abs 1 and 0.01; rel 0.01 and 1
    v = compare(a, b, Tolerance(0.0, 0.0), kind=VerdictKind.FORWARD)
    assert v.metrics["max_abs"] == pytest.approx(1.0)
    assert v.metrics["max_rel"] == pytest.approx(1.0)
    assert v.metrics["worst_index"] == [0]
    assert v.metrics["n_bad"] == 2


def test_tolerance_boundary_semantics() -> None:
    # Exactly representable: |a - b| = 0.75 = atol + rtol * |b| with b = 1, atol = 0.25, rtol = 0.5.
    tol = Tolerance(atol=0.25, rtol=0.5)
    b = np.array([1.0])
    assert compare(np.array([1.75]), b, tol, kind=VerdictKind.FORWARD).passed
    assert compare(np.array([0.25]), b, tol, kind=VerdictKind.FORWARD).passed
    assert not compare(np.array([np.nextafter(1.75, 2.0)]), b, tol, kind=VerdictKind.FORWARD).passed
    # |a - b| = 0.75 + 2**-20, exactly
    assert not compare(np.array([0.25 - 2.0 ** -20]), b, tol, kind=VerdictKind.FORWARD).passed
    # rtol scales |expected|, not |actual|: the comparison is not symmetric.
    rel = Tolerance(atol=0.0, rtol=1.0)
    assert compare(np.array([1.0]), np.array([3.0]), rel, kind=VerdictKind.FORWARD).passed  # 2 <= 1 * 3
    assert not compare(np.array([3.0]), np.array([1.0]), rel, kind=VerdictKind.FORWARD).passed  # 2 > 1 * 1
    # atol alone near zero.
    tiny = Tolerance(atol=1e-3, rtol=0.0)
    assert compare(np.array([1e-3]), np.array([0.0]), tiny, kind=VerdictKind.FORWARD).passed
    assert not compare(np.array([2e-3]), np.array([0.0]), tiny, kind=VerdictKind.FORWARD).passed


def test_empty_arrays_pass() -> None:
    v = compare(np.zeros((0, 3)), np.zeros((0, 3)), TOL, kind=VerdictKind.FORWARD)
    assert v.passed and v.metrics["n"] == 0


def test_default_tolerance() -> None:
    base = default_tolerance("float32", 1)
    assert base.rtol == pytest.approx(ULP_FACTOR * EPS["float32"])
    assert base.atol == base.rtol
    # Grows with sqrt(K).
    for k in (4, 100, 2304):
        t = default_tolerance("float32", k)
        assert t.rtol == pytest.approx(base.rtol * math.sqrt(k))
    assert default_tolerance("float32", 400).rtol > default_tolerance("float32", 100).rtol
    # atol grows with the scale of the expected values, never below rtol.
    plain = default_tolerance("float32", 9)
    assert default_tolerance("float32", 9, scale=10.0).atol == pytest.approx(10.0 * plain.atol)
    assert default_tolerance("float32", 9, scale=0.01).atol == default_tolerance("float32", 9).rtol
    assert default_tolerance("float32", 9, scale=10.0).rtol == default_tolerance("float32", 9).rtol
    # float64 is tighter by the ratio of the unit roundoffs (2**-29).
    ratio = default_tolerance("float64", 9).rtol / default_tolerance("float32", 9).rtol
    assert ratio == pytest.approx(2.0 ** -29)
    assert default_tolerance("float64", 9).rtol < 1e-12
    # K <= 0 is treated as 1.
    assert default_tolerance("float32", 0).rtol == base.rtol
    assert "float32" in base.source


def test_tolerance_for_scales_by_the_largest_finite_expected_value_or_takes_the_case_s() -> None:
    expected = np.array([[0.5, -40.0], [np.nan, np.inf]], np.float32)
    assert tolerance_for("float32", 9, expected) == default_tolerance("float32", 9, scale=40.0)  # NaN/Inf ignored
    assert tolerance_for("float32", 9, np.full(3, np.nan)) == default_tolerance("float32", 9)  # nothing finite: 1
    assert tolerance_for("float32", 9, np.zeros(0)) == default_tolerance("float32", 9)
    assert tolerance_for("float64", 4, np.array([-3.0])).atol == pytest.approx(3 * default_tolerance("float64", 4).rtol)
    half = np.array([1000.0], np.float16)  # reduced dtypes are read in float64 (no overflow in |x|)
    assert tolerance_for("float16", 1, half) == default_tolerance("float16", 1, scale=1000.0)
    case = Tolerance(atol=1.0, rtol=0.0)
    assert tolerance_for("float32", 9, expected, override=case) is case  # the case's own, as it is


# --- dropout -------------------------------------------------------------------------------------------

N_DROPOUT = 20000


def _nonzero_input(seed: int, n: int = N_DROPOUT) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((4, n // 4)).astype(np.float32)
    x[x == 0] = 1.0
    return x


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("seed", range(4))
def test_dropout_genuine_samples_pass(rate: float, seed: int) -> None:
    x = _nonzero_input(seed)
    torch.manual_seed(seed)
    drop = torch.nn.Dropout(rate)
    drop.train()
    with torch.no_grad():
        y_torch = to_numpy(drop(torch.from_numpy(x)))
    v = check_dropout_sample(x, y_torch, rate, "torch")
    assert v.passed, v.message
    assert v.metrics["n"] == x.size
    assert abs(v.metrics["zero_fraction"] - rate) < 0.02

    y_keras = to_numpy(keras.layers.Dropout(rate, seed=seed)(x, training=True))
    v = check_dropout_sample(x, y_keras, rate, "keras")
    assert v.passed, v.message
    assert abs(v.metrics["zero_fraction"] - rate) < 0.02


def _fake_mask(x: np.ndarray, drop_fraction: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(x.shape) >= drop_fraction  # True = kept


def test_dropout_survivors_not_scaled_fails() -> None:
    x = _nonzero_input(10)
    y = np.where(_fake_mask(x, 0.5), x, 0).astype(np.float32)
    v = check_dropout_sample(x, y, 0.5, "sample")
    assert not v.passed and v.check == "sample"
    assert "neither 0 nor input/(1-rate)" in v.message
    assert v.metrics["n_bad"] == int((y != 0).sum())


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.9])  # at 0.5, 1/rate == 1/(1-rate): that mistake is invisible there
def test_dropout_scaled_by_one_over_rate_fails(rate: float) -> None:
    x = _nonzero_input(11)
    mask = _fake_mask(x, rate)
    y = np.where(mask, x / np.float32(rate), 0).astype(np.float32)
    v = check_dropout_sample(x, y, rate, "sample")
    assert not v.passed and v.check == "sample"
    assert "neither 0 nor input/(1-rate)" in v.message
    # The same mask scaled correctly passes: the failure is the scale alone.
    good = np.where(mask, x / np.float32(1 - rate), 0).astype(np.float32)
    assert check_dropout_sample(x, good, rate, "sample").passed


def test_dropout_wrong_rate_zero_fraction_out_of_interval() -> None:
    # Zeroed at rate 0.5 but scaled as for 0.3, checked against 0.3: only the zero fraction can tell.
    x = _nonzero_input(12)
    assert x.size >= 10000
    mask = _fake_mask(x, 0.5)
    y = np.where(mask, x / np.float32(0.7), 0).astype(np.float32)
    v = check_dropout_sample(x, y, 0.3, "sample")
    assert not v.passed and v.check == "sample"
    assert "zero fraction" in v.message and "outside the 5-sigma interval" in v.message
    lo, hi = v.metrics["interval"]
    assert not lo <= v.metrics["zero_fraction"] <= hi
    assert v.metrics["zero_fraction"] == pytest.approx(0.5, abs=0.02)
    # A genuine rate-0.5 sample fails against 0.3 too (its survivors are scaled by 2, not 1/0.7).
    drop = torch.nn.Dropout(0.5)
    torch.manual_seed(0)
    with torch.no_grad():
        y_torch = to_numpy(drop(torch.from_numpy(x)))
    assert not check_dropout_sample(x, y_torch, 0.3, "torch").passed


def test_dropout_outputs_neither_zero_nor_scaled_fail() -> None:
    x = _nonzero_input(13)
    rate = 0.2
    y = np.where(_fake_mask(x, rate), x / np.float32(1 - rate), 0).astype(np.float32)
    assert check_dropout_sample(x, y, rate, "sample").passed
    y[0, 5] = np.float32(1234.5)
    y[2, 7] = y[2, 7] * np.float32(1.001) if y[2, 7] != 0 else np.float32(0.5)
    v = check_dropout_sample(x, y, rate, "sample")
    assert not v.passed and v.check == "sample"
    assert v.metrics["n_bad"] == 2
    assert "first at [0, 5]" in v.message and "output=1234.5" in v.message


def test_dropout_zero_inputs_do_not_count_and_shapes_checked() -> None:
    x = _nonzero_input(14)
    x[:, ::2] = 0.0  # zero inputs give zero outputs whatever the mask: they must not count as dropped
    rate = 0.3
    y = np.where(_fake_mask(x, rate), x / np.float32(1 - rate), 0).astype(np.float32)
    v = check_dropout_sample(x, y, rate, "sample")
    assert v.passed, v.message
    assert v.metrics["n"] == int((x != 0).sum())
    v = check_dropout_sample(x, y[:, :-1], rate, "sample")
    assert v.check == "shape" and not v.passed


def test_binomial_interval() -> None:
    # Large n: the exact quantiles are the normal approximation's p +- 5 sigma to the count.
    lo, hi = binomial_interval(10000, 0.5)
    assert lo == pytest.approx(0.475, abs=2e-4) and hi == pytest.approx(0.525, abs=2e-4)
    lo, hi = binomial_interval(10000, 0.1, sigmas=3.0)
    assert lo == pytest.approx(0.1 - 3 * 0.003, abs=2e-4) and hi == pytest.approx(0.1 + 3 * 0.003, abs=2e-4)
    # Few trials, where the normal approximation was flaky: one channel at rate 0.03 may be dropped (3% of runs),
    # and the approximation's upper end, 0.03 + 5 * sqrt(0.03 * 0.97) = 0.88, rejected that.
    assert binomial_interval(1, 0.03) == (0.0, 1.0)
    assert binomial_interval(10, 0.01) == (0.0, 0.4)  # P(5 or more of 10 at 0.01) = 2.4e-8 < 2.9e-7
    assert binomial_interval(10, 0.99)[1] == 1.0
    assert binomial_interval(100, 0.0) == (0.0, 0.0)
    assert binomial_interval(0, 0.5) == (0.0, 1.0)  # no trials: nothing can be wrong
    # A wrong rate (0.5 for 0.3) is rejected with a realistic sample; the interval narrows as 1/sqrt(n).
    assert not binomial_interval(4096, 0.3)[0] <= 0.5 <= binomial_interval(4096, 0.3)[1]
    w1 = np.subtract(*binomial_interval(1000, 0.3)[::-1])
    w4 = np.subtract(*binomial_interval(4000, 0.3)[::-1])
    assert w1 / w4 == pytest.approx(2.0, rel=0.05)


# --- measurement: the default float32 tolerance against real conv2d differences ------------------------------

# (in channels, kernel, groups): fan-in K = in/groups * k * k from 9 to about 2000.
CONV_FAN_INS = [(1, 3, 1), (3, 3, 1), (16, 3, 1), (64, 3, 1), (32, 5, 1), (128, 3, 1), (80, 5, 1), (224, 3, 1),
                (256, 3, 2)]
HEADROOM = 4.0


def test_default_float32_tolerance_has_headroom_on_conv2d(run_case, record_property) -> None:
    rows = []
    for cin, k, groups in CONV_FAN_INS:
        for seed in range(3):
            (result,) = run_case(f"""
                - name: fan_in_{cin}_{k}_{groups}_{seed}
                  block: conv2d
                  params: {{filters: 32, kernel_size: {k}, padding: same, groups: {groups}}}
                  input: {{shape: [2, {cin}, 10, 10], fill: normal, seed: {seed}}}
                """)
            assert result.status == "passed", result.message
            m = result.verdicts[0].metrics
            assert result.verdicts[0].what == "keras vs torch"
            fan_in = cin // groups * k * k
            assert m["rtol"] == pytest.approx(ULP_FACTOR * EPS["float32"] * math.sqrt(fan_in))
            rows.append((fan_in, seed, m["max_abs"], m["atol"]))
    worst = max(rows, key=lambda r: r[2] / r[3])
    lines = [f"K={r[0]:5d} seed={r[1]} max_abs={r[2]:.3g} atol={r[3]:.3g} max_abs/atol={r[2] / r[3]:.4f}"
             for r in rows]
    summary = (f"worst max_abs/atol {worst[2] / worst[3]:.4f} at K={worst[0]} (headroom {worst[3] / worst[2]:.0f}x)"
               if worst[2] else "every conv2d agreed bit for bit")
    print("\n".join(["default float32 tolerance vs torch-vs-keras conv2d error:", *lines, summary]))
    record_property("tolerance_worst_ratio", worst[2] / worst[3])
    assert len({r[0] for r in rows}) >= 8 and min(r[0] for r in rows) == 9 and max(r[0] for r in rows) >= 2000
    for fan_in, seed, max_abs, atol in rows:
        assert max_abs * HEADROOM <= atol, (f"K={fan_in} seed={seed}: max abs error {max_abs:.3g} is within "
                                            f"{HEADROOM:g}x of the default atol {atol:.3g}")


def test_relative_error_against_an_expected_zero_is_infinite() -> None:
    v = compare(np.array([0.0, 1e-3]), np.array([0.0, 0.0]), Tolerance(atol=1e-6, rtol=0.0), kind=VerdictKind.FORWARD)
    assert not v.passed and v.metrics["max_rel"] == np.inf and v.metrics["n_bad"] == 1
    ok = compare(np.array([0.0, 1.0]), np.array([0.0, 1.0]), Tolerance(atol=0.0, rtol=0.0), kind=VerdictKind.FORWARD)
    assert ok.passed and ok.metrics["max_rel"] == 0.0


# --- channel-wise (spatial) dropout -----------------------------------------------------------------------------

def _channels_input(shape=(64, 64, 4, 4), seed=20) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    x[x == 0] = 1.0
    return x


def _channel_sample(x: np.ndarray, rate: float, seed: int = 0) -> np.ndarray:
    keep = np.random.default_rng(seed).random(x.shape[:2]) >= rate
    return np.where(keep[:, :, None, None], x / np.float32(1 - rate), 0).astype(x.dtype)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("seed", range(3))
def test_channel_dropout_genuine_samples_pass(rate: float, seed: int) -> None:
    x = _channels_input(seed=seed)
    torch.manual_seed(seed)
    drop = torch.nn.Dropout2d(rate)
    with torch.no_grad():
        y_torch = to_numpy(drop.train()(torch.from_numpy(x)))
    v = check_channel_dropout_sample(x, y_torch, rate, "torch")
    assert v.passed, v.message
    assert v.metrics["n"] == 64 * 64 and v.metrics["n_partial"] == 0
    layer = keras.layers.SpatialDropout2D(rate, seed=seed)
    y_keras = np.moveaxis(to_numpy(layer(np.moveaxis(x, 1, -1), training=True)), -1, 1)
    v = check_channel_dropout_sample(x, y_keras, rate, "keras")
    assert v.passed, v.message
    assert abs(v.metrics["zero_fraction"] - rate) < 0.03


def test_channel_dropout_elementwise_mask_fails_as_partly_zeroed() -> None:
    """Element-wise dropout where channel-wise is meant: its outputs are each 0 or x/(1-rate), and its zero
    fraction is right, so only the whole-channel check sees it."""
    x = _channels_input()
    rate = 0.5
    torch.manual_seed(0)
    with torch.no_grad():
        y = to_numpy(torch.nn.Dropout(rate).train()(torch.from_numpy(x)))
    assert check_dropout_sample(x, y, rate, "elementwise").passed  # right for element-wise dropout
    v = check_channel_dropout_sample(x, y, rate, "sample")
    assert not v.passed and v.check == "sample"
    assert "channels are partly zeroed" in v.message and "an element-wise dropout?" in v.message
    assert v.metrics["n_partial"] > 0.9 * 64 * 64


def test_channel_dropout_mask_over_rows_fails() -> None:
    """SpatialDropout2D told data_format='channels_first' on an NHWC tensor draws one mask per (n, h): rows."""
    x = _channels_input()
    layer = keras.layers.SpatialDropout2D(0.3, data_format="channels_first", seed=0)
    y = np.moveaxis(to_numpy(layer(np.moveaxis(x, 1, -1), training=True)), -1, 1)
    v = check_channel_dropout_sample(x, y, 0.3, "keras")
    assert not v.passed and "partly zeroed" in v.message


def test_channel_dropout_wrong_rate_scale_and_values_fail() -> None:
    x = _channels_input()
    # Dropped at 0.5, scaled as for 0.3, checked against 0.3: only the channel fraction tells.
    y = np.where((np.random.default_rng(1).random(x.shape[:2]) >= 0.5)[:, :, None, None], x / np.float32(0.7), 0)
    v = check_channel_dropout_sample(x, y.astype(np.float32), 0.3, "sample")
    assert not v.passed and "dropped-channel fraction" in v.message and "outside the 5-sigma interval" in v.message
    assert v.metrics["zero_fraction"] == pytest.approx(0.5, abs=0.03)
    unscaled = np.where(_channel_sample(x, 0.3) != 0, x, 0).astype(np.float32)
    v = check_channel_dropout_sample(x, unscaled, 0.3, "sample")
    assert not v.passed and "neither 0 nor input/(1-rate)" in v.message
    good = _channel_sample(x, 0.3)
    assert check_channel_dropout_sample(x, good, 0.3, "sample").passed
    n, c = (int(i) for i in np.argwhere(good[:, :, 0, 0] != 0)[0])  # a kept channel: one survivor off by 0.1%
    good[n, c, 1, 2] *= np.float32(1.001)
    v = check_channel_dropout_sample(x, good, 0.3, "sample")
    assert not v.passed and v.metrics["n_bad"] == 1 and f"first at [{n}, {c}, 1, 2]" in v.message


def test_channel_dropout_zero_inputs_and_shapes() -> None:
    x = _channels_input()
    x[:, :, ::2] = 0.0  # zero inputs are 0 whatever the mask: they do not count, and neither do empty channels
    x[0, :8] = 0.0
    y = _channel_sample(x, 0.4)
    v = check_channel_dropout_sample(x, y, 0.4, "sample")
    assert v.passed, v.message
    assert v.metrics["n"] == 64 * 64 - 8
    assert check_channel_dropout_sample(x, y[:, :, :-1], 0.4, "sample").check == "shape"
    v = check_channel_dropout_sample(x[:, :, 0, 0], y[:, :, 0, 0], 0.4, "sample")
    assert not v.passed and v.check == "shape" and "(N, C, ...)" in v.message
