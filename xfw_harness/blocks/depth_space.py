"""Reshuffles between channels and space: `pixel_shuffle` and `pixel_unshuffle` (ESPCN's sub-pixel convolution,
super-resolution and detection heads).

Semantics (torch.nn.PixelShuffle(upscale_factor) and torch.nn.PixelUnshuffle(downscale_factor), F.pixel_shuffle
and F.pixel_unshuffle, measured): with factor r, pixel_shuffle takes (N, C*r*r, H, W) to (N, C, H*r, W*r), output
channel c at (h*r + i, w*r + j) being input channel c*r*r + i*r + j at (h, w): the r*r block of a channel's values is
contiguous in the input's channels ("CRD": column, row, depth). pixel_unshuffle is its inverse, (N, C, H*r, W*r) to
(N, C*r*r, H, W). The channels must divide by r*r (shuffle) and the height and width by r (unshuffle), else PyTorch
raises; r = 1 is the identity in PyTorch. ONNX's DepthToSpace in mode CRD computes pixel_shuffle exactly (run: equal
on an arange); its default mode DCR and its SpaceToDepth (which has no mode) take the other order.

TensorFlow's depth_to_space and space_to_depth use that other order ("DCR"): on an NHWC tensor, output channel c at
(h*r + i, w*r + j) is input channel (i*r + j)*C + c, the C channels of one block position contiguous (run on an
arange, r = 2, C = 3: PyTorch reads channels 0, 1, 2, 3 for output channel 0 where TensorFlow reads 0, 3, 6, 9). Keras
3 has no depth-to-space layer; keras.ops.depth_to_space and keras.ops.space_to_depth (Keras 3.15) call
tf.nn.depth_to_space on the TensorFlow backend, so a hand port written with them (or with tf.nn) scrambles the
channels whenever C > 1 (with one output channel the two orders coincide): the catalogue's
`pixel_shuffle_keras_depth_to_space` and `pixel_unshuffle_keras_space_to_depth`. Their `data_format="channels_first"`
does not help: on the TensorFlow backend it transposes to NHWC around tf.nn.depth_to_space (TensorFlow's order again),
while the torch backend's reshapes compute PyTorch's order (measured, Keras 3.15.1: keras/src/backend/{tensorflow,
torch}/nn.py), so the same Keras code gives different outputs on the two backends.

How the harness computes it in Keras: Keras's own Reshape and Permute layers (a keras.Sequential) on the NHWC tensor,
exact copies in any dtype. pixel_shuffle: Reshape to (H, W, C, r, r) (the input channel split as c*r*r + i*r + j),
Permute to (H, r, W, r, C), Reshape to (H*r, W*r, C). pixel_unshuffle: Reshape to (H, r, W, r, C), Permute to
(H, W, C, r, r), Reshape to (H, W, C*r*r). The saved Keras model needs no custom layer. The float64 reference is ONNX's
DepthToSpace (mode CRD) for pixel_shuffle and NumPy's reshape and transpose of the NCHW array for pixel_unshuffle
(ONNX has no CRD SpaceToDepth).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block, Corner, Emulation, SkeletonWriter
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
depth_space_layers = lazy_module("xfw_harness.blocks.depth_space_layers")


def _factor(site: Site) -> int:
    return site.params.get("upscale_factor", site.params.get("downscale_factor"))


def _channels_per_position(site: Site) -> int:
    """C of the (N, C, H*r, W*r) side: the channels whose order PyTorch's and TensorFlow's layouts disagree on (with
    one, depth_to_space's order is PyTorch's, so a reshape written in the wrong order passes)."""
    c = site.in_shape[1]
    return c // _factor(site) ** 2 if "upscale_factor" in site.params else c


# The Keras half is the harness's own Reshape, Permute, Reshape sequence (`_keras_sequence`) at every site; PyTorch's is
# its own module, the reference ONNX's DepthToSpace (CRD) or NumPy's reshape and transpose of the NCHW array.
RESHUFFLE_EMULATIONS = (
    Emulation("keras_reshape_permute_reshape",
              "Keras has no pixel (un)shuffle in PyTorch's channel order: the harness's keras.Sequential of Reshape, "
              "Permute and Reshape on the NHWC tensor, its split shapes and permutation the harness's arithmetic",
              lambda s: True, "reference",
              (Corner("several channels per block position", lambda s: _channels_per_position(s) > 1),
               Corner("one channel per block position", lambda s: _channels_per_position(s) == 1),
               Corner("height != width", lambda s: s.in_shape[2] != s.in_shape[3]),
               Corner("factor 1 (the identity)", lambda s: _factor(s) == 1),
               Corner("odd factor above 2", lambda s: _factor(s) > 2 and _factor(s) % 2 == 1))),
)


class _Reshuffle(Block):
    family = "reshuffles"
    ranks = (4,)
    emulations = RESHUFFLE_EMULATIONS
    factor: str  # the parameter's name, PyTorch's: upscale_factor, downscale_factor
    module_name: str

    def skeleton(self, writer: SkeletonWriter) -> list[str]:
        line = writer.line
        shape = [2, 12, 3, 4] if self.name == "pixel_shuffle" else [2, 3, 4, 6]
        lines = line(0, f"- name: {self.name}_case", "unique in its file; part of the test id")
        lines += line(2, f"block: {self.name}", self.doc)
        lines += line(2, "params:")
        lines += line(4, f"{self.factor}: 2", f"REQUIRED (an example value); {self.params[0].doc}; allowed: "
                      f"{self.params[0].allowed()}")
        lines += writer.input_lines(self, shape)
        lines += writer.tolerance_line()
        lines += line(2, "# expect: {reference: true}", "optional checks beyond torch vs keras")
        lines += line(2, "# sweep:", "each combination of these lists is its own test")
        lines += line(2, f"#   input.shape: [{shape}, [1, 4, 2, 2]]")
        lines += line(2, "#   input.dtype: [float32, float64]")
        return lines

    def torch_module(self, site: Site) -> torch.nn.Module:
        return getattr(torch.nn, self.module_name)(site.params[self.factor])

    native_torch_module = torch_module

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if len(in_shape) != 4:
            raise Refusal(f"{type(module).__name__} on a rank-{len(in_shape)} input {list(in_shape)}: the harness "
                          "takes (N, C, H, W)", field=type(module).__name__)
        return {self.factor: int(getattr(module, self.factor))}

    def _keras_sequence(self, site: Site, first: tuple[int, ...], dims: tuple[int, ...]) -> Any:
        """Reshape to `first`, Permute by `dims`, Reshape to the output's NHWC shape: Keras's own layers."""
        _, c, h, w = self.output_shape(site)
        dtype = site.dtype
        return keras.Sequential([keras.layers.Reshape(first, dtype=dtype), keras.layers.Permute(dims, dtype=dtype),
                                 keras.layers.Reshape((h, w, c), dtype=dtype)])


@register
class PixelShuffle(_Reshuffle):
    name = "pixel_shuffle"
    factor = "upscale_factor"
    module_name = "PixelShuffle"
    doc = ("PyTorch's pixel shuffle: (N, C*r*r, H, W) to (N, C, H*r, W*r), output channel c at (h*r + i, w*r + j) "
           "reading input channel c*r*r + i*r + j (not TensorFlow's depth_to_space order, (i*r + j)*C + c).")
    params = (Param("upscale_factor", "int", minimum=1, doc="r: the channels divide by r*r, height and width "
                    "grow r times"),)
    torch_types = ("PixelShuffle",)
    benchmark = {"params": {"upscale_factor": 2}, "input": BENCHMARK_INPUT}

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        r = site.params["upscale_factor"]
        if site.in_shape[1] % (r * r):
            raise Refusal(f"{site.in_shape[1]} channels do not divide by upscale_factor**2 = {r * r}",
                          field="params.upscale_factor")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, c, h, w = site.in_shape
        r = site.params["upscale_factor"]
        return n, c // (r * r), h * r, w * r

    def keras_layer(self, site: Site) -> Any:
        _, c, h, w = site.in_shape
        r = site.params["upscale_factor"]
        # NHWC channel k = c*r*r + i*r + j: split as (c, i, j), then (h, w, c, i, j) -> (h, i, w, j, c)
        return self._keras_sequence(site, (h, w, c // (r * r), r, r), (1, 4, 2, 5, 3))

    def native_keras_layer(self, site: Site) -> Any:
        if site.params["upscale_factor"] < 2:
            raise Refusal("keras.ops.depth_to_space refuses a block_size below 2", field="params.upscale_factor")
        return depth_space_layers.DepthToSpace(site.params["upscale_factor"], dtype=site.dtype)

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        return onnx_op("DepthToSpace", x, blocksize=site.params["upscale_factor"], mode="CRD")


@register
class PixelUnshuffle(_Reshuffle):
    name = "pixel_unshuffle"
    factor = "downscale_factor"
    module_name = "PixelUnshuffle"
    doc = ("PyTorch's pixel unshuffle, pixel_shuffle's inverse: (N, C, H*r, W*r) to (N, C*r*r, H, W), output channel "
           "c*r*r + i*r + j at (h, w) reading channel c at (h*r + i, w*r + j) (not space_to_depth's (i*r + j)*C + c).")
    params = (Param("downscale_factor", "int", minimum=1, doc="r: height and width divide by r, the channels grow "
                    "r*r times"),)
    torch_types = ("PixelUnshuffle",)
    benchmark = {"params": {"downscale_factor": 2}, "input": BENCHMARK_INPUT}

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        r = site.params["downscale_factor"]
        if site.in_shape[2] % r or site.in_shape[3] % r:
            raise Refusal(f"height and width {list(site.in_shape[2:])} do not divide by downscale_factor {r}",
                          field="params.downscale_factor")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, c, h, w = site.in_shape
        r = site.params["downscale_factor"]
        return n, c * r * r, h // r, w // r

    def keras_layer(self, site: Site) -> Any:
        _, c, h, w = site.in_shape
        r = site.params["downscale_factor"]
        # NHWC (h*r + i, w*r + j, c) split as (h, i, w, j, c) -> (h, w, c, i, j): channel c*r*r + i*r + j
        return self._keras_sequence(site, (h // r, r, w // r, r, c), (1, 3, 5, 2, 4))

    def native_keras_layer(self, site: Site) -> Any:
        if site.params["downscale_factor"] < 2:
            raise Refusal("keras.ops.space_to_depth refuses a block_size below 2", field="params.downscale_factor")
        return depth_space_layers.SpaceToDepth(site.params["downscale_factor"], dtype=site.dtype)

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        n, c, h, w = x.shape
        r = site.params["downscale_factor"]
        blocks = np.reshape(np.asarray(x, np.float64), (n, c, h // r, r, w // r, r))
        return np.reshape(np.transpose(blocks, (0, 1, 3, 5, 2, 4)), (n, c * r * r, h // r, w // r))
