"""Stochastic depth: `stochastic_depth`, torchvision's StochasticDepth (EfficientNet, ConvNeXt, Swin: the residual
branch dropped whole, per sample).

Semantics (torchvision/ops/stochastic_depth.py, read in torchvision 0.29.1): `stochastic_depth(input, p, mode,
training)` is the identity when not training or when p is 0. In training it draws a noise tensor of the input's
dtype, Bernoulli(1 - p), of shape (N, 1, ..., 1) in `row` mode (one draw per sample) or (1, ..., 1) in `batch` mode
(one draw per call, the whole batch zeroed or kept), divides it by the survival rate 1 - p only where that is above 0
(at p = 1 the noise stays 0: every output is 0, nothing is divided by zero), and returns input * noise. p outside
[0, 1] and a mode other than row or batch raise ValueError. Measured with torchvision 0.29.1 (torch 2.14.1): row mode
at p = 0.3 on 4,000 samples zeroed 30.0% of them, each whole, the rest scaled by 1/0.7 within 1.1e-7; batch mode at
p = 0.5 gave an all-zero output in 994 of 2,000 calls, every other output x / 0.5; p = 1 gives zeros, p = 0 in
training the input itself, eval mode the input itself.

The block's parameters are torchvision's `p` and, as `drop` (row | batch), its `mode`: a case's `mode` is train or
eval, and a sweep over `mode` sweeps that. How each framework computes it: torchvision cannot be imported beside the
harness's torch, so the PyTorch side is the harness's own module `StochasticDepth(p, mode)`, a transcription of the
function above (named as torchvision's class, which `xfw-harness port` reads: torchvision's StochasticDepth keeps the
same `p` and `mode`). Keras has no such layer: the Keras side is the harness's `KerasStochasticDepth(p, mode,
seed)`, written in keras.ops and keras.random (a uniform draw below the survival rate 1 - p is the Bernoulli draw,
then divided by that rate where it is above 0), seeded with the case's seed. Both are the identity in eval mode,
which is what `xfw-harness port` checks (it runs the model in eval mode); the saved Keras model keeps the layer, so that
training the port drops branches as the PyTorch model does. The functional form called with training=False
(`torchvision.ops.stochastic_depth(x, p, mode, self.training)` traced in eval mode) is read as the identity
(xfw_harness/blocks/torch_calls.py).

A train-mode sample is random: each framework's is checked on its own (samples.check_unit_dropout_sample): every
output 0 or x/(1-p), each sample (row) or the whole batch (batch) zeroed or kept whole, and in row mode the fraction
of dropped samples within the exact 5-sigma binomial interval for p over the samples. In batch mode a call is one
draw: its interval is [0, 1] for any p strictly between 0 and 1, so one sample checks the form and the scale but not
the rate (only p = 0, never dropped, and p = 1, always dropped); tests/blocks/test_stochastic_depth_reshuffles.py
checks the rate of both layers over many calls.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block, Corner, Emulation
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.samples import check_unit_dropout_sample
from xfw_harness.core.schema import Param
from xfw_harness.core.verdicts import Verdict

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
stochastic_depth_layers = lazy_module("xfw_harness.blocks.stochastic_depth_layers")

MODES = ("row", "batch")


@register
class StochasticDepthBlock(Block):
    name = "stochastic_depth"
    family = "dropout"
    stochastic = True
    any_layout = True  # the draw is along the batch axis, first in every layout
    # Both sides are the harness's layers at every site: the reference pins their eval-mode identity, each
    # framework's sample check (check_sample) their train-mode draw and 1/(1-p) scaling.
    emulations = (Emulation("harness_stochastic_depth_layers",
                            "torchvision does not import beside the harness's torch and Keras has no such layer: the "
                            "harness's StochasticDepth (torch) and KerasStochasticDepth (keras.ops), identity in eval "
                            "mode",
                            lambda s: s.mode == "eval", "reference"),
                  Emulation("harness_stochastic_depth_draw",
                            "the harness's own train-mode draw on both sides: a Bernoulli(1 - p) per sample (row) or "
                            "for the whole batch, the kept ones scaled by 1/(1-p)",
                            lambda s: s.mode == "train", "sample",
                            (Corner("row", lambda s: s.params["drop"] == "row"),
                             Corner("batch", lambda s: s.params["drop"] == "batch"))))
    doc = ("torchvision's stochastic depth: in train mode each sample (row) or the whole batch (batch) is zeroed with "
           "probability p, the rest scaled by 1/(1-p); identity in eval.")
    params = (Param("p", "float", minimum=0.0, maximum=1.0, doc="probability of zeroing a sample (row) or the "
                    "batch (batch); 1 zeroes everything (nothing divided)"),
              Param("drop", "choice", choices=MODES, doc="torchvision's `mode`: row, one draw per sample; batch, one "
                    "draw per call (named apart from a case's train/eval `mode`)"))
    torch_types = ("StochasticDepth",)
    benchmark = {"params": {"p": 0.2, "drop": "row"}, "mode": "train", "input": BENCHMARK_INPUT}
    sample_rule = ("xfw_harness.core.samples.check_unit_dropout_sample: every output is 0 or x / (1 - p) within 4 ulp, "
                   "each sample (row mode) or the whole batch (batch mode) zeroed or kept whole, and the fraction "
                   "of dropped samples lies in the exact binomial interval for p (samples.binomial_interval, 5 "
                   "normal sigmas); in batch mode a call is one draw, whose interval is [0, 1] for 0 < p < 1: its "
                   "rate is not checked by one sample")

    def torch_module(self, site: Site) -> torch.nn.Module:
        return stochastic_depth_layers.StochasticDepth(site.params["p"], site.params["drop"])

    def keras_layer(self, site: Site) -> keras.Layer:
        return stochastic_depth_layers.KerasStochasticDepth(site.params["p"], site.params["drop"], seed=site.seed,
                                                            dtype=site.dtype)

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        if site.mode == "train":
            raise Refusal("stochastic_depth in train mode draws a random mask: it has no deterministic reference "
                          "(each framework's sample is checked statistically instead)", field="mode")
        return np.asarray(x, np.float64)

    def check_sample(self, site: Site, x: np.ndarray, y: np.ndarray, what: str) -> Verdict:
        unit = "samples" if site.params["drop"] == "row" else "batch"
        return check_unit_dropout_sample(x, y, site.params["p"], what, unit)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        kind = type(module).__name__
        p, mode = getattr(module, "p", None), getattr(module, "mode", None)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise Refusal(f"{kind}(p={p!r}): torchvision's stochastic depth takes a drop probability in [0, 1]",
                          field=f"{kind}.p")
        if mode not in MODES:
            raise Refusal(f"{kind}(mode={mode!r}): torchvision's stochastic depth takes mode 'row' or 'batch'",
                          field=f"{kind}.mode")
        return {"p": float(p), "drop": mode}
