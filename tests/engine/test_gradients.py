"""check: backward and check: train_step (xfw_harness/engine/backward.py, train_step.py, optimizers.py).

Each mistake a port (or the harness's own mapping) could make is planted with monkeypatch into a case that passes
with the correct mapping, and must fail, naming the gradient or the update that differs. The correct mappings pass
on the same cases.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import xfw_harness.blocks.convolution as convolution
import xfw_harness.core.layout as layout
import xfw_harness.engine.backward as backward
import xfw_harness.engine.optimizers as optimizers
import xfw_harness.engine.train_step as train_step
import xfw_harness.engine.weights_map as weights_map
from xfw_harness.blocks import WeightCopy
from xfw_harness.cases import load_file
from xfw_harness.core.frameworks import keras, tf
from xfw_harness.core.layout import to_channels_last

CONV_BACKWARD = """
- name: conv_backward
  block: conv2d
  params: {filters: 4, kernel_size: [3, 2], strides: 2, padding: same}
  input: {shape: [2, 3, 9, 8]}
  check: [forward, backward]
"""

SQUARE_DENSE_BACKWARD = """
- name: dense_square_backward
  block: dense
  params: {units: 8}
  input: {shape: [5, 8]}
  check: [backward]
"""

FLATTEN_BACKWARD = """
- name: conv_flatten_dense
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 3, kernel_size: 3}}
    - {block: flatten}
  input: {shape: [2, 2, 6, 5]}
  check: [forward, backward]
"""


def _train_step(optimizer: str, steps: int, dtype: str = "float32", block: str = "dense",
                params: str = "{units: 3}", shape: str = "[4, 6]") -> str:
    return f"""
- name: train_step_case
  block: {block}
  params: {params}
  input: {{shape: {shape}, dtype: {dtype}}}
  check: [train_step]
  steps: {steps}
  optimizer: {optimizer}
"""


ADAM_LARGE_EPSILON = _train_step("{name: adam, learning_rate: 0.01, epsilon: 1.0}", 3)
SGD_MOMENTUM = _train_step("{name: sgd, learning_rate: 0.05, momentum: 0.9}", 3, block="conv2d",
                           params="{filters: 3, kernel_size: 3, padding: 1}", shape="[2, 2, 6, 6]")


def _failed(result) -> list:
    return [v for v in result.verdicts if not v.passed]


def _whats(result) -> list[str]:
    return [v.what for v in result.verdicts]


# --- correct mappings pass ---------------------------------------------------------------------------------------

def test_backward_compares_the_input_and_every_weight(run_case) -> None:
    (result,) = run_case(CONV_BACKWARD)
    assert result.status == "passed", result.message
    assert _whats(result) == ["keras vs torch", "torch vs reference", "keras vs reference", "grad input", "grad weight",
                              "grad bias"]
    assert all(v.metrics["max_abs"] <= 0.1 * v.metrics["atol"] for v in result.verdicts[1:])


def test_backward_alone_still_runs_the_forward_comparison(run_case) -> None:
    (result,) = run_case(SQUARE_DENSE_BACKWARD)
    assert result.status == "passed", result.message
    assert _whats(result) == ["keras vs torch", "torch vs reference", "keras vs reference", "grad input", "grad weight",
                              "grad bias"]


def test_train_step_compares_every_update_with_both_default_optimisers(run_case) -> None:
    (result,) = run_case(CONV_BACKWARD.replace("check: [forward, backward]", "check: [train_step]\n  steps: 2"))
    assert result.status == "passed", result.message
    assert _whats(result) == ["keras vs torch", "torch vs reference", "keras vs reference", "sgd update weight",
                              "sgd update bias", "adam update weight", "adam update bias"]
    assert "sgd(learning_rate=0.01, momentum=0.9), 2 step(s)" in result.verdicts[3].message


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float64_updates_agree_to_rounding(run_case, dtype: str) -> None:
    (result,) = run_case(_train_step("[{name: sgd, momentum: 0.9}, {name: adam}]", 3, dtype=dtype))
    assert result.status == "passed", result.message
    if dtype == "float64":  # the hyperparameters reach Keras's update_step in float64: no float32 rounding left
        assert max(v.metrics["max_abs"] for v in result.verdicts[1:]) < 1e-15


# --- planted mistakes ---------------------------------------------------------------------------------------------

def _kernel_not_converted(mp: pytest.MonkeyPatch) -> None:
    """PyTorch's weight gradient compared as it lies, not through the transfer's layout conversion."""
    mp.setattr(weights_map, "_converter", lambda copy: (lambda a: a))


def test_a_conv_kernel_gradient_compared_without_its_layout_conversion_is_caught(run_case, monkeypatch) -> None:
    _kernel_not_converted(monkeypatch)
    (result,) = run_case(CONV_BACKWARD)
    assert result.status == "failed"
    (bad,) = _failed(result)
    assert (bad.what, bad.check) == ("grad weight", "shape")
    assert "keras [3, 2, 3, 4] vs torch [4, 3, 3, 2]" in bad.message


def test_a_square_dense_kernel_gradient_compared_untransposed_is_caught_by_values(run_case, monkeypatch) -> None:
    """A square kernel keeps its shape: only the values show the missing transpose."""
    _kernel_not_converted(monkeypatch)
    (result,) = run_case(SQUARE_DENSE_BACKWARD)
    (bad,) = _failed(result)
    assert (bad.what, bad.check) == ("grad weight", "values")
    assert bad.metrics["max_abs"] > 100 * bad.metrics["atol"]
    assert "Keras's layout of kernel" in bad.message


FLATTEN_DENSE_BACKWARD = """
- name: conv_flatten_dense
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 3, kernel_size: 3}}
    - {block: flatten}
    - {block: dense, params: {units: 4}}
  input: {shape: [2, 2, 6, 5]}
  check: [forward, backward]
"""


def test_a_dense_kernel_gradient_after_flatten_compared_without_the_row_permutation_is_caught(
        run_case, monkeypatch) -> None:
    """The weights are transferred correctly (the forward check passes), but the dense kernel's gradient is
    converted with a plain transpose, without the (C, H, W) -> (H, W, C) row permutation: same shape, other rows."""
    (good,) = run_case(FLATTEN_DENSE_BACKWARD)
    assert good.status == "passed", good.message
    real = weights_map._converter

    def plain_transpose(copy: WeightCopy):
        if copy.convert is layout.dense_after_flatten_kernel_to_keras:
            return lambda a: layout.dense_kernel_to_keras(a)
        return real(copy)

    monkeypatch.setattr(weights_map, "_converter", plain_transpose)
    (result,) = run_case(FLATTEN_DENSE_BACKWARD)
    assert result.verdicts[0].what == "keras vs torch" and result.verdicts[0].passed
    bad, *located = _failed(result)  # then the same in float64 and node by node: not rounding, the conversion
    assert (bad.what, bad.check) == ("grad layers[2].weight", "values")
    assert bad.metrics["max_abs"] > 100 * bad.metrics["atol"], bad.message
    assert [v.what for v in located] == ["grad layers[2].weight in float64", "gradients node by node",
                                         "grad layers[2].weight"]


def test_loss_weights_given_to_keras_in_the_wrong_order_are_caught(run_case, monkeypatch) -> None:
    """After a flatten, Keras's features are in (H, W, C) order: R moved to channels-last as if it were a plain
    tensor (here: left in PyTorch's order) weights the wrong elements, and every gradient differs."""
    (good,) = run_case(FLATTEN_BACKWARD)
    assert good.status == "passed", good.message
    monkeypatch.setattr(backward, "keras_loss_weights", lambda point, r: to_channels_last(r))
    (result,) = run_case(FLATTEN_BACKWARD)
    wrong = ["grad input", "grad layers[0].weight", "grad layers[0].bias"]
    # The same in float64 (not rounding); every node agrees (each its own loss weights): the machinery is wrong.
    assert [v.what for v in _failed(result)] == [*wrong, *(f"{what} in float64" for what in wrong)]
    assert all(v.check == "values" for v in _failed(result))


def test_loss_weights_transposed_wrongly_on_a_4d_output_are_caught(run_case, monkeypatch) -> None:
    monkeypatch.setattr(backward, "keras_loss_weights",
                        lambda point, r: np.ascontiguousarray(r.reshape(to_channels_last(r).shape)))
    (result,) = run_case(CONV_BACKWARD)
    assert {v.what for v in _failed(result)} == {"grad input", "grad weight", "grad bias"}


def test_adam_epsilon_mapped_as_it_is_is_caught_where_epsilon_matters(run_case, monkeypatch) -> None:
    (good,) = run_case(ADAM_LARGE_EPSILON)
    assert good.status == "passed", good.message
    monkeypatch.setattr(optimizers, "keras_adam_epsilon", lambda epsilon, beta_2, step: epsilon)
    (result,) = run_case(ADAM_LARGE_EPSILON)
    assert [v.what for v in _failed(result)] == ["adam update weight", "adam update bias"]
    worst = _failed(result)[0]
    assert worst.metrics["max_abs"] > 100 * worst.metrics["atol"], worst.message
    assert "adam(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1), 3 step(s)" in worst.message


def test_adam_epsilon_mapped_as_it_is_goes_unseen_at_the_default_epsilon(run_case, monkeypatch) -> None:
    """Why the shipped cases include large epsilons: at eps = 1e-8 with O(1) gradients the naive mapping changes
    the update by about 1e-8 relative, far below any float32 tolerance."""
    monkeypatch.setattr(optimizers, "keras_adam_epsilon", lambda epsilon, beta_2, step: epsilon)
    (result,) = run_case(_train_step("{name: adam}", 3))
    assert result.status == "passed", result.message


def test_adam_epsilon_mapped_for_the_first_step_only_is_caught(run_case, monkeypatch) -> None:
    """eps * sqrt(1 - beta_2**t) depends on t: keeping step 1's value is right at step 1 only."""
    monkeypatch.setattr(optimizers, "keras_adam_epsilon",
                        lambda epsilon, beta_2, step: epsilon * math.sqrt(1.0 - beta_2))
    (one,) = run_case(ADAM_LARGE_EPSILON.replace("steps: 3", "steps: 1"))
    assert one.status == "passed", one.message
    (result,) = run_case(ADAM_LARGE_EPSILON)
    assert [v.what for v in _failed(result)] == ["adam update weight", "adam update bias"]


def test_sgd_momentum_mapped_as_one_minus_m_is_caught_from_the_second_step(run_case, monkeypatch) -> None:
    """Keras's SGD momentum is PyTorch's number; 1 - m (batch norm's habit) is wrong, but a first step has no
    momentum yet, so only steps >= 2 show it."""
    (good,) = run_case(SGD_MOMENTUM)
    assert good.status == "passed", good.message
    monkeypatch.setattr(optimizers, "keras_sgd_momentum", lambda momentum: 1.0 - momentum)
    (first,) = run_case(SGD_MOMENTUM.replace("steps: 3", "steps: 1"))
    assert first.status == "passed", first.message
    (result,) = run_case(SGD_MOMENTUM)
    assert [v.what for v in _failed(result)] == ["sgd update weight", "sgd update bias"]
    assert _failed(result)[0].metrics["max_abs"] > 100 * _failed(result)[0].metrics["atol"]


def test_float64_hyperparameters_left_as_python_floats_are_caught(run_case, monkeypatch) -> None:
    """Keras keeps a float learning rate in a float32 variable and casts Python-float betas through float32: in a
    float64 case the harness's float64 tensors are what make the updates agree."""
    monkeypatch.setattr(train_step, "keras_optimizer", lambda opt, dtype: keras.optimizers.Adam(
        learning_rate=opt["learning_rate"], beta_1=opt["beta_1"], beta_2=opt["beta_2"],
        epsilon=opt["epsilon"] * math.sqrt(1 - opt["beta_2"])))
    (result,) = run_case(_train_step("{name: adam}", 1, dtype="float64"))
    assert [v.what for v in _failed(result)] == ["adam update weight", "adam update bias"]


def test_a_trainable_weight_the_adapter_does_not_map_fails_the_point(run_case, monkeypatch) -> None:
    """A conv whose weight_copies forget the bias: its gradient could not be compared, so the point fails
    ("weights mapped"), besides the forward difference the untransferred bias makes."""
    original = convolution.Conv2D.weight_copies

    def without_bias(self, site, module, layer) -> list[WeightCopy]:
        return [c for c in original(self, site, module, layer) if not c.keras_path.endswith("bias")]

    monkeypatch.setattr(convolution.Conv2D, "weight_copies", without_bias)
    (result,) = run_case(CONV_BACKWARD)
    mapped = [v for v in result.verdicts if v.what == "weights mapped"]
    assert len(mapped) == 1 and not mapped[0].passed
    assert "PyTorch's bias, Keras's conv2d/bias is trainable but not in the block's weight_copies" in \
        mapped[0].message.replace("conv2d_1", "conv2d")


def test_a_train_mode_bias_before_batch_norm_has_unresolved_adam_updates(run_case) -> None:
    """A conv bias before a train-mode batch norm has a zero gradient (the batch mean removes it): both frameworks
    give rounding noise, which Adam scales up to the learning rate. Those elements are named and left out; the
    others are compared."""
    (result,) = run_case("""
- name: bias_before_bn
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 4, kernel_size: 3}}
    - {block: batch_norm2d}
  mode: train
  input: {shape: [4, 2, 6, 6]}
  check: [backward, train_step]
  steps: 2
  optimizer: {name: adam}
""")
    assert result.status == "passed", result.message
    bias = next(v for v in result.verdicts if v.what == "adam update layers[0].bias")
    assert bias.metrics["n_not_compared"] == 4 and "4 of 4 elements not compared" in bias.message
    weight = next(v for v in result.verdicts if v.what == "adam update layers[0].weight")
    assert "n_not_compared" not in weight.metrics
    # Not left unchecked: each framework's update there lies within Adam's bound, which the message states.
    assert bias.metrics["n_not_compared_real_gradient"] == 0  # zero at every step: no cap applies
    assert max(bias.metrics["largest_not_compared_update"].values()) <= bias.metrics["adam_bound"]
    assert "held to Adam's bound lr * sum_t B(t)" in bias.message


BIAS_BEFORE_BN = """
- name: bias_before_bn
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 4, kernel_size: 3}}
    - {block: batch_norm2d}
  mode: train
  input: {shape: [4, 2, 6, 6]}
  check: [train_step]
  steps: 3
  optimizer: {name: adam, learning_rate: 0.01}
"""


def test_a_keras_adam_step_too_large_in_the_not_compared_elements_is_caught(run_case, monkeypatch) -> None:
    """Keras's Adam given 3x the learning rate: the conv bias before the batch norm, whose updates cannot be
    compared (their gradient is rounding noise), used to pass whatever Keras did there; its updates now exceed the
    bound no Adam update can (lr * sum_t B(t))."""
    (good,) = run_case(BIAS_BEFORE_BN)
    assert good.status == "passed", good.message
    real = optimizers.keras_optimizer
    monkeypatch.setattr(train_step, "keras_optimizer",
                        lambda opt, dtype: real({**opt, "learning_rate": 3 * opt["learning_rate"]}, dtype))
    (result,) = run_case(BIAS_BEFORE_BN)
    bias = next(v for v in result.verdicts if v.what == "adam update layers[0].bias")
    assert bias.metrics["n_not_compared"] == 4 and not bias.passed and bias.check == "adam bound", bias.message
    assert "of the 4 elements not compared exceed Adam's bound" in bias.message
    assert bias.metrics["largest_not_compared_update"]["keras"] > bias.metrics["adam_bound"]
    assert bias.metrics["largest_not_compared_update"]["torch"] <= bias.metrics["adam_bound"]


def test_too_many_updates_left_out_of_the_comparison_fail_the_verdict(run_case) -> None:
    """A case atol of the gradients' own size (0.3 here, gradients of order 1) makes most gradient elements "zero
    up to rounding" at some step: their Adam updates would go uncompared. More than 1% of a weight (at least one
    element) whose gradient was real at some step fails, saying why, instead of passing with a count."""
    loose = "  tolerance: {atol: 0.3, rtol: 1.0e-5}\n"
    (result,) = run_case(_train_step("{name: adam, learning_rate: 0.01}", 3) + loose)
    weight = next(v for v in result.verdicts if v.what == "adam update weight")
    assert not weight.passed and weight.check == "not compared", weight.message
    assert weight.metrics["n_not_compared_real_gradient"] > 1
    assert "are not compared although their gradient was above rounding at some step" in weight.message
    assert result.status == "failed"


def test_adams_step_bound_holds_for_pytorch_and_is_reached() -> None:
    """adam_step_bound's derivation, against torch.optim.Adam (eps ~ 0, float64): no gradient sequence moves an
    element by more than lr * B(t) at step t, and g_i proportional to (b1 / b2)**(t - i) reaches it."""
    import torch

    rng = np.random.default_rng(0)
    for beta_1, beta_2 in ((0.9, 0.999), (0.5, 0.9), (0.0, 0.99)):
        bounds = [optimizers.adam_step_bound(beta_1, beta_2, t) for t in range(1, 7)]
        assert bounds[0] == pytest.approx(1.0)
        for t, bound in enumerate(bounds, start=1):
            worst = [(beta_1 / beta_2) ** (t - i) for i in range(1, t + 1)]
            sequences = [worst, *(rng.standard_normal(t) * 10.0 ** rng.uniform(-9, 3, t) for _ in range(50))]
            steps = []
            for grads in sequences:
                p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
                opt = torch.optim.Adam([p], lr=1.0, betas=(beta_1, beta_2), eps=1e-300)  # 0/0 stays 0
                for g in grads:
                    before = float(p.detach())
                    p.grad = torch.tensor([float(g)], dtype=torch.float64)
                    opt.step()
                steps.append(abs(float(p.detach()) - before))
            assert max(steps) <= bound * (1 + 1e-12)
            assert steps[0] == pytest.approx(bound, rel=1e-9)  # the worst case reaches it
    assert optimizers.adam_step_bound(0.9, 0.999, 3) == pytest.approx(1.0036, abs=1e-4)
    assert optimizers.adam_step_bound(0.9, 0.0, 2) == math.inf


# --- refusals and the loss ----------------------------------------------------------------------------------------

def test_backward_through_train_mode_dropout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dropout.yaml"
    path.write_text("- name: d\n  block: dropout\n  params: {rate: 0.5}\n  mode: train\n"
                    "  input: {shape: [2, 8]}\n  check: [forward, backward]\n", encoding="utf-8")
    (entry,), error = load_file(path)
    assert error is None
    assert "field 'check'" in str(entry.error) and "random masks differ" in str(entry.error)


def test_loss_weights_are_seeded_and_differ_per_step(case_points) -> None:
    (point,) = case_points(CONV_BACKWARD)
    r0 = backward.loss_weights(point, 0, np.float32)
    assert r0.shape == point.output_shape
    assert np.array_equal(r0, backward.loss_weights(point, 0, np.float32))
    assert not np.array_equal(r0, backward.loss_weights(point, 1, np.float32))
    x0, x1 = backward.step_input(point, 0), backward.step_input(point, 1)
    assert np.array_equal(x0, point.input.make()) and not np.array_equal(x0, x1)


def test_the_adam_epsilon_mapping_matches_the_frameworks_exactly() -> None:
    """The mapping itself, on one variable in float64: eps_keras(t) = eps * sqrt(1 - beta_2**t) at every step
    gives PyTorch's Adam to rounding; eps as it is does not."""
    import torch

    g = np.array([1e-3, 0.1, -2.0])

    def keras_run(mapping) -> np.ndarray:
        v = keras.Variable(np.ones(3), dtype="float64")
        opt = optimizers.keras_optimizer({"name": "adam", "learning_rate": 0.1, "beta_1": 0.9, "beta_2": 0.999,
                                         "epsilon": 0.5}, "float64")
        for t in range(1, 4):
            opt.epsilon = mapping(t)
            opt.apply_gradients([(tf.constant(g * t), v)])
        return v.numpy()

    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = torch.optim.Adam([p], lr=0.1, eps=0.5)
    for t in range(1, 4):
        p.grad = torch.from_numpy(g * t)
        opt.step()
    mapped = keras_run(lambda t: optimizers.keras_adam_epsilon(0.5, 0.999, t))
    assert np.max(np.abs(mapped - p.detach().numpy())) < 1e-15
    assert np.max(np.abs(keras_run(lambda t: 0.5) - p.detach().numpy())) > 1e-3
