"""The geometry of window pooling (xfw_harness/blocks/pooling.py says what it computes): the window, strides and
padding of a site, ceil mode's overhang, which path each framework's builder takes, and the emulations those paths
are (Block.emulations), declared with the very predicates the builders branch on so that the two cannot drift apart.
Framework-free.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from xfw_harness.blocks.base import Corner, Emulation, even_size, odd_size, size_one_axis
from xfw_harness.blocks.site import Site
from xfw_harness.core.backend_choice import home_backend
from xfw_harness.core.spatial import (
    Pads,
    Sizes,
    ceil_overhang,
    effective_kernel,
    is_symmetric,
    resolve_padding,
)


def spatial_axes(site: Site) -> int:
    return len(site.in_shape) - 2


def no_pads(spatial: int) -> Pads:
    return ((0, 0),) * spatial


def dilation(site: Site) -> Sizes:
    """The taps' spacing (max pooling's `dilation`; 1 for average pooling, which has none)."""
    return site.params.get("dilation") or (1,) * spatial_axes(site)


def geometry(site: Site) -> tuple[Sizes, Sizes, Pads]:
    """(window, strides, padding per axis as (before, after))."""
    p = site.params
    k = p["pool_size"]
    s = p["strides"] or k
    return k, s, resolve_padding(p["padding"], site.in_shape[2:], k, s, dilation(site))


def padded_geometry(site: Site) -> tuple[Sizes, Sizes, Pads, Pads]:
    """geometry() and the padding extended by ceil mode's overhang (`full`; equal to `pads` in floor mode):
    floor-mode pooling over the input padded by `full` has exactly ceil mode's windows."""
    k, s, pads = geometry(site)
    span = effective_kernel(k, dilation(site))
    overhang = ceil_overhang(site.in_shape[2:], span, s, pads) if site.params["ceil_mode"] else \
        (0,) * spatial_axes(site)
    return k, s, pads, tuple((before, after + extra) for (before, after), extra in zip(pads, overhang))


def torch_native_padding(k: Sizes, pads: Pads) -> Sizes | None:
    """Padding PyTorch's pooling layers take themselves: symmetric and at most half the window."""
    if is_symmetric(pads) and all(pair[0] <= kk // 2 for pair, kk in zip(pads, k)):
        return tuple(pair[0] for pair in pads)
    return None


def keras_has_kernel(site: Site) -> bool:
    """Whether TensorFlow has a CPU kernel for Keras's pooling layer in the site's dtype: AvgPool3D and MaxPool3D
    only in float32 and bfloat16 (measured: float64 and float16 raise NotFoundError / InvalidArgumentError); 1-D and
    2-D in all four. Elsewhere the harness pools by the window's taps (tap_reduce)."""
    return spatial_axes(site) != 3 or site.dtype not in ("float64", "float16")


# --- the builders' paths (pooling.py branches on these, the emulations below apply by them) ---------------------
def torch_max_path(site: Site) -> str:
    """"native": MaxPool{n}d takes the padding and ceil_mode itself; "neg_inf_pad": ConstantPad of -inf (ceil mode's
    overhang included), then floor-mode pooling."""
    k, _, pads = geometry(site)
    return "native" if torch_native_padding(k, pads) is not None else "neg_inf_pad"


def keras_max_path(site: Site) -> str:
    """"taps": DilatedMaxPooling (a dilation, or no TensorFlow kernel for the dtype), after a -inf pad where any;
    "native": Keras's MaxPooling{n}D as it is (valid or same, floor mode); "neg_inf_pad": SpatialPadding of -inf,
    then `valid` pooling."""
    if any(dd != 1 for dd in dilation(site)) or not keras_has_kernel(site):
        return "taps"
    _, _, pads, full = padded_geometry(site)
    return "native" if site.params["padding"] in ("valid", "same") and full == pads else "neg_inf_pad"


def torch_avg_path(site: Site) -> str:
    """"native": AvgPool{n}d takes padding, ceil_mode and count_include_pad itself; "zero_pad": ZeroPad, then
    `valid` pooling (counted padding, floor mode); "sum_over_count": TorchAvgPoolSumOverCount."""
    k, _, pads, full = padded_geometry(site)
    # AvgPool3d (only it) refuses an input smaller than the window on some axis, padding or not: pad first there.
    if torch_native_padding(k, pads) is not None and (spatial_axes(site) != 3
                                                      or all(n >= kk for n, kk in zip(site.in_shape[2:], k))):
        return "native"
    return "zero_pad" if site.params["count_include_pad"] and full == pads else "sum_over_count"


def keras_avg_path(site: Site) -> str:
    """"taps": PoolSumOverCount by the window's taps (no TensorFlow kernel for the dtype); "native": Keras's
    AveragePooling{n}D as it is; "zero_pad": SpatialPadding of counted zeros, then `valid` pooling;
    "sum_over_count": PoolSumOverCount (uncounted padding, ceil mode's overhang)."""
    if not keras_has_kernel(site):
        return "taps"
    _, _, pads, full = padded_geometry(site)
    padding, include = site.params["padding"], site.params["count_include_pad"]
    keras_same = padding == "same" and not include and (home_backend() != "torch" or all(a == b for a, b in pads))
    if full == pads and (padding == "valid" or keras_same):
        return "native"
    return "zero_pad" if include and full == pads else "sum_over_count"


# --- the corners where a mistake in the harness's pooling arithmetic hides ---------------------------------------
def _kernel_below_stride(site: Site) -> bool:
    k, s, _ = geometry(site)
    return any(span < ss for span, ss in zip(effective_kernel(k, dilation(site)), s))


def _padding_over_half(site: Site) -> bool:
    k, _, pads = geometry(site)
    return any(max(pair) > kk // 2 for pair, kk in zip(pads, k))


def _asymmetric(site: Site) -> bool:
    return not is_symmetric(geometry(site)[2])


def _overhang(site: Site) -> bool:
    _, _, pads, full = padded_geometry(site)
    return full != pads


def _padded(site: Site) -> bool:
    return any(map(any, geometry(site)[2]))


def _uncounted_padding(site: Site) -> bool:
    return _padded(site) and not site.params["count_include_pad"]


def _counted_overhang(site: Site) -> bool:
    return _overhang(site) and site.params["count_include_pad"]


def _three_d_smaller_than_window(site: Site) -> bool:
    return spatial_axes(site) == 3 and any(n < kk for n, kk in zip(site.in_shape[2:], site.params["pool_size"]))


def _dilated(site: Site) -> bool:
    return any(d != 1 for d in dilation(site))


def _no_tensorflow_kernel(site: Site) -> bool:
    return not keras_has_kernel(site)


def takes_path(site: Site, path: Callable[[Site], str], name: str) -> bool:
    """Whether `path` (a builder's path function: torch_max_path, keras_avg_path, ...) picks path `name` at `site`:
    an emulation's `applies`, bound with functools.partial."""
    return path(site) == name


# --- the declarations ---------------------------------------------------------------------------------------------
# Built once, at import. mutmut (`make mutation`) picks a mutant when a function is called, so a mutant of code that
# runs only at import would never run: what follows names the predicates above (each mutated and tested there) and
# is itself read at sites by tests/blocks/test_emulation_geometry.py.
# pragma: no mutate start
SIZES = (Corner("size-1 axis", size_one_axis), Corner("odd size", odd_size), Corner("even size", even_size),
         Corner("kernel below stride", _kernel_below_stride))
OVER_HALF = Corner("padding over half the window", _padding_over_half)
ASYMMETRIC = Corner("asymmetric padding", _asymmetric)
OVERHANG = Corner("ceil mode's overhang", _overhang)


def max_pool_emulations(spatial: int) -> tuple[Emulation, ...]:
    """max_pool{spatial}d's emulations: those of its paths that differ from a framework layer."""
    no_kernel = (Corner("3-D without a TensorFlow kernel", _no_tensorflow_kernel),) if spatial == 3 else ()
    return (
        Emulation("torch_neg_inf_pad",
                  "PyTorch's MaxPool takes no asymmetric padding (TensorFlow's `same`) nor any over half the window: "
                  "the harness pads -inf itself (ConstantPad, ceil mode's overhang included: padded_geometry) and "
                  "pools in floor mode; the reference pads by the same amounts, so only an expected shape pins them",
                  partial(takes_path, path=torch_max_path, name="neg_inf_pad"), "shape",
                  (*SIZES, OVER_HALF, ASYMMETRIC, OVERHANG)),
        Emulation("keras_neg_inf_pad",
                  "Keras's MaxPooling has no numeric padding and no ceil_mode: SpatialPadding of -inf by the "
                  "harness's amounts (the padding, ceil mode's overhang), then `valid` pooling; the reference pads by "
                  "the same amounts, so only an expected shape pins them",
                  partial(takes_path, path=keras_max_path, name="neg_inf_pad"), "shape",
                  (*SIZES, OVER_HALF, OVERHANG, Corner("numeric padding", _padded))),
        Emulation("keras_max_by_taps",
                  "Keras's MaxPooling has no dilation (nor TensorFlow a MaxPool3D kernel in float64 or float16): the "
                  "harness's DilatedMaxPooling takes the maximum of the window's taps (strided slices of the "
                  "-inf-padded input); the reference is ONNX's MaxPool with dilations",
                  partial(takes_path, path=keras_max_path, name="taps"), "reference",
                  (*SIZES, Corner("dilated", _dilated), *no_kernel,
                   Corner("-inf padding", _padded), OVERHANG)),
    )


def avg_pool_emulations(spatial: int) -> tuple[Emulation, ...]:
    """avg_pool{spatial}d's emulations: those of its paths that differ from a framework layer."""
    sum_over_count = (*SIZES, OVER_HALF, Corner("uncounted padding", _uncounted_padding),
                      Corner("counted padding, ceil overhang", _counted_overhang), OVERHANG)
    small = (Corner("3-D input smaller than the window", _three_d_smaller_than_window),) if spatial == 3 else ()
    by_taps = (Emulation("keras_avg_by_taps",
                         "TensorFlow has no AvgPool3D kernel in float64 or float16: the harness's PoolSumOverCount "
                         "sums the window's taps (strided slices) and divides by the mask's; the reference is ONNX's "
                         "AveragePool",
                         partial(takes_path, path=keras_avg_path, name="taps"), "reference",
                         (*SIZES, Corner("padded", _padded), OVERHANG)),) if spatial == 3 else ()
    return (
        Emulation("torch_avg_zero_pad",
                  "PyTorch's AvgPool takes no asymmetric padding nor any over half the window (and AvgPool3d no "
                  "input smaller than the window): with count_include_pad the harness zero-pads by its amounts and "
                  "pools `valid`; the reference pads by the same amounts, so only an expected shape pins them",
                  partial(takes_path, path=torch_avg_path, name="zero_pad"), "shape",
                  (*SIZES, OVER_HALF, ASYMMETRIC, *small)),
        Emulation("torch_avg_sum_over_count",
                  "Where AvgPool cannot take the padding (asymmetric, over half the window) with uncounted padding or "
                  "ceil mode's overhang: the harness's TorchAvgPoolSumOverCount divides the zero-padded window sums "
                  "by those of a mask of the cells that count; the reference is ONNX's AveragePool on counted zeros",
                  partial(takes_path, path=torch_avg_path, name="sum_over_count"), "reference",
                  (*sum_over_count, *small)),
        Emulation("keras_avg_zero_pad",
                  "Keras's AveragePooling has no numeric padding and its `same` leaves the padding uncounted: with "
                  "count_include_pad the harness zero-pads by its amounts (SpatialPadding) and pools `valid`; the "
                  "reference pads by the same amounts, so only an expected shape pins them",
                  partial(takes_path, path=keras_avg_path, name="zero_pad"), "shape", (*SIZES, OVER_HALF, ASYMMETRIC)),
        Emulation("keras_avg_sum_over_count",
                  "Keras's AveragePooling has no ceil_mode nor uncounted numeric padding: the harness's "
                  "PoolSumOverCount divides the zero-padded window sums by those of a mask of the cells that count "
                  "(never ceil mode's overhang); the reference is ONNX's AveragePool on counted zeros",
                  partial(takes_path, path=keras_avg_path, name="sum_over_count"), "reference", sum_over_count),
        *by_taps,
    )
# pragma: no mutate end
