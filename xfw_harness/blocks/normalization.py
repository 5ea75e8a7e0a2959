"""Normalisation: `batch_norm1d` (N, C) and (N, C, L), `batch_norm2d` (N, C, H, W), `batch_norm3d` (N, C, D, H, W);
group and instance normalisation are in xfw_harness/blocks/group_normalization.py.

Semantics (channels-first, statistics per channel over every axis but the channels: N, then L, H and W or D, H
and W; n = N * the spatial size values each; the three blocks are one class, `BatchNorm`, by rank):

    y = (x - mean) / sqrt(var + epsilon) * weight + bias          (weight = 1, bias = 0 without `affine`)

- eval mode: mean and var are the running statistics (transferred from PyTorch into Keras's moving_mean and
  moving_variance like the weights).
- train mode: mean and var are the batch's, var the BIASED one (sum of squares / n), in both frameworks; then
  the running statistics are updated with the semantic momentum m (PyTorch's convention):

      running_mean = (1 - m) * running_mean + m * batch_mean
      running_var  = (1 - m) * running_var  + m * batch_var_kept

- `track_running_stats: false`: no running statistics; the batch's are used in eval mode too (PyTorch's
  track_running_stats=False).

How each framework is made to compute exactly that:
- PyTorch's BatchNorm1d, BatchNorm2d and BatchNorm3d differ only in the ranks they accept; Keras's
  BatchNormalization(axis=-1) takes any rank, its channels last.
- momentum: PyTorch's BatchNormNd takes m as it is (its default 0.1); Keras's BatchNormalization keeps the old
  value's fraction, `moving = moving * momentum + batch * (1 - momentum)` (keras/src/layers/normalization/
  batch_normalization.py), so it is given 1 - m (its default 0.99 is PyTorch's 0.01, not 0.1).
- epsilon: passed explicitly to both (PyTorch's default 1e-5 is the harness's; Keras's default is 1e-3).
- affine: PyTorch's `affine`, Keras's `center` and `scale` together.
- track_running_stats: false: PyTorch's flag; Keras has none, so the harness's KerasBatchStatisticsNormalization
  (a BatchNormalization that always normalises with the batch's statistics) stands in for it.
- The variance each framework KEEPS differs: PyTorch updates running_var with the UNBIASED batch variance
  (sum of squares / (n - 1); it normalises with the biased one), Keras's moving_variance with the BIASED one
  (ops.moments). After steps s = 1..T with batch variances b_s (biased), from the same start:

      torch_running_var - keras_moving_variance = sum_s m * (1 - m)**(T - s) * b_s / (n - 1)

  which `reconcile_variance` adds to Keras's value, in float64 from the batches PyTorch's layer received,
  before comparing it with PyTorch's: the running_var copy declares it (`variance_convention`), and
  xfw_harness.engine.statistics applies it.
- batch_norm1d after a flatten ((N, C*H*W): Keras holds the features in its own (H, W, C) order): the weights and
  running statistics are permuted into Keras's order (xfw_harness.core.layout.channel_vector_to_keras), and so is the
  variance correction. Nothing else is reconciled: a
  wrong momentum or a running mean that differs still fails.

The float64 reference (`reference`) is ONNX's BatchNormalization in eval mode and NumPy in train mode;
`running_statistics` is the NumPy reference of the running statistics after several batches, in either
framework's convention.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block, Corner, Emulation
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site, StateConvention, WeightCopy
from xfw_harness.core.errors import Refusal
from xfw_harness.core.layout import channel_vector_to_keras
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
keras_layers = lazy_module("xfw_harness.blocks.keras_layers")


def reduction_axes(rank: int) -> tuple[int, ...]:
    """The axes a channel's batch statistics reduce over, channels-first: every axis but the channels (1)."""
    return (0, *range(2, rank))


def draw_state(module: torch.nn.Module) -> torch.nn.Module:
    """`module` (a BatchNormNd, InstanceNormNd or GroupNorm) with its weight, bias, running mean and running variance
    drawn from PyTorch's global generator, which the runner seeds with input.seed. PyTorch initialises them to 1, 0,
    0 and 1, and Keras's normalisation layers start from the same values: a case left at PyTorch's init would pass
    whatever the weight transfer copied (running statistics forgotten, gamma and beta swapped for moving statistics,
    ...)."""
    with torch.no_grad():
        if module.affine:
            module.weight.uniform_(0.5, 1.5)
            module.bias.uniform_(-0.5, 0.5)
        if getattr(module, "track_running_stats", False):  # GroupNorm keeps no running statistics
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    # xfw-harness show prints the builder as draw_state(torch.nn.BatchNorm2d(...)), so its program draws the same
    # values.
    module.harness_initialiser = draw_state
    return module


def batch_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, biased variance) of each channel of a channels-first batch, in float64."""
    x = np.asarray(x, dtype=np.float64)
    axes = reduction_axes(x.ndim)
    return x.mean(axis=axes), x.var(axis=axes)


def running_statistics(momentum: float, batches: Sequence[np.ndarray], initial_mean: np.ndarray,
                       initial_var: np.ndarray, unbiased: bool) -> tuple[np.ndarray, np.ndarray]:
    """The running (mean, var) after one update per batch, in float64, with the semantic momentum (PyTorch's
    convention). `unbiased`: keep the unbiased batch variance (PyTorch) or the biased one (Keras)."""
    mean, var = np.asarray(initial_mean, np.float64), np.asarray(initial_var, np.float64)
    for x in batches:
        batch_mean, batch_var = batch_statistics(x)
        n = x.size // x.shape[1]
        if unbiased:
            batch_var = batch_var * n / (n - 1)
        mean = (1.0 - momentum) * mean + momentum * batch_mean
        var = (1.0 - momentum) * var + momentum * batch_var
    return mean, var


def unbiased_correction(momentum: float, batches: Sequence[np.ndarray]) -> np.ndarray:
    """PyTorch's running_var minus Keras's moving_variance after one update per batch from the same start:
    sum over steps s of m * (1 - m)**(T - s) * b_s / (n - 1), b_s the biased variance of batch s (float64)."""
    correction = np.zeros(batches[0].shape[1]) if batches else np.zeros(0)
    for x in batches:
        n = x.size // x.shape[1]
        correction = (1.0 - momentum) * correction + momentum * batch_statistics(x)[1] / (n - 1)
    return correction


def reconcile_variance(momentum: float, keras_value: np.ndarray, batches: Sequence[np.ndarray],
                       flattened_from: tuple[int, ...] | None = None) -> np.ndarray:
    """Keras's moving_variance in PyTorch's convention: Keras's biased value plus `unbiased_correction` of the
    batches the module received (channels-first, as PyTorch saw them), put in Keras's feature order after a flatten
    (`flattened_from`, as in xfw_harness.core.layout.Layout)."""
    if not batches:
        return np.asarray(keras_value)
    correction = unbiased_correction(momentum, batches)
    if flattened_from is not None:
        correction = channel_vector_to_keras(correction, correction.shape, flattened_from)
    return np.asarray(keras_value, np.float64) + correction


VARIANCE_NOTE = ("Keras's moving_variance keeps the biased batch variance, PyTorch's running_var the unbiased one; "
                 "compared after adding the exact difference, from the batches PyTorch's layer received")


def variance_convention(momentum: float, flattened_from: tuple[int, ...] | None = None) -> StateConvention:
    """The running variance's convention difference at `momentum` (PyTorch's semantic momentum)."""
    keyword = {} if flattened_from is None else {"flattened_from": flattened_from}
    return StateConvention(functools.partial(reconcile_variance, momentum, **keyword), VARIANCE_NOTE)


def keras_feature_order(site: Site) -> tuple[int, ...] | None:
    """The (C, H, W) shape a batch_norm1d's features were flattened from, where the harness permutes its weights,
    running statistics and variance correction into Keras's (H, W, C) feature order; None: no permutation (not after
    a flatten, or a hand port's `defaults: native`, which copies them as they are)."""
    return site.layout.flattened_from if site.written is None else None


def _orders_differ(site: Site) -> bool:
    """Whether PyTorch's (C, H, W) and Keras's (H, W, C) flatten orders differ (C > 1 and H * W > 1)."""
    shape = site.layout.flattened_from
    return shape is not None and shape[0] > 1 and math.prod(shape[1:]) > 1


def keras_batch_statistics(site: Site) -> bool:
    """Whether Keras runs the harness's KerasBatchStatisticsNormalization (track_running_stats: false: Keras's
    BatchNormalization has no such switch) rather than its own BatchNormalization."""
    return not site.params["track_running_stats"]


def _values_per_channel(site: Site) -> int:
    """How many values each channel's batch statistics average: the unbiased correction n / (n - 1) is large for few."""
    return math.prod(site.in_shape) // site.in_shape[1]


def reconciles_variance(site: Site) -> bool:
    """Whether the running variance is compared through `variance_convention` (train mode with running statistics)."""
    return site.params["track_running_stats"] and site.mode == "train"


BATCH_NORM_EMULATIONS = (
    Emulation("running_variance_reconciled",
              "Keras's moving_variance decays the biased batch variance, PyTorch's running_var the unbiased one: the "
              "harness adds the exact difference (reconcile_variance, from the batches PyTorch's layer received) "
              "before comparing them; pinned by the running statistics' comparison after train-mode steps",
              reconciles_variance, "statistics",
              (Corner("few values per channel (n <= 8)", lambda s: _values_per_channel(s) <= 8),
               Corner("momentum other than 0.1", lambda s: s.params["momentum"] != 0.1))),
    Emulation("keras_batch_statistics_layer",
              "track_running_stats: false: Keras's BatchNormalization has no such switch, so Keras runs the "
              "harness's KerasBatchStatisticsNormalization (keras_layers.py), which normalises with the batch's "
              "statistics in eval mode too (training=True forced)",
              keras_batch_statistics, "reference",
              (Corner("eval mode", lambda s: s.mode == "eval"), Corner("train mode", lambda s: s.mode == "train"))),
)
# Only batch_norm1d can follow a flatten (an (N, C*H*W) input).
BATCH_NORM1D_EMULATIONS = (
    *BATCH_NORM_EMULATIONS,
    Emulation("keras_feature_order_after_flatten",
              "after a flatten Keras holds the features in (H, W, C) order: the harness permutes gamma, beta and the "
              "running statistics into it (channel_vector_to_keras); the reference reads them in PyTorch's order",
              lambda s: keras_feature_order(s) is not None, "reference",
              (Corner("the two orders differ", _orders_differ), Corner("eval mode (running statistics)",
                                                                       lambda s: s.mode == "eval"))),
)


class BatchNorm(Block):
    """Batch normalisation of a channels-first tensor of one of `ranks` (PyTorch's `torch_class`); the blocks below
    differ only in those two."""

    torch_class: ClassVar[str]
    family = "normalization"
    weight_names = ("weight", "bias", "running_mean", "running_var")
    emulations = BATCH_NORM_EMULATIONS
    params = (
        Param("momentum", "float", 0.1, minimum=0.0, maximum=1.0,
              doc="PyTorch's convention: running = (1 - momentum) * running + momentum * batch (Keras gets "
                  "1 - momentum)"),
        Param("epsilon", "float", 1e-5, minimum=0.0,
              doc="added to the variance (PyTorch's default; Keras's is 1e-3)"),
        Param("affine", "bool", True, doc="learn a per-channel scale (weight, gamma) and shift (bias, beta)"),
        Param("track_running_stats", "bool", True,
              doc="keep running statistics for eval mode; false: the batch's are used in eval mode too"),
        Param("frozen", "bool", False,
              doc="defaults: native only: the fine-tuning freeze as each framework writes it, PyTorch "
                  "requires_grad=False on weight and bias (train mode still uses the batch's statistics), Keras "
                  "trainable=False (which runs BatchNormalization in inference even under training=True)"),
    )

    def _values_per_channel(self, site: Site) -> int:
        return math.prod(site.in_shape) // site.in_shape[1]

    def _uses_batch_statistics(self, site: Site) -> bool:
        return site.mode == "train" or not site.params["track_running_stats"]

    def output_shape(self, site: Site) -> tuple[int, ...]:
        if site.params["frozen"] and site.written is None:
            raise Refusal("frozen is the hand port's freeze (defaults: native), whose Keras half runs in inference "
                          "mode under training=True: the harness's own mapping has no frozen layer (in eval mode "
                          "it computes what an unfrozen one does: write mode: eval)", field="params.frozen")
        if self._uses_batch_statistics(site) and site.params["epsilon"] == 0:
            raise Refusal("epsilon 0 with batch statistics (train mode, or track_running_stats: false): PyTorch "
                          "refuses it (\"batch_norm eps must be positive during training\") and a constant channel "
                          "would divide by a zero variance; allowed: epsilon > 0 (0 only in eval mode with running "
                          "statistics)", field="params.epsilon")
        if self._uses_batch_statistics(site) and self._values_per_channel(site) == 1:
            raise Refusal(f"batch statistics of one value per channel (input {list(site.in_shape)}): the variance "
                          "is 0 and PyTorch refuses it in train mode (\"Expected more than 1 value per channel\")",
                          field="input.shape")
        return site.in_shape

    def reduction_length(self, site: Site) -> int:
        # Batch statistics sum N*H*W values per channel; running ones make each output a few operations.
        return self._values_per_channel(site) if self._uses_batch_statistics(site) else 1

    # --- builders ----------------------------------------------------------------------------------------------
    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        cls = getattr(torch.nn, self.torch_class)
        return draw_state(cls(site.in_shape[1], eps=p["epsilon"], momentum=p["momentum"], affine=p["affine"],
                              track_running_stats=p["track_running_stats"]))

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        cls = (keras_layers.KerasBatchStatisticsNormalization if keras_batch_statistics(site)
               else keras.layers.BatchNormalization)
        return cls(axis=-1, momentum=1.0 - p["momentum"], epsilon=p["epsilon"], center=p["affine"],
                   scale=p["affine"], dtype=site.dtype)

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        names = (("weight", "bias") if module.affine else ()) + (
            ("running_mean", "running_var") if module.track_running_stats else ())
        return {name: getattr(module, name) for name in names}

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        keras_names = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                       "running_var": "moving_variance"}
        # After a flatten Keras holds the features in its own order (a hand port copies them as they are).
        flattened = keras_feature_order(site)
        convert = (channel_vector_to_keras, ((site.in_shape[1],), flattened)) if flattened else (None, ())
        variance = variance_convention(module.momentum, flattened)
        return [WeightCopy(name, keras_names[name], *convert, convention=variance if name == "running_var" else None)
                for name in self.torch_parameters(module)]

    # --- the third opinion ---------------------------------------------------------------------------------
    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        p = site.params
        x = np.asarray(x, dtype=np.float64)
        channels = x.shape[1]
        scale = np.asarray(weights["weight"], np.float64) if p["affine"] else np.ones(channels)
        shift = np.asarray(weights["bias"], np.float64) if p["affine"] else np.zeros(channels)
        if not self._uses_batch_statistics(site):
            # ONNX keeps a FLOAT attribute in 32 bits (epsilon 1e-3 becomes 1.00000005e-3: 2e-8 relative in the
            # output where the variance is small), so epsilon goes into the variance input, in float64, instead.
            variance = np.asarray(weights["running_var"], np.float64) + p["epsilon"]
            return onnx_op("BatchNormalization", x, scale, shift, np.asarray(weights["running_mean"], np.float64),
                           variance, epsilon=0.0)
        mean, var = batch_statistics(x)
        at = (None, slice(None), *[None] * (x.ndim - 2))
        return (x - mean[at]) / np.sqrt(var[at] + p["epsilon"]) * scale[at] + shift[at]

    # --- native defaults -----------------------------------------------------------------------------------
    def native_torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        module = draw_state(getattr(torch.nn, self.torch_class)(site.in_shape[1], **site.written_args(
            momentum="momentum", epsilon="eps", affine="affine", track_running_stats="track_running_stats")))
        if p["frozen"]:
            module.requires_grad_(False)  # how a PyTorch port freezes a layer: its batch statistics stay in use
        return module

    def native_keras_layer(self, site: Site) -> keras.Layer:
        p, written = site.params, site.written_names
        if "track_running_stats" in written and not p["track_running_stats"]:
            raise Refusal("Keras's BatchNormalization has no track_running_stats switch: it always keeps moving "
                          "statistics and uses them in inference", field="params.track_running_stats")
        kwargs: dict[str, Any] = {}
        if "momentum" in written:
            kwargs["momentum"] = 1.0 - p["momentum"]  # the written semantic momentum, in Keras's convention
        if "epsilon" in written:
            kwargs["epsilon"] = p["epsilon"]
        if "affine" in written:
            kwargs.update(center=p["affine"], scale=p["affine"])
        if p["frozen"]:
            kwargs["trainable"] = False  # Keras's freeze: BatchNormalization then runs in inference mode
        return keras.layers.BatchNormalization(dtype=site.dtype, **kwargs)

    # --- porting a PyTorch model ---------------------------------------------------------------------------
    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if module.num_features != in_shape[1]:
            raise Refusal(f"{self.torch_class} has num_features={module.num_features} but receives {in_shape[1]} "
                          "channels", field="num_features")
        if module.momentum is None:
            raise Refusal("momentum=None (a cumulative moving average) has no Keras counterpart: Keras's "
                          "BatchNormalization only keeps an exponential moving average", field="momentum")
        return {"momentum": float(module.momentum), "epsilon": float(module.eps), "affine": bool(module.affine),
                "track_running_stats": bool(module.track_running_stats)}


@register
class BatchNorm1D(BatchNorm):
    name = "batch_norm1d"
    torch_class = "BatchNorm1d"
    torch_types = (torch_class,)
    doc = ("Normalise each channel (feature) of an (N, C) or (N, C, L) tensor by its mean and variance over N (and "
           "L) (batch statistics in train mode, running ones in eval), then scale and shift.")
    ranks = (2, 3)
    emulations = BATCH_NORM1D_EMULATIONS
    benchmark = {"mode": "train", "input": {"shape": [8, 32, 256]}}


@register
class BatchNorm2D(BatchNorm):
    name = "batch_norm2d"
    torch_class = "BatchNorm2d"
    torch_types = (torch_class,)
    doc = ("Normalise each channel by its mean and variance over N, H, W (batch statistics in train mode, running "
           "ones in eval), then scale and shift.")
    ranks = (4,)
    benchmark = {"mode": "train", "input": BENCHMARK_INPUT}


@register
class BatchNorm3D(BatchNorm):
    name = "batch_norm3d"
    torch_class = "BatchNorm3d"
    torch_types = (torch_class,)
    doc = ("Normalise each channel of an (N, C, D, H, W) volume by its mean and variance over N, D, H, W (batch "
           "statistics in train mode, running ones in eval), then scale and shift.")
    ranks = (5,)
    benchmark = {"mode": "train", "input": {"shape": [2, 16, 8, 16, 16]}}
