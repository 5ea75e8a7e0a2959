"""The emulations' geometry read at its edges (issue 18): the predicates the builders branch on and the corners the
emulations name (xfw_harness/blocks/*_geometry.py, Block.emulations).

Every emulated path computes the same numbers as a framework's own layer would, so a predicate that picks a needless
emulation, or a corner that holds where it should not, changes no case's verdict: it hides. A corner that holds too
widely lets tests/tools/test_emulations.py call an emulation pinned at that corner when no shipped case reaches it; a
path predicate that emulates where the framework's own layer serves tests the harness's arithmetic where a user's
port runs the framework's layer. So each predicate is read here on sites on either side of its boundary, and the
transposed convolutions' crop arithmetic against PyTorch's documented output size, which no harness code computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from xfw_harness.blocks import Site, get_block
from xfw_harness.blocks import conv_transpose_geometry as transpose
from xfw_harness.blocks import convolution_geometry as conv
from xfw_harness.blocks import pooling_geometry as pool
from xfw_harness.blocks.base import even_size, odd_size, size_one_axis
from xfw_harness.core.schema import normalise_params


def _site(block: str, shape: tuple[int, ...], dtype: str = "float32", **raw: Any) -> Site:
    return Site(normalise_params(get_block(block).params, raw), shape, dtype, "eval")


def _t2(shape: tuple[int, ...] = (1, 2, 4, 4), **raw: Any) -> Site:
    return _site("conv2d_transpose", shape, filters=2, **raw)


def _c2(shape: tuple[int, ...] = (1, 2, 5, 5), dtype: str = "float32", **raw: Any) -> Site:
    return _site("conv2d", shape, dtype, filters=2, **raw)


def _dw(shape: tuple[int, ...] = (1, 2, 5, 5), dtype: str = "float32", **raw: Any) -> Site:
    return _site("depthwise_conv2d", shape, dtype, **raw)


def _max(shape: tuple[int, ...] = (1, 2, 5, 5), dtype: str = "float32", **raw: Any) -> Site:
    return _site(f"max_pool{len(shape) - 2}d", shape, dtype, **raw)


def _avg(shape: tuple[int, ...] = (1, 2, 5, 5), dtype: str = "float32", **raw: Any) -> Site:
    """An average pooling; count_include_pad (the harness's default: False, Keras's) True unless given."""
    raw.setdefault("count_include_pad", True)
    return _site(f"avg_pool{len(shape) - 2}d", shape, dtype, **raw)


def _check(predicate: Callable[[Site], Any], site: Site, expected: Any) -> None:
    got = predicate(site)
    assert got == expected, f"{predicate.__name__}({site.params}, in_shape {site.in_shape}) = {got}, not {expected}"


# --- the shared corners (blocks/base.py) ---------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "one", "odd", "even"), [
    ((1, 3, 1, 4), True, True, True),
    ((5, 1, 4, 6), False, False, True),   # batch and channels are not spatial axes
    ((2, 4, 3), False, True, False),
    ((1, 1, 2, 2, 2), False, False, True),
])
def test_the_shared_corners_read_the_spatial_axes_only(shape: tuple[int, ...], one: bool, odd: bool,
                                                        even: bool) -> None:
    site = Site({}, shape, "float32", "eval")
    _check(size_one_axis, site, one)
    _check(odd_size, site, odd)
    _check(even_size, site, even)


# --- transposed convolutions --------------------------------------------------------------------------------------
def _torch_transposed_size(n: int, k: int, s: int, p: int, op: int, d: int) -> int:
    """PyTorch's ConvTranspose output size, as its documentation writes it (torch.nn.ConvTranspose2d)."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


@pytest.mark.parametrize("raw", [
    {"kernel_size": 3, "padding": "valid"},
    {"kernel_size": 3, "strides": 2, "padding": "valid"},
    {"kernel_size": 3, "strides": 2, "padding": 1, "output_padding": 1},
    {"kernel_size": [2, 3], "strides": [3, 1], "padding": [0, 2], "dilation_rate": [1, 2]},
    {"kernel_size": 1, "strides": 3, "output_padding": 2},
    {"kernel_size": 2, "strides": 2, "dilation_rate": 2, "padding": 1, "output_padding": 1},
])
def test_transposed_output_size_is_pytorchs_documented_one(raw: dict[str, Any]) -> None:
    site = _t2((1, 2, 4, 5), **raw)
    p = site.params
    padding = (0, 0) if p["padding"] == "valid" else p["padding"]
    want = tuple(_torch_transposed_size(*args) for args in zip(
        site.in_shape[2:], p["kernel_size"], p["strides"], padding, p["output_padding"], p["dilation_rate"]))
    assert get_block("conv2d_transpose").output_shape(site)[2:] == want


@pytest.mark.parametrize(("raw", "crops"), [
    ({"kernel_size": 3, "padding": "valid"}, ((0, 0), (0, 0))),
    ({"kernel_size": 3, "strides": 2, "padding": 1, "output_padding": 1}, ((1, 0), (1, 0))),
    ({"kernel_size": 3, "strides": 2, "padding": "same"}, ((0, 1), (0, 1))),   # TensorFlow: the odd cell at the end
    ({"kernel_size": 1, "strides": 2, "padding": "same"}, ((0, -1), (0, -1))),  # one cell appended
])
def test_transposed_crops(raw: dict[str, Any], crops: tuple[tuple[int, int], ...]) -> None:
    _check(transpose.transposed_crops, _t2(**raw), crops)


@pytest.mark.parametrize(("raw", "native"), [
    ({"kernel_size": 3, "padding": 1}, True),                                 # equal crops: padding itself
    ({"kernel_size": 3, "strides": 2, "padding": 1, "output_padding": 1}, True),
    ({"kernel_size": 3, "strides": 2, "padding": "same"}, False),           # more cropped at the end
    ({"kernel_size": 1, "strides": 2, "padding": "same"}, True),            # an extension under the stride
    ({"kernel_size": 1, "strides": 3, "padding": "same"}, True),
])
def test_pytorch_takes_the_crops_itself_wherever_its_padding_can_say_them(raw: dict[str, Any], native: bool) -> None:
    _check(transpose.torch_takes_crops, _t2(**raw), native)


@pytest.mark.parametrize(("raw", "by_zeros"), [
    ({"kernel_size": 3, "strides": 2}, False),
    ({"kernel_size": 3, "dilation_rate": 2}, False),   # stride 1: Keras's own layer takes the dilation
    ({"kernel_size": 1}, False),                        # a 1x1 kernel at stride 1
    ({"kernel_size": 3, "strides": [1, 2], "dilation_rate": [2, 1]}, True),
    ({"kernel_size": 1, "strides": 2}, True),
    ({"kernel_size": [1, 3], "strides": 2}, False),
])
def test_keras_inserts_zeros_only_where_its_layer_refuses_or_crashes(raw: dict[str, Any], by_zeros: bool) -> None:
    _check(transpose.keras_by_zeros, _t2(**raw), by_zeros)


@pytest.mark.parametrize(("raw", "below", "extends"), [
    ({"kernel_size": 1, "strides": 2, "padding": "same"}, True, True),
    ({"kernel_size": 2, "strides": 2, "padding": "same"}, False, False),             # the span equals the stride
    ({"kernel_size": 2, "strides": 3, "dilation_rate": 2}, False, False),           # span 3
    ({"kernel_size": 2, "strides": [1, 3]}, True, False),
    ({"kernel_size": 3, "strides": 2, "output_padding": 1}, False, True),            # padding 0: after = -1
    ({"kernel_size": 3, "strides": 2, "padding": 1, "output_padding": 1}, False, False),  # after = 0
])
def test_transposed_corners(raw: dict[str, Any], below: bool, extends: bool) -> None:
    site = _t2(**raw)
    _check(transpose._kernel_below_stride, site, below)
    _check(transpose._extends, site, extends)


# --- convolutions -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "native_same", "module_first"), [
    ({"kernel_size": 3, "padding": "same"}, True, False),
    ({"kernel_size": 2, "padding": "same"}, True, False),                   # PyTorch's own `same` pads unevenly
    ({"kernel_size": 3, "strides": 2, "padding": "same"}, False, False),   # size 5: one cell each side
    ({"kernel_size": 2, "strides": 2, "padding": "same"}, False, True),    # size 5: one cell, after
    ({"kernel_size": 3, "padding": [1, 2]}, False, False),
    ({"kernel_size": 3, "padding": "valid"}, False, False),
])
def test_pytorch_convolution_paths(raw: dict[str, Any], native_same: bool, module_first: bool) -> None:
    site = _c2(**raw)
    _check(conv.torch_native_same, site, native_same)
    _check(conv.torch_pads_same, site, raw.get("padding") == "same" and not native_same)
    _check(conv.torch_pad_module_first, site, module_first)


@pytest.mark.parametrize(("raw", "refused"), [
    ({"kernel_size": 3, "strides": 2}, False),
    ({"kernel_size": 3, "dilation_rate": 2}, False),
    ({"kernel_size": 3, "strides": [2, 1], "dilation_rate": [1, 2]}, True),
])
def test_keras_convolution_refuses_stride_with_dilation(raw: dict[str, Any], refused: bool) -> None:
    _check(conv.conv_refuses_stride_with_dilation, _c2(**raw), refused)


@pytest.mark.parametrize(("strides", "dtype", "refused"), [
    ([1, 2], "float64", True), ([2, 1], "float16", True), ([1, 2], "float32", False), ([2, 2], "float64", False),
])
def test_tensorflows_depthwise_kernel_refuses_unequal_strides_in_two_dtypes(strides: list[int], dtype: str,
                                                                             refused: bool) -> None:
    _check(conv.depthwise_refuses_unequal_strides, _dw(dtype=dtype, kernel_size=3, strides=strides), refused)


@pytest.mark.parametrize(("raw", "native", "mode_pad", "zeros_pad"), [
    ({"kernel_size": 3, "strides": 2, "padding": "valid"}, True, False, False),
    ({"kernel_size": 3, "strides": 2, "padding": "same"}, True, False, False),
    ({"kernel_size": 3, "strides": 2, "padding": "same", "padding_mode": "reflect"}, False, True, False),
    ({"kernel_size": 3, "padding": "same", "padding_mode": "reflect"}, False, True, False),
    ({"kernel_size": 1, "padding": "same", "padding_mode": "reflect"}, False, False, False),  # nothing to pad
    ({"kernel_size": 3, "padding": 1}, False, False, True),
    ({"kernel_size": 3, "padding": [0, 1], "padding_mode": "circular"}, False, True, False),
    ({"kernel_size": 3, "padding": 0}, False, False, False),   # numeric: 'valid' after no padding step
    ({"kernel_size": 3, "strides": 2, "dilation_rate": 2, "padding": "same"}, False, False, True),  # at stride 1
])
def test_keras_convolution_paths(raw: dict[str, Any], native: bool, mode_pad: bool, zeros_pad: bool) -> None:
    site = _c2(**raw)
    stride_1 = conv.conv_refuses_stride_with_dilation
    _check(lambda s: conv.keras_native(s, stride_1), site, native)
    _check(conv.keras_pads_with_mode, site, mode_pad)
    _check(lambda s: conv.keras_pads_zeros(s, stride_1), site, zeros_pad)


@pytest.mark.parametrize(("shape", "raw", "corners"), [
    ((1, 2, 5, 5), {"kernel_size": 1, "strides": 2}, {"kernel_below_stride"}),
    ((1, 2, 5, 5), {"kernel_size": 2, "strides": 2}, set()),
    ((1, 2, 5, 5), {"kernel_size": 2, "strides": 3, "dilation_rate": 2}, set()),
    ((1, 2, 5, 5), {"kernel_size": 2, "strides": 2, "padding": "same"}, {"uneven_padding", "padding_over_half"}),
    ((1, 2, 5, 5), {"kernel_size": 3, "padding": 1}, set()),                        # 2*1 == span - 1
    ((1, 2, 5, 5), {"kernel_size": 3, "padding": [2, 0]}, {"padding_over_half"}),
    ((1, 2, 1, 5), {"kernel_size": 3, "padding": [1, 0]}, {"padded_size_one_axis"}),
    ((1, 2, 1, 5), {"kernel_size": 3, "padding": [0, 1]}, set()),                   # the size-1 axis unpadded
    ((1, 2, 5, 5), {"kernel_size": 5, "padding": 4, "padding_mode": "reflect"}, {"padding_over_half", "largest"}),
    ((1, 2, 5, 5), {"kernel_size": 5, "padding": 3, "padding_mode": "reflect"}, {"padding_over_half"}),
    ((1, 2, 4, 6), {"kernel_size": 5, "padding": 4, "padding_mode": "circular"}, {"padding_over_half", "largest"}),
    ((1, 2, 5, 6), {"kernel_size": 5, "padding": 4, "padding_mode": "circular"}, {"padding_over_half"}),
    ((1, 2, 5, 5), {"kernel_size": 5, "padding": 4, "padding_mode": "replicate"}, {"padding_over_half"}),
])
def test_convolution_corners(shape: tuple[int, ...], raw: dict[str, Any], corners: set[str]) -> None:
    site = _c2(shape, **raw)
    named = {"kernel_below_stride": conv.kernel_below_stride, "uneven_padding": conv.uneven_padding,
             "padding_over_half": conv.padding_over_half_the_window, "padded_size_one_axis": conv.padded_size_one_axis,
             "largest": conv.largest_padding_the_mode_allows}
    assert {name for name, holds in named.items() if holds(site)} == corners


# --- window pooling -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("site", "window", "strides", "pads", "full"), [
    (_max(pool_size=2), (2, 2), (2, 2), ((0, 0),) * 2, ((0, 0),) * 2),                  # strides default: the window
    (_max(pool_size=2, ceil_mode=True), (2, 2), (2, 2), ((0, 0),) * 2, ((0, 1),) * 2),   # 5: a third window
    (_max((1, 2, 4, 4), pool_size=2, ceil_mode=True), (2, 2), (2, 2), ((0, 0),) * 2, ((0, 0),) * 2),
    (_max(pool_size=3, strides=2, padding="same"), (3, 3), (2, 2), ((1, 1),) * 2, ((1, 1),) * 2),
    (_max((1, 2, 6, 6), pool_size=3, strides=2, padding="same"), (3, 3), (2, 2), ((0, 1),) * 2, ((0, 1),) * 2),
    (_max((1, 2, 5), pool_size=2, dilation=2, padding="same"), (2,), (2,), ((1, 1),), ((1, 1),)),
    (_avg(pool_size=2, ceil_mode=True), (2, 2), (2, 2), ((0, 0),) * 2, ((0, 1),) * 2),
])
def test_pooling_geometry(site: Site, window: tuple[int, ...], strides: tuple[int, ...],
                          pads: tuple[tuple[int, int], ...], full: tuple[tuple[int, int], ...]) -> None:
    assert pool.geometry(site) == (window, strides, pads)
    assert pool.padded_geometry(site) == (window, strides, pads, full)


@pytest.mark.parametrize(("window", "pads", "native"), [
    ((3, 3), ((1, 1), (1, 1)), (1, 1)),
    ((2, 2), ((1, 1), (0, 0)), (1, 0)),     # half the window: PyTorch's limit
    ((2, 2), ((1, 1), (2, 2)), None),
    ((3, 3), ((0, 1), (0, 0)), None),
])
def test_pytorch_pooling_takes_symmetric_padding_up_to_half_the_window(
        window: tuple[int, ...], pads: tuple[tuple[int, int], ...], native: tuple[int, ...] | None) -> None:
    assert pool.torch_native_padding(window, pads) == native


@pytest.mark.parametrize(("shape", "dtype", "has"), [
    ((1, 2, 4, 4, 4), "float64", False), ((1, 2, 4, 4, 4), "float16", False), ((1, 2, 4, 4, 4), "float32", True),
    ((1, 2, 4, 4, 4), "bfloat16", True), ((1, 2, 4, 4), "float64", True), ((1, 2, 4), "float16", True),
])
def test_tensorflow_has_no_3d_pooling_kernel_in_float64_and_float16(shape: tuple[int, ...], dtype: str,
                                                                    has: bool) -> None:
    _check(pool.keras_has_kernel, _max(shape, dtype, pool_size=2), has)


@pytest.mark.parametrize(("site", "torch_path", "keras_path"), [
    (_max(pool_size=2), "native", "native"),
    (_max(pool_size=3, padding=1), "native", "neg_inf_pad"),
    (_max(pool_size=2, padding=[1, 0]), "native", "neg_inf_pad"),        # half the window: PyTorch's limit
    (_max(pool_size=3, padding=[2, 0]), "neg_inf_pad", "neg_inf_pad"),   # more than half: 2 > 3 // 2
    (_max(pool_size=2, ceil_mode=True), "native", "neg_inf_pad"),
    (_max((1, 2, 4, 4), pool_size=2, ceil_mode=True), "native", "native"),  # no overhang: ceil is floor
    (_max((1, 2, 6, 6), pool_size=3, strides=2, padding="same"), "neg_inf_pad", "native"),
    (_max(pool_size=3, strides=1, padding="same"), "native", "native"),
    (_max(pool_size=3, padding="same"), "neg_inf_pad", "native"),        # strides 3 on 5: (0, 1)
    (_max(pool_size=2, dilation=[1, 2]), "native", "taps"),
    (_max((1, 2, 4, 4, 4), "float64", pool_size=2), "native", "taps"),
    (_max((1, 2, 4, 4, 4), "float32", pool_size=2), "native", "native"),
])
def test_max_pooling_paths(site: Site, torch_path: str, keras_path: str) -> None:
    _check(pool.torch_max_path, site, torch_path)
    _check(pool.keras_max_path, site, keras_path)


@pytest.mark.parametrize(("site", "torch_path", "keras_path"), [
    (_avg(pool_size=2), "native", "native"),
    (_avg(pool_size=3, padding=1), "native", "zero_pad"),
    (_avg(pool_size=3, padding=1, count_include_pad=False), "native", "sum_over_count"),
    (_avg(pool_size=2, padding=[1, 0]), "native", "zero_pad"),
    (_avg(pool_size=2, padding=[2, 0]), "zero_pad", "zero_pad"),
    (_avg(pool_size=2, padding=[2, 0], count_include_pad=False), "sum_over_count", "sum_over_count"),
    (_avg(pool_size=2, ceil_mode=True), "native", "sum_over_count"),
    (_avg((1, 2, 4, 4), pool_size=2, ceil_mode=True), "native", "native"),
    (_avg(pool_size=2, padding=[2, 0], ceil_mode=True), "sum_over_count", "sum_over_count"),
    (_avg(pool_size=3, strides=1, padding="same", count_include_pad=False), "native", "native"),
    (_avg(pool_size=3, strides=1, padding="same"), "native", "zero_pad"),
    (_avg(pool_size=3, padding="same"), "zero_pad", "zero_pad"),          # strides 3 on 5: (0, 1)
    (_avg((1, 2, 2, 4, 4), pool_size=3, padding=1), "zero_pad", "zero_pad"),   # AvgPool3d: input under the window
    (_avg((1, 2, 3, 4, 4), pool_size=3, padding=1), "native", "zero_pad"),
    (_avg((1, 2, 2, 4, 4), pool_size=3, padding=1, count_include_pad=False), "sum_over_count", "sum_over_count"),
    (_avg((1, 2, 4, 4, 4), "float16", pool_size=2), "native", "taps"),
])
def test_average_pooling_paths(site: Site, torch_path: str, keras_path: str) -> None:
    _check(pool.torch_avg_path, site, torch_path)
    _check(pool.keras_avg_path, site, keras_path)


@pytest.mark.parametrize(("backend", "site", "keras_path"), [
    ("tensorflow", _avg((1, 2, 6, 6), pool_size=3, strides=2, padding="same", count_include_pad=False), "native"),
    ("jax", _avg((1, 2, 6, 6), pool_size=3, strides=2, padding="same", count_include_pad=False), "native"),
    # Keras's torch backend pads an unequal `same` with replicated cells and counts them (backend_differences.yaml)
    ("torch", _avg((1, 2, 6, 6), pool_size=3, strides=2, padding="same", count_include_pad=False), "sum_over_count"),
    ("torch", _avg(pool_size=3, strides=2, padding="same", count_include_pad=False), "native"),  # (1, 1): equal
])
def test_keras_average_pooling_same_on_each_backend(monkeypatch: pytest.MonkeyPatch, backend: str, site: Site,
                                                     keras_path: str) -> None:
    monkeypatch.setattr(pool, "home_backend", lambda: backend)
    _check(pool.keras_avg_path, site, keras_path)


@pytest.mark.parametrize(("site", "corners"), [
    (_max(pool_size=2), set()),
    (_max(pool_size=1, strides=2), {"below"}),
    (_max(pool_size=2, strides=3, dilation=2), set()),              # span 3
    (_max(pool_size=2, strides=[2, 3]), {"below"}),
    (_max(pool_size=3, padding=1), {"padded"}),                      # 1 == 3 // 2
    (_max(pool_size=2, padding=[1, 0]), {"padded"}),
    (_max(pool_size=3, padding=[2, 0]), {"padded", "over_half"}),
    (_max((1, 2, 6, 6), pool_size=3, strides=2, padding="same"), {"padded", "asymmetric"}),
    (_max(pool_size=2, ceil_mode=True), {"overhang"}),
    (_avg(pool_size=2, ceil_mode=True), {"overhang", "counted_overhang"}),
    (_avg(pool_size=2, ceil_mode=True, count_include_pad=False), {"overhang"}),
    (_avg(pool_size=3, padding=1, count_include_pad=False), {"padded", "uncounted"}),
    (_avg((1, 2, 2, 4, 4), pool_size=3), {"small_3d"}),
    (_avg((1, 2, 3, 4, 4), pool_size=3), set()),
    (_avg((1, 2, 2, 4), pool_size=3), set()),                        # 2-D: AvgPool2d takes it
])
def test_pooling_corners(site: Site, corners: set[str]) -> None:
    named = {"below": pool._kernel_below_stride, "over_half": pool._padding_over_half, "asymmetric": pool._asymmetric,
             "overhang": pool._overhang, "padded": pool._padded, "uncounted": pool._uncounted_padding,
             "counted_overhang": pool._counted_overhang, "small_3d": pool._three_d_smaller_than_window}
    if "count_include_pad" not in site.params:  # max pooling: its emulations name no counting corner
        del named["uncounted"], named["counted_overhang"]
    assert {name for name, holds in named.items() if holds(site)} == corners


# --- the declarations: which emulations run at a site, and which of their corners it reaches ---------------------
def _declared(block: str, site: Site) -> dict[str, set[str]]:
    """{emulation: the names of its corners that hold} for every emulation of `block` that runs at `site`."""
    return {e.name: {c.name for c in e.corners if c.applies(at)} for _, e, at in get_block(block).emulations_at(site)}


SIZES_EVEN = {"even size"}
SIZES_ODD = {"odd size"}


@pytest.mark.parametrize(("block", "site", "declared"), [
    ("conv2d", _c2(kernel_size=3, padding="valid"), {}),
    ("conv2d", _c2(kernel_size=2, padding="same"), {}),   # stride 1: each framework's own `same`
    ("conv2d", _c2((1, 2, 6, 6), kernel_size=3, strides=2, padding="same"),
     {"same_amounts": {"uneven (a padding module first in PyTorch)", *SIZES_EVEN}}),
    ("conv2d", _c2(kernel_size=3, padding=1), {"keras_zero_padding": set()}),
    ("conv2d", _c2(kernel_size=1, strides=2, padding=[1, 0]),
     {"keras_zero_padding": {"padding over half the window", "kernel below stride"}}),
    ("conv2d", _c2(kernel_size=3, padding="same", padding_mode="reflect"), {"keras_spatial_padding": {"reflect"}}),
    ("conv2d", _c2((1, 2, 6, 6), kernel_size=2, strides=2, padding="same", padding_mode="circular"),
     {"same_amounts_with_padding_mode": set()}),                                     # nothing to pad: 6 = 3 * 2
    ("conv2d", _c2(kernel_size=2, strides=2, padding="same", padding_mode="circular"),
     {"keras_spatial_padding": {"circular", "padding over half the window"},
      "same_amounts_with_padding_mode": {"uneven (a padding module first in PyTorch)"}}),
    ("conv2d", _c2((1, 2, 1, 5), kernel_size=3, padding=[1, 0], padding_mode="replicate"),
     {"keras_spatial_padding": {"replicate", "padded size-1 axis"}}),
    ("conv2d", _c2(kernel_size=3, strides=2, dilation_rate=2),
     {"keras_stride_1_subsample": SIZES_ODD}),
    ("conv2d", _c2((1, 2, 1, 6), kernel_size=[1, 3], strides=2, dilation_rate=2, padding="same"),
     {"same_amounts": {"size-1 axis", *SIZES_ODD, *SIZES_EVEN, "kernel below stride",
                       "uneven (a padding module first in PyTorch)"},
      "keras_zero_padding": {"kernel below stride"},              # (1, 2) on the width: 2 * 2 = span 5 - 1
      "keras_stride_1_subsample": {"size-1 axis", *SIZES_ODD, *SIZES_EVEN, "kernel below stride", "same padding"}}),
    ("separable_conv2d", _site("separable_conv2d", (1, 2, 5, 5), filters=3, kernel_size=3, depth_multiplier=2),
     {"torch_depthwise_then_pointwise": {"depth_multiplier > 1"}}),
    ("depthwise_conv2d", _dw(dtype="float64", kernel_size=3, strides=[1, 2]),
     {"keras_stride_1_subsample": SIZES_ODD}),
    ("depthwise_conv2d", _dw(kernel_size=3, strides=[1, 2]), {}),
])
def test_convolution_emulations_declared_at_a_site(block: str, site: Site, declared: dict[str, set[str]]) -> None:
    assert _declared(block, site) == declared


@pytest.mark.parametrize(("site", "declared"), [
    (_t2(kernel_size=3, strides=2, padding=1, output_padding=1), {"keras_valid_then_crop": {"output_padding",
                                                                                            *SIZES_EVEN}}),
    (_t2((1, 2, 1, 5), kernel_size=3), {"keras_valid_then_crop": {"size-1 axis", *SIZES_ODD}}),
    (_t2(kernel_size=3, strides=2, padding="same"), {"torch_crop_by_negative_padding": SIZES_EVEN}),
    (_t2(kernel_size=1, strides=2, padding="same"),
     {"same_crop_arithmetic": {"extended (a negative after)", *SIZES_EVEN},
      "keras_inserted_zeros": {"1x1 kernel", "kernel below stride"}}),
    (_t2(kernel_size=3, strides=2, dilation_rate=2), {"keras_inserted_zeros": {"dilated"}}),
    (_site("conv2d_transpose", (1, 4, 4, 4), filters=2, kernel_size=3, groups=2, padding=1),
     {"keras_valid_then_crop": SIZES_EVEN, "keras_grouped": {"with crops"}}),
    (_site("conv2d_transpose", (1, 4, 4, 4), filters=2, kernel_size=3, strides=2, groups=2, padding="same"),
     {"torch_crop_by_negative_padding": SIZES_EVEN, "keras_grouped": set()}),
])
def test_transposed_emulations_declared_at_a_site(site: Site, declared: dict[str, set[str]]) -> None:
    assert _declared("conv2d_transpose", site) == declared


@pytest.mark.parametrize(("site", "declared"), [
    (_max((1, 2, 4, 4), pool_size=2), {}),
    (_max(pool_size=3, padding=1), {"keras_neg_inf_pad": {*SIZES_ODD, "numeric padding"}}),
    (_max(pool_size=2, ceil_mode=True), {"keras_neg_inf_pad": {*SIZES_ODD, "ceil mode's overhang"}}),
    (_max((1, 2, 6, 6), pool_size=3, strides=2, padding="same"),
     {"torch_neg_inf_pad": {*SIZES_EVEN, "asymmetric padding"}}),
    (_max(pool_size=3, padding=[2, 0]),
     {"torch_neg_inf_pad": {*SIZES_ODD, "padding over half the window"},
      "keras_neg_inf_pad": {*SIZES_ODD, "padding over half the window", "numeric padding"}}),
    (_max((1, 2, 4, 4), pool_size=1, strides=2, dilation=[1, 2]),
     {"keras_max_by_taps": {*SIZES_EVEN, "kernel below stride", "dilated"}}),
    (_max((1, 2, 3, 4, 4), "float16", pool_size=2, padding=1),
     {"keras_max_by_taps": {*SIZES_ODD, *SIZES_EVEN, "3-D without a TensorFlow kernel", "-inf padding"}}),
    (_avg((1, 2, 4, 4), pool_size=2), {}),
    (_avg(pool_size=2, ceil_mode=True),
     {"keras_avg_sum_over_count": {*SIZES_ODD, "counted padding, ceil overhang", "ceil mode's overhang"}}),
    (_avg(pool_size=3, padding=1, count_include_pad=False),
     {"keras_avg_sum_over_count": {*SIZES_ODD, "uncounted padding"}}),
    (_avg(pool_size=2, padding=[2, 0]),
     {"torch_avg_zero_pad": {*SIZES_ODD, "padding over half the window"},
      "keras_avg_zero_pad": {*SIZES_ODD, "padding over half the window"}}),
    (_avg(pool_size=3, strides=2, padding=[2, 0], count_include_pad=False),
     {"torch_avg_sum_over_count": {*SIZES_ODD, "padding over half the window", "uncounted padding"},
      "keras_avg_sum_over_count": {*SIZES_ODD, "padding over half the window", "uncounted padding"}}),
    (_avg((1, 2, 2, 4, 4), pool_size=3, padding=1),
     {"torch_avg_zero_pad": {*SIZES_EVEN, "3-D input smaller than the window"}, "keras_avg_zero_pad": SIZES_EVEN}),
    (_avg((1, 2, 4, 4, 4), "float64", pool_size=2, ceil_mode=True, count_include_pad=False),
     {"keras_avg_by_taps": SIZES_EVEN}),
])
def test_pooling_emulations_declared_at_a_site(site: Site, declared: dict[str, set[str]]) -> None:
    block = ("max" if "dilation" in site.params else "avg") + f"_pool{site.rank - 2}d"
    assert _declared(block, site) == declared
