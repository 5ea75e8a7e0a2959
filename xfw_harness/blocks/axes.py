"""Blocks that act along one axis or move axes, as modern CNNs write them in PyTorch (ConvNeXt's
`permute(0, 2, 3, 1)`, `nn.LayerNorm(C)` and `nn.Linear` on the channels-last tensor, then back): `permute`,
`layer_norm` and `scale` (a learned per-channel factor: ConvNeXt's layer scale); ShuffleNet's `channel_shuffle`,
and `narrow` (a range of one axis: the pieces of `torch.chunk`).

`permute` changes PyTorch's tensor and leaves Keras's as it is: the Keras layer is keras.layers.Identity and the
tensor's `xfw_harness.core.layout.Layout` records where each axis went, so that the layer norm and the linear layers
after it act on Keras's last axis as PyTorch's act on its last, with no transpose in the Keras model; the permute
back restores channels-last. Blocks that need channels-last refuse a permuted tensor (`Block.any_layout`); those
here, the elementwise activations, dense on the last axis and the joins take any layout.

`layer_norm` normalises over one axis (nn.LayerNorm over the last axis; torchvision's LayerNorm2d over channels of
an (N, C, H, W) tensor) as Keras's LayerNormalization on the axis the layout gives; its epsilon is PyTorch's 1e-5 by
default (Keras's own is 1e-3) and both divide by sqrt(biased variance + epsilon).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block, Corner, Emulation, SkeletonWriter
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site, WeightCopy, parameter_path
from xfw_harness.core.errors import Refusal
from xfw_harness.core.layout import Layout, channel_vector_to_keras
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
axes_layers = lazy_module("xfw_harness.blocks.axes_layers")
keras_layers = lazy_module("xfw_harness.blocks.keras_layers")

# A permutation of a rank-4 tensor's axes that keeps the batch first: each of them, as a case writes it.
PERMUTATIONS = ([0, 1, 2, 3], [0, 1, 3, 2], [0, 2, 1, 3], [0, 2, 3, 1], [0, 3, 1, 2], [0, 3, 2, 1])


def moves_axis_last(axis: int, rank: int) -> bool:
    """Whether the harness's TorchLayerNorm moves `axis` last around nn.LayerNorm (which normalises the last axis)."""
    return axis % rank != rank - 1


def features_in_keras_order(site: Site) -> bool:
    """Whether the harness permutes a per-feature weight into Keras's (H, W, C) flatten order: after a flatten (a hand
    port, `defaults: native`, copies it as it is, as it does a prelu's slopes)."""
    return site.layout.flattened_from is not None and site.written is None


def _feature_copy(site: Site, torch_path: str, keras_path: str) -> WeightCopy:
    """A per-feature (per-channel) weight copied into Keras, permuted into its flatten order where it must be."""
    if not features_in_keras_order(site):
        return WeightCopy(torch_path, keras_path)
    return WeightCopy(torch_path, keras_path, channel_vector_to_keras,
                      ((site.in_shape[1],), site.layout.flattened_from))


def _feature_order_emulation(what: str) -> Emulation:
    return Emulation("weights_in_keras_feature_order",
                     f"after a flatten Keras holds the features in (H, W, C) order: the harness permutes {what} into "
                     "it (channel_vector_to_keras); the reference reads them in PyTorch's order",
                     features_in_keras_order, "reference")


def _not_square(site: Site) -> bool:
    return site.rank == 4 and site.in_shape[2] != site.in_shape[3]


def _keras_axis_not_last(axis: int) -> Corner:
    """The corner where Keras's tensor does not hold channels-first `axis` last (the layout maps it elsewhere)."""
    return Corner(f"Keras holds axis {axis} elsewhere than last",
                  lambda s: s.layout.keras_axis(axis, s.rank) % s.rank != s.rank - 1)


PERMUTE_EMULATIONS = (
    Emulation("keras_identity_and_layout",
              "PyTorch's tensor is permuted, Keras's left as it is: keras.layers.Identity, the permutation recorded "
              "in the output's Layout (the harness's axis bookkeeping) that the following layers and the comparison "
              "read", lambda s: True, "reference",
              (Corner("channels moved off axis 1", lambda s: s.params["dims"][1] != 1),
               Corner("height and width swapped", lambda s: s.params["dims"].index(3) < s.params["dims"].index(2)),
               Corner("height != width", _not_square))),
)
LAYER_NORM_EMULATIONS = (
    Emulation("torch_moved_axis",
              "nn.LayerNorm normalises the last axis: the harness's TorchLayerNorm moves `axis` last and back "
              "(movedim) around it, for torchvision's LayerNorm2d (axis 1) and any other axis",
              lambda s: moves_axis_last(s.params["axis"], s.rank), "reference",
              (Corner("channels (axis 1)", lambda s: s.params["axis"] % s.rank == 1),
               Corner("a spatial axis", lambda s: 1 < s.params["axis"] % s.rank < s.rank - 1))),
    _feature_order_emulation("gamma and beta"),
)
SCALE_EMULATIONS = (
    Emulation("channel_scale_layers",
              "a per-channel factor, which neither framework has a layer for: the harness's TorchChannelScale "
              "(a (C, 1, ..., 1) reshape) and Keras ChannelScale on the axis the layout gives",
              lambda s: True, "reference",
              (Corner("rank 2 (N, C)", lambda s: s.rank == 2), Corner("rank 4", lambda s: s.rank == 4),
               _keras_axis_not_last(1))),
    _feature_order_emulation("the factors"),
)
CHANNEL_SHUFFLE_EMULATIONS = (
    Emulation("reshape_transpose_reshape",
              "ShuffleNet's shuffle as the harness writes it on both sides: TorchChannelShuffle's view, transpose, "
              "view (torchvision's) and Keras's Reshape (H, W, g, C/g), Permute, Reshape",
              lambda s: True, "reference",
              (Corner("groups 1 (the identity)", lambda s: s.params["groups"] == 1),
               Corner("one channel per group", lambda s: s.params["groups"] == s.in_shape[1]),
               Corner("groups and channels per group both above 1",
                      lambda s: 1 < s.params["groups"] < s.in_shape[1]),
               Corner("height != width", _not_square))),
)
NARROW_EMULATIONS = (
    Emulation("axis_slice",
              "the harness's TorchNarrow (x.narrow) and Keras AxisSlice, slicing [start, start + length) of the "
              "axis the layout gives",
              lambda s: True, "reference",
              (Corner("channels (axis 1)", lambda s: s.params["axis"] % s.rank == 1),
               Corner("a spatial axis", lambda s: s.params["axis"] % s.rank > 1),
               Corner("start above 0", lambda s: s.params["start"] > 0))),
)


@register
class Permute(Block):
    name = "permute"
    family = "axes"
    doc = ("PyTorch's permute of a rank-4 tensor's axes, the batch kept first; Keras's tensor is left as it is (its "
           "layout records the new order).")
    params = (Param("dims", "choice", choices=PERMUTATIONS, doc="the new order of the axes, as torch.permute takes "
                    "it (ConvNeXt: [0, 2, 3, 1] to channels-last and [0, 3, 1, 2] back)"),)
    ranks = (4,)
    any_layout = True
    torch_functions = ("permute",)
    emulations = PERMUTE_EMULATIONS
    benchmark: ClassVar[dict[str, Any]] = {"params": {"dims": [0, 2, 3, 1]}, "input": BENCHMARK_INPUT}

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        if site.layout.flattened_from is not None:
            raise Refusal("the input is a flattened tensor; a permute takes an (N, C, H, W) one", field="input.shape")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        return tuple(site.in_shape[d] for d in site.params["dims"])

    def output_layout(self, site: Site) -> Layout:
        return site.layout.permuted(tuple(site.params["dims"]))

    def torch_module(self, site: Site) -> axes_layers.TorchPermute:
        return axes_layers.TorchPermute(site.params["dims"])

    def keras_layer(self, site: Site) -> Any:
        return keras.layers.Identity(dtype=site.dtype)

    native_torch_module = torch_module
    native_keras_layer = keras_layer

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        return np.transpose(x, site.params["dims"])

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        dims = kwargs.get("dims", args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:])
        dims = [int(d) % len(in_shapes[0]) for d in dims]
        if dims not in PERMUTATIONS:
            raise Refusal(f"permute{tuple(dims)} of a rank-{len(in_shapes[0])} tensor: only rank-4 permutations that "
                          "keep the batch axis first are read", field="permute.dims")
        return {"dims": dims}


@register
class LayerNorm(Block):
    name = "layer_norm"
    family = "axes"
    doc = ("Normalise over one axis (mean and biased variance of each vector along it), then scale and shift per "
           "element of that axis.")
    params = (
        Param("axis", "axis", -1, doc="the channels-first axis normalised over (nn.LayerNorm: -1, the last; "
                                      "torchvision's LayerNorm2d: 1, the channels)"),
        Param("epsilon", "float", 1e-5, minimum=0, doc="added to the variance (PyTorch's default; Keras's is 1e-3)"),
        Param("affine", "bool", True, doc="learn a scale (weight, gamma) per element of the axis"),
        Param("use_bias", "bool", True, doc="learn a shift (bias, beta) per element of the axis (with affine)"),
    )
    weight_names = ("weight", "bias")
    any_layout = True
    emulations = LAYER_NORM_EMULATIONS
    torch_types = ("LayerNorm", "LayerNorm2d")

    def _axis(self, site: Site) -> int:
        return site.params["axis"] % site.rank

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        if not -site.rank <= site.params["axis"] < site.rank:
            raise Refusal(f"axis {site.params['axis']} is outside a rank-{site.rank} input", field="params.axis")
        if site.layout.flattened_from is not None and site.params["axis"] % site.rank != 1:
            raise Refusal("a flattened input has its features on axis 1", field="params.axis")

    def reduction_length(self, site: Site) -> int:
        return site.in_shape[self._axis(site)]

    def largest_array(self, site: Site) -> int:
        return site.in_shape[self._axis(site)]

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        return axes_layers.TorchLayerNorm(site.in_shape[self._axis(site)], p["epsilon"], p["affine"], p["use_bias"],
                                          self._axis(site))

    def keras_layer(self, site: Site) -> Any:
        p = site.params
        return keras.layers.LayerNormalization(axis=site.layout.keras_axis(self._axis(site), site.rank),
                                               epsilon=p["epsilon"], scale=p["affine"],
                                               center=p["affine"] and p["use_bias"], dtype=site.dtype)

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        # A hand port writes nn.LayerNorm, which normalises the last axis (every parameter written: the harness's).
        if self._axis(site) != site.rank - 1:
            raise Refusal("nn.LayerNorm normalises the last axis; over the channels a port writes a module of its "
                          "own (torchvision's LayerNorm2d)", field="params.axis")
        p = site.params
        return torch.nn.LayerNorm(site.in_shape[-1], eps=p["epsilon"], elementwise_affine=p["affine"],
                                  bias=p["affine"] and p["use_bias"])

    native_keras_layer = keras_layer

    def torch_parameters(self, module: Any) -> dict[str, Any]:
        return {name: t for name, t in (("weight", module.weight), ("bias", module.bias)) if t is not None}

    def weight_copies(self, site: Site, module: Any, layer: Any) -> list[WeightCopy]:
        # One value per element of the normalised axis in both: copied as they are (an axis is not re-laid out),
        # except the features of a flattened tensor, which Keras holds in its own order.
        names = {"weight": "gamma", "bias": "beta"}
        return [_feature_copy(site, parameter_path(module, t), names[n])
                for n, t in self.torch_parameters(module).items()]

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        axis = self._axis(site)
        x = np.asarray(x, np.float64)
        mean = x.mean(axis=axis, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axis, keepdims=True)
        y = (x - mean) / np.sqrt(var + site.params["epsilon"])
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        if "weight" in weights:
            y = y * np.reshape(weights["weight"], shape)
        if "bias" in weights:
            y = y + np.reshape(weights["bias"], shape)
        return y

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        shape = tuple(module.normalized_shape)
        # torchvision's LayerNorm2d permutes to channels-last, normalises, permutes back: over the channels.
        axis = 1 if type(module).__name__ == "LayerNorm2d" else -1
        if len(shape) != 1 or shape[0] != in_shape[axis]:
            raise Refusal(f"{type(module).__name__}(normalized_shape={list(shape)}) on an input {list(in_shape)}: only "
                          f"a normalisation over one axis ({'the channels' if axis == 1 else 'the last'}) is read",
                          field=f"{type(module).__name__}.normalized_shape")
        return {"axis": axis, "epsilon": float(module.eps), "affine": bool(module.elementwise_affine),
                "use_bias": module.bias is not None}


@register
class Scale(Block):
    name = "scale"
    family = "axes"
    doc = "x times a learned factor per channel (ConvNeXt's layer scale: a (C, 1, 1) parameter times the tensor)."
    emulations = SCALE_EMULATIONS
    weight_names = ("weight",)
    any_layout = True
    torch_functions = ("mul",)

    def torch_module(self, site: Site) -> axes_layers.TorchChannelScale:
        return axes_layers.TorchChannelScale(site.in_shape[1], site.rank)

    def keras_layer(self, site: Site) -> Any:
        return keras_layers.ChannelScale(axis=site.layout.keras_axis(1, site.rank), dtype=site.dtype)

    native_torch_module = torch_module
    native_keras_layer = keras_layer

    def torch_parameters(self, module: Any) -> dict[str, Any]:
        return {"weight": module.weight}

    def weight_copies(self, site: Site, module: Any, layer: Any) -> list[WeightCopy]:
        return [_feature_copy(site, "weight", "weight")]  # one value per channel (feature) in both

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        return np.asarray(x, np.float64) * np.reshape(weights["weight"], (-1, *[1] * (np.ndim(x) - 2)))

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        constants = [a for a in args if isinstance(a, np.ndarray)]
        (shape,) = in_shapes
        want = (shape[1], *[1] * (len(shape) - 2))
        if len(constants) != 1 or kwargs or tuple(constants[0].shape) not in (want, (1, *want)):
            raise Refusal(f"a product with a parameter of shape {list(constants[0].shape) if constants else '-'}: "
                          f"only a factor per channel, {list(want)}, is read", field="mul.other")
        return {}

    def weights_from_call(self, args: tuple) -> dict[str, np.ndarray]:
        """The call's parameter operand, as the block's `weight` (one value per channel)."""
        constant = next(a for a in args if isinstance(a, np.ndarray))
        return {"weight": np.asarray(constant).reshape(-1)}


@register
class ChannelShuffle(Block):
    name = "channel_shuffle"
    family = "axes"
    doc = ("ShuffleNet's channel shuffle: channel g * (C / groups) + k goes to k * groups + g (channels split into "
           "`groups` rows, transposed); in Keras a Reshape, Permute and Reshape of the channels-last tensor.")
    params = (Param("groups", "int", 2, minimum=1, doc="the groups the channels are split into"),)
    ranks = (4,)
    torch_types = ("ChannelShuffle",)
    torch_functions = ("channel_shuffle",)
    emulations = CHANNEL_SHUFFLE_EMULATIONS

    def skeleton(self, writer: SkeletonWriter) -> list[str]:
        line = writer.line
        lines = line(0, "- name: channel_shuffle_case", "unique in its file; part of the test id")
        lines += line(2, f"block: {self.name}", self.doc)
        lines += line(2, "params:")
        lines += [*line(4, "groups: 2", f"{self.params[0].doc}; allowed: {self.params[0].allowed()}; they must "
                        "divide the channels")]
        lines += writer.input_lines(self, [2, 6, 5, 4])
        lines += writer.tolerance_line()
        lines += line(2, "# expect: {reference: true}", "optional checks beyond torch vs keras")
        lines += line(2, "# sweep:", "each combination of these lists is its own test")
        lines += line(2, "#   input.shape: [[2, 6, 5, 4], [1, 4, 3, 3]]")
        lines += line(2, "#   input.dtype: [float32, float64]")
        return lines

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        if site.in_shape[1] % site.params["groups"]:
            raise Refusal(f"{site.in_shape[1]} channels do not split into {site.params['groups']} groups",
                          field="params.groups")

    def torch_module(self, site: Site) -> axes_layers.TorchChannelShuffle:
        return axes_layers.TorchChannelShuffle(site.params["groups"])

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.ChannelShuffle(site.params["groups"])  # a hand port's: PyTorch's own module

    def keras_layer(self, site: Site) -> Any:
        _, c, h, w = site.in_shape
        g = site.params["groups"]
        dtype = site.dtype
        return keras.Sequential([keras.layers.Reshape((h, w, g, c // g), dtype=dtype),
                                 keras.layers.Permute((1, 2, 4, 3), dtype=dtype),
                                 keras.layers.Reshape((h, w, c), dtype=dtype)])

    native_keras_layer = keras_layer

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        n, c, h, w = x.shape
        g = site.params["groups"]
        return np.reshape(np.swapaxes(np.reshape(x, (n, g, c // g, h, w)), 1, 2), (n, c, h, w))

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        return {"groups": int(module.groups)}

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        return {"groups": int(kwargs.get("groups", args[1]))}


@register
class Narrow(Block):
    name = "narrow"
    family = "axes"
    doc = "The elements start .. start + length - 1 of one axis (torch.narrow; a torch.chunk's pieces)."
    params = (Param("axis", "axis", 1, doc="the channels-first axis narrowed (1: the channels)"),
              Param("start", "int", 0, minimum=0, doc="the first element kept"),
              Param("length", "int", 1, minimum=1, doc="how many are kept"))
    any_layout = True
    torch_functions = ("narrow",)
    emulations = NARROW_EMULATIONS

    def _axis(self, site: Site) -> int:
        return site.params["axis"] % site.rank

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        p = site.params
        if not -site.rank <= p["axis"] < site.rank or p["axis"] % site.rank == 0:
            raise Refusal(f"axis {p['axis']} of a rank-{site.rank} input: a non-batch axis", field="params.axis")
        if p["start"] + p["length"] > site.in_shape[self._axis(site)]:
            raise Refusal(f"start {p['start']} + length {p['length']} passes the axis's "
                          f"{site.in_shape[self._axis(site)]} elements", field="params.length")
        if site.layout.flattened_from is not None:
            raise Refusal("the features of a flattened tensor are in Keras's own order", field="params.axis")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        shape = list(site.in_shape)
        shape[self._axis(site)] = site.params["length"]
        return tuple(shape)

    def torch_module(self, site: Site) -> axes_layers.TorchNarrow:
        return axes_layers.TorchNarrow(self._axis(site), site.params["start"], site.params["length"])

    def keras_layer(self, site: Site) -> Any:
        p = site.params
        return keras_layers.AxisSlice(site.layout.keras_axis(self._axis(site), site.rank), p["start"],
                                      p["start"] + p["length"], dtype=site.dtype)

    native_torch_module = torch_module
    native_keras_layer = keras_layer

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        p = site.params
        return np.take(x, range(p["start"], p["start"] + p["length"]), axis=self._axis(site))

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        axis, start, length = (kwargs.get(k, args[i + 1] if len(args) > i + 1 else None)
                               for i, k in enumerate(("dim", "start", "length")))
        return {"axis": int(axis) % len(in_shapes[0]), "start": int(start), "length": int(length)}
