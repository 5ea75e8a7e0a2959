"""Pooling (ceil_mode, the float64 reference, native builders, params_from_torch) and reshaping (zero_padding2d,
upsampling2d).

- The references (ONNX's reference runtime) against PyTorch's own float64 functions, and ceil mode's windows
  against a by-hand loop over the stated semantics (padding PyTorch's layers refuse included).
- Planted mistakes: each realistic wrong mapping passes nothing; the correct adapter passes.
- The native builders build what a hand port writes, and show the real differences they are there to show.
- params_from_torch: a PyTorch module read back into case params computes what the module computes.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import xfw_harness.blocks.keras_layers as keras_layers
import xfw_harness.blocks.padding as padding
import xfw_harness.blocks.pooling as pooling
import xfw_harness.blocks.pooling_layers as pooling_layers
import xfw_harness.blocks.upsampling as upsampling
import xfw_harness.core.spatial as spatial
from xfw_harness.blocks import Site, get_block
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.core.errors import Refusal
from xfw_harness.core.frameworks import keras, tf, to_numpy, torch
from xfw_harness.core.schema import normalise_params

F = torch.nn.functional


def _site(block: str, raw: dict[str, Any], shape: tuple[int, ...], dtype: str = "float64",
          written: frozenset[str] | None = None) -> Site:
    return Site(normalise_params(get_block(block).params, raw), tuple(shape), dtype, "eval", written=written)


def _x(shape: tuple[int, ...], seed: int = 0, dtype: str = "float64") -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _torch_out(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.to(torch.float64 if x.dtype == np.float64 else torch.float32)(torch.from_numpy(x)).numpy()


def _keras_out(layer: Any, x: np.ndarray) -> np.ndarray:
    nhwc = np.moveaxis(x, 1, -1)
    layer.build(nhwc.shape)
    out = to_numpy(layer(tf.constant(nhwc)))
    return np.moveaxis(out, -1, 1) if out.ndim == 4 else out


def _run_block(block: str, raw: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """(harness torch module, harness keras layer, reference, harness output shape) of a point, in float64."""
    b = get_block(block)
    site = _site(block, raw, x.shape, str(x.dtype))
    shape = b.output_shape(site)
    return _torch_out(b.torch_module(site), x), _keras_out(b.keras_layer(site), x), b.reference(site, x, {}), shape


def _pool_by_hand(x: np.ndarray, k: tuple, s: tuple, pads: tuple, out: tuple, op: str, include: bool) -> np.ndarray:
    """The stated semantics, window by window: window (i, j) covers rows i*s - top ... + k; cells past the padded
    bounds [-top, H + bottom) count for nothing; max ignores padding; the average divides by the cells in the
    padded bounds (count_include_pad) or by the real cells."""
    (top, bottom), (left, right) = pads
    h, w = x.shape[2:]
    y = np.empty((*x.shape[:2], *out))
    for i, j in itertools.product(range(out[0]), range(out[1])):
        r0, c0 = i * s[0] - top, j * s[1] - left
        r1, c1 = min(r0 + k[0], h + bottom), min(c0 + k[1], w + right)
        real = x[:, :, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
        if op == "max":
            y[:, :, i, j] = real.max(axis=(2, 3))
        else:
            divisor = (r1 - r0) * (c1 - c0) if include else real.shape[2] * real.shape[3]
            y[:, :, i, j] = real.sum(axis=(2, 3)) / divisor
    return y


# --- the semantics: harness torch, harness keras, reference, PyTorch's own functions, by hand --------------------

POOL_GRID = [(h, k, s, p) for h, k, s, p in itertools.product((4, 5, 7), (2, 3, 4), (1, 2, 3), (0, 1, 2))
             if p <= k // 2]


@pytest.mark.parametrize(("h", "k", "s", "p"), POOL_GRID)
def test_pool_reference_equals_torch_functions(h: int, k: int, s: int, p: int) -> None:
    """ONNX's reference MaxPool/AveragePool (as the blocks call it) against PyTorch's own float64 max_pool2d and
    avg_pool2d, floor and ceil mode, both divisors: padding PyTorch takes itself, input h x (h + 1)."""
    x = _x((2, 2, h, h + 1), seed=h * 100 + k * 10 + s)
    for ceil, include in itertools.product((False, True), (False, True)):
        raw = {"pool_size": k, "strides": s, "padding": p, "ceil_mode": ceil}
        want_max = F.max_pool2d(torch.from_numpy(x), k, s, p, ceil_mode=ceil).numpy()
        site = _site("max_pool2d", raw, x.shape)
        assert get_block("max_pool2d").output_shape(site) == want_max.shape
        np.testing.assert_array_equal(get_block("max_pool2d").reference(site, x, {}), want_max)
        want_avg = F.avg_pool2d(torch.from_numpy(x), k, s, p, ceil_mode=ceil, count_include_pad=include).numpy()
        site = _site("avg_pool2d", {**raw, "count_include_pad": include}, x.shape)
        np.testing.assert_allclose(get_block("avg_pool2d").reference(site, x, {}), want_avg, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("padding", ["valid", "same", 1, [2, 1], 3, [0, 3]])
@pytest.mark.parametrize(("k", "s"), [(4, 3), (5, 2), (4, 1), ([4, 2], [3, 2])])
def test_ceil_mode_windows_by_hand(padding: Any, k: Any, s: Any) -> None:
    """Every kind of padding (asymmetric `same`, above half the window: PyTorch's layers refuse those), ceil mode:
    the harness's PyTorch module, Keras layer and reference all compute the by-hand windows and divisors."""
    x = _x((1, 2, 7, 9), seed=3)
    for block, include in (("max_pool2d", False), ("avg_pool2d", False), ("avg_pool2d", True)):
        raw = {"pool_size": k, "strides": s, "padding": padding, "ceil_mode": True}
        if block == "avg_pool2d":
            raw["count_include_pad"] = include
        b = get_block(block)
        site = _site(block, raw, x.shape)
        try:
            shape = b.output_shape(site)
        except Refusal:
            assert max(max(pair) for pair in b.geometry(site)[2]) >= min(site.params["pool_size"])
            continue
        kk, ss, pads = b.geometry(site)
        want = _pool_by_hand(x, kk, ss, pads, shape[2:], block[:3], include)
        for name, got in zip(("torch", "keras", "reference"), _run_block(block, raw, x)[:3]):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13, err_msg=f"{block} {raw} {name}")


def test_global_pool_references_equal_torch() -> None:
    x = _x((2, 3, 5, 4))
    for block, fn in (("global_avg_pool2d", F.adaptive_avg_pool2d), ("global_max_pool2d", F.adaptive_max_pool2d)):
        want = fn(torch.from_numpy(x), 1).numpy()
        for keepdims in (False, True):
            got = get_block(block).reference(_site(block, {"keepdims": keepdims}, x.shape), x, {})
            np.testing.assert_allclose(got, want if keepdims else want[:, :, 0, 0], rtol=1e-14, atol=0)


@pytest.mark.parametrize("padding", [0, 2, [1, 3], [[0, 1], [2, 3]], [[3, 0], [0, 1]]])
def test_zero_padding_all_three_equal_torch_pad(padding: Any) -> None:
    x = _x((2, 3, 4, 5))
    torch_out, keras_out, reference, shape = _run_block("zero_padding2d", {"padding": padding}, x)
    (top, bottom), (left, right) = _site("zero_padding2d", {"padding": padding}, x.shape).params["padding"]
    want = np.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right)])
    assert want.shape == shape
    for got in (torch_out, keras_out, reference):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("size", [1, 2, 3, [2, 1], [1, 3], [3, 2]])
@pytest.mark.parametrize(("interpolation", "align_corners"), [("nearest", False), ("bilinear", False),
                                                              ("bilinear", True)])
@pytest.mark.parametrize("in_hw", [(5, 4), (1, 3)])
def test_upsampling_all_three_equal_torch_interpolate(size: Any, interpolation: str, align_corners: bool,
                                                      in_hw: tuple[int, int]) -> None:
    """float64: the ONNX Resize reference (nearest/asymmetric/floor, linear/half_pixel, linear/align_corners), the
    harness's PyTorch and Keras sides, against F.interpolate."""
    x = _x((2, 3, *in_hw))
    raw = {"size": size, "interpolation": interpolation, "align_corners": align_corners}
    factors = (size, size) if isinstance(size, int) else tuple(size)
    want = F.interpolate(torch.from_numpy(x), scale_factor=factors, mode=interpolation,
                         align_corners=align_corners if interpolation == "bilinear" else None).numpy()
    torch_out, keras_out, reference, shape = _run_block("upsampling2d", raw, x)
    assert want.shape == shape
    for got in (torch_out, keras_out, reference):
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_keras_bilinear_is_pytorch_half_pixel_not_align_corners() -> None:
    """The align-corners question, answered by running: Keras's UpSampling2D(interpolation='bilinear') is PyTorch's
    align_corners=False (half-pixel centres) to float32 rounding, and O(1) away from align_corners=True."""
    x = _x((2, 3, 6, 5), dtype="float32")
    keras_out = _keras_out(keras.layers.UpSampling2D((2, 3), interpolation="bilinear"), x)
    half_pixel = _torch_out(torch.nn.Upsample(scale_factor=(2, 3), mode="bilinear", align_corners=False), x)
    corners = _torch_out(torch.nn.Upsample(scale_factor=(2, 3), mode="bilinear", align_corners=True), x)
    assert np.abs(keras_out - half_pixel).max() < 2e-6  # measured 6.6e-7
    assert np.abs(keras_out - corners).max() > 0.1  # measured 0.95


def test_keras_bilinear_computes_in_float32_whatever_its_dtype() -> None:
    """Why float64 bilinear uses the harness's BilinearUpSampling2D: Keras's own layer, dtype float64, misses
    PyTorch's float64 result by float32 rounding (measured 9.1e-7; TensorFlow's ResizeBilinear returns float32)."""
    x = _x((2, 3, 5, 4))
    want = _torch_out(torch.nn.Upsample(scale_factor=3, mode="bilinear", align_corners=False), x)
    native = _keras_out(keras.layers.UpSampling2D(3, interpolation="bilinear", dtype="float64"), x)
    ours = _keras_out(keras_layers.BilinearUpSampling2D((3, 3), False, dtype="float64"), x)
    assert native.dtype == np.float64 and 1e-8 < np.abs(native - want).max() < 1e-5
    np.testing.assert_allclose(ours, want, rtol=1e-14, atol=1e-14)


def test_upsampling_float32_tolerance_covers_coordinate_rounding_only() -> None:
    """float32 bilinear at 256x256, factor 3: PyTorch's own float32 result misses the float64 one by ~1.6 * size
    ulp (its source coordinate is float32); the default tolerance (K = size^2) sits about 10x above that, and
    three orders below align_corners mapped to half-pixel."""
    from xfw_harness.core.tolerance import default_tolerance

    x = np.random.default_rng(0).uniform(-1, 1, (1, 2, 256, 256))
    raw = {"size": 3, "interpolation": "bilinear", "align_corners": True}
    site = _site("upsampling2d", raw, x.shape, "float32")
    tol = default_tolerance("float32", get_block("upsampling2d").reduction_length(site))
    exact = _torch_out(torch.nn.Upsample(scale_factor=3, mode="bilinear", align_corners=True), x)
    t32 = _torch_out(torch.nn.Upsample(scale_factor=3, mode="bilinear", align_corners=True), x.astype(np.float32))
    err = np.abs(t32 - exact).max()
    assert 1e-5 < err < tol.atol / 5, (err, tol)
    wrong = _torch_out(torch.nn.Upsample(scale_factor=3, mode="bilinear", align_corners=False), x.astype(np.float32))
    assert np.abs(wrong - t32).max() > 100 * tol.atol


# --- ceil mode's size rule ----------------------------------------------------------------------------------

def test_ceil_mode_drop_rule_known_values() -> None:
    # H 5, window 2, stride 2, padding 1: rounding up gives 4 windows; the 4th would start at padded row 6 (the
    # bottom padding): dropped, 3, as PyTorch gives.
    assert spatial.ceil_output_size_1d(5, 2, 2, (1, 1)) == 3
    assert F.max_pool2d(torch.zeros(1, 1, 5, 5), 2, 2, 1, ceil_mode=True).shape[-1] == 3
    # H 6, window 3, stride 2, padding 1: the 4th window starts at padded 6 (the last real row): kept, and
    # overhangs the padding by one cell.
    assert spatial.ceil_output_size_1d(6, 3, 2, (1, 1)) == 4
    assert spatial.ceil_overhang_1d(6, 3, 2, (1, 1)) == 1
    # A window larger than the input still fits once when span + stride - 1 >= 0.
    assert spatial.ceil_output_size_1d(2, 3, 2, (0, 0)) == 1
    assert spatial.ceil_output_size_1d(1, 3, 2, (0, 0)) == 0


# --- planted mistakes ---------------------------------------------------------------------------------------

MAX_CEIL = """
- name: max_ceil
  block: max_pool2d
  params: {pool_size: 3, strides: 2, padding: 1, ceil_mode: true}
  input: {shape: [2, 3, 8, 8]}
"""

MAX_CEIL_DROP = """
- name: max_ceil_drop
  block: max_pool2d
  params: {pool_size: 2, strides: 2, padding: 1, ceil_mode: true}
  input: {shape: [1, 2, 5, 5]}
"""

AVG_CEIL_INCLUDE = """
- name: avg_ceil_include
  block: avg_pool2d
  params: {pool_size: 3, strides: 2, padding: 1, ceil_mode: true, count_include_pad: true}
  input: {shape: [2, 3, 6, 8]}
"""

# Padding 3 is above half the window (PyTorch's AvgPool2d refuses it); ceil mode's last windows overhang by 1.
AVG_CEIL_WIDE = """
- name: avg_ceil_wide_padding
  block: avg_pool2d
  params: {pool_size: 5, strides: 3, padding: 3, ceil_mode: true, count_include_pad: true}
  input: {shape: [1, 2, 10, 10]}
"""

BILINEAR_CORNERS = """
- name: bilinear_corners
  block: upsampling2d
  params: {size: 2, interpolation: bilinear, align_corners: true}
  input: {shape: [2, 3, 5, 6]}
"""

ZERO_PAD = """
- name: zero_pad_sides
  block: zero_padding2d
  params: {padding: [[1, 2], [0, 3]]}
  input: {shape: [2, 3, 4, 5]}
"""


def keras_max_pool_ignores_ceil_mode(mp: pytest.MonkeyPatch) -> None:
    """Keras has no ceil_mode: the port that forgets it pools in floor mode (one row and column fewer)."""
    def keras_layer(self, site):
        k, s, pads = self.geometry(site)
        return keras.Sequential([keras_layers.SpatialPadding(pads, value=pooling.NEG_INF, dtype=site.dtype),
                                 keras.layers.MaxPooling2D(k, s, dtype=site.dtype)])

    mp.setattr(pooling.MaxPool2D, "keras_layer", keras_layer)


def drop_rule_not_applied(mp: pytest.MonkeyPatch) -> None:
    """Ceil mode without PyTorch's drop rule: the harness's own size (and its Keras emulation) gain a last window
    that starts in the bottom/right padding, while PyTorch's MaxPool2d drops it."""
    def no_drop(size, kernel, stride, pads):
        return (size + pads[0] + pads[1] - kernel + stride - 1) // stride + 1

    mp.setattr(spatial, "ceil_output_size_1d", no_drop)


def avg_overhang_counted(mp: pytest.MonkeyPatch) -> None:
    """The ceil-mode overhang counted in the divisor with count_include_pad (the whole window, as ONNX's reference
    runtime does): PyTorch counts only up to the padded bounds."""
    def keras_layer(self, site):
        k, s, pads, full = self.padded_geometry(site)
        return pooling_layers.PoolSumOverCount(k, s, full, full, dtype=site.dtype)

    mp.setattr(pooling.AvgPool2D, "keras_layer", keras_layer)


def torch_avg_overhang_counted(mp: pytest.MonkeyPatch) -> None:
    """The same mistake on the PyTorch side, where the padding is wider than PyTorch's AvgPool2d takes."""
    def torch_module(self, site):
        k, s, pads, full = self.padded_geometry(site)
        return pooling_layers.TorchAvgPoolSumOverCount(k, s, full, full)

    mp.setattr(pooling.AvgPool2D, "torch_module", torch_module)


def bilinear_corners_as_keras_half_pixel(mp: pytest.MonkeyPatch) -> None:
    """align_corners=True mapped to Keras's only bilinear, UpSampling2D's half-pixel centres."""
    mp.setattr(upsampling.UpSampling2D, "keras_layer", lambda self, site: keras.layers.UpSampling2D(
        site.params["size"], interpolation="bilinear", dtype=site.dtype))


def zero_pad_torch_top_bottom_first(mp: pytest.MonkeyPatch) -> None:
    """ZeroPad2d given Keras's order flattened, (top, bottom, left, right): it wants (left, right, top, bottom)."""
    mp.setattr(padding.ZeroPadding2D, "torch_module", lambda self, site: torch.nn.ZeroPad2d(
        tuple(a for pair in site.params["padding"] for a in pair)))


def zero_pad_keras_top_bottom_swapped(mp: pytest.MonkeyPatch) -> None:
    """Keras given ((bottom, top), (right, left)): the shape survives, the content moves."""
    def keras_layer(self, site):
        (top, bottom), (left, right) = site.params["padding"]
        return keras.layers.ZeroPadding2D(((bottom, top), (right, left)), dtype=site.dtype)

    mp.setattr(padding.ZeroPadding2D, "keras_layer", keras_layer)


PLANTED = [
    ("keras-max-pool-ignores-ceil-mode", MAX_CEIL, keras_max_pool_ignores_ceil_mode, "shape",
     "keras [2, 3, 4, 4] vs torch [2, 3, 5, 5]"),
    ("ceil-mode-drop-rule-not-applied", MAX_CEIL_DROP, drop_rule_not_applied, "shape",
     "keras [1, 2, 4, 4] vs torch [1, 2, 3, 3]"),
    ("keras-avg-ceil-overhang-counted", AVG_CEIL_INCLUDE, avg_overhang_counted, "values", "values differ"),
    ("torch-avg-ceil-overhang-counted", AVG_CEIL_WIDE, torch_avg_overhang_counted, "values", "values differ"),
    ("bilinear-align-corners-as-half-pixel", BILINEAR_CORNERS, bilinear_corners_as_keras_half_pixel, "values",
     "values differ"),
    ("zero-pad-torch-order-top-bottom-first", ZERO_PAD, zero_pad_torch_top_bottom_first, "values", "values differ"),
    ("zero-pad-keras-sides-swapped", ZERO_PAD, zero_pad_keras_top_bottom_swapped, "values", "values differ"),
]


@pytest.mark.parametrize(("case", "plant", "check", "message"), [p[1:] for p in PLANTED], ids=[p[0] for p in PLANTED])
def test_planted_mistake_is_caught(case: str, plant: Any, check: str, message: str, run_case,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (good,) = run_case(case)
    assert good.status == "passed", f"the correct adapter fails:\n{good.message}"
    plant(monkeypatch)
    (bad,) = run_case(case)
    assert bad.status in ("failed", "error"), f"not caught: {bad.status}\n{bad.message}"
    failing = [v for v in bad.verdicts if not v.passed]
    assert failing, bad.message
    first = failing[0]
    assert first.what == "keras vs torch" and first.check == check, bad.message
    assert message in first.message, first.message
    if check == "values":  # far outside the tolerance, not a rounding that happens to cross it
        m = first.metrics
        assert m["max_abs"] > 10 * (m["atol"] + m["rtol"] * abs(m["worst_expected"])), first.message


def test_reference_sides_with_pytorch_against_planted_keras_mistakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The third opinion names the wrong side: with align_corners mapped to half-pixel, or the ceil-mode overhang
    counted, the reference agrees with PyTorch and not with Keras."""
    x = _x((2, 3, 6, 8))
    for plant, block, raw in ((bilinear_corners_as_keras_half_pixel, "upsampling2d",
                               {"size": 2, "interpolation": "bilinear", "align_corners": True}),
                              (avg_overhang_counted, "avg_pool2d",
                               {"pool_size": 3, "strides": 2, "padding": 1, "ceil_mode": True,
                                "count_include_pad": True})):
        with monkeypatch.context() as mp:
            plant(mp)
            torch_out, keras_out, reference, _ = _run_block(block, raw, x)
        np.testing.assert_allclose(reference, torch_out, rtol=1e-13, atol=1e-13)
        assert np.abs(reference - keras_out).max() > 0.01


# --- native builders ------------------------------------------------------------------------------------------

def _native(block: str, raw: dict[str, Any], shape: tuple[int, ...], dtype: str = "float64") -> tuple[Any, Any]:
    b = get_block(block)
    site = _site(block, raw, shape, dtype, written=frozenset(raw))
    return b.native_torch_module(site), b.native_keras_layer(site)


def test_native_max_pool_pads_keras_with_zeros() -> None:
    """The hand port of MaxPool2d(3, 2, padding=1): Keras's ZeroPadding2D(1) then MaxPooling2D(3, 2): zeros, not
    -inf, so an all-negative input's border windows give 0 in Keras only."""
    m, k = _native("max_pool2d", {"pool_size": 3, "strides": 2, "padding": 1}, (1, 2, 7, 7))
    assert isinstance(m, torch.nn.MaxPool2d) and (m.kernel_size, m.stride, m.padding) == ((3, 3), (2, 2), (1, 1))
    assert not m.ceil_mode
    assert [type(layer).__name__ for layer in k.layers] == ["ZeroPadding2D", "MaxPooling2D"]
    x = -np.abs(_x((1, 2, 7, 7))) - 0.5
    t, kk = _torch_out(m, x), _keras_out(k, x)
    border = np.ones(t.shape, dtype=bool)
    border[:, :, 1:-1, 1:-1] = False  # windows 0 and 3 along each axis reach into the padding
    assert t.max() < 0 and (kk[border] == 0.0).all()
    np.testing.assert_array_equal(t[~border], kk[~border])


def test_native_ceil_mode_has_no_keras_name() -> None:
    """ceil_mode goes to PyTorch only (Keras has none): the outputs differ in shape, the real difference."""
    m, k = _native("max_pool2d", {"pool_size": 3, "strides": 2, "ceil_mode": True}, (1, 1, 8, 8))
    assert m.ceil_mode and isinstance(k, keras.layers.MaxPooling2D)
    x = _x((1, 1, 8, 8))
    assert _torch_out(m, x).shape == (1, 1, 4, 4) and _keras_out(k, x).shape == (1, 1, 3, 3)


def test_native_avg_pool_divisor_defaults() -> None:
    """AvgPool2d's count_include_pad defaults to True; Keras's ZeroPadding2D + AveragePooling2D counts the zeros
    too: the two hand ports agree (and both differ from the harness's default divisor, the real cells)."""
    raw = {"pool_size": 3, "strides": 1, "padding": 1}
    m, k = _native("avg_pool2d", raw, (1, 2, 5, 5))
    assert m.count_include_pad and not m.ceil_mode
    x = _x((1, 2, 5, 5))
    np.testing.assert_allclose(_torch_out(m, x), _keras_out(k, x), rtol=1e-13, atol=1e-13)
    harness_default = get_block("avg_pool2d").reference(_site("avg_pool2d", raw, x.shape), x, {})
    assert np.abs(harness_default - _torch_out(m, x)).max() > 0.01
    m, _ = _native("avg_pool2d", {**raw, "count_include_pad": False}, (1, 2, 5, 5))
    assert not m.count_include_pad


def test_native_refusals() -> None:
    with pytest.raises(Refusal, match="no padding 'same'"):
        _native("max_pool2d", {"pool_size": 3, "padding": "same"}, (1, 1, 8, 8))
    with pytest.raises(Refusal, match="above half the window"):
        _native("avg_pool2d", {"pool_size": 3, "padding": 2}, (1, 1, 8, 8))
    with pytest.raises(Refusal, match="no default padding"):
        _native("zero_padding2d", {}, (1, 1, 4, 4))
    with pytest.raises(Refusal, match="no default scale_factor"):
        _native("upsampling2d", {}, (1, 1, 4, 4))
    with pytest.raises(Refusal, match="refuses align_corners"):
        _native("upsampling2d", {"size": 2, "align_corners": False}, (1, 1, 4, 4))


def test_native_global_pool_keeps_dims_in_torch_only() -> None:
    m, k = _native("global_avg_pool2d", {}, (2, 3, 4, 4))
    assert isinstance(m, torch.nn.AdaptiveAvgPool2d) and m.output_size == 1
    x = _x((2, 3, 4, 4))
    assert _torch_out(m, x).shape == (2, 3, 1, 1) and _keras_out(k, x).shape == (2, 3)
    _, k = _native("global_max_pool2d", {"keepdims": True}, (2, 3, 4, 4))
    assert k.keepdims


def test_native_zero_padding_and_upsampling() -> None:
    m, k = _native("zero_padding2d", {"padding": [[1, 2], [0, 3]]}, (1, 1, 3, 3))
    assert m.padding == (0, 3, 1, 2) and k.padding == ((1, 2), (0, 3))
    k = get_block("zero_padding2d").native_keras_layer(_site("zero_padding2d", {}, (1, 1, 3, 3), written=frozenset()))
    assert k.padding == ((1, 1), (1, 1))  # Keras's own default
    m, k = _native("upsampling2d", {"size": [2, 3], "interpolation": "bilinear", "align_corners": True},
                   (1, 1, 4, 4))
    assert (m.scale_factor, m.mode, m.align_corners) == ((2.0, 3.0), "bilinear", True)
    assert isinstance(k, keras.layers.UpSampling2D) and (k.size, k.interpolation) == ((2, 3), "bilinear")
    x = _x((1, 1, 4, 4))
    assert np.abs(_torch_out(m, x) - _keras_out(k, x)).max() > 0.1  # Keras has no align_corners: the difference


def test_native_builders_without_written_take_every_parameter() -> None:
    b = get_block("max_pool2d")
    site = _site("max_pool2d", {"pool_size": 2, "ceil_mode": True}, (1, 1, 5, 5))
    assert b.native_torch_module(site).ceil_mode


# --- params_from_torch ------------------------------------------------------------------------------------------

ROUND_TRIPS = [
    ("max_pool2d", lambda: torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), (1, 2, 9, 8),
     {"pool_size": 3, "strides": 2, "padding": 1, "ceil_mode": True}),
    ("max_pool2d", lambda: torch.nn.MaxPool2d((3, 2)), (1, 2, 9, 8), {"pool_size": [3, 2]}),
    ("avg_pool2d", lambda: torch.nn.AvgPool2d(3, 2, 1), (1, 2, 9, 8),
     {"pool_size": 3, "strides": 2, "padding": 1, "count_include_pad": True}),
    ("avg_pool2d", lambda: torch.nn.AvgPool2d((2, 3), (1, 2), (1, 0), ceil_mode=True, count_include_pad=False),
     (1, 2, 9, 8), {"pool_size": [2, 3], "strides": [1, 2], "padding": [1, 0], "ceil_mode": True,
                    "count_include_pad": False}),
    ("global_avg_pool2d", lambda: torch.nn.AdaptiveAvgPool2d(1), (2, 3, 4, 5), {"keepdims": True}),
    ("global_max_pool2d", lambda: torch.nn.AdaptiveMaxPool2d((1, 1)), (2, 3, 4, 5), {"keepdims": True}),
    ("zero_padding2d", lambda: torch.nn.ZeroPad2d((1, 2, 3, 4)), (1, 2, 3, 3), {"padding": [[3, 4], [1, 2]]}),
    ("zero_padding2d", lambda: torch.nn.ZeroPad2d(2), (1, 2, 3, 3), {"padding": 2}),
    ("zero_padding2d", lambda: torch.nn.ZeroPad2d((1, 2)), (1, 2, 3, 3), {"padding": [[0, 0], [1, 2]]}),
    ("zero_padding2d", lambda: torch.nn.ConstantPad2d((1, 1, 2, 2), 0.0), (1, 2, 3, 3), {"padding": [2, 1]}),
    ("upsampling2d", lambda: torch.nn.Upsample(scale_factor=2), (1, 2, 3, 4), {"size": 2}),
    ("upsampling2d", lambda: torch.nn.Upsample(scale_factor=(2, 3), mode="bilinear"), (1, 2, 3, 4),
     {"size": [2, 3], "interpolation": "bilinear"}),
    ("upsampling2d", lambda: torch.nn.UpsamplingBilinear2d(scale_factor=2), (1, 2, 3, 4),
     {"size": 2, "interpolation": "bilinear", "align_corners": True}),
    ("upsampling2d", lambda: torch.nn.Upsample(size=(6, 12), mode="bilinear", align_corners=False), (1, 2, 3, 4),
     {"size": [2, 3], "interpolation": "bilinear"}),
]


@pytest.mark.parametrize(("block", "make", "shape", "params"), ROUND_TRIPS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ROUND_TRIPS)])
def test_params_from_torch_round_trip(block: str, make: Any, shape: tuple, params: dict) -> None:
    """The module read back into case params; the harness's modules built from them compute what it computes."""
    module = make()
    b = get_block(block)
    assert type(module).__name__ in b.torch_types
    got = b.params_from_torch(module, shape)
    assert got == params
    x = _x(shape)
    want = _torch_out(module, x)
    site = _site(block, got, shape)
    if block.startswith("global"):
        want = want if site.params["keepdims"] else want[:, :, 0, 0]
    assert b.output_shape(site) == want.shape
    for out in (_torch_out(b.torch_module(site), x), _keras_out(b.keras_layer(site), x), b.reference(site, x, {})):
        np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(("block", "make", "field"), [
    ("max_pool2d", lambda: torch.nn.MaxPool2d(3, return_indices=True), "return_indices"),
    ("avg_pool2d", lambda: torch.nn.AvgPool2d(3, divisor_override=4), "divisor_override"),
    ("global_avg_pool2d", lambda: torch.nn.AdaptiveAvgPool2d(2), "output_size"),
    ("global_max_pool2d", lambda: torch.nn.AdaptiveMaxPool2d(1, return_indices=True), "return_indices"),
    ("zero_padding2d", lambda: torch.nn.ConstantPad2d(1, 3.0), "value"),
    ("zero_padding2d", lambda: torch.nn.ZeroPad2d((-1, 0, 0, 0)), "padding"),
    ("upsampling2d", lambda: torch.nn.Upsample(scale_factor=2, mode="bicubic"), "mode"),
    ("upsampling2d", lambda: torch.nn.Upsample(scale_factor=1.5), "scale_factor"),
    ("upsampling2d", lambda: torch.nn.Upsample(size=(5, 8)), "size"),
])
def test_params_from_torch_refuses_by_name(block: str, make: Any, field: str) -> None:
    with pytest.raises(Refusal) as info:
        get_block(block).params_from_torch(make(), (1, 2, 3, 4))
    assert info.value.field == field
    assert field in str(info.value)


def test_params_from_torch_refuses_another_type() -> None:
    with pytest.raises(Refusal, match="not AvgPool2d"):
        get_block("max_pool2d").params_from_torch(torch.nn.AvgPool2d(2), (1, 1, 4, 4))


# --- why the references route around ONNX's reference runtime ---------------------------------------------------

def test_onnx_reference_pooling_defects_worked_around() -> None:
    """Measured with onnx 1.23: its reference MaxPool at stride 1 reads pads in the wrong order, and its
    AveragePool in ceil mode shifts windows by half the overhang and counts the overhang with count_include_pad.
    The blocks' references route around these (explicit Pad, uncounted overhang); if this test fails, ONNX fixed
    them and the workarounds may go."""
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    assert onnx_op("MaxPool", x, kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1]).shape == (1, 1, 2, 5)
    raw = {"pool_size": 2, "strides": 1, "padding": "same"}  # ((0, 1), (0, 1))
    np.testing.assert_array_equal(get_block("max_pool2d").reference(_site("max_pool2d", raw, x.shape), x, {}),
                                  F.max_pool2d(F.pad(torch.from_numpy(x), (0, 1, 0, 1), value=-np.inf), 2, 1).numpy())
    x = np.array([[[[1.0, 2.0]]]])
    shifted = onnx_op("AveragePool", x, kernel_shape=[1, 4], strides=[1, 3], pads=[0, 0, 0, 0], ceil_mode=1,
                      count_include_pad=1)
    want = F.avg_pool2d(torch.from_numpy(x), (1, 4), (1, 3), ceil_mode=True, count_include_pad=True).numpy()
    assert want.tolist() == [[[[1.5]]]] and shifted.tolist() != want.tolist()
    site = _site("avg_pool2d", {"pool_size": [1, 4], "strides": [1, 3], "ceil_mode": True,
                                "count_include_pad": True}, x.shape)
    np.testing.assert_array_equal(get_block("avg_pool2d").reference(site, x, {}), want)


# --- schema ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "want"), [
    (2, ((2, 2), (2, 2))), ([1, 3], ((1, 1), (3, 3))), ([[0, 1], [2, 3]], ((0, 1), (2, 3))),
])
def test_zero_padding_notations(raw: Any, want: tuple) -> None:
    assert _site("zero_padding2d", {"padding": raw}, (1, 1, 2, 2)).params["padding"] == want


@pytest.mark.parametrize("raw", [-1, [1], [1, 2, 3], [[1, 2], [3]], [[1, -2], [3, 4]], True, "same", [[1, 2], 3]])
def test_zero_padding_bad_values_say_what_is_allowed(raw: Any) -> None:
    from xfw_harness.core.errors import CaseError

    with pytest.raises(CaseError, match=r"allowed: an integer >= 0, a list \[h, w\].*\[\[top, bottom\]"):
        _site("zero_padding2d", {"padding": raw}, (1, 1, 2, 2))


def test_align_corners_with_nearest_is_refused() -> None:
    with pytest.raises(Refusal, match="bilinear interpolation only"):
        get_block("upsampling2d").output_shape(_site("upsampling2d", {"align_corners": True}, (1, 1, 2, 2)))
