"""stochastic_depth, alpha_dropout, pixel_shuffle and pixel_unshuffle: the framework facts their docs state, run;
what one sample cannot show (batch-mode stochastic depth's rate, over many calls); the sample checks' own power
(they reject the realistic wrong samples); `xfw-harness port` of a model using them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.blocks.depth_space_layers import DepthToSpace
from xfw_harness.blocks.stochastic_depth_layers import KerasStochasticDepth, StochasticDepth
from xfw_harness.core.frameworks import keras, torch
from xfw_harness.core.layout import to_channels_first, to_channels_last
from xfw_harness.core.samples import (
    SELU_SATURATION,
    alpha_dropout_affine,
    binomial_interval,
    check_alpha_dropout_sample,
    check_unit_dropout_sample,
)
from xfw_harness.tools.port import port_model

nn = torch.nn
F = torch.nn.functional


# --- stochastic depth ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_batch_mode_drops_whole_calls_at_rate_p_in_both_layers(p: float) -> None:
    """One call is one draw (what a shipped case cannot check): over 400 calls, the fraction of all-zero outputs lies
    in the 5-sigma binomial interval, and every other output is x / (1 - p), in both frameworks."""
    calls = 400
    x = np.random.default_rng(0).uniform(0.5, 1.5, (4, 3, 2, 2)).astype(np.float32)
    torch.manual_seed(0)
    module = StochasticDepth(p, "batch")
    layer = KerasStochasticDepth(p, "batch", seed=0)
    lo, hi = binomial_interval(calls, p)
    for run in (lambda: module(torch.from_numpy(x)).numpy(), lambda: np.asarray(layer(x, training=True))):
        outs = [run() for _ in range(calls)]
        dropped = [bool((o == 0).all()) for o in outs]
        assert all(d or np.allclose(o, x / (1 - p), rtol=1e-6) for o, d in zip(outs, dropped))
        assert lo <= sum(dropped) / calls <= hi, (sum(dropped) / calls, lo, hi)


def test_both_layers_are_the_identity_in_eval_mode_and_zero_at_p_1() -> None:
    x = np.random.default_rng(1).standard_normal((8, 3, 2, 2)).astype(np.float32)
    for mode in ("row", "batch"):
        assert np.array_equal(StochasticDepth(0.5, mode).eval()(torch.from_numpy(x)).numpy(), x)
        assert np.array_equal(np.asarray(KerasStochasticDepth(0.5, mode, seed=0)(x)), x)
        assert not StochasticDepth(1.0, mode)(torch.from_numpy(x)).numpy().any()
        assert not np.asarray(KerasStochasticDepth(1.0, mode, seed=0)(x, training=True)).any()


def test_the_unit_check_rejects_element_wise_and_unscaled_drops() -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(0.5, 1.5, (512, 4, 2, 2))
    keep = rng.uniform(size=(512, 1, 1, 1)) >= 0.3
    right = x * keep / 0.7
    assert check_unit_dropout_sample(x, right, 0.3, "t", "samples").passed
    element_wise = x * (rng.uniform(size=x.shape) >= 0.3) / 0.7
    assert "partly zeroed" in check_unit_dropout_sample(x, element_wise, 0.3, "t", "samples").message
    assert "neither 0 nor" in check_unit_dropout_sample(x, x * keep, 0.3, "t", "samples").message
    # batch mode: the whole tensor is one unit; a per-sample drop is partial
    assert check_unit_dropout_sample(x, x / 0.7, 0.3, "t", "batch").passed
    assert "partly zeroed" in check_unit_dropout_sample(x, right, 0.3, "t", "batch").message
    assert not check_unit_dropout_sample(x, x, 1.0, "t", "batch").passed  # p = 1 must drop


def test_port_reads_stochastic_depth_on_a_residual_branch_and_keeps_it_in_keras(tmp_path: Path) -> None:
    """EfficientNet's and ConvNeXt's use: the branch's output through StochasticDepth, added to the input. The port
    (in eval mode, where it is the identity) keeps the layer, and the saved model drops samples in training."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.stochastic_depth = StochasticDepth(0.5, "row")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.stochastic_depth(self.conv(x)) + x

    torch.manual_seed(0)
    ported = port_model(Block(), (2, 4, 5, 5), out=tmp_path, name="m")
    assert ported.passed, (ported.result.message if ported.result else "", ported.keras_error)
    assert ported.blocks.count("stochastic_depth") == 1
    assert "KerasStochasticDepth" in ported.custom_objects
    model = keras.models.load_model(ported.keras_path, custom_objects=ported.custom_objects)
    x = np.random.default_rng(3).uniform(0.5, 1.5, (64, 5, 5, 4)).astype(np.float32)
    layer = next(lay for lay in model.layers if isinstance(lay, KerasStochasticDepth))
    assert (layer.p, layer.mode) == (0.5, "row")
    branch_dropped = np.all(np.asarray(model(x, training=True)) == x, axis=(1, 2, 3))  # the output is x + 0
    lo, hi = binomial_interval(64, 0.5)
    assert lo <= branch_dropped.mean() <= hi


# --- alpha dropout ------------------------------------------------------------------------------------------------

def test_alpha_dropouts_affine_correction_is_both_frameworks() -> None:
    """torch.nn.AlphaDropout's outputs (its formula is compiled ATen) and keras.layers.AlphaDropout's, in float64,
    are exactly a*x + b and a*alpha' + b of samples.alpha_dropout_affine."""
    a, b = alpha_dropout_affine(0.3)
    assert (a, b, a * SELU_SATURATION + b) == (0.8609526162463561, 0.4540920681370629, -1.0595481589864801)
    x = np.random.default_rng(4).standard_normal(20000)
    torch.manual_seed(0)
    outs = {"torch": nn.AlphaDropout(0.3)(torch.from_numpy(x)).numpy(),
            "keras": np.asarray(keras.layers.AlphaDropout(0.3, seed=0, dtype="float64")(x[None], training=True))[0]}
    for name, y in outs.items():
        kept = y != a * SELU_SATURATION + b
        assert np.array_equal(y[kept], a * x[kept] + b), name
        assert 0.28 < 1 - kept.mean() < 0.32, name
        assert check_alpha_dropout_sample(x, y, 0.3, name).passed, name


def test_the_alpha_check_rejects_plain_dropout_and_a_wrong_rate_and_counts_zeros() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 64))
    a, b = alpha_dropout_affine(0.2)
    drop = rng.uniform(size=x.shape) < 0.2
    right = np.where(drop, a * SELU_SATURATION + b, a * x + b)
    assert check_alpha_dropout_sample(x, right, 0.2, "t").passed
    assert not check_alpha_dropout_sample(x, np.where(drop, 0.0, x / 0.8), 0.2, "t").passed  # nn.Dropout's sample
    assert not check_alpha_dropout_sample(x, right, 0.4, "t").passed  # another rate: other a and b
    zeros = np.zeros((64, 64))
    verdict = check_alpha_dropout_sample(zeros, np.where(drop, a * SELU_SATURATION + b, b), 0.2, "t")
    assert verdict.passed and verdict.metrics["n"] == zeros.size  # a dropped 0 is told from a kept one


# --- pixel shuffle ------------------------------------------------------------------------------------------------

def test_tensorflows_depth_to_space_order_is_not_pytorchs_on_either_data_format() -> None:
    """keras.ops.depth_to_space on the TensorFlow backend reads channel (i*r + j)*C + c where PyTorch reads
    c*r*r + i*r + j, in channels_last and in channels_first alike; with one output channel they coincide."""
    r, c = 2, 3
    x = np.arange(1 * c * r * r * 2 * 2, dtype=np.float32).reshape(1, c * r * r, 2, 2)
    torch_out = nn.PixelShuffle(r)(torch.from_numpy(x)).numpy()
    keras_last = to_channels_first(np.asarray(keras.ops.depth_to_space(to_channels_last(x), r)))
    keras_first = np.asarray(keras.ops.depth_to_space(x, r, data_format="channels_first"))
    assert torch_out[0, 0, :2, :2].ravel().tolist() == [0, 4, 8, 12]  # channels 0..3 at (0, 0)
    assert keras_last[0, 0, :2, :2].ravel().tolist() == [0, 12, 24, 36]  # channels 0, 3, 6, 9
    assert np.array_equal(keras_first, keras_last) and not np.array_equal(keras_first, torch_out)
    one = np.arange(r * r * 4, dtype=np.float32).reshape(1, r * r, 2, 2)
    assert np.array_equal(nn.PixelShuffle(r)(torch.from_numpy(one)).numpy(),
                          to_channels_first(np.asarray(DepthToSpace(r)(to_channels_last(one)))))


class SubPixel(nn.Module):
    """ESPCN's head, and its inverse as a functional call."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(self.shuffle(self.conv(x)), 2)


def test_port_reads_pixel_shuffle_modules_and_functional_calls(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ported = port_model(SubPixel(), (2, 3, 4, 5), out=tmp_path, name="m")
    assert ported.passed, (ported.result.message if ported.result else "", ported.keras_error)
    assert ported.blocks == ["conv2d", "pixel_shuffle", "pixel_unshuffle"]
    assert not ported.custom_objects  # Keras's own Reshape and Permute: no harness layer to name
