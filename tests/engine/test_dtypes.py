"""float16 and bfloat16: both frameworks are fed identical values and hold identical weights, the default tolerance
of each dtype has measured headroom over correct mappings, and planted mistakes above the dtype's resolution fail.

The per-family measurements behind the tolerance (every shipped case re-run in each dtype) come from
scripts/dtype_tolerances.py; the numbers are in xfw_harness/compare.py and the README."""

from __future__ import annotations

import math
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import xfw_harness.blocks.convolution as convolution
import xfw_harness.blocks.convolution_geometry as convolution_geometry
import xfw_harness.blocks.dense as dense
from xfw_harness.blocks import get_block, resolve_path
from xfw_harness.cases import DTYPES, InputSpec, Point, load_file
from xfw_harness.core.frameworks import NUMPY_DTYPES, TORCH_DTYPES, keras, tf, to_numpy, to_torch, torch
from xfw_harness.core.layout import dense_kernel_to_keras, to_channels_last
from xfw_harness.core.samples import check_dropout_sample
from xfw_harness.core.tolerance import EPS, OUTPUT_ULPS, ULP_FACTOR, default_tolerance
from xfw_harness.engine import build_keras, build_torch, run_point

PROJECT = Path(__file__).resolve().parents[2]
REDUCED = ("float16", "bfloat16")
HEADROOM = 4.0


def test_every_dtype_has_a_torch_a_numpy_and_an_eps() -> None:
    assert set(DTYPES) == {"float32", "float64", "float16", "bfloat16"} == set(TORCH_DTYPES) == set(NUMPY_DTYPES)
    assert EPS["float16"] == 2.0 ** -10 and EPS["bfloat16"] == 2.0 ** -7
    assert float(ml_dtypes.finfo(ml_dtypes.bfloat16).eps) == EPS["bfloat16"]


@pytest.mark.parametrize("dtype", REDUCED)
@pytest.mark.parametrize("fill", ["normal", "uniform", "arange", "values"])
def test_the_input_is_one_array_in_the_dtype_that_both_frameworks_receive_exactly(dtype: str, fill: str) -> None:
    spec = InputSpec(shape=(2, 3, 4, 5), dtype=dtype, fill=fill, seed=3,
                     values=np.linspace(-3, 3, 120).reshape(2, 3, 4, 5).tolist())
    x = spec.make()
    assert x.dtype == NUMPY_DTYPES[dtype]
    assert np.array_equal(x, spec.make())  # the same on every call
    t = to_torch(x)
    assert t.dtype == TORCH_DTYPES[dtype]
    assert np.array_equal(to_numpy(t), x) and to_numpy(t).dtype == x.dtype  # bfloat16 through float32: exact
    k = tf.constant(to_channels_last(x))
    assert k.dtype.name == dtype
    assert np.array_equal(to_channels_last(to_numpy(t)), keras.ops.convert_to_numpy(k))


@pytest.mark.parametrize("dtype", REDUCED)
def test_layers_compute_in_the_dtype_and_hold_the_same_weights(case_points, dtype: str) -> None:
    (point,) = case_points(f"""
        - name: net
          block: sequential
          layers:
            - {{block: conv2d, params: {{filters: 4, kernel_size: 3, strides: 2, dilation_rate: 2, padding: 2}}}}
            - {{block: max_pool2d, params: {{pool_size: 2, padding: 1}}}}
            - {{block: avg_pool2d, params: {{pool_size: 3, padding: [2, 1], count_include_pad: false}}}}
            - {{block: flatten}}
            - {{block: dense, params: {{units: 5}}}}
          input: {{shape: [2, 3, 17, 16], dtype: {dtype}}}
        """)
    modules = build_torch(point, "cpu")
    layers = build_keras(point, modules, "cpu")
    for module in modules:
        assert all(p.dtype == TORCH_DTYPES[dtype] for p in module.parameters())
    leaves = [sub for layer in layers for sub in (layer.layers if isinstance(layer, keras.Sequential) else [layer])]
    assert {type(sub).__name__ for sub in leaves} >= {"Subsample", "SpatialPadding", "ZeroPadding2D"}
    for sub in leaves:  # the harness's own Keras layers included (a keras.Sequential holding them computes nothing)
        assert sub.compute_dtype == dtype, sub
    for layer, site, module, klayer in zip(point.layers, point.sites, modules, layers):
        for copy in layer.block.weight_copies(site, module, klayer):
            value = to_numpy(resolve_path(module, copy.torch_path))
            want = copy.convert(value, *copy.args) if copy.convert else value
            held = keras.ops.convert_to_numpy(resolve_path(klayer, copy.keras_path))
            assert held.dtype == NUMPY_DTYPES[dtype] and np.array_equal(held, want)
    result = run_point(point, "cpu")
    assert result.status == "passed", result.message
    assert f"{dtype} default" in result.message


def test_default_tolerance_of_the_reduced_dtypes() -> None:
    for dtype in REDUCED:
        for k in (1, 9, 576, 2048):
            t = default_tolerance(dtype, k, scale=3.0)
            want = ULP_FACTOR * EPS["float32"] * math.sqrt(k) + OUTPUT_ULPS[dtype] * EPS[dtype]
            assert t.rtol == pytest.approx(want) and t.atol == pytest.approx(3.0 * want)
            assert t.source.startswith(f"{dtype} default")
        # The outputs' rounding dominates: within 2% of 8 ulps up to K = 2048.
        assert default_tolerance(dtype, 2048).rtol < 1.02 * 8 * EPS[dtype]
    # float32 and float64 are unchanged: 16 * eps * sqrt(K).
    assert default_tolerance("float32", 576).rtol == pytest.approx(16 * EPS["float32"] * 24)
    assert default_tolerance("float64", 9).rtol == pytest.approx(16 * EPS["float64"] * 3)


DTYPE_POINTS = [p for e in load_file(PROJECT / "cases" / "dtypes.yaml")[0] for p in e.points if isinstance(p, Point)]


def test_the_reduced_dtypes_tolerance_has_headroom_over_every_shipped_dtype_point(record_property) -> None:
    """cases/dtypes.yaml: every block family in float16 and bfloat16. The worst error/tolerance ratio (measured:
    0.11 in float16, 0.07 in bfloat16) must leave HEADROOM."""
    assert {p.input.dtype for p in DTYPE_POINTS} == set(REDUCED) and len(DTYPE_POINTS) >= 50
    worst: dict[str, tuple[float, str]] = {}
    for point in DTYPE_POINTS:
        result = run_point(point, "cpu")
        assert result.status == "passed", result.message
        m = result.verdicts[0].metrics
        if "max_abs" not in m:  # a dropout sample: no tolerance
            continue
        ratio = m["max_abs"] / m["atol"]
        if ratio >= worst.get(point.input.dtype, (-1.0, ""))[0]:
            worst[point.input.dtype] = (ratio, result.id)
    print({d: f"{r:.3f} at {i}" for d, (r, i) in worst.items()})
    for dtype, (ratio, test_id) in worst.items():
        record_property(f"{dtype}_worst_ratio", ratio)
        assert ratio * HEADROOM <= 1.0, f"{test_id}: max abs / atol = {ratio:.3f} leaves less than {HEADROOM}x"


# --- planted mistakes, caught in reduced precision -----------------------------------------------------------

CONV = """
- name: conv
  block: conv2d
  params: {filters: 4, kernel_size: 3, strides: 2, padding: same}  # in = out, square: a (3, 2, 1, 0) permute fits
  input: {shape: [2, 4, 12, 12], dtype: DTYPE}
"""
FLATTEN_DENSE = """
- name: flatten_dense
  block: sequential
  layers: [{block: conv2d, params: {filters: 4, kernel_size: 3}}, {block: flatten}, {block: dense, params: {units: 6}}]
  input: {shape: [2, 3, 8, 8], dtype: DTYPE}
"""
LEAKY = """
- {name: leaky, block: leaky_relu, input: {shape: [2, 3, 8, 8], dtype: DTYPE}}
"""


def kernel_hw_swapped(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(convolution, "conv_kernel_to_keras", lambda w: np.ascontiguousarray(w.transpose(3, 2, 1, 0)))


def bias_dropped(mp: pytest.MonkeyPatch) -> None:
    real = convolution.Conv2D.weight_copies
    mp.setattr(convolution.Conv2D, "weight_copies", lambda self, site, module, layer: [
        c for c in real(self, site, module, layer) if "bias" not in c.keras_path])


def flatten_not_permuted(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(dense, "dense_after_flatten_kernel_to_keras", lambda w, unflattened: dense_kernel_to_keras(w))


def leaky_relu_keras_default(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(type(get_block("leaky_relu")), "keras_layer",
               lambda self, site: keras.layers.LeakyReLU(dtype=site.dtype))


def same_padding_first(mp: pytest.MonkeyPatch) -> None:
    """TensorFlow's odd `same` pixel put before (top/left) instead of after, in PyTorch's explicit padding."""
    real = convolution_geometry.resolve_padding
    mp.setattr(convolution_geometry, "resolve_padding",
               lambda *a, **k: tuple((hi, lo) for lo, hi in real(*a, **k)))


@pytest.mark.parametrize("dtype", REDUCED)
@pytest.mark.parametrize(("case", "plant"), [
    (CONV, kernel_hw_swapped), (CONV, bias_dropped), (CONV, same_padding_first), (FLATTEN_DENSE, flatten_not_permuted),
    (LEAKY, leaky_relu_keras_default),
], ids=lambda v: v.__name__ if callable(v) else v.split("name: ")[1].split()[0].rstrip(","))
def test_planted_mistakes_fail_in_reduced_precision(case_points, monkeypatch, dtype, case, plant) -> None:
    (point,) = case_points(case.replace("DTYPE", dtype))
    assert run_point(point, "cpu").status == "passed"
    plant(monkeypatch)
    result = run_point(point, "cpu")
    assert result.status == "failed", result.message
    assert result.verdicts[0].what == "keras vs torch" and result.verdicts[0].check == "values"
    assert f"{dtype} default" in result.verdicts[0].message


def test_a_gelu_form_mix_up_is_below_float16_resolution(case_points, monkeypatch) -> None:
    """At most 4.7e-4, where |y| = 2.7 and a float16 ulp is 2e-3: rounding hides it (in float32 it fails)."""
    import functools

    monkeypatch.setattr(type(get_block("gelu")), "keras_layer", lambda self, site: keras.layers.Activation(
        functools.partial(keras.activations.gelu, approximate=True), dtype=site.dtype))
    verdicts = {}
    for dtype in ("float32", "float16"):
        (point,) = case_points(f"- {{name: g, block: gelu, input: {{shape: [4, 3, 16, 16], dtype: {dtype}}}}}")
        verdicts[dtype] = run_point(point, "cpu").verdicts[0]
    assert not verdicts["float32"].passed
    assert verdicts["float16"].passed and verdicts["float16"].metrics["max_abs"] <= 2 * EPS["float16"] * 2


@pytest.mark.parametrize("dtype", REDUCED)
def test_dropout_samples_in_reduced_precision(dtype: str) -> None:
    x = InputSpec(shape=(8, 4096), dtype=dtype, seed=1).make()
    x[x == 0] = 1
    torch.manual_seed(0)
    drop = torch.nn.Dropout(0.3).train()
    with torch.no_grad():
        y_torch = to_numpy(drop(to_torch(x)))
    y_keras = keras.ops.convert_to_numpy(keras.layers.Dropout(0.3, seed=0, dtype=dtype)(x, training=True))
    for y in (y_torch, y_keras):
        assert y.dtype == NUMPY_DTYPES[dtype]
        assert check_dropout_sample(x, y, 0.3, dtype).passed
    # Survivors scaled by 1/rate instead of 1/(1-rate) are caught at the dtype's resolution.
    wrong = np.where(y_torch != 0, x.astype(np.float64) / 0.3, 0).astype(NUMPY_DTYPES[dtype])
    assert not check_dropout_sample(x, wrong, 0.3, dtype).passed


def test_a_kernel_a_framework_lacks_in_float16_is_an_error_naming_the_layer_and_the_dtype(case_points) -> None:
    """TensorFlow's CPU DepthwiseConv2dNative has no float16 form for unequal strides (measured; bfloat16 and
    float32 run it). The test is an error that says which layer and which dtype."""
    case = "- {{name: d, block: depthwise_conv2d, params: {{kernel_size: 3, strides: [3, 2]}}, " \
           "input: {{shape: [2, 3, 14, 13], dtype: {}}}}}"
    for dtype in ("float32", "bfloat16"):
        (point,) = case_points(case.format(dtype))
        assert run_point(point, "cpu").status == "passed"
    (point,) = case_points(case.format("float16"))
    result = run_point(point, "cpu")
    if result.status == "passed":
        pytest.skip("this CPU's TensorFlow has the float16 kernel (oneDNN with AVX512-FP16)")
    assert result.status == "error"
    assert result.message.startswith("InvalidArgumentError while running Keras's depthwise_conv2d in float16: ")
