"""The elementwise, dense and dropout families (xfw_harness/blocks/activations.py, dense.py, dropout.py): planted
mistakes in the new blocks (hard_sigmoid, relu6, hard_swish, selu, spatial_dropout2d) that the harness must
catch, every block's float64 reference against both frameworks (and a wrong reference caught), the native builders
(`defaults: native`) and `params_from_torch`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xfw_harness.engine as runner
from xfw_harness.blocks import Site, all_blocks, get_block
from xfw_harness.blocks.activations import SELU_ALPHA, SELU_SCALE, gelu_reference, selu_reference
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.cases import Point
from xfw_harness.core.compare import compare
from xfw_harness.core.errors import Refusal
from xfw_harness.core.frameworks import keras, to_numpy, torch
from xfw_harness.core.schema import normalise_params
from xfw_harness.core.tolerance import default_tolerance
from xfw_harness.core.verdicts import Verdict, VerdictKind


def _cls(name: str) -> type:
    return type(get_block(name))


def _keras_activation(fn: Callable) -> Callable:
    return lambda self, site: keras.layers.Activation(fn, dtype=site.dtype)


# --- planted mistakes ------------------------------------------------------------------------------------------

def keras2_hard_sigmoid(x: Any) -> Any:
    """tf.keras 2's hard_sigmoid (keras/backend.py): clip(0.2 x + 0.5, 0, 1)."""
    return keras.ops.clip(x * 0.2 + 0.5, 0.0, 1.0)


def docstring_selu(x: Any) -> Any:
    """A hand-written SELU with the constants keras.activations.selu's docstring prints (8 digits)."""
    return 1.05070098 * keras.ops.where(x > 0, x, 1.67326324 * (keras.ops.exp(x) - 1.0))


class KerasChannelsFirstSpatialDropout(keras.layers.SpatialDropout2D):
    """SpatialDropout2D told data_format='channels_first' while its input is NHWC: one mask per (n, h) row."""


@dataclass
class Planted:
    id: str
    case: str
    plant: Callable[[pytest.MonkeyPatch], None]
    check: str  # the first failing verdict's check
    message: str  # ... and a part of its message
    what: str = "keras vs torch"


GRID = ("[[-8.0, -6.5, -6.0, -4.0, -3.0, -2.75, -2.5, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 2.5, 2.75, 3.0, 4.0, "
        "6.0, 6.5, 8.0]]")
HARD_SIGMOID = """
- name: hard_sigmoid
  block: hard_sigmoid
  input: {shape: [2, 3, 16, 16]}
"""
RELU6_ARANGE = """
- name: relu6_above_six
  block: relu6
  input: {shape: [2, 3, 4, 4], fill: arange}
"""
RELU6_GRID = f"""
- name: relu6_grid
  block: relu6
  input: {{fill: values, values: {GRID}}}
"""
HARD_SWISH = """
- name: hard_swish
  block: hard_swish
  input: {shape: [2, 3, 16, 16]}
"""
SELU_FLOAT64 = """
- name: selu_float64
  block: selu
  input: {shape: [2, 3, 16, 16], dtype: float64}
"""
SPATIAL_TRAIN = """
- name: spatial_train
  block: spatial_dropout2d
  params: {rate: 0.3}
  mode: train
  input: {shape: [32, 64, 4, 4]}
"""
SPATIAL_TRAIN_NETWORK = """
- name: conv_spatial_train
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 32, kernel_size: 3, padding: same}}
    - {block: spatial_dropout2d, params: {rate: 0.4}}
  mode: train
  input: {shape: [32, 3, 5, 5]}
"""
PARTLY = "channels are partly zeroed"

PLANTED = [
    Planted("hard-sigmoid-keras2-slope", HARD_SIGMOID,
            lambda mp: mp.setattr(_cls("hard_sigmoid"), "keras_layer", _keras_activation(keras2_hard_sigmoid)),
            "values", "values differ"),
    Planted("hard-sigmoid-torch-as-sigmoid", HARD_SIGMOID,
            lambda mp: mp.setattr(_cls("hard_sigmoid"), "torch_module", lambda self, site: torch.nn.Sigmoid()),
            "values", "values differ"),
    Planted("relu6-keras-as-relu", RELU6_ARANGE,
            lambda mp: mp.setattr(_cls("relu6"), "keras_layer", lambda self, site: keras.layers.ReLU(dtype=site.dtype)),
            "values", "values differ"),
    Planted("relu6-torch-as-relu-grid", RELU6_GRID,
            lambda mp: mp.setattr(_cls("relu6"), "torch_module", lambda self, site: torch.nn.ReLU()),
            "values", "values differ"),
    Planted("hard-swish-keras-as-swish", HARD_SWISH,
            lambda mp: mp.setattr(_cls("hard_swish"), "keras_layer", _keras_activation("silu")),
            "values", "values differ"),
    Planted("hard-swish-keras-as-hard-sigmoid", HARD_SWISH,
            lambda mp: mp.setattr(_cls("hard_swish"), "keras_layer", _keras_activation("hard_sigmoid")),
            "values", "values differ"),
    Planted("selu-constants-rounded-float64", SELU_FLOAT64,
            lambda mp: mp.setattr(_cls("selu"), "keras_layer", _keras_activation(docstring_selu)),
            "values", "values differ"),
    Planted("selu-keras-as-elu", SELU_FLOAT64,
            lambda mp: mp.setattr(_cls("selu"), "keras_layer", _keras_activation("elu")),
            "values", "values differ"),
    Planted("spatial-dropout-keras-elementwise", SPATIAL_TRAIN,
            lambda mp: mp.setattr(_cls("spatial_dropout2d"), "keras_layer",
                                  lambda self, site: keras.layers.Dropout(site.params["rate"], seed=site.seed,
                                                                          dtype=site.dtype)),
            "sample", PARTLY, what="keras dropout sample"),
    Planted("spatial-dropout-torch-elementwise", SPATIAL_TRAIN,
            lambda mp: mp.setattr(_cls("spatial_dropout2d"), "torch_module",
                                  lambda self, site: torch.nn.Dropout(site.params["rate"])),
            "sample", PARTLY, what="torch dropout sample"),
    Planted("spatial-dropout-torch-elementwise-after-conv", SPATIAL_TRAIN_NETWORK,
            lambda mp: mp.setattr(_cls("spatial_dropout2d"), "torch_module",
                                  lambda self, site: torch.nn.Dropout(site.params["rate"])),
            "sample", PARTLY, what="torch dropout sample"),
    Planted("spatial-dropout-keras-channels-first-on-nhwc", SPATIAL_TRAIN,
            lambda mp: mp.setattr(_cls("spatial_dropout2d"), "keras_layer",
                                  lambda self, site: keras.layers.SpatialDropout2D(
                                      site.params["rate"], data_format="channels_first", seed=site.seed,
                                      dtype=site.dtype)),
            "sample", PARTLY, what="keras dropout sample"),
    Planted("spatial-dropout-keras-keep-probability", SPATIAL_TRAIN,
            lambda mp: mp.setattr(_cls("spatial_dropout2d"), "keras_layer",
                                  lambda self, site: keras.layers.SpatialDropout2D(
                                      1 - site.params["rate"], seed=site.seed, dtype=site.dtype)),
            "sample", "neither 0 nor input/(1-rate)", what="keras dropout sample"),
]


@pytest.mark.parametrize("planted", PLANTED, ids=[p.id for p in PLANTED])
def test_planted_mistake_is_caught(planted: Planted, run_case, monkeypatch: pytest.MonkeyPatch) -> None:
    (good,) = run_case(planted.case)
    assert good.status == "passed", f"the correct adapter fails:\n{good.message}"
    planted.plant(monkeypatch)
    (bad,) = run_case(planted.case)
    assert bad.status == "failed", f"{planted.id} not caught: {bad.status}\n{bad.message}"
    first = next(v for v in bad.verdicts if not v.passed)
    assert (first.what, first.check) == (planted.what, planted.check), bad.message
    assert planted.message in first.message, first.message
    if first.check == "values":  # far outside the tolerance, not a rounding that happens to cross it
        assert first.metrics["max_abs"] > 100 * first.metrics["atol"], first.message


def test_keras2_hard_sigmoid_differs_by_a_twelfth_and_the_reference_sides_with_torch(
        run_case, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Keras 2 definition is up to 1/12 away (at x = +-2.5), and the third opinion names Keras as the odd one."""
    case = f"""
- name: grid
  block: hard_sigmoid
  input: {{fill: values, dtype: float64, values: {GRID}}}
"""
    monkeypatch.setattr(_cls("hard_sigmoid"), "keras_layer", _keras_activation(keras2_hard_sigmoid))
    (bad,) = run_case(case)
    first = bad.verdicts[0]
    assert not first.passed and first.metrics["max_abs"] == pytest.approx(1 / 12)
    assert abs(first.metrics["worst_index"][1] - 10) == 4  # GRID[6] = -2.5 or GRID[14] = 2.5
    by_what = {v.what: v for v in bad.verdicts}
    assert by_what["torch vs reference"].passed and not by_what["keras vs reference"].passed, bad.message


def test_rounded_selu_constants_are_only_visible_in_float64(run_case, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the selu cases sweep float64: the docstring's 8-digit constants are 7e-9 off, inside float32's 2e-6."""
    monkeypatch.setattr(_cls("selu"), "keras_layer", _keras_activation(docstring_selu))
    (f32,) = run_case(SELU_FLOAT64.replace("dtype: float64", "dtype: float32"))
    (f64,) = run_case(SELU_FLOAT64)
    assert f32.status == "passed" and f64.status == "failed"
    assert 1e-9 < f64.verdicts[0].metrics["max_rel"] < 1e-8


# --- the frameworks' constants, as the module docstring states them -------------------------------------------

def test_selu_constants_and_torchs_one_ulp_product() -> None:
    """Both sources write alpha and scale to 32 digits; TensorFlow writes their product as a third literal, which
    rounds one float64 ulp above PyTorch's run-time product. Both frameworks' float64 outputs are within 2 ulp of
    the output scale of the reference (both compute exp(x) - 1, not expm1, so near 0 the error is absolute)."""
    tf_scale_alpha = 1.7580993408473768599402175208123
    assert np.nextafter(tf_scale_alpha, 0.0) == SELU_ALPHA * SELU_SCALE
    assert np.float32(SELU_ALPHA) * np.float32(SELU_SCALE) == np.float32(tf_scale_alpha)  # float32: the same
    x = np.linspace(-10.0, 10.0, 2001)
    t = torch.nn.SELU()(torch.from_numpy(x)).numpy()
    k = to_numpy(keras.layers.Activation("selu", dtype="float64")(x))
    ref = selu_reference(x)
    ulps = {name: np.max(np.abs(y - ref) / np.maximum(1.0, np.abs(ref))) / np.finfo(np.float64).eps
            for name, y in (("torch", t), ("keras", k))}
    assert max(ulps.values()) <= 2, ulps


def test_keras3_hard_sigmoid_is_relu6_over_6() -> None:
    x = np.arange(-4.0, 4.25, 0.25)
    expected = np.clip(x + 3, 0, 6) / 6
    assert np.array_equal(to_numpy(keras.activations.hard_sigmoid(x)), expected)
    assert np.array_equal(torch.nn.Hardsigmoid()(torch.from_numpy(x)).numpy(), expected)
    assert keras.activations.get("hard_swish") is keras.activations.get("hard_silu") is keras.activations.hard_silu


def test_onnx_float32_attributes_are_why_some_references_are_numpy() -> None:
    """ONNX's FLOAT attributes and function-op constants are float32: its Selu, HardSigmoid(1/6), HardSwish and
    Gelu are 1e-8..6e-8 from the float64 truth, where both frameworks are within a few 1e-16."""
    x = np.linspace(-5.0, 5.0, 2001)
    gaps = {
        "Selu": np.abs(onnx_op("Selu", x, alpha=SELU_ALPHA, gamma=SELU_SCALE) - selu_reference(x)).max(),
        "HardSigmoid": np.abs(onnx_op("HardSigmoid", x, alpha=1 / 6, beta=0.5) - np.clip(x + 3, 0, 6) / 6).max(),
        "HardSwish": np.abs(onnx_op("HardSwish", x) - x * np.clip(x + 3, 0, 6) / 6).max(),
        "Gelu": np.abs(onnx_op("Gelu", x) - gelu_reference(x, "none")).max(),
    }
    assert all(1e-9 < gap < 1e-6 for gap in gaps.values()), gaps
    exact = torch.nn.GELU()(torch.from_numpy(x)).numpy()
    assert np.abs(exact - gelu_reference(x, "none")).max() < 1e-15
    assert gelu_reference(np.array([1.0]), "none")[0] == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))),
                                                                        rel=1e-16)


# --- references against both frameworks, on every block -------------------------------------------------------

REFERENCE_CASES = {
    "relu": "{block: relu, input: {shape: [2, 3, 6, 5]}}",
    "tanh": "{block: tanh, input: {shape: [2, 3, 6, 5]}}",
    "sigmoid": "{block: sigmoid, input: {shape: [4, 50]}}",
    "silu": "{block: silu, input: {shape: [2, 3, 6, 5]}}",
    "softplus": "{block: softplus, input: {shape: [2, 3, 6, 5]}}",
    "leaky_relu": "{block: leaky_relu, params: {negative_slope: 0.2}, input: {shape: [2, 3, 6, 5]}}",
    "elu": "{block: elu, params: {alpha: 0.3}, input: {shape: [2, 3, 6, 5]}}",
    "gelu": "{block: gelu, input: {shape: [2, 3, 6, 5]}}",
    "gelu_tanh": "{block: gelu, params: {approximate: tanh}, input: {shape: [2, 3, 6, 5]}}",
    "softmax": "{block: softmax, params: {axis: 2}, input: {shape: [2, 3, 4, 5]}}",
    "softmax_rank3_batch": "{block: softmax, params: {axis: 0}, input: {shape: [2, 6, 7]}}",
    "hard_sigmoid": f"{{block: hard_sigmoid, input: {{fill: values, values: {GRID}}}}}",
    "relu6": f"{{block: relu6, input: {{fill: values, values: {GRID}}}}}",
    "hard_swish": "{block: hard_swish, input: {shape: [2, 3, 6, 5]}}",
    "selu": "{block: selu, input: {shape: [2, 3, 6, 5]}}",
    "flatten": "{block: flatten, input: {shape: [2, 3, 4, 5]}}",
    "dense": "{block: dense, params: {units: 7}, input: {shape: [4, 12]}}",
    "dense_rank4_no_bias": "{block: dense, params: {units: 5, use_bias: false}, input: {shape: [2, 3, 4, 6]}}",
    "dropout": "{block: dropout, params: {rate: 0.5}, input: {shape: [2, 3, 4, 5]}}",
    "spatial_dropout2d": "{block: spatial_dropout2d, params: {rate: 0.5}, input: {shape: [2, 3, 4, 5]}}",
}
# Keras's float64 outputs that are only float32-accurate (see cases/activations.yaml): TensorFlow's GELU rounds its
# constants to float32 (5e-9), its LeakyRelu op keeps the slope as a float32 attribute (2e-8 relative).
KERAS_FLOAT64_TOLERANCE = {"gelu": 2e-8, "gelu_tanh": 2e-8, "leaky_relu": 1e-7}


def _point(case_points, text: str, dtype: str) -> Point:
    (point,) = case_points(f"- {{name: ref, {text[1:-1]}}}\n")
    return replace(point, input=replace(point.input, dtype=dtype), sites=[replace(s, dtype=dtype) for s in point.sites])


def reference_verdicts(point: Point, keras_rtol: float | None = None) -> list[Verdict]:
    """Each framework's output against the block's float64 reference, at the default tolerance of the dtype."""
    (layer,), (site,) = point.layers, point.sites
    x = point.input.make()
    modules = runner.build_torch(point, "cpu")
    layers = runner.build_keras(point, modules, "cpu")
    outs = {"torch": runner.forward_torch(point, modules, x, "cpu")[-1],
            "keras": runner.forward_keras(point, layers, x, "cpu")[-1]}
    weights = {k: to_numpy(v).astype(np.float64) for k, v in layer.block.torch_parameters(modules[0]).items()}
    ref = layer.block.reference(site, x.astype(np.float64), weights)
    assert ref.dtype == np.float64
    tolerance = default_tolerance(point.input.dtype, layer.block.reduction_length(site), float(np.abs(ref).max()))
    verdicts = []
    for name, out in outs.items():
        tol = tolerance
        if name == "keras" and keras_rtol is not None:
            tol = replace(tolerance, rtol=keras_rtol, atol=keras_rtol * max(1.0, float(np.abs(ref).max())))
        verdicts.append(compare(out, ref, tol, f"{name} vs reference", (name, "reference"), kind=VerdictKind.FORWARD))
    return verdicts


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", REFERENCE_CASES, ids=list(REFERENCE_CASES))
def test_reference_agrees_with_both_frameworks(case: str, dtype: str, case_points) -> None:
    point = _point(case_points, REFERENCE_CASES[case], dtype)
    keras_rtol = KERAS_FLOAT64_TOLERANCE.get(case) if dtype == "float64" else None
    for verdict in reference_verdicts(point, keras_rtol):
        assert verdict.passed, verdict.message


def test_a_wrong_reference_is_caught(case_points, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference with Keras 2's hard sigmoid, or a dense reference without its bias, fails against both sides."""
    cls = _cls("hard_sigmoid")
    monkeypatch.setattr(cls, "reference_function", staticmethod(lambda p, x: np.clip(0.2 * x + 0.5, 0.0, 1.0)))
    verdicts = reference_verdicts(_point(case_points, REFERENCE_CASES["hard_sigmoid"], "float64"))
    assert [v.passed for v in verdicts] == [False, False]
    assert verdicts[0].metrics["max_abs"] == pytest.approx(1 / 12)

    dense = _cls("dense")
    right = dense.reference
    monkeypatch.setattr(dense, "reference", lambda self, site, x, w: right(self, site, x, {"weight": w["weight"]}))
    verdicts = reference_verdicts(_point(case_points, REFERENCE_CASES["dense"], "float32"))
    assert not any(v.passed for v in verdicts)


def test_a_wrong_reference_fails_an_expect_reference_case(run_case, monkeypatch: pytest.MonkeyPatch) -> None:
    case = """
- name: selu_checked
  block: selu
  input: {shape: [2, 3, 6, 5], dtype: float64}
  expect: {reference: true}
"""
    (good,) = run_case(case)
    assert good.status == "passed", good.message
    monkeypatch.setattr(_cls("selu"), "reference_function",
                        staticmethod(lambda p, x: onnx_op("Selu", x, alpha=SELU_ALPHA, gamma=SELU_SCALE)))
    (bad,) = run_case(case)
    assert bad.status == "failed"
    assert {v.what for v in bad.verdicts if not v.passed} == {"torch vs reference", "keras vs reference"}


def test_train_mode_dropout_has_no_reference() -> None:
    for name in ("dropout", "spatial_dropout2d"):
        site = Site({"rate": 0.5}, (2, 3, 4, 4), "float32", "train")
        with pytest.raises(Refusal, match="no deterministic reference"):
            get_block(name).reference(site, np.ones((2, 3, 4, 4)), {})


# --- native builders (defaults: native) ------------------------------------------------------------------------

def _native(name: str, written: dict[str, Any], shape: tuple[int, ...] = (2, 3, 4, 5)) -> tuple[Any, Any]:
    block = get_block(name)
    site = Site(normalise_params(block.params, written), shape, "float32", "eval", written=frozenset(written))
    return block.native_torch_module(site), block.native_keras_layer(site)


def test_native_leaky_relu_defaults_differ_and_written_slope_agrees(run_case) -> None:
    torch_module, keras_layer = _native("leaky_relu", {})
    assert torch_module.negative_slope == 0.01 and keras_layer.negative_slope == pytest.approx(0.3)
    torch_module, keras_layer = _native("leaky_relu", {"negative_slope": 0.2})
    assert torch_module.negative_slope == 0.2 and keras_layer.negative_slope == pytest.approx(0.2)
    (unwritten, written) = run_case("""
- name: leaky_native
  block: leaky_relu
  defaults: native
  input: {shape: [2, 4, 5, 5]}
- name: leaky_native_written
  block: leaky_relu
  defaults: native
  params: {negative_slope: 0.3}
  input: {shape: [2, 4, 5, 5]}
""")
    assert unwritten.status == "failed" and unwritten.verdicts[0].check == "values", unwritten.message
    assert unwritten.verdicts[0].metrics["worst_expected"] < 0  # only negative inputs differ
    assert written.status == "passed", written.message


def test_native_softmax_implicit_dim_is_the_batch_for_3d(run_case) -> None:
    torch_module, keras_layer = _native("softmax", {}, (2, 6, 7))
    assert torch_module.dim is None and keras_layer.axis == -1
    rank3, rank4 = run_case("""
- {name: softmax_native_3d, block: softmax, defaults: native, input: {shape: [2, 6, 7]}}
- {name: softmax_native_4d, block: softmax, defaults: native, input: {shape: [2, 6, 3, 4]}}
""")
    assert rank3.status == "failed", rank3.message  # PyTorch normalises over the batch, Keras over the channels
    assert rank4.status == "passed", rank4.message  # both over the channels
    torch_module, keras_layer = _native("softmax", {"axis": 1}, (2, 6, 7))
    assert torch_module.dim == 1 and keras_layer.axis == 2  # the channels, where Keras holds them


def test_native_gelu_layers_are_exact_by_default_but_keras_ops_gelu_approximates(run_case) -> None:
    torch_module, keras_layer = _native("gelu", {})
    assert torch_module.approximate == "none" and keras_layer.activation is keras.activations.gelu
    x = np.linspace(-3, 3, 61).astype(np.float32)
    assert np.abs(to_numpy(keras.ops.gelu(x)) - to_numpy(keras_layer(x))).max() > 1e-4
    results = run_case("""
- name: gelu_native
  block: gelu
  defaults: native
  input: {shape: [2, 4, 5, 5]}
  sweep:
    approximate: [none, tanh]
- {name: gelu_native_unwritten, block: gelu, defaults: native, input: {shape: [2, 4, 5, 5]}}
""")
    assert [r.status for r in results] == ["passed"] * 3, [r.message for r in results]


@pytest.mark.parametrize("name,written,expected", [
    ("elu", {}, {"torch": {"alpha": 1.0}, "keras": {"alpha": 1.0}}),
    ("elu", {"alpha": 0.5}, {"torch": {"alpha": 0.5}, "keras": {"alpha": 0.5}}),
    ("dense", {"units": 4}, {"torch": {"out_features": 4}, "keras": {"units": 4, "use_bias": True}}),
    ("dense", {"units": 4, "use_bias": False}, {"torch": {"bias": None}, "keras": {"use_bias": False}}),
    ("dropout", {"rate": 0.3}, {"torch": {"p": 0.3}, "keras": {"rate": 0.3}}),
    ("spatial_dropout2d", {"rate": 0.3}, {"torch": {"p": 0.3}, "keras": {"rate": 0.3}}),
    ("relu6", {}, {"keras": {"max_value": 6.0}}),
])
def test_native_builders_pass_what_was_written_under_each_frameworks_names(name: str, written: dict[str, Any],
                                                                           expected: dict[str, dict]) -> None:
    torch_module, keras_layer = _native(name, written, (2, 4) if name == "dense" else (2, 3, 4, 5))
    torch_module = getattr(torch_module, "linear", torch_module)
    for attr, value in expected.get("torch", {}).items():
        assert getattr(torch_module, attr) == value, attr
    config = keras_layer.get_config()
    for key, value in expected.get("keras", {}).items():
        assert config[key] == pytest.approx(value), key


def test_native_cases_of_parameterless_blocks_agree(run_case) -> None:
    results = run_case("""
- name: native
  block: hard_sigmoid
  defaults: native
  input: {shape: [2, 3, 6, 5]}
- {name: relu6_native, block: relu6, defaults: native, input: {shape: [2, 3, 4, 4], fill: arange}}
- {name: hard_swish_native, block: hard_swish, defaults: native, input: {shape: [2, 3, 6, 5]}}
- {name: selu_native, block: selu, defaults: native, input: {shape: [2, 3, 6, 5], dtype: float64}}
- {name: flatten_native, block: flatten, defaults: native, input: {shape: [2, 3, 4, 5]}}
- {name: dense_native, block: dense, defaults: native, params: {units: 6}, input: {shape: [2, 3, 4, 5]}}
- {name: spatial_eval, block: spatial_dropout2d, defaults: native, params: {rate: 0.5}, mode: eval,
   input: {shape: [2, 3, 4, 5]}}
""")
    assert [r.status for r in results] == ["passed"] * len(results), [r.message for r in results]


def test_native_dropout_without_a_mode_leaves_torch_in_training(run_case) -> None:
    """A hand port builds nn.Dropout2d in training mode (PyTorch's default) and calls Keras in inference mode."""
    (result,) = run_case("""
- {name: spatial_native, block: spatial_dropout2d, defaults: native, params: {rate: 0.5}, input: {shape: [8, 16, 4, 5]}}
""")
    assert result.status == "failed", result.message
    by_what = {v.what: v for v in result.verdicts}
    assert not by_what["keras vs torch"].passed
    assert by_what["keras vs reference"].passed and not by_what["torch vs reference"].passed


# --- params_from_torch ------------------------------------------------------------------------------------------

ROUND_TRIPS = [
    (lambda: torch.nn.ReLU(), "relu", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.Tanh(), "tanh", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.Sigmoid(), "sigmoid", {}, (4, 9)),
    (lambda: torch.nn.SiLU(), "silu", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.Softplus(), "softplus", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}, (2, 3, 4, 4)),
    (lambda: torch.nn.LeakyReLU(), "leaky_relu", {"negative_slope": 0.01}, (2, 3, 4, 4)),
    (lambda: torch.nn.ELU(alpha=0.5), "elu", {"alpha": 0.5}, (2, 3, 4, 4)),
    (lambda: torch.nn.GELU(approximate="tanh"), "gelu", {"approximate": "tanh"}, (2, 3, 4, 4)),
    (lambda: torch.nn.GELU(), "gelu", {"approximate": "none"}, (2, 3, 4, 4)),
    (lambda: torch.nn.Softmax(dim=2), "softmax", {"axis": 2}, (2, 3, 4, 4)),
    (lambda: torch.nn.Softmax(dim=-1), "softmax", {"axis": -1}, (2, 3, 4, 4)),
    (lambda: torch.nn.Softmax(), "softmax", {"axis": 1}, (2, 3, 4, 4)),
    (lambda: torch.nn.Softmax(), "softmax", {"axis": 0}, (2, 3, 4)),  # PyTorch's implicit dim for 3-D: the batch
    (lambda: torch.nn.Hardsigmoid(), "hard_sigmoid", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.ReLU6(), "relu6", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.Hardswish(), "hard_swish", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.SELU(), "selu", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.Flatten(), "flatten", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.Flatten(1, 3), "flatten", {}, (2, 3, 4, 4)),
    (lambda: torch.nn.Linear(12, 5), "dense", {"units": 5, "use_bias": True}, (4, 12)),
    (lambda: torch.nn.Linear(12, 5, bias=False), "dense", {"units": 5, "use_bias": False}, (4, 12)),
    (lambda: torch.nn.Dropout(0.3), "dropout", {"rate": 0.3}, (2, 3, 4, 4)),
    (lambda: torch.nn.Dropout2d(0.25), "spatial_dropout2d", {"rate": 0.25}, (2, 3, 4, 4)),
]


def _block_reading(module: torch.nn.Module) -> Any:
    readers = [b for b in all_blocks().values() if type(module).__name__ in b.torch_types]
    assert len(readers) == 1, f"{type(module).__name__} is read by {[b.name for b in readers]}"
    return readers[0]


@pytest.mark.parametrize("make,name,params,shape", ROUND_TRIPS,
                         ids=[f"{r[1]}-{'x'.join(map(str, r[3]))}-{i}" for i, r in enumerate(ROUND_TRIPS)])
def test_params_from_torch_round_trip(make: Callable, name: str, params: dict, shape: tuple[int, ...]) -> None:
    """A PyTorch module -> case params -> the harness's PyTorch module computes what the original computes, and
    the harness's own module reads back as the same params."""
    original = make().eval()
    block = _block_reading(original)
    assert block.name == name
    read = block.params_from_torch(original, shape)
    assert read == params
    site = Site(normalise_params(block.params, read), shape, "float32", "eval")
    rebuilt = block.torch_module(site).eval()
    with torch.no_grad():
        for mine, theirs in zip(block.torch_parameters(rebuilt).values(), original.parameters()):
            mine.copy_(theirs)
        x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
        assert torch.equal(rebuilt(x), original(x))
    if type(rebuilt) is type(original):  # the harness's own module reads back as the same params (an axis mod rank)
        def canonical(p: dict) -> dict:
            return {k: v % len(shape) if k == "axis" else v for k, v in p.items()}

        assert canonical(block.params_from_torch(rebuilt, shape)) == canonical(read)


@pytest.mark.parametrize("make,shape,field", [
    (lambda: torch.nn.Softplus(beta=2.0), (2, 3), "Softplus.beta"),
    (lambda: torch.nn.Softplus(threshold=10.0), (2, 3), "Softplus.threshold"),
    (lambda: torch.nn.Flatten(start_dim=2), (2, 3, 4, 4), "Flatten.start_dim"),
    (lambda: torch.nn.Flatten(1, 2), (2, 3, 4, 4), "Flatten.start_dim"),
    (lambda: torch.nn.Linear(4, 5), (2, 3, 4, 6), "Linear.in_features"),
    (lambda: torch.nn.Linear(4, 5), (2, 6), "Linear.in_features"),
    (lambda: torch.nn.Dropout2d(0.5), (2, 3, 4), "Dropout2d"),
    (lambda: torch.nn.Dropout(1.0), (2, 3), "Dropout.p"),
])
def test_params_from_torch_refuses_by_name(make: Callable, shape: tuple[int, ...], field: str) -> None:
    module = make()
    with pytest.raises(Refusal) as caught:
        _block_reading(module).params_from_torch(module, shape)
    assert caught.value.field == field
    assert type(module).__name__ in str(caught.value)


# --- spatial_dropout2d's rank ----------------------------------------------------------------------------------

def test_dropout2d_drops_whole_channels_on_4d_and_warns_on_3d() -> None:
    """Why the block takes rank 4 only: on 4-D PyTorch zeroes whole (n, c) planes; on 3-D it warns that its
    reading of the input will change (today (N, C, L), later an unbatched (C, H, W))."""
    drop = torch.nn.Dropout2d(0.5).train()
    torch.manual_seed(0)
    y = drop(torch.randn(8, 16, 3, 5) + 10.0)  # no zero inputs
    zero = (y == 0).reshape(8, 16, -1)
    assert bool((zero.all(-1) | ~zero.any(-1)).all()) and 0 < int(zero.all(-1).sum()) < 8 * 16
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        drop(torch.randn(2, 3, 4))


def test_spatial_dropout2d_refuses_other_ranks(tmp_path: Path) -> None:
    from xfw_harness.cases import RefusedPoint, load_file

    path = tmp_path / "c.yaml"
    path.write_text("- {name: c, block: spatial_dropout2d, params: {rate: 0.5}, input: {shape: [2, 3, 4]}}\n")
    entries, error = load_file(path)
    assert error is None
    refused = entries[0].error or next(p.error for p in entries[0].points if isinstance(p, RefusedPoint))
    assert refused.field == "input.shape"
    assert "(N, C, H, W)" in str(refused) and "SpatialDropout2D refuses" in str(refused)
