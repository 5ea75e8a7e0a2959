"""log_softmax, threshold, thresholded_relu and hard_sigmoid's alpha/beta (xfw_harness/blocks/activations_ops.py): the
framework facts its docstring states, asserted against PyTorch, Keras 3 and ONNX's reference runtime directly (Keras
2 where tf_keras is installed), then what the blocks make of them: the native hand ports, and `xfw-harness port` reading
the modules and the functional forms."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from xfw_harness.core.frameworks import keras, torch  # first: fixes KERAS_BACKEND=tensorflow before keras is imported
from xfw_harness.tools.port import port_model

F = torch.nn.functional
GRID = np.array([-4.0, -3.0, -2.5, -1.0, 0.0, 0.5, 1.0, 1.5, 2.5, 3.0, 4.0])


def _np(value: object) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return keras.ops.convert_to_numpy(value)


def _onnx(op: str, x: np.ndarray, **attrs: float) -> np.ndarray:
    """One ONNX operator on a float64 input, its attributes as written (none: ONNX's defaults)."""
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", TensorProto.DOUBLE, None)],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


# --- framework facts -------------------------------------------------------------------------------------------------

def test_threshold_is_strict_in_both_frameworks_with_a_zero_gradient_at_the_step() -> None:
    x = np.array([0.5, 1.0, 1.5])
    t = torch.tensor(x, requires_grad=True)
    y = torch.nn.Threshold(1.0, -7.0)(t)
    y.sum().backward()
    np.testing.assert_array_equal(_np(y), [-7.0, -7.0, 1.5])
    np.testing.assert_array_equal(_np(t.grad), [0.0, 0.0, 1.0])
    v = keras.Variable(x)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        k = keras.ops.threshold(v, 1.0, -7.0)
    np.testing.assert_array_equal(_np(k), [-7.0, -7.0, 1.5])
    np.testing.assert_array_equal(tape.gradient(k, v).numpy(), [0.0, 0.0, 1.0])


def test_both_frameworks_compare_with_the_threshold_rounded_to_float32() -> None:
    x = np.array([np.float32(0.1), np.float32(0.2)], np.float32)  # float32(0.1) = 0.10000000149 > 0.1
    assert float(x[0]) > 0.1
    np.testing.assert_array_equal(_np(torch.nn.Threshold(0.1, -1.0)(torch.from_numpy(x))), [-1.0, x[1]])
    np.testing.assert_array_equal(_np(keras.ops.threshold(x, 0.1, -1.0)), [-1.0, x[1]])


def test_keras3_has_no_thresholded_relu_and_no_log_softmax_layer() -> None:
    assert not hasattr(keras.layers, "ThresholdedReLU")
    assert [name for name in dir(keras.layers) if "softmax" in name.lower()] == ["Softmax"]
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    np.testing.assert_allclose(_np(keras.layers.Activation("log_softmax", dtype="float64")(x)),
                               _np(F.log_softmax(torch.from_numpy(x), dim=-1)), rtol=0, atol=1e-15)


def test_onnx_defaults_thresholded_relu_alpha_1_and_hard_sigmoid_0_2_0_5() -> None:
    np.testing.assert_array_equal(_onnx("ThresholdedRelu", GRID), np.where(GRID > 1.0, GRID, 0.0))
    np.testing.assert_allclose(_onnx("HardSigmoid", GRID), np.clip(0.2 * GRID + 0.5, 0, 1), rtol=0, atol=1e-8)
    # Its attributes are float32: alpha 1/6 is 0.1666666716, 5e-9 off at x = 1 (why the reference is NumPy's).
    assert abs(_onnx("HardSigmoid", np.array([1.0]), alpha=1 / 6)[0] - (1 / 6 + 0.5)) > 1e-9


def test_keras3_hard_sigmoid_is_pytorchs_hardsigmoid() -> None:
    torch_y = _np(torch.nn.Hardsigmoid()(torch.from_numpy(GRID)))
    np.testing.assert_array_equal(_np(keras.activations.hard_sigmoid(GRID)), torch_y)
    np.testing.assert_array_equal(torch_y, np.clip(GRID + 3.0, 0.0, 6.0) / 6.0)


def test_keras2_thresholded_relu_and_hard_sigmoid() -> None:
    tf_keras = pytest.importorskip("tf_keras")  # Keras 2; not in the project's environment
    import tensorflow as tf

    x = tf.constant(GRID, tf.float32)
    np.testing.assert_array_equal(tf_keras.layers.ThresholdedReLU()(x).numpy(), np.where(GRID > 1.0, GRID, 0.0))
    np.testing.assert_allclose(tf_keras.activations.hard_sigmoid(x).numpy(), np.clip(0.2 * GRID + 0.5, 0, 1),
                               rtol=0, atol=1e-7)


def test_log_softmax_implicit_dim_is_softmaxs() -> None:
    x3 = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 3, 4)))
    x4 = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 3, 4, 5)))
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax"):
        y3 = torch.nn.LogSoftmax()(x3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        y4 = torch.nn.LogSoftmax()(x4)
    np.testing.assert_array_equal(_np(y3), _np(F.log_softmax(x3, dim=0)))
    np.testing.assert_array_equal(_np(y4), _np(F.log_softmax(x4, dim=1)))


# --- the blocks -------------------------------------------------------------------------------------------------------

def test_a_hand_port_without_an_axis_normalises_over_the_batch_in_pytorch_only(run_case) -> None:  # noqa: ANN001
    (result,) = run_case("""
- name: native_3d
  block: log_softmax
  defaults: native
  input: {shape: [2, 3, 5]}
""")
    assert result.status == "failed" and "values differ" in result.message


def test_non_default_alpha_is_exact_on_both_sides_and_defaults_build_the_frameworks_own(run_case) -> None:  # noqa: ANN001
    from xfw_harness.blocks import get_block
    from xfw_harness.blocks.activation_layers import HardSigmoid, TorchHardSigmoid
    from xfw_harness.blocks.site import Site

    block = get_block("hard_sigmoid")
    default = Site({"alpha": 1 / 6, "beta": 0.5}, (2, 3), "float32", "eval")
    onnx = Site({"alpha": 0.2, "beta": 0.5}, (2, 3), "float32", "eval")
    assert type(block.torch_module(default)) is torch.nn.Hardsigmoid
    assert block.keras_layer(default).get_config()["activation"] == "hard_sigmoid"
    assert isinstance(block.torch_module(onnx), TorchHardSigmoid) and isinstance(block.keras_layer(onnx), HardSigmoid)
    (result,) = run_case("""
- name: onnx_hard_sigmoid
  block: hard_sigmoid
  params: {alpha: 0.2, beta: 0.5}
  input: {fill: values, values: [[-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0]], dtype: float64}
  expect: {output: [[0.0, 0.0, 0.3, 0.5, 0.7, 1.0, 1.0]], reference: true}
""")
    assert result.status == "passed", result.message


class _Functional(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.threshold(F.threshold(x, 0.2, 0.0), -0.1, 2.0)
        return torch.log_softmax(F.log_softmax(F.hardsigmoid(x), dim=2), 3).log_softmax(1)


class _Cast(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(x, dim=1, dtype=torch.float64)


def test_port_reads_the_modules_and_the_functional_forms(tmp_path: Path) -> None:
    modules = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Threshold(0.1, -0.5),
                                  torch.nn.Hardsigmoid(), torch.nn.LogSoftmax(dim=1))
    ported = port_model(modules, input_shape=(2, 3, 6, 6), out=tmp_path / "modules", name="modules")
    assert ported.blocks == ["conv2d", "threshold", "hard_sigmoid", "log_softmax"] and ported.passed
    ported = port_model(_Functional(), input_shape=(2, 3, 6, 6), out=tmp_path / "functional", name="functional")
    assert sorted(ported.blocks) == sorted(["threshold", "threshold", "hard_sigmoid", *["log_softmax"] * 3])
    assert ported.passed
    case = (tmp_path / "functional" / "functional.yaml").read_text(encoding="utf-8")
    for read in ("{threshold: 0.2, value: 0.0}", "{threshold: -0.1, value: 2.0}", "{axis: 2}", "{axis: 3}",
                 "{axis: 1}"):
        assert read in case, read


def test_port_refuses_a_log_softmax_that_casts(tmp_path: Path) -> None:
    from xfw_harness.tools.port import PortError

    with pytest.raises(PortError, match="casts the input first"):
        port_model(_Cast(), input_shape=(2, 3), out=tmp_path / "cast", name="cast")
