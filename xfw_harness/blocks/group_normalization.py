"""Normalisation over groups of channels of each sample: `group_norm` and `instance_norm` (batch norm is in
xfw_harness/blocks/normalization.py).

Semantics (channels-first (N, C, *spatial), the channels split into G contiguous groups of C / G: channel c is in group
c // (C / G); n = C / G * the spatial size values per group of a sample):

    y = (x - mean) / sqrt(var + epsilon) * weight + bias          (weight = 1, bias = 0 without `affine`)

mean and var over the n values of the sample's group, var the BIASED one (sum of squares / n), in both frameworks
(verified by running; the unbiased one differs by 6e-2 on a drawn input). `instance_norm` is G = C (one channel of
one sample). Both compute the same in train and eval mode, except `instance_norm` with `track_running_stats`.

`group_norm`: PyTorch's nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True), any rank >= 2, one weight and
bias per channel. Keras's keras.layers.GroupNormalization(groups=32, axis=-1, epsilon=1e-3, center=True, scale=True)
groups the channels-last tensor's last axis contiguously as PyTorch does, gamma and beta per channel: it is given
groups (PyTorch's num_groups; Keras's default 32 is no count PyTorch has), epsilon explicitly (Keras's 1e-3 is not
PyTorch's 1e-5: catalogued) and affine as center and scale. A flattened input is refused: Keras holds the features in
its own order, so its groups would gather other features.

`instance_norm`: PyTorch's nn.InstanceNorm1d/2d/3d(num_features, eps=1e-5, momentum=0.1, affine=False,
track_running_stats=False) on (N, C, L), (N, C, H, W), (N, C, D, H, W). Keras 3 has no InstanceNormalization layer.
- Without running statistics: keras.layers.GroupNormalization(groups=C) computes it exactly (groups=-1 is the same);
  a hand port that writes only that leaves Keras's epsilon 1e-3 and its center and scale on (PyTorch's affine is
  off by default): catalogued.
- With `track_running_stats`, PyTorch normalises with the running statistics in eval mode and, in train mode, with
  the instance's statistics while it updates them with the semantic momentum m from the mean over the batch of
  each instance's mean and each instance's UNBIASED variance (sum of squares / (n - 1), as BatchNorm keeps; verified
  by running):

      running_mean = (1 - m) * running_mean + m * mean_over_N(instance_mean)
      running_var  = (1 - m) * running_var  + m * mean_over_N(instance_var * n / (n - 1))

  Keras has no such layer: the harness's `InstanceNormalization` (keras.ops, group_normalization_layers.py) computes it,
  its `momentum` in Keras's convention (the fraction of the old value kept: it is given 1 - m, as BatchNormalization is)
  and its moving_variance kept in PyTorch's unbiased convention, so the running statistics are compared as they are (the
  generic path of xfw_harness.engine.statistics; no convention to reconcile). PyTorch's momentum=None (no cumulative
  average here, unlike BatchNorm: F.instance_norm gets 0.0) is momentum 0, the statistics never move.
- PyTorch refuses one spatial element with the instance's statistics ("Expected more than 1 spatial element when
  training", in eval mode without running statistics too): refused. `group_norm` refuses a group of one value (its
  variance is 0, and the output PyTorch's rounding noise over sqrt(epsilon)).

The float64 references are NumPy (`group_normalise`): ONNX's GroupNormalization and InstanceNormalization keep
epsilon as a 32-bit FLOAT attribute, and GroupNormalization computes in float32 unless its stash_type says double
(tests/blocks/test_group_normalization.py checks NumPy's against both); the running-statistics form in eval mode is
ONNX's BatchNormalization with epsilon in the variance input, as batch_norm2d's.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks.base import Block, Corner, Emulation, SkeletonWriter
from xfw_harness.blocks.normalization import draw_state
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site, WeightCopy
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
group_normalization_layers = lazy_module("xfw_harness.blocks.group_normalization_layers")

KERAS_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def group_normalise(x: np.ndarray, groups: int, epsilon: float, weight: Any = None, bias: Any = None) -> np.ndarray:
    """The group normalisation of a channels-first `x` in float64 (biased variance; see the module doc)."""
    x = np.asarray(x, np.float64)
    grouped = x.reshape(x.shape[0], groups, -1)
    mean = grouped.mean(axis=-1, keepdims=True)
    var = grouped.var(axis=-1, keepdims=True)
    y = ((grouped - mean) / np.sqrt(var + epsilon)).reshape(x.shape)
    at = (None, slice(None), *[None] * (x.ndim - 2))
    if weight is not None:
        y = y * np.asarray(weight, np.float64)[at]
    if bias is not None:
        y = y + np.asarray(bias, np.float64)[at]
    return y


def instance_running_statistics(momentum: float, batches: list[np.ndarray], initial_mean: np.ndarray,
                                initial_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's InstanceNorm running (mean, var) after one train-mode update per channels-first batch, float64."""
    mean, var = np.asarray(initial_mean, np.float64), np.asarray(initial_var, np.float64)
    for x in batches:
        axes = tuple(range(2, x.ndim))
        n = math.prod(x.shape[2:])
        mean = (1 - momentum) * mean + momentum * x.mean(axis=axes).mean(axis=0)
        var = (1 - momentum) * var + momentum * (x.var(axis=axes) * n / (n - 1)).mean(axis=0)
    return mean, var


def _torch_parameters(module: torch.nn.Module) -> dict[str, Any]:
    names = (("weight", "bias") if module.affine else ()) + (
        ("running_mean", "running_var") if getattr(module, "track_running_stats", False) else ())
    return {name: getattr(module, name) for name in names}


class _GroupStatistics(Block):
    """What group_norm and instance_norm share: weights named as batch norm's, the flattened input refused."""

    family = "normalization"

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        if site.layout.flattened_from is not None:
            raise Refusal(f"{self.name} of a flattened tensor: Keras holds its features in its own (H, W, C) order, "
                          "so its groups would gather other features; normalise before the flatten",
                          field="input.shape")

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        return _torch_parameters(module)

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        # One value per channel in both, the channels being Keras's last axis: copied as they are.
        return [WeightCopy(name, KERAS_NAMES[name]) for name in self.torch_parameters(module)]


@register
class GroupNorm(_GroupStatistics):
    name = "group_norm"
    doc = ("Normalise each sample's groups of channels (C / groups contiguous channels and every spatial position) by "
           "their mean and biased variance, then scale and shift per channel.")
    ranks = (2, 3, 4, 5)
    weight_names = ("weight", "bias")
    params = (
        Param("groups", "int", minimum=1, doc="the groups the channels are split into (PyTorch's num_groups; Keras's "
                                              "groups, whose default 32 is not written for PyTorch)"),
        Param("epsilon", "float", 1e-5, minimum=0.0, doc="added to the variance (PyTorch's default; Keras's is 1e-3)"),
        Param("affine", "bool", True, doc="learn a per-channel scale (weight, gamma) and shift (bias, beta)"),
    )
    torch_types = ("GroupNorm",)
    benchmark: ClassVar[dict[str, Any]] = {"params": {"groups": 8}, "input": {"shape": [8, 32, 32, 32]}}

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        channels, groups = site.in_shape[1], site.params["groups"]
        if channels % groups:
            raise Refusal(f"{channels} channels do not split into {groups} groups", field="params.groups")
        if self.reduction_length(site) == 1:
            raise Refusal(f"groups of one value (input {list(site.in_shape)}, {groups} groups): the variance is 0 and "
                          "the output rounding noise over sqrt(epsilon); allowed: more than one value per group",
                          field="params.groups")

    def reduction_length(self, site: Site) -> int:
        return math.prod(site.in_shape[1:]) // site.params["groups"]

    def skeleton(self, writer: SkeletonWriter) -> list[str]:
        line, (groups, epsilon, affine) = writer.line, self.params
        lines = line(0, "- name: group_norm_case", "unique in its file; part of the test id")
        lines += line(2, f"block: {self.name}", self.doc)
        lines += line(2, "params:")
        lines += line(4, "groups: 1", f"REQUIRED: {groups.doc}; allowed: {groups.allowed()}, dividing the channels "
                      "(1: every channel in one group)")
        lines += line(4, "epsilon: 1.0e-5", f"{epsilon.doc}; allowed: {epsilon.allowed()}")
        lines += line(4, "affine: true", f"{affine.doc}; allowed: {affine.allowed()}")
        lines += writer.input_lines(self, [2, 6, 5, 4])
        lines += writer.tolerance_line()
        lines += line(2, "# expect: {reference: true}", "optional checks beyond torch vs keras")
        lines += line(2, "# sweep:", "each combination of these lists is its own test")
        lines += line(2, "#   groups: [1, 2, 3, 6]")
        lines += line(2, "#   input.dtype: [float32, float64]")
        return lines

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        return draw_state(torch.nn.GroupNorm(p["groups"], site.in_shape[1], eps=p["epsilon"], affine=p["affine"]))

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        return keras.layers.GroupNormalization(groups=p["groups"], axis=-1, epsilon=p["epsilon"], center=p["affine"],
                                               scale=p["affine"], dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        return group_normalise(x, site.params["groups"], site.params["epsilon"], weights.get("weight"),
                               weights.get("bias"))

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return draw_state(torch.nn.GroupNorm(site.params["groups"], site.in_shape[1],
                                             **site.written_args(epsilon="eps", affine="affine")))

    def native_keras_layer(self, site: Site) -> keras.Layer:
        p, written = site.params, site.written_names
        kwargs: dict[str, Any] = {"epsilon": p["epsilon"]} if "epsilon" in written else {}
        if "affine" in written:
            kwargs.update(center=p["affine"], scale=p["affine"])
        return keras.layers.GroupNormalization(groups=p["groups"], dtype=site.dtype, **kwargs)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if module.num_channels != in_shape[1]:
            raise Refusal(f"GroupNorm has num_channels={module.num_channels} but receives {in_shape[1]} channels",
                          field="num_channels")
        return {"groups": int(module.num_groups), "epsilon": float(module.eps), "affine": bool(module.affine)}


def keras_running_instance_norm(site: Site) -> bool:
    """Whether Keras runs the harness's InstanceNormalization (track_running_stats, which Keras has no layer for)
    rather than its own GroupNormalization(groups=C)."""
    return site.params["track_running_stats"]


# Its running statistics' update (momentum 1 - m, the unbiased variance kept) is pinned by the statistics comparison
# after train-mode steps against PyTorch's own (xfw_harness.engine.statistics), which Emulation.checked_by cannot say:
# only its normalisation is declared here.
INSTANCE_NORM_EMULATIONS = (
    Emulation("keras_instance_normalization_layer",
              "track_running_stats: Keras has no instance normalisation with running statistics, so Keras runs the "
              "harness's InstanceNormalization (group_normalization_layers.py, keras.ops): each instance's mean and "
              "biased variance in train mode, the moving statistics in eval mode",
              keras_running_instance_norm, "reference",
              (Corner("eval mode", lambda s: s.mode == "eval"), Corner("train mode", lambda s: s.mode == "train"),
               Corner("rank 3 (N, C, L)", lambda s: s.rank == 3),
               Corner("rank 5 (N, C, D, H, W)", lambda s: s.rank == 5))),
    Emulation("keras_running_statistics_update",
              "the harness's InstanceNormalization (Keras) updates its moving mean and variance itself in train mode, "
              "from each instance's statistics averaged over the batch, the variance unbiased as PyTorch's is; pinned "
              "by the running statistics' comparison after train-mode steps",
              lambda s: keras_running_instance_norm(s) and s.mode == "train", "statistics",
              (Corner("momentum other than 0.1", lambda s: s.params["momentum"] != 0.1),)),
)


@register
class InstanceNorm(_GroupStatistics):
    name = "instance_norm"
    doc = ("Normalise each channel of each sample by its mean and biased variance over the spatial axes (running "
           "statistics in eval mode where tracked), then scale and shift.")
    ranks = (3, 4, 5)
    weight_names = ("weight", "bias", "running_mean", "running_var")
    params = (
        Param("momentum", "float", 0.1, minimum=0.0, maximum=1.0,
              doc="PyTorch's convention: running = (1 - momentum) * running + momentum * batch (the harness's Keras "
                  "layer gets 1 - momentum)"),
        Param("epsilon", "float", 1e-5, minimum=0.0, doc="added to the variance (PyTorch's default; Keras's "
                                                         "GroupNormalization's is 1e-3)"),
        Param("affine", "bool", False, doc="learn a per-channel scale (weight, gamma) and shift (bias, beta); "
                                           "PyTorch's default is off"),
        Param("track_running_stats", "bool", False,
              doc="keep running statistics (unbiased variance) and use them in eval mode; PyTorch's default is off"),
    )
    torch_types = ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")
    emulations = INSTANCE_NORM_EMULATIONS
    benchmark: ClassVar[dict[str, Any]] = {"mode": "train", "params": {"affine": True, "track_running_stats": True},
                                           "input": {"shape": [8, 32, 32, 32]}}

    def _instance_statistics(self, site: Site) -> bool:
        return site.mode == "train" or not site.params["track_running_stats"]

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        if self._instance_statistics(site) and math.prod(site.in_shape[2:]) == 1:
            raise Refusal(f"one spatial element per instance (input {list(site.in_shape)}): PyTorch refuses it "
                          "(\"Expected more than 1 spatial element when training\"); allowed: a spatial size > 1, "
                          "or eval mode with track_running_stats", field="input.shape")

    def reduction_length(self, site: Site) -> int:
        return math.prod(site.in_shape[2:]) if self._instance_statistics(site) else 1

    def _torch_class(self, site: Site) -> Any:
        return getattr(torch.nn, f"InstanceNorm{site.rank - 2}d")

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        return draw_state(self._torch_class(site)(site.in_shape[1], eps=p["epsilon"], momentum=p["momentum"],
                                                  affine=p["affine"], track_running_stats=p["track_running_stats"]))

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        if not keras_running_instance_norm(site):
            return keras.layers.GroupNormalization(groups=site.in_shape[1], axis=-1, epsilon=p["epsilon"],
                                                   center=p["affine"], scale=p["affine"], dtype=site.dtype)
        return group_normalization_layers.InstanceNormalization(
            momentum=1.0 - p["momentum"], epsilon=p["epsilon"], center=p["affine"], scale=p["affine"], dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        p = site.params
        x = np.asarray(x, np.float64)
        if self._instance_statistics(site):
            return group_normalise(x, x.shape[1], p["epsilon"], weights.get("weight"), weights.get("bias"))
        channels = x.shape[1]
        scale = np.asarray(weights.get("weight", np.ones(channels)), np.float64)
        shift = np.asarray(weights.get("bias", np.zeros(channels)), np.float64)
        # epsilon in the variance input, in float64 (ONNX keeps a FLOAT attribute in 32 bits), as batch_norm2d's.
        variance = np.asarray(weights["running_var"], np.float64) + p["epsilon"]
        return onnx_op("BatchNormalization", x, scale, shift, np.asarray(weights["running_mean"], np.float64),
                       variance, epsilon=0.0)

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return draw_state(self._torch_class(site)(site.in_shape[1], **site.written_args(
            momentum="momentum", epsilon="eps", affine="affine", track_running_stats="track_running_stats")))

    def native_keras_layer(self, site: Site) -> keras.Layer:
        # A hand port writes Keras's GroupNormalization with one group per channel (groups=-1).
        p, written = site.params, site.written_names
        if p["track_running_stats"]:
            raise Refusal("Keras has no instance normalisation with running statistics (its GroupNormalization keeps "
                          "none)", field="params.track_running_stats")
        kwargs: dict[str, Any] = {"epsilon": p["epsilon"]} if "epsilon" in written else {}
        if "affine" in written:
            kwargs.update(center=p["affine"], scale=p["affine"])
        return keras.layers.GroupNormalization(groups=-1, dtype=site.dtype, **kwargs)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if module.num_features != in_shape[1] and (module.affine or module.track_running_stats):
            raise Refusal(f"{type(module).__name__} has num_features={module.num_features} but receives "
                          f"{in_shape[1]} channels", field="num_features")
        if len(in_shape) != int(type(module).__name__[-2]) + 2:
            raise Refusal(f"{type(module).__name__} on an input of rank {len(in_shape)}: only batched inputs are read",
                          field="input.shape")
        # momentum=None: F.instance_norm is given 0.0 (no cumulative average, unlike BatchNorm): the stats stay put.
        momentum = 0.0 if module.momentum is None else float(module.momentum)
        return {"momentum": momentum, "epsilon": float(module.eps), "affine": bool(module.affine),
                "track_running_stats": bool(module.track_running_stats)}
