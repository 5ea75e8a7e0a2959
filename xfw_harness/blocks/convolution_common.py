"""What the convolution blocks share (conv1d/2d/3d, depthwise, separable, the transposed ones): the padding modes
and their PyTorch modules and Keras layers for any spatial rank, the parameter schema of a convolution of a rank,
and the readers of PyTorch modules' attributes. The semantics are the family modules'
(xfw_harness/blocks/convolution.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

from xfw_harness.blocks.base import Block
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, torch
from xfw_harness.core.schema import Param
from xfw_harness.core.spatial import Pads, Sizes, torch_pad_arg

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# ONNX Pad's name for each PyTorch padding mode (the reference's).
ONNX_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
# PyTorch's padding module of each mode, by the prefix of its class name (ZeroPad2d, ReflectionPad1d, ...).
TORCH_PAD_MODULES = {"zeros": "ZeroPad", "reflect": "ReflectionPad", "replicate": "ReplicationPad",
                     "circular": "CircularPad"}
# What the spatial axes are called in messages, by spatial rank.
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
# How a pair of each spatial rank is described in a Param's doc.
AXES_WORDS = {1: "length", 2: "height and width", 3: "depth, height and width"}


class ConvClasses:
    """A convolution block's PyTorch module and Keras layer classes, named (`torch_conv_name`, `keras_conv_name`) and
    looked up at first use: a class attribute holding the class itself would load the frameworks where the block is
    declared (xfw_harness.core.lazy)."""

    torch_conv_name: ClassVar[str]  # in torch.nn
    keras_conv_name: ClassVar[str]  # in keras.layers

    @property
    def torch_conv_type(self) -> type:
        return getattr(torch.nn, self.torch_conv_name)

    @property
    def keras_conv_type(self) -> type:
        return getattr(keras.layers, self.keras_conv_name)


def torch_pad_module(mode: str, pads: Pads) -> torch.nn.Module:
    """PyTorch's padding module of `mode` for the rank of `pads` (ZeroPad1d, ReflectionPad2d, CircularPad3d, ...)."""
    return getattr(torch.nn, f"{TORCH_PAD_MODULES[mode]}{len(pads)}d")(torch_pad_arg(pads))


def keras_zero_padding(pads: Pads, dtype: str) -> keras.Layer:
    """Keras's own zero padding layer of the rank of `pads` (ZeroPadding1D takes one (before, after) pair)."""
    if len(pads) == 1:
        return keras.layers.ZeroPadding1D(padding=pads[0], dtype=dtype)
    return {2: keras.layers.ZeroPadding2D, 3: keras.layers.ZeroPadding3D}[len(pads)](padding=pads, dtype=dtype)


def keras_cropping(cut: Pads, dtype: str) -> keras.Layer:
    """Keras's own cropping layer of the rank of `cut`, (before, after) per spatial axis (Cropping1D takes one pair)."""
    if len(cut) == 1:
        return keras.layers.Cropping1D(cropping=cut[0], dtype=dtype)
    return {2: keras.layers.Cropping2D, 3: keras.layers.Cropping3D}[len(cut)](cropping=cut, dtype=dtype)


def native_keras_padding(padding: Any, kernel: Sizes, layer: str) -> str:
    """A hand port's Keras padding: 'valid'/'same' as written, 0 -> 'valid', kernel // 2 -> 'same'."""
    if padding in ("valid", "same"):
        return padding
    if all(p == 0 for p in padding):
        return "valid"
    if tuple(padding) == tuple(k // 2 for k in kernel):
        return "same"
    raise Refusal(f"Keras's {layer} has only padding 'valid' and 'same': a hand port writes 0 as 'valid' and "
                  f"kernel_size // 2 = {[k // 2 for k in kernel]} as 'same', and cannot write {list(padding)} "
                  "(the harness's own mode pads explicitly)", field="params.padding")


def pair_param(value: Sizes) -> int | list[int]:
    """A pair (or any per-axis tuple) as a person writes it in YAML: 3 for (3, 3), [3, 2] otherwise."""
    return int(value[0]) if len(set(value)) == 1 else [int(v) for v in value]


def check_torch_type(module: Any, block: Block) -> None:
    if type(module).__name__ not in block.torch_types:
        raise Refusal(f"{type(module).__name__} is not a {' or '.join(block.torch_types)}", field="module")


def check_in_channels(module: Any, in_shape: tuple[int, ...], rank: int = 4) -> None:
    if len(in_shape) != rank or in_shape[1] != module.in_channels:
        raise Refusal(f"{type(module).__name__}(in_channels={module.in_channels}) cannot take an input of shape "
                      f"{list(in_shape)} (channels-first, rank {rank})", field="in_channels")


def conv_params(spatial: int) -> tuple[Param, ...]:
    """The parameters of the convolution with `spatial` spatial axes (conv1d, conv2d, conv3d)."""
    axes = AXES_WORDS[spatial]
    return (
        Param("filters", "int", minimum=1, doc="number of output channels"),
        Param("kernel_size", "pair", minimum=1, doc=f"kernel {axes}", size=spatial),
        Param("strides", "pair", (1,) * spatial, minimum=1, default_text="1", doc=f"step between windows, {axes}",
              size=spatial),
        Param("padding", "padding", (0,) * spatial, default_text="0", size=spatial,
              doc=f"cells on both sides (int or {Param('p', 'pair', size=spatial).axes_text}); 'valid' = none; "
                  "'same' = TensorFlow's same"),
        Param("padding_mode", "choice", "zeros", choices=PADDING_MODES,
              doc="what the padding holds, as PyTorch's padding_mode: zeros, reflect (mirror, edge not repeated), "
                  "replicate (edge repeated), circular (wrap around)"),
        Param("dilation_rate", "pair", (1,) * spatial, minimum=1, default_text="1", doc="spacing between kernel taps",
              size=spatial),
        Param("groups", "int", 1, minimum=1,
              doc="channel groups: in and out channels split into this many independent convolutions"),
        Param("use_bias", "bool", True, doc="add a learned bias per output channel"),
    )
