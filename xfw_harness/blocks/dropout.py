"""Dropout: `dropout`, `spatial_dropout2d`, `alpha_dropout`.

eval mode: the identity in both frameworks. train mode:
- `dropout` zeroes each element with probability `rate` and scales survivors by 1/(1-rate) (torch.nn.Dropout,
  keras.layers.Dropout).
- `spatial_dropout2d` zeroes whole channels: each (n, c) plane of an (N, C, H, W) input is all zero with
  probability `rate`, or all scaled by 1/(1-rate) (torch.nn.Dropout2d, keras.layers.SpatialDropout2D, whose noise
  shape is (N, 1, 1, C)). Rank 4 only: Keras's layer refuses anything else, and PyTorch's Dropout2d takes a 3-D
  input as (N, C, L) with a warning that this will change to an unbatched (C, H, W), and a 2-D one as (N, C)
  elements with a deprecation warning.
- `alpha_dropout` (SELU networks) sets each element with probability `rate` to SELU's negative saturation value
  alpha' = -scale * alpha = -1.7580993408473766 and then applies the affine correction that keeps zero mean and unit
  variance: a kept x becomes a*x + b, a dropped one a*alpha' + b, with a = ((1-rate)(1 + rate alpha'^2))^-1/2 and
  b = -a alpha' rate (torch.nn.AlphaDropout, keras.layers.AlphaDropout). Both frameworks compute exactly this: at
  rate 0.3 in float64 both give a = 0.8609526162463561, b = 0.4540920681370629 and dropped outputs
  -1.0595481589864801, bit for bit the formula (measured; keras/src/layers/regularization/alpha_dropout.py writes
  it, PyTorch's ATen Dropout.cpp is compiled: read off its outputs). Any rank; rate 0 is the identity in both, and
  Keras refuses rate 1 (0 ** -0.5), which the schema excludes.
The two frameworks' random masks cannot match, so the runner checks each framework's sample with the block's
`check_sample` (samples.check_dropout_sample, samples.check_channel_dropout_sample,
samples.check_alpha_dropout_sample): every output is 0 or input/(1-rate) (alpha dropout: a*x + b or
a*alpha' + b), the fraction dropped (elements, or channels) lies in the exact binomial interval for `rate` at the
false-alarm rate of 5 normal sigmas (samples.binomial_interval), and for the spatial form no channel is partly
dropped. A PyTorch module starts in training mode and a Keras call defaults to inference: the harness sets both from
the case's `mode`.

Reference: the identity in eval mode; train mode has no deterministic semantics (Refusal). Native builders pass
the rate under each framework's name (p, rate); Keras's layers are given the case's seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, torch
from xfw_harness.core.samples import check_alpha_dropout_sample, check_channel_dropout_sample, check_dropout_sample
from xfw_harness.core.schema import Param
from xfw_harness.core.verdicts import Verdict

RATE = Param("rate", "float", minimum=0.0, maximum=0.99, doc="probability of zeroing an element")


class _Dropout(Block):
    family = "dropout"
    stochastic = True

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        if site.mode == "train":
            raise Refusal(f"{self.name} in train mode draws a random mask: it has no deterministic reference "
                          "(each framework's sample is checked statistically instead)", field="mode")
        return np.asarray(x, np.float64)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if not RATE.minimum <= module.p <= RATE.maximum:
            raise Refusal(f"{type(module).__name__}(p={module.p}): the harness takes a rate in "
                          f"[{RATE.minimum:g}, {RATE.maximum:g}]", field=f"{type(module).__name__}.p")
        return {"rate": float(module.p)}


@register
class Dropout(_Dropout):
    any_layout = True  # elementwise
    name = "dropout"
    benchmark = {"params": {"rate": 0.5}, "mode": "train", "input": BENCHMARK_INPUT}
    doc = "Zero each element with probability rate in train mode, scaling survivors by 1/(1-rate); identity in eval."
    params = (RATE,)
    torch_types = ("Dropout",)
    sample_rule = ("xfw_harness.core.samples.check_dropout_sample: every output is 0 or x / (1 - rate) within 4 ulp, "
                   "and the "
                   "fraction of zeros among the n non-zero inputs lies in the exact binomial interval for rate "
                   "(samples.binomial_interval: scipy.stats.binom quantiles at the false-alarm rate of 5 normal "
                   "sigmas, 5.7e-7 per check)")

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Dropout(p=site.params["rate"])

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.Dropout(site.params["rate"], seed=site.seed, dtype=site.dtype)

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Dropout(site.written_params["rate"])

    def native_keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.Dropout(site.written_params["rate"], seed=site.seed, dtype=site.dtype)

    def check_sample(self, site: Site, x: np.ndarray, y: np.ndarray, what: str) -> Verdict:
        return check_dropout_sample(x, y, site.params["rate"], what)


@register
class SpatialDropout2D(_Dropout):
    name = "spatial_dropout2d"
    benchmark = {"params": {"rate": 0.5}, "mode": "train", "input": BENCHMARK_INPUT}
    doc = ("Zero each whole channel (n, c) with probability rate in train mode, scaling the kept ones by "
           "1/(1-rate); identity in eval.")
    params = (Param("rate", "float", minimum=0.0, maximum=0.99, doc="probability of zeroing a channel"),)
    ranks = (4,)
    torch_types = ("Dropout2d",)
    sample_rule = ("xfw_harness.core.samples.check_channel_dropout_sample: every output is 0 or x / (1 - rate) within "
                   "4 ulp, "
                   "each (n, c) channel is zeroed whole or kept whole, and the fraction of dropped channels lies "
                   "in the exact binomial interval for rate over n channels, n the channels holding a non-zero "
                   "input (samples.binomial_interval: scipy.stats.binom quantiles at the false-alarm rate of 5 "
                   "normal sigmas, 5.7e-7 per check)")

    def check_input(self, site: Site) -> None:
        if site.rank != 4:
            raise Refusal(f"spatial_dropout2d needs an (N, C, H, W) input, got shape {list(site.in_shape)}: "
                          "keras.layers.SpatialDropout2D refuses other ranks, and torch.nn.Dropout2d reads a 3-D "
                          "input as (N, C, L) (with a warning that it will become an unbatched (C, H, W)) and a "
                          "2-D one as elements (deprecated)", field="input.shape")

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Dropout2d(p=site.params["rate"])

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.SpatialDropout2D(site.params["rate"], data_format="channels_last", seed=site.seed,
                                             dtype=site.dtype)

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Dropout2d(site.written_params["rate"])

    def native_keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.SpatialDropout2D(site.written_params["rate"], seed=site.seed, dtype=site.dtype)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if len(in_shape) != 4:
            raise Refusal(f"Dropout2d on a rank-{len(in_shape)} input {list(in_shape)} is not channel-wise 2-D "
                          "dropout (PyTorch reads 3-D as (N, C, L), 2-D as elements); the harness's "
                          "spatial_dropout2d takes (N, C, H, W)", field="Dropout2d")
        return super().params_from_torch(module, in_shape)

    def check_sample(self, site: Site, x: np.ndarray, y: np.ndarray, what: str) -> Verdict:
        return check_channel_dropout_sample(x, y, site.params["rate"], what)


@register
class AlphaDropout(_Dropout):
    any_layout = True  # elementwise
    name = "alpha_dropout"
    benchmark = {"params": {"rate": 0.1}, "mode": "train", "input": BENCHMARK_INPUT}
    doc = ("Alpha dropout (SELU networks): in train mode each element is set with probability rate to SELU's "
           "saturation alpha', then a*x + b keeps mean 0 and variance 1; identity in eval.")
    params = (Param("rate", "float", minimum=0.0, maximum=0.99, doc="probability of setting an element to alpha'"),)
    torch_types = ("AlphaDropout",)
    sample_rule = ("xfw_harness.core.samples.check_alpha_dropout_sample: every output is a*x + b (kept) or "
                   "a*alpha' + b (dropped), a = ((1-rate)(1 + rate alpha'^2))^-1/2, b = -a alpha' rate, alpha' = "
                   "-1.7580993408473766, within 4 ulp of |a x| + |b|, and the dropped fraction lies in the exact "
                   "binomial interval for rate (samples.binomial_interval, 5 normal sigmas); an output that both "
                   "could be (x near alpha') is not counted")

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.AlphaDropout(p=site.params["rate"])

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.AlphaDropout(site.params["rate"], seed=site.seed, dtype=site.dtype)

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.AlphaDropout(site.written_params["rate"])

    def native_keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.AlphaDropout(site.written_params["rate"], seed=site.seed, dtype=site.dtype)

    def check_sample(self, site: Site, x: np.ndarray, y: np.ndarray, what: str) -> Verdict:
        return check_alpha_dropout_sample(x, y, site.params["rate"], what)
