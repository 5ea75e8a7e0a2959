"""group_norm and instance_norm (xfw_harness/blocks/group_normalization.py), batch_norm1d and batch_norm3d
(xfw_harness/blocks/normalization.py): each framework fact the module docs state, checked by running the frameworks; the
NumPy references against ONNX's operators; what `xfw-harness port` reads; the refusals."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

import xfw_harness.blocks.group_normalization as gn
import xfw_harness.blocks.group_normalization_layers as group_normalization_layers
from xfw_harness.blocks import Site, get_block
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.cases import Point, load_file
from xfw_harness.core.errors import Refusal
from xfw_harness.core.frameworks import keras, tf, torch
from xfw_harness.tools.port import port_model

RNG = np.random.default_rng(7)


def _channels_last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1)


def _keras(layer, x: np.ndarray, training: bool = False) -> np.ndarray:
    return np.moveaxis(layer(tf.constant(_channels_last(x)), training=training).numpy(), -1, 1)


# --- the framework facts ---------------------------------------------------------------------------------------------

def test_defaults_as_the_module_doc_states_them() -> None:
    assert not hasattr(keras.layers, "InstanceNormalization")  # Keras 3 has none
    keras_gn = inspect.signature(keras.layers.GroupNormalization.__init__).parameters
    assert (keras_gn["groups"].default, keras_gn["epsilon"].default) == (32, 1e-3)
    assert (keras_gn["center"].default, keras_gn["scale"].default) == (True, True)
    g = torch.nn.GroupNorm(2, 4)
    assert (g.eps, g.affine) == (1e-5, True)
    i = torch.nn.InstanceNorm2d(4)
    assert (i.eps, i.momentum, i.affine, i.track_running_stats) == (1e-5, 0.1, False, False)


def test_both_group_norms_use_the_biased_variance_and_group_contiguous_channels() -> None:
    x = RNG.standard_normal((3, 6, 4, 5)) * 2 + 1
    weight, bias = RNG.uniform(0.5, 1.5, 6), RNG.uniform(-0.5, 0.5, 6)
    t = torch.nn.GroupNorm(3, 6).double()
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(weight))
        t.bias.copy_(torch.from_numpy(bias))
    k = keras.layers.GroupNormalization(groups=3, epsilon=1e-5, dtype="float64")
    k.build(_channels_last(x).shape)
    k.gamma.assign(weight)
    k.beta.assign(bias)
    expected = gn.group_normalise(x, 3, 1e-5, weight, bias)
    np.testing.assert_allclose(t(torch.from_numpy(x)).detach().numpy(), expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(_keras(k, x), expected, rtol=0, atol=1e-13)
    grouped = x.reshape(3, 3, -1)
    unbiased = ((grouped - grouped.mean(-1, keepdims=True)) / np.sqrt(grouped.var(-1, ddof=1, keepdims=True) + 1e-5))
    assert np.abs(unbiased.reshape(x.shape) * weight[:, None, None] + bias[:, None, None] - expected).max() > 1e-2
    # Keras's default epsilon, and num_groups read as channels per group, are far off
    wrong = keras.layers.GroupNormalization(groups=2, epsilon=1e-5, dtype="float64")
    wrong.build(_channels_last(x).shape)
    assert np.abs(_keras(wrong, x) - gn.group_normalise(x, 3, 1e-5)).max() > 1e-1


def test_keras_group_normalization_with_one_group_per_channel_is_instance_norm() -> None:
    x = RNG.standard_normal((2, 4, 5, 3)) * 3 - 1
    expected = torch.nn.InstanceNorm2d(4).double()(torch.from_numpy(x)).numpy()
    for groups in (4, -1):
        layer = keras.layers.GroupNormalization(groups=groups, epsilon=1e-5, center=False, scale=False,
                                                dtype="float64")
        np.testing.assert_allclose(_keras(layer, x), expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(gn.group_normalise(x, 4, 1e-5), expected, rtol=0, atol=1e-13)


def test_instance_norm_keeps_the_unbiased_variance_and_uses_running_statistics_in_eval() -> None:
    batches = [RNG.standard_normal((3, 4, 2, 3)) * (1 + s) + s for s in range(3)]
    t = torch.nn.InstanceNorm2d(4, momentum=0.3, track_running_stats=True).double().train()
    k = group_normalization_layers.InstanceNormalization(momentum=0.7, epsilon=1e-5, center=False, scale=False,
                                                         dtype="float64")
    for x in batches:
        t(torch.from_numpy(x))
        k(tf.constant(_channels_last(x)), training=True)
    mean, var = gn.instance_running_statistics(0.3, batches, np.zeros(4), np.ones(4))
    for value in (t.running_mean.numpy(), k.moving_mean.numpy()):
        np.testing.assert_allclose(value, mean, rtol=1e-13)
    for value in (t.running_var.numpy(), k.moving_variance.numpy()):
        np.testing.assert_allclose(value, var, rtol=1e-13)
    n = 6  # values per instance: the biased variance would be 5/6 of the unbiased one kept
    biased_kept = (1 - 0.3) ** 3 * 1 + sum(0.3 * (1 - 0.3) ** (2 - s) * x.var(axis=(2, 3)).mean(0)
                                           for s, x in enumerate(batches))
    assert np.abs(biased_kept - var).min() > 1e-2 and n == batches[0][0, 0].size
    x = batches[0]
    t.eval()
    running = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(t(torch.from_numpy(x)).numpy(), running, rtol=0, atol=1e-13)
    np.testing.assert_allclose(_keras(k, x), running, rtol=0, atol=1e-13)


def test_instance_norm_momentum_none_leaves_the_statistics_where_they_are() -> None:
    """F.instance_norm is given momentum 0.0 for None (BatchNorm's cumulative average does not exist here)."""
    t = torch.nn.InstanceNorm2d(3, momentum=None, track_running_stats=True).double().train()
    t(torch.from_numpy(RNG.standard_normal((2, 3, 4, 4)) + 5))
    np.testing.assert_array_equal(t.running_mean.numpy(), np.zeros(3))
    np.testing.assert_array_equal(t.running_var.numpy(), np.ones(3))
    assert get_block("instance_norm").params_from_torch(t, (2, 3, 4, 4))["momentum"] == 0.0


def test_pytorch_refuses_one_spatial_element_for_instance_statistics() -> None:
    for module in (torch.nn.InstanceNorm2d(3).train(), torch.nn.InstanceNorm2d(3).eval()):
        with pytest.raises(ValueError, match="Expected more than 1 spatial element"):
            module(torch.zeros(2, 3, 1, 1))


# --- the references against ONNX's operators -------------------------------------------------------------------------

def test_numpy_references_agree_with_onnx_whose_own_are_not_float64_exact() -> None:
    x = RNG.standard_normal((2, 6, 3, 4))
    scale, bias = RNG.uniform(0.5, 1.5, 6), RNG.standard_normal(6)
    ours = gn.group_normalise(x, 3, 1e-3, scale, bias)
    double = onnx_op("GroupNormalization", x, scale, bias, num_groups=3, epsilon=1e-3, stash_type=11)
    np.testing.assert_allclose(double, ours, rtol=0, atol=1e-9)  # epsilon a 32-bit attribute: close, not exact
    stashed32 = onnx_op("GroupNormalization", x, scale, bias, num_groups=3, epsilon=1e-3)  # float32 by default
    assert np.abs(stashed32 - ours).max() > 1e-8
    instance = onnx_op("InstanceNormalization", x, scale, bias, epsilon=1e-3)
    np.testing.assert_allclose(instance, gn.group_normalise(x, 6, 1e-3, scale, bias), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["group_norm", "instance_norm", "batch_norm1d", "batch_norm3d"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_reference_matches_both_frameworks(name: str, mode: str) -> None:
    block = get_block(name)
    shapes = {"group_norm": (2, 6, 3, 4), "instance_norm": (2, 3, 4, 5), "batch_norm1d": (5, 3, 4),
              "batch_norm3d": (2, 3, 2, 3, 4)}
    params = {p.name: p.default for p in block.params}
    params.update({"group_norm": {"groups": 3}, "instance_norm": {"affine": True, "track_running_stats": True}}
                  .get(name, {}))
    site = Site(params=params, in_shape=shapes[name], dtype="float64", mode=mode)
    x = RNG.standard_normal(site.in_shape) * 2 + 0.5
    module = block.torch_module(site).double().train(mode == "train")
    layer = block.keras_layer(site)
    layer.build(_channels_last(x).shape)
    block.transfer_weights(site, module, layer)
    weights = {k: v.detach().numpy().copy() for k, v in block.torch_parameters(module).items()}
    expected = block.reference(site, x, weights)
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_keras(layer, x, mode == "train"), expected, rtol=0, atol=1e-12)


# --- xfw-harness port, the refusals -----------------------------------------------------------------------------------

def test_params_from_torch() -> None:
    assert get_block("group_norm").params_from_torch(torch.nn.GroupNorm(2, 6, eps=1e-4, affine=False),
                                                     (2, 6, 3, 3)) == {"groups": 2, "epsilon": 1e-4, "affine": False}
    assert get_block("instance_norm").params_from_torch(torch.nn.InstanceNorm1d(3, affine=True), (2, 3, 7)) == {
        "momentum": 0.1, "epsilon": 1e-5, "affine": True, "track_running_stats": False}
    assert get_block("batch_norm1d").params_from_torch(torch.nn.BatchNorm1d(4, momentum=0.2), (2, 4))["momentum"] == 0.2
    with pytest.raises(Refusal, match="BatchNorm3d has num_features=4 but receives 3"):
        get_block("batch_norm3d").params_from_torch(torch.nn.BatchNorm3d(4), (2, 3, 2, 2, 2))
    with pytest.raises(Refusal, match="num_channels=6 but receives 4"):
        get_block("group_norm").params_from_torch(torch.nn.GroupNorm(2, 6), (2, 4, 3, 3))


def test_port_reads_the_normalisations_of_a_model(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(2, 4),
                                torch.nn.InstanceNorm2d(4, affine=True, track_running_stats=True), torch.nn.ReLU())
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
        model[2].running_mean.uniform_(-0.5, 0.5)
        model[2].running_var.uniform_(0.5, 2.0)
    ported = port_model(model.eval(), input_shape=(2, 3, 8, 8), out=tmp_path / "2d", name="norms")
    assert ported.blocks == ["conv2d", "group_norm", "instance_norm", "relu"]
    assert ported.passed, ported.result.message if ported.result else ported.model_verdicts
    sequence = torch.nn.Sequential(torch.nn.BatchNorm1d(5), torch.nn.InstanceNorm1d(5))
    ported = port_model(sequence.eval(), input_shape=(3, 5, 6), out=tmp_path / "1d", name="seq")
    assert ported.blocks == ["batch_norm1d", "instance_norm"] and ported.passed
    ported = port_model(torch.nn.Sequential(torch.nn.BatchNorm3d(2)).eval(), input_shape=(2, 2, 3, 3, 3),
                        out=tmp_path / "3d", name="vol")
    assert ported.blocks == ["batch_norm3d"] and ported.passed


@pytest.mark.parametrize(("case", "field", "text"), [
    ("{block: group_norm, params: {groups: 4}, input: {shape: [2, 6, 3, 3]}}", "params.groups", "do not split"),
    ("{block: group_norm, params: {groups: 4}, input: {shape: [2, 4]}}", "params.groups", "groups of one value"),
    ("{block: instance_norm, input: {shape: [2, 3, 1, 1]}}", "input.shape", "more than 1 spatial element"),
    ("{block: instance_norm, mode: train, params: {track_running_stats: true}, input: {shape: [2, 3, 1]}}",
     "input.shape", "more than 1 spatial element"),
    ("{block: sequential, layers: [{block: flatten}, {block: group_norm, params: {groups: 2}}], "
     "input: {shape: [2, 2, 2, 2]}}", "layers[1]", "flattened"),
])
def test_refusals(tmp_path: Path, case: str, field: str, text: str) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(f"- {{name: refused, {case[1:]}\n", encoding="utf-8")
    (entry,), _ = load_file(path)
    error = entry.error or entry.points[0].error
    assert error is not None and text in str(error) and field in str(error), str(error)


def test_one_spatial_element_with_running_statistics_in_eval_mode_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text("- {name: ok, block: instance_norm, params: {track_running_stats: true}, "
                    "input: {shape: [2, 3, 1, 1]}}\n", encoding="utf-8")
    (entry,), _ = load_file(path)
    assert entry.error is None and isinstance(entry.points[0], Point)


def test_native_keras_instance_norm_refuses_running_statistics() -> None:
    block = get_block("instance_norm")
    params = {"momentum": 0.1, "epsilon": 1e-5, "affine": False, "track_running_stats": True}
    site = Site(params=params, in_shape=(2, 3, 4, 4), dtype="float32", mode="eval",
                written=frozenset({"track_running_stats"}))
    with pytest.raises(Refusal, match="no instance normalisation with running statistics"):
        block.native_keras_layer(site)
    nothing = Site(params={**params, "track_running_stats": False}, in_shape=(2, 3, 4, 4), dtype="float32",
                   mode="eval", written=frozenset())
    layer = block.native_keras_layer(nothing)
    assert (layer.groups, layer.epsilon, layer.center, layer.scale) == (-1, 1e-3, True, True)
