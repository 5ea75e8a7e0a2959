"""The geometry of the convolutions conv1d/2d/3d, depthwise_conv2d and separable_conv2d
(xfw_harness/blocks/convolution.py says what they compute): the explicit padding a site means, which path each
framework's builder takes, and the emulations those paths are (Block.emulations), declared with the very predicates
the builders branch on so that the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from xfw_harness.blocks.base import Corner, Emulation, even_size, odd_size, size_one_axis
from xfw_harness.blocks.site import Site
from xfw_harness.core.spatial import Pads, is_symmetric, resolve_padding

# The dtypes in which depthwise_conv2d's TensorFlow CPU kernel refuses unequal strides.
UNEQUAL_STRIDES_REFUSED_IN = ("float64", "float16")


def conv_pads(site: Site) -> Pads:
    """The explicit (before, after) padding per spatial axis that the site's `padding` means (TensorFlow's `same`
    amounts, the odd cell after)."""
    p = site.params
    return resolve_padding(p["padding"], site.in_shape[2:], p["kernel_size"], p["strides"], p["dilation_rate"])


def torch_native_same(site: Site) -> bool:
    """Whether PyTorch's own padding='same' serves (it exists at stride 1 only, with any padding_mode)."""
    p = site.params
    return p["padding"] == "same" and all(s == 1 for s in p["strides"])


def torch_pads_same(site: Site) -> bool:
    """Whether PyTorch gets TensorFlow's `same` amounts from the harness (`same` at a stride > 1, which it refuses)."""
    return site.params["padding"] == "same" and not torch_native_same(site)


def torch_pad_module_first(site: Site) -> bool:
    """Whether PyTorch's convolution runs at padding 0 after a padding module of the mode (an uneven padding, which
    Conv's `padding` cannot say)."""
    return not torch_native_same(site) and not is_symmetric(conv_pads(site))


def conv_refuses_stride_with_dilation(site: Site) -> bool:
    """Keras's Conv1D/2D/3D refuse strides > 1 with dilation_rate > 1 (keras/src/layers/convolutional/base_conv.py)."""
    p = site.params
    return max(p["strides"]) > 1 and max(p["dilation_rate"]) > 1


def depthwise_refuses_unequal_strides(site: Site) -> bool:
    """TensorFlow's CPU depthwise kernel (float64, float16) refuses unequal strides: found by xfw-harness fuzz."""
    strides = site.params["strides"]
    return len(set(strides)) > 1 and site.dtype in UNEQUAL_STRIDES_REFUSED_IN


def keras_native(site: Site, stride_1: Callable[[Site], bool]) -> bool:
    """Whether Keras's own layer takes the site as it is: 'valid', or zero-padded 'same', at the case's strides."""
    p = site.params
    padding_fits = p["padding"] == "valid" or (p["padding"] == "same" and p["padding_mode"] == "zeros")
    return padding_fits and not stride_1(site)


def keras_pads_with_mode(site: Site) -> bool:
    """Whether Keras pads first with the harness's SpatialPadding (a padding_mode other than zeros, some padding)."""
    return site.params["padding_mode"] != "zeros" and any(map(any, conv_pads(site)))


def keras_pads_zeros(site: Site, stride_1: Callable[[Site], bool]) -> bool:
    """Whether Keras pads zeros first with its ZeroPadding layer, of the harness's amounts, before a 'valid' conv."""
    return (not keras_native(site, stride_1) and site.params["padding_mode"] == "zeros"
            and any(map(any, conv_pads(site))))


def same_amounts_emulated(site: Site, stride_1: Callable[[Site], bool]) -> bool:
    """Whether a side takes TensorFlow's zero `same` amounts from the harness: PyTorch at a stride > 1, or Keras where
    it runs at stride 1 (`stride_1`)."""
    p = site.params
    return (p["padding"] == "same" and p["padding_mode"] == "zeros"
            and (torch_pads_same(site) or not keras_native(site, stride_1)))


def same_amounts_with_mode(site: Site) -> bool:
    """Whether both sides pad TensorFlow's `same` amounts in a padding_mode (`same` at a stride > 1, not zeros)."""
    return site.params["padding_mode"] != "zeros" and torch_pads_same(site)


# --- corners ----------------------------------------------------------------------------------------------------

def _spans(site: Site) -> list[int]:
    p = site.params
    return [(k - 1) * d + 1 for k, d in zip(p["kernel_size"], p["dilation_rate"])]


def kernel_below_stride(site: Site) -> bool:
    return any(span < s for span, s in zip(_spans(site), site.params["strides"]))


def uneven_padding(site: Site) -> bool:
    return not is_symmetric(conv_pads(site))


def padding_over_half_the_window(site: Site) -> bool:
    """Some axis padded by more than half the kernel's span on a side: the outer windows lie mostly in padding."""
    return any(2 * max(pair) > span - 1 for pair, span in zip(conv_pads(site), _spans(site)))


def padded_size_one_axis(site: Site) -> bool:
    return any(n == 1 and any(pair) for n, pair in zip(site.in_shape[2:], conv_pads(site)))


def largest_padding_the_mode_allows(site: Site) -> bool:
    """reflect padding of the length - 1, or circular padding of the whole length, on some axis (PyTorch refuses
    more): where an index pattern that is off by one runs off the input."""
    limit = {"reflect": -1, "circular": 0}.get(site.params["padding_mode"])
    return limit is not None and any(max(pair) == n + limit for n, pair in zip(site.in_shape[2:], conv_pads(site)))


def padding_mode_is(site: Site, mode: str) -> bool:
    return site.params["padding_mode"] == mode


def same_padding(site: Site) -> bool:
    return site.params["padding"] == "same"


# --- the declarations ---------------------------------------------------------------------------------------------
# Built once, at import. mutmut (`make mutation`) picks a mutant when a function is called, so a mutant of code that
# runs only at import would never run: what follows names the predicates above (each mutated and tested there) and
# is itself read at sites by tests/blocks/test_emulation_geometry.py.
# pragma: no mutate start
def _mode(name: str) -> Corner:
    return Corner(name, partial(padding_mode_is, mode=name))


SIZES = (Corner("size-1 axis", size_one_axis), Corner("odd size", odd_size), Corner("even size", even_size))


def conv_emulations(stride_1: Callable[[Site], bool], why_stride_1: str) -> tuple[Emulation, ...]:
    """The emulations of a convolution whose Keras layer runs at stride 1 (then Subsample) where `stride_1` says so."""
    return (
        Emulation("same_amounts",
                  "TensorFlow's `same` amounts (resolve_padding, the odd cell after) where a side cannot take "
                  "'same' itself: PyTorch at a stride > 1 (its padding or a ZeroPad first), Keras where it runs at "
                  "stride 1; the reference lets ONNX's auto_pad SAME_UPPER compute them",
                  partial(same_amounts_emulated, stride_1=stride_1), "reference",
                  (Corner("uneven (a padding module first in PyTorch)", torch_pad_module_first),
                   Corner("kernel below stride", kernel_below_stride), *SIZES)),
        Emulation("same_amounts_with_padding_mode",
                  "TensorFlow's `same` amounts with a padding_mode at a stride > 1: both sides pad the harness's "
                  "amounts (PyTorch: Conv's padding or a padding module of the mode; Keras: SpatialPadding) and "
                  "the reference pads the same amounts (ONNX has no auto_pad with a mode): only expected values "
                  "see where the odd cell goes",
                  same_amounts_with_mode, "output",
                  (Corner("uneven (a padding module first in PyTorch)", torch_pad_module_first),)),
        Emulation("keras_spatial_padding",
                  "Keras has no padding_mode: the harness's SpatialPadding gathers the reflected, replicated or "
                  "wrapped cells by index before a 'valid' convolution; the reference pads with ONNX's Pad",
                  keras_pads_with_mode, "reference",
                  (_mode("reflect"), _mode("replicate"), _mode("circular"),
                   Corner("the largest padding the mode allows", largest_padding_the_mode_allows),
                   Corner("padded size-1 axis", padded_size_one_axis),
                   Corner("padding over half the window", padding_over_half_the_window))),
        Emulation("keras_zero_padding",
                  "Keras has no numeric padding: its ZeroPadding layer of the harness's amounts (resolve_padding) "
                  "before a 'valid' convolution; the reference reads the same amounts, so an expected shape pins "
                  "them",
                  partial(keras_pads_zeros, stride_1=stride_1), "shape",
                  (Corner("padding over half the window", padding_over_half_the_window),
                   Corner("padded size-1 axis", padded_size_one_axis),
                   Corner("kernel below stride", kernel_below_stride))),
        Emulation("keras_stride_1_subsample",
                  f"{why_stride_1}: Keras's layer runs at stride 1 on the explicitly padded input and the harness's "
                  "Subsample keeps every stride-th cell; the reference is ONNX's strided Conv",
                  stride_1, "reference",
                  (Corner("kernel below stride", kernel_below_stride),
                   Corner("same padding", same_padding), *SIZES)),
    )


CONV_EMULATIONS = conv_emulations(conv_refuses_stride_with_dilation,
                                  "Keras's convolution refuses strides > 1 with dilation_rate > 1")
DEPTHWISE_EMULATIONS = conv_emulations(depthwise_refuses_unequal_strides,
                                       "TensorFlow's float64/float16 depthwise kernel refuses unequal strides")
SEPARABLE_EMULATIONS = (
    *DEPTHWISE_EMULATIONS,
    Emulation("torch_depthwise_then_pointwise",
              "PyTorch has no separable layer: the harness chains Conv2d(C, C*m, groups=C, bias=False) and a 1x1 "
              "Conv2d with the bias; the reference chains ONNX's two Convs, Keras runs its SeparableConv2D",
              lambda s: True, "reference",
              (Corner("depth_multiplier > 1", lambda s: s.params["depth_multiplier"] > 1),
               Corner("no bias", lambda s: not s.params["use_bias"]))),
)
# pragma: no mutate end
