"""batch_norm2d (xfw_harness/blocks/normalization.py): the momentum and epsilon mappings, the running statistics after
several train-mode steps and the biased/unbiased variance reconciliation, each shown to catch its planted mistake;
the float64 reference and the conventions it states, checked against both frameworks by running them."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

import xfw_harness.blocks.normalization as normalization
from xfw_harness.blocks import Site, get_block
from xfw_harness.cases import load_file
from xfw_harness.core.errors import Refusal
from xfw_harness.core.frameworks import keras, tf, torch
from xfw_harness.core.layout import to_channels_last

PROJECT = Path(__file__).resolve().parents[2]
WEIGHTS = PROJECT / "cases" / "data" / "batch_norm_6_channels.npz"
BN = normalization.BatchNorm2D


def _case(mode: str = "train", params: str = "{momentum: 0.3}", steps: int = 3, weights: bool = False,
          shape: str = "[4, 6, 5, 3]") -> str:
    return f"""
- name: bn
  block: batch_norm2d
  params: {params}
  mode: {mode}
  input: {{shape: {shape}}}
  check: [forward, backward]
""" + ("  weights: {path: batch_norm_6_channels.npz}\n" if weights else "") + (
        f"  steps: {steps}\n" if mode == "train" else "")  # eval mode takes no steps (the loader refuses them)


@pytest.fixture(autouse=True)
def _weights_next_to_the_cases(tmp_path: Path) -> None:
    """run_case writes its case files into tmp_path; weight paths are relative to them."""
    shutil.copy(WEIGHTS, tmp_path / WEIGHTS.name)


def _failed(result) -> list[str]:
    return [v.what for v in result.verdicts if not v.passed]


def _keras_layer_with(**overrides):
    """BatchNorm2D.keras_layer with some of Keras's arguments replaced (a planted port)."""
    def build(self, site: Site):
        p = site.params
        kwargs = dict(axis=-1, momentum=1.0 - p["momentum"], epsilon=p["epsilon"], center=p["affine"],
                      scale=p["affine"], dtype=site.dtype)
        kwargs.update({k: v(p) if callable(v) else v for k, v in overrides.items()})
        return keras.layers.BatchNormalization(**{k: v for k, v in kwargs.items() if v is not None})
    return build


# --- correct mappings pass ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["train", "eval"])
def test_correct_mapping_passes_with_running_statistics(run_case, mode: str) -> None:
    (result,) = run_case(_case(mode=mode, weights=True, shape="[2, 6, 5, 4]"))
    assert result.status == "passed", result.message
    names = [v.what for v in result.verdicts]
    if mode == "train":
        assert names[:6] == ["keras vs torch", "torch vs reference", "keras vs reference", "output at step 3",
                             "running_mean after 3 step(s)", "running_var after 3 step(s)"]
        assert "unbiased" in result.verdicts[5].message
    assert names[-3:] == ["grad input", "grad weight", "grad bias"]  # the running statistics have no gradient


# --- planted mistakes ---------------------------------------------------------------------------------------------

def test_momentum_passed_to_keras_unconverted_is_caught(run_case, monkeypatch) -> None:
    """Keras's momentum keeps the old value's fraction: PyTorch's 0.3 given as it is updates the running mean 0.7
    of the way instead of 0.3. The outputs of train mode do not show it; the running statistics do."""
    monkeypatch.setattr(BN, "keras_layer", _keras_layer_with(momentum=lambda p: p["momentum"]))
    (result,) = run_case(_case())
    assert _failed(result) == ["running_mean after 3 step(s)", "running_var after 3 step(s)"]


def test_unconverted_momentum_shows_after_one_step(run_case, monkeypatch) -> None:
    """Even a single step shows it: the running mean moves from 0 by m * batch_mean in PyTorch."""
    monkeypatch.setattr(BN, "keras_layer", _keras_layer_with(momentum=lambda p: p["momentum"]))
    (result,) = run_case(_case(steps=1))
    assert "running_mean after 1 step(s)" in _failed(result)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_epsilon_left_at_keras_default_is_caught(run_case, monkeypatch, mode: str) -> None:
    """Keras's default epsilon is 1e-3, PyTorch's 1e-5: in eval mode with a running variance of 1e-4 (the weights
    file) the outputs differ by a factor 3; in train mode (batch variance about 1) by 5e-4 relative."""
    (good,) = run_case(_case(mode=mode, weights=True, shape="[2, 6, 5, 4]"))
    assert good.status == "passed", good.message
    monkeypatch.setattr(BN, "keras_layer", _keras_layer_with(epsilon=None))
    (result,) = run_case(_case(mode=mode, weights=True, shape="[2, 6, 5, 4]"))
    assert "keras vs torch" in _failed(result)
    first = result.verdicts[0]
    assert first.metrics["max_abs"] > 10 * (first.metrics["atol"] + first.metrics["rtol"] * abs(
        first.metrics["worst_expected"]))


def test_running_variance_compared_without_the_reconciliation_fails(run_case, monkeypatch) -> None:
    """PyTorch keeps the unbiased batch variance, Keras the biased one: compared as they are, they differ by
    m * var / (n - 1) per step, far outside the tolerance at n = N*H*W = 60 and at n = 2 (a factor 2)."""
    monkeypatch.setattr(normalization, "reconcile_variance", lambda momentum, value, batches: value)
    (result,) = run_case(_case())
    assert _failed(result) == ["running_var after 3 step(s)"]
    (tiny,) = run_case(_case(shape="[2, 3, 1, 1]", steps=2))
    assert _failed(tiny) == ["running_var after 2 step(s)"]


def test_track_running_stats_false_mapped_to_a_plain_keras_layer_is_caught(run_case, monkeypatch) -> None:
    """Without running statistics PyTorch normalises with the batch's in eval mode too; a plain Keras
    BatchNormalization would use its moving statistics (0 and 1)."""
    monkeypatch.setattr(BN, "keras_layer", _keras_layer_with())
    (result,) = run_case(_case(mode="eval", params="{track_running_stats: false}", steps=1))
    assert _failed(result)[0] == "keras vs torch"


def test_affine_false_mapped_without_center_and_scale_is_caught(run_case, monkeypatch) -> None:
    """affine: false left out of the Keras layer: gamma and beta start at 1 and 0, so the forward pass agrees, but
    Keras trains two weights PyTorch does not have: the point fails on "weights mapped"."""
    monkeypatch.setattr(BN, "keras_layer", _keras_layer_with(center=True, scale=True))
    (result,) = run_case(_case(mode="eval", params="{affine: false}", steps=1))
    assert _failed(result) == ["weights mapped"]
    assert "Keras's" in next(v for v in result.verdicts if not v.passed).message


def test_harness_default_epsilon_is_checked_by_the_golden_case(monkeypatch) -> None:
    """Both frameworks get the harness's default explicitly, so only golden values see a wrong default: with
    Keras's 1e-3 as the harness default, the golden case of cases/batch_norm2d.yaml fails."""
    from xfw_harness.engine import run_point

    def golden() -> str:
        entries, _ = load_file(PROJECT / "cases" / "batch_norm2d.yaml")
        (point,) = next(e for e in entries if e.name == "eval_default_epsilon_golden").points
        return run_point(point, "cpu").status

    assert golden() == "passed"
    params = tuple(dataclasses.replace(p, default=1e-3) if p.name == "epsilon" else p for p in BN.params)
    monkeypatch.setattr(BN, "params", params)
    assert golden() == "failed"


# --- the conventions, by running both frameworks -------------------------------------------------------------

def _batches(count: int, shape=(3, 4, 5, 2)) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.standard_normal(shape) * (1 + i) + i for i in range(count)]


def test_pytorch_keeps_the_unbiased_variance_keras_the_biased_one() -> None:
    batches, m = _batches(3), 0.25
    t = torch.nn.BatchNorm2d(4, momentum=m).double().train()
    k = keras.layers.BatchNormalization(momentum=1 - m, epsilon=1e-5, dtype="float64")
    k.build((3, 5, 2, 4))
    for x in batches:
        t(torch.from_numpy(x))
        k(tf.constant(to_channels_last(x)), training=True)
    start = (np.zeros(4), np.ones(4))
    unbiased = normalization.running_statistics(m, batches, *start, unbiased=True)
    biased = normalization.running_statistics(m, batches, *start, unbiased=False)
    np.testing.assert_allclose(t.running_mean.numpy(), unbiased[0], rtol=1e-13)
    np.testing.assert_allclose(k.moving_mean.numpy(), unbiased[0], rtol=1e-13)
    np.testing.assert_allclose(t.running_var.numpy(), unbiased[1], rtol=1e-13)
    np.testing.assert_allclose(k.moving_variance.numpy(), biased[1], rtol=1e-13)
    assert np.min(np.abs(unbiased[1] - biased[1])) > 1e-3  # the conventions really differ here
    reconciled = normalization.reconcile_variance(t.momentum, k.moving_variance.numpy(), batches)
    np.testing.assert_allclose(reconciled, t.running_var.numpy(), rtol=1e-13)


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("affine", [True, False])
def test_reference_matches_both_frameworks(mode: str, affine: bool) -> None:
    block = get_block("batch_norm2d")
    params = {"momentum": 0.1, "epsilon": 1e-3, "affine": affine, "track_running_stats": True}
    site = Site(params=params, in_shape=(2, 6, 5, 4), dtype="float64", mode=mode)
    with np.load(WEIGHTS) as npz:
        weights = {name: npz[name] for name in npz.files}
    x = np.random.default_rng(1).standard_normal(site.in_shape)
    module = block.torch_module(site).double()
    with torch.no_grad():
        for name, tensor in block.torch_parameters(module).items():
            tensor.copy_(torch.from_numpy(weights[name]))
    module.train(mode == "train")
    expected = block.reference(site, x, weights)
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    layer = block.keras_layer(site)
    layer.build((2, 5, 4, 6))
    block.transfer_weights(site, module, layer)
    out = np.moveaxis(layer(tf.constant(to_channels_last(x)), training=mode == "train").numpy(), -1, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_native_builders_keep_each_frameworks_defaults() -> None:
    """Written parameters only: PyTorch's momentum 0.1 and eps 1e-5 against Keras's 0.99 (PyTorch's 0.01) and
    1e-3; a written momentum reaches Keras converted."""
    block = get_block("batch_norm2d")
    params = {"momentum": 0.2, "epsilon": 1e-4, "affine": True, "track_running_stats": True, "frozen": False}
    nothing = Site(params=params, in_shape=(2, 3, 4, 4), dtype="float32", mode="eval", written=frozenset())
    t, k = block.native_torch_module(nothing), block.native_keras_layer(nothing)
    assert (t.momentum, t.eps) == (0.1, 1e-5) and (k.momentum, k.epsilon) == (0.99, 1e-3)
    written = dataclasses.replace(nothing, written=frozenset({"momentum", "epsilon"}))
    t, k = block.native_torch_module(written), block.native_keras_layer(written)
    assert (t.momentum, t.eps) == (0.2, 1e-4) and (k.momentum, k.epsilon) == (0.8, 1e-4)
    no_stats = dataclasses.replace(nothing, params={**params, "track_running_stats": False},
                                   written=frozenset({"track_running_stats"}))
    with pytest.raises(Refusal, match="no track_running_stats switch"):
        block.native_keras_layer(no_stats)
    frozen = dataclasses.replace(nothing, params={**params, "frozen": True}, written=frozenset({"frozen"}))
    t, k = block.native_torch_module(frozen), block.native_keras_layer(frozen)
    assert not any(p.requires_grad for p in t.parameters()) and k.trainable is False


def test_frozen_is_a_hand_port_switch_only(tmp_path) -> None:
    """In the harness's own mapping a frozen layer has no translation (Keras's would run in inference): refused."""
    path = tmp_path / "frozen.yaml"
    path.write_text("- {name: frozen_in_harness_mode, block: batch_norm2d, params: {frozen: true}, "
                    "input: {shape: [2, 3, 4, 4]}}\n", encoding="utf-8")
    (entry,), _ = load_file(path)
    error = str(entry.error)
    assert "frozen_in_harness_mode" in error and "params.frozen" in error and "defaults: native" in error


def test_params_from_torch() -> None:
    block = get_block("batch_norm2d")
    module = torch.nn.BatchNorm2d(5, eps=1e-4, momentum=0.05, affine=False)
    assert block.params_from_torch(module, (2, 5, 4, 4)) == {"momentum": 0.05, "epsilon": 1e-4, "affine": False,
                                                             "track_running_stats": True}
    with pytest.raises(Refusal, match="cumulative moving average"):
        block.params_from_torch(torch.nn.BatchNorm2d(5, momentum=None), (2, 5, 4, 4))
    with pytest.raises(Refusal, match="num_features=5 but receives 3"):
        block.params_from_torch(module, (2, 3, 4, 4))


def test_one_value_per_channel_in_train_mode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bn.yaml"
    path.write_text("- name: b\n  block: batch_norm2d\n  mode: train\n  input: {shape: [1, 3, 1, 1]}\n",
                    encoding="utf-8")
    (entry,), _ = load_file(path)
    assert "Expected more than 1 value per channel" in str(entry.error)


@pytest.mark.parametrize(("params", "mode"), [("{epsilon: 0}", "train"),
                                             ("{epsilon: 0, track_running_stats: false}", "eval")])
def test_epsilon_zero_with_batch_statistics_is_refused(tmp_path: Path, params: str, mode: str) -> None:
    """PyTorch raises for eps=0 whenever it normalises with the batch's statistics (found by `xfw-harness fuzz
    batch_norm2d --seed 11`); with running statistics in eval mode 0 is a valid epsilon."""
    path = tmp_path / "bn.yaml"
    path.write_text(f"- name: b\n  block: batch_norm2d\n  params: {params}\n  mode: {mode}\n"
                    "  input: {shape: [2, 3, 2, 2]}\n", encoding="utf-8")
    (entry,), _ = load_file(path)
    assert "params.epsilon" in str(entry.error) and "PyTorch refuses it" in str(entry.error)
    path.write_text("- {name: b, block: batch_norm2d, params: {epsilon: 0}, input: {shape: [2, 3, 2, 2]}}\n",
                    encoding="utf-8")
    (entry,), _ = load_file(path)
    assert entry.error is None and len(entry.points) == 1


# --- the drawn initial state, unmapped and untransferred statistics ----------------------------------------------

def _transfer_skipping_running_statistics(self, site, module, layer) -> None:
    """BatchNorm2D.transfer_weights that copies weight and bias only (its weight_copies still name the statistics)."""
    from xfw_harness.blocks import resolve_path
    from xfw_harness.core.frameworks import to_numpy
    for copy in self.weight_copies(site, module, layer):
        if not copy.torch_path.startswith("running"):
            resolve_path(layer, copy.keras_path).assign(to_numpy(resolve_path(module, copy.torch_path)))


def test_running_statistics_not_transferred_are_caught_without_a_weights_file(run_case, monkeypatch) -> None:
    """PyTorch initialises a BatchNorm2d to weight 1, bias 0, running mean 0 and variance 1, which is also Keras's
    initial state: a transfer that forgets the running statistics would pass at that state. The harness draws
    the state (normalization.draw_state), so the eval-mode case fails; with PyTorch's own init it would pass."""
    monkeypatch.setattr(BN, "transfer_weights", _transfer_skipping_running_statistics)
    (result,) = run_case(_case(mode="eval", steps=1))
    assert _failed(result)[0] == "keras vs torch"
    assert result.verdicts[0].metrics["max_abs"] > 100 * result.verdicts[0].metrics["atol"]
    monkeypatch.setattr(normalization, "draw_state", lambda module: module)  # PyTorch's init, as it was
    (blind,) = run_case(_case(mode="eval", steps=1))
    assert blind.status == "passed", "PyTorch's init hides the missing transfer: the drawn state is what shows it"


def test_running_statistics_left_out_of_weight_copies_fail_the_point_in_train_mode(run_case, monkeypatch) -> None:
    """A block whose weight_copies leave its running statistics out: in train mode they are neither transferred
    nor compared, and the outputs (batch statistics) agree, so only "weights mapped" can show it."""
    original = BN.weight_copies
    monkeypatch.setattr(BN, "weight_copies", lambda self, site, module, layer: [
        c for c in original(self, site, module, layer) if not c.torch_path.startswith("running")])
    (result,) = run_case(_case())
    assert _failed(result) == ["weights mapped"]
    message = next(v for v in result.verdicts if not v.passed).message
    assert "PyTorch's running_mean, PyTorch's running_var" in message and "moving_mean" in message
    assert "is state (a buffer or non-trainable variable)" in message
    assert not any(v.what.startswith("running_") for v in result.verdicts)  # nothing else would have said it


def test_running_variance_reconciled_twice_is_caught(run_case, monkeypatch) -> None:
    """The n/(n-1) term added twice is as wrong as leaving it out (n = 60: about 1e3 times the tolerance)."""
    real = normalization.reconcile_variance
    monkeypatch.setattr(normalization, "reconcile_variance",
                        lambda momentum, value, batches: real(momentum, real(momentum, value, batches), batches))
    (result,) = run_case(_case())
    assert _failed(result) == ["running_var after 3 step(s)"]
    bad = next(v for v in result.verdicts if not v.passed)
    assert bad.metrics["max_abs"] > 100 * bad.metrics["atol"], bad.message
