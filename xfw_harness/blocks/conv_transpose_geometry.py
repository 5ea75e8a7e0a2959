"""The geometry of the transposed convolutions (xfw_harness/blocks/conv_transpose.py says what it computes): the crops
of the full transposed convolution, which path each framework's builder takes, and the emulations those paths are
(Block.emulations), declared with the very predicates the builders branch on so that the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from xfw_harness.blocks.base import Corner, Emulation, even_size, odd_size, size_one_axis
from xfw_harness.blocks.site import Site


def transposed_crop_1d(size: int, kernel: int, stride: int, dilation: int, padding: Any,
                       output_padding: int) -> tuple[int, int]:
    """(before, after) of conv2d_transpose on one axis (module docstring): the output is the full transposed
    convolution, (size - 1)*stride + (kernel - 1)*dilation + 1 long, less `before` cells at the start and `after` at
    the end; a negative `after` appends -after cells that no input reaches."""
    if padding == "same":
        keff = (kernel - 1) * dilation + 1
        total = max(keff - stride, 0)
        return total // 2, total - total // 2 - max(stride - keff, 0)
    return padding, padding - output_padding


def transposed_crops(site: Site) -> tuple[tuple[int, int], ...]:
    """((before, after) per spatial axis): see transposed_crop_1d."""
    p, spatial = site.params, len(site.in_shape) - 2
    padding = (0,) * spatial if p["padding"] == "valid" else p["padding"]
    per_axis = ("same",) * spatial if padding == "same" else padding
    return tuple(transposed_crop_1d(*args) for args in zip(
        site.in_shape[2:], p["kernel_size"], p["strides"], p["dilation_rate"], per_axis, p["output_padding"]))


def torch_takes_crops(site: Site) -> bool:
    """Whether PyTorch's ConvTranspose takes the crops as padding and output_padding (else: padding 0, the
    extension as output_padding, then a ZeroPad with negative amounts, which crops)."""
    p = site.params
    return all(0 <= before - after < max(s, d)
               for (before, after), s, d in zip(transposed_crops(site), p["strides"], p["dilation_rate"]))


def keras_by_zeros(site: Site) -> bool:
    """Whether Keras runs it as stride 1 on the input with zeros inserted between its cells (strided and dilated:
    Keras refuses it; a strided 1x1 kernel: TensorFlow's oneDNN gradient kernels corrupt the heap on a batch of
    one, measured)."""
    p = site.params
    return max(p["strides"]) > 1 and (max(p["dilation_rate"]) > 1 or max(p["kernel_size"]) == 1)


def keras_native_same(site: Site) -> bool:
    return site.params["padding"] == "same" and not keras_by_zeros(site)


def _kernel_below_stride(site: Site) -> bool:
    p = site.params
    return any((k - 1) * d + 1 < s for k, s, d in zip(p["kernel_size"], p["strides"], p["dilation_rate"]))


def _extends(site: Site) -> bool:
    """Whether some axis gets cells appended that no input reaches (a negative `after`)."""
    return any(after < 0 for _, after in transposed_crops(site))


TRANSPOSE_EMULATIONS = (
    Emulation("same_crop_arithmetic",
              "TensorFlow's `same` for a kernel that spans less than the stride: the harness's own crop arithmetic "
              "(transposed_crop_1d) sizes PyTorch's output, and the reference reads it too (onnx.reference gets that "
              "case wrong)",
              lambda s: s.params["padding"] == "same" and _kernel_below_stride(s), "shape",
              (Corner("size-1 axis", size_one_axis), Corner("odd size", odd_size), Corner("even size", even_size),
               Corner("extended (a negative after)", _extends))),
    Emulation("torch_crop_by_negative_padding",
              "PyTorch's ConvTranspose cannot take the crops as padding/output_padding (an extension of a stride or "
              "more, or a crop larger at the end than at the start): the harness runs it at padding 0 with the "
              "extension as output_padding, then crops with a ZeroPad of negative amounts",
              lambda s: not torch_takes_crops(s), "reference",
              (Corner("size-1 axis", size_one_axis), Corner("odd size", odd_size), Corner("even size", even_size))),
    Emulation("keras_valid_then_crop",
              "Keras's transposed convolution at padding 'valid' (output_padding = the extension), then "
              "Cropping of the harness's crops: Keras has no numeric padding",
              lambda s: not keras_native_same(s) and not keras_by_zeros(s), "reference",
              (Corner("size-1 axis", size_one_axis), Corner("odd size", odd_size), Corner("even size", even_size),
               Corner("output_padding", lambda s: any(s.params["output_padding"])))),
    Emulation("keras_inserted_zeros",
              "Keras runs it at stride 1 on the input with stride-1 zeros inserted between its cells (InsertZeros), "
              "zero-padded at the end by the extension, then cropped: strided with dilation (Keras refuses it) or a "
              "strided 1x1 kernel (TensorFlow's gradient kernels corrupt the heap)",
              keras_by_zeros, "reference",
              (Corner("1x1 kernel", lambda s: max(s.params["kernel_size"]) == 1),
               Corner("dilated", lambda s: max(s.params["dilation_rate"]) > 1),
               Corner("kernel below stride", _kernel_below_stride))),
    Emulation("keras_grouped",
              "Keras's transposed convolution has no groups: the harness's GroupedConvTranspose runs "
              "keras.ops.conv_transpose on each group's channels and concatenates",
              lambda s: s.params["groups"] > 1, "reference",
              (Corner("with crops", lambda s: not keras_native_same(s)),)),
)
