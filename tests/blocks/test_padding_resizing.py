"""Padding (pad1d/2d/3d), upsampling1d/3d and resize: the framework facts their module docs state, run against
PyTorch, Keras 3 and ONNX's reference runtime; PyTorch's refusals mirrored; the harness's Keras layers against
PyTorch's CPU kernels in float64; `xfw-harness port` reading the modules and the functional calls.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xfw_harness.blocks import Site, get_block
from xfw_harness.blocks.keras_layers import Padding2D, SpatialPadding
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.resize import nearest_source
from xfw_harness.blocks.resize_layers import Interpolation2D
from xfw_harness.core.errors import Refusal
from xfw_harness.core.frameworks import keras, to_numpy, torch
from xfw_harness.core.schema import normalise_params
from xfw_harness.tools.port import port_model

F = torch.nn.functional
NONE = np.array([], dtype=np.float64)  # ONNX Resize's roi and scales, left out


def _site(block: str, raw: dict[str, Any], shape: tuple[int, ...], dtype: str = "float64") -> Site:
    return Site(normalise_params(get_block(block).params, raw), tuple(shape), dtype, "eval")


def _three(block: str, raw: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's, Keras's and the reference's output of the harness's own build, channels-first."""
    b = get_block(block)
    site = _site(block, raw, x.shape, str(x.dtype))
    b.output_shape(site)
    with torch.no_grad():
        t = b.torch_module(site).to(torch.float64 if x.dtype == np.float64 else torch.float32)(torch.from_numpy(x))
    k = to_numpy(b.keras_layer(site)(np.moveaxis(x, 1, -1)))
    return t.numpy(), np.moveaxis(k, -1, 1), b.reference(site, x.astype(np.float64), {})


def _torch_refuses(call: Any) -> bool:
    try:
        call()
    except (RuntimeError, ValueError, NotImplementedError):
        return True
    return False


# --- padding ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spatial", [1, 2, 3])
@pytest.mark.parametrize(("mode", "numpy_mode"), [("constant", "constant"), ("reflect", "reflect"),
                                                  ("replicate", "edge"), ("circular", "wrap")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_spatial_padding_is_numpy_pad(spatial: int, mode: str, numpy_mode: str, dtype: str) -> None:
    x = np.random.default_rng(0).standard_normal((2, *(4, 5, 3)[:spatial], 3)).astype(dtype)
    pads = ((1, 3), (0, 2), (3, 1))[:spatial]
    extra = {"constant_values": -2.5} if mode == "constant" else {}
    want = np.pad(x, ((0, 0), *pads, (0, 0)), mode=numpy_mode, **extra)
    layer = SpatialPadding(pads, mode, -2.5, dtype=dtype)
    assert np.array_equal(to_numpy(layer(x)), want)
    assert layer.compute_output_shape(x.shape) == want.shape


def test_padding2d_keeps_its_name_and_reloads(tmp_path: Path) -> None:
    """Convolution's padding_mode layer keeps the class name and the config keys saved .keras files have."""
    x = np.arange(24.0).reshape(1, 3, 4, 2)
    inputs = keras.Input((3, 4, 2), dtype="float64")
    model = keras.Model(inputs, Padding2D(((1, 0), (2, 1)), "reflect", dtype="float64")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects={"Padding2D": Padding2D})
    assert type(loaded.layers[-1]).__name__ == "Padding2D"
    assert np.array_equal(to_numpy(loaded(x)), np.pad(x, ((0, 0), (1, 0), (2, 1), (0, 0)), mode="reflect"))
    old_config = {k: v for k, v in Padding2D(((1, 1), (1, 1)), "circular").get_config().items() if k != "value"}
    assert Padding2D.from_config(old_config).value == 0.0  # a file saved before the constant mode loads


@pytest.mark.parametrize("mode", ["reflect", "circular"])
@pytest.mark.parametrize("length", [1, 2, 4])
def test_pytorch_padding_refusals_are_mirrored(mode: str, length: int) -> None:
    """PyTorch refuses reflect padding >= the length and circular padding > the length (measured); so does the block,
    on either side."""
    for before, after in [(p, 0) for p in range(6)] + [(0, p) for p in range(6)]:
        refused = _torch_refuses(lambda b=before, a=after: F.pad(torch.zeros(1, 1, length), (b, a), mode=mode))
        site = _site("pad1d", {"padding_mode": mode, "padding": [before, after]}, (1, 1, length))
        try:
            get_block("pad1d").output_shape(site)
            ours = False
        except Refusal:
            ours = True
        assert ours == refused, (mode, length, before, after, refused)


def test_pytorch_refuses_a_value_outside_constant_mode() -> None:
    x = torch.zeros(1, 1, 4)
    assert _torch_refuses(lambda: F.pad(x, (1, 1), mode="replicate", value=2.0))
    assert not _torch_refuses(lambda: F.pad(x, (1, 1), mode="replicate", value=0.0))
    with pytest.raises(Refusal, match="constant mode only"):
        get_block("pad1d").output_shape(_site("pad1d", {"padding_mode": "replicate", "value": 2.0}, (1, 1, 4)))


def test_keras_ops_pad_has_no_edge_or_wrap_mode() -> None:
    """Why SpatialPadding gathers: keras.ops.pad on TensorFlow takes reflect but not PyTorch's other two modes."""
    x = np.arange(4.0)
    assert np.array_equal(to_numpy(keras.ops.pad(x, [[2, 1]], mode="reflect")), np.pad(x, (2, 1), mode="reflect"))
    for mode in ("edge", "wrap"):
        with pytest.raises(ValueError):
            keras.ops.pad(x, [[2, 1]], mode=mode)


@pytest.mark.parametrize(("block", "shape", "raw"), [
    ("pad1d", (2, 3, 5), {"padding_mode": "reflect", "padding": [4, 1]}),
    ("pad1d", (2, 3, 5), {"padding": [1, 2], "value": -3.0}),
    ("pad2d", (2, 3, 4, 5), {"padding_mode": "circular", "padding": [[4, 0], [1, 5]]}),
    ("pad3d", (1, 2, 3, 4, 2), {"padding_mode": "replicate", "padding": [[0, 4], [2, 1], [1, 0]]}),
    ("pad3d", (1, 2, 3, 4, 2), {"padding": 2, "value": 0.5}),
])
def test_pad_blocks_all_three_agree(block: str, shape: tuple, raw: dict) -> None:
    x = np.random.default_rng(1).standard_normal(shape)
    t, k, r = _three(block, raw, x)
    assert np.array_equal(t, k) and np.array_equal(t, r)


def test_pad_native_builders() -> None:
    b = get_block("pad2d")
    site = Site(normalise_params(b.params, {"padding_mode": "reflect", "padding": [[1, 0], [2, 3]]}), (1, 1, 4, 5),
                "float32", "eval", written=frozenset({"padding_mode", "padding"}))
    module = b.native_torch_module(site)
    assert type(module).__name__ == "ReflectionPad2d" and tuple(module.padding) == (2, 3, 1, 0)
    with pytest.raises(Refusal, match="Keras has no layer for reflect padding"):
        b.native_keras_layer(site)
    zeros = Site(normalise_params(b.params, {}), (1, 1, 4, 5), "float32", "eval", written=frozenset())
    with pytest.raises(Refusal, match="no default padding"):
        b.native_torch_module(zeros)
    assert type(b.native_keras_layer(zeros)).__name__ == "ZeroPadding2D"


class _Pads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.reflect = torch.nn.ReflectionPad2d((1, 2, 0, 1))
        self.const = torch.nn.ConstantPad2d(1, 2.5)
        self.zero = torch.nn.ZeroPad2d((0, 1, 1, 0))

    def forward(self, x: Any) -> Any:
        x = F.pad(self.reflect(x), (1, 1, 2, 0), mode="replicate")
        x = F.pad(x, (1, 0), value=-1.0)  # the width only
        return self.zero(self.const(F.pad(x, [0, 1, 1, 0], "circular")))


class _Sequences(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pad = torch.nn.ReplicationPad1d((2, 1))
        self.up = torch.nn.Upsample(scale_factor=3)

    def forward(self, x: Any) -> Any:
        return F.pad(torch.nn.functional.pad(self.up(self.pad(x)), (2, 2), mode="circular"), (0, 3), mode="reflect")


class _Volumes(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pad = torch.nn.ReflectionPad3d((1, 0, 0, 1, 1, 1))
        self.up = torch.nn.Upsample(scale_factor=(1, 2, 2))
        self.zero = torch.nn.ZeroPad3d(1)

    def forward(self, x: Any) -> Any:
        return F.interpolate(self.zero(self.up(self.pad(x))), scale_factor=2)


@pytest.mark.parametrize(("model", "shape", "blocks"), [
    (_Pads, (2, 3, 6, 7), ["pad2d", "pad2d", "pad2d", "pad2d", "pad2d", "zero_padding2d"]),
    (_Sequences, (2, 3, 7), ["pad1d", "upsampling1d", "pad1d", "pad1d"]),
    (_Volumes, (1, 2, 3, 4, 3), ["pad3d", "upsampling3d", "pad3d", "upsampling3d"]),
])
def test_port_reads_padding_and_upsampling(model: Any, shape: tuple, blocks: list[str], tmp_path: Path) -> None:
    """The padding modules and F.pad calls by the input's rank; ZeroPad2d stays zero_padding2d's; Upsample by rank."""
    ported = port_model(model(), input_shape=shape, out=tmp_path / "ported")
    assert ported.blocks == blocks
    assert ported.passed, ported.result.message if ported.result else ""


def test_pad_call_refusals() -> None:
    b = get_block("pad2d")
    with pytest.raises(Refusal, match="crops"):
        b.params_from_call("pad", (None, (1, -1)), {}, [(1, 1, 4, 4)])
    with pytest.raises(Refusal, match="rank 4"):
        b.params_from_call("pad", (None, (1, 1)), {}, [(1, 1, 4)])
    assert b.params_from_call("pad", (None, (1, 2)), {"mode": "reflect"}, [(1, 1, 4, 4)]) == \
        {"padding": [[0, 0], [1, 2]], "padding_mode": "reflect"}


# --- upsampling1d / upsampling3d --------------------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "factors"), [((2, 3, 5), (3,)), ((2, 2, 3, 4, 2), (2, 1, 3))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_upsample_nearest_is_keras_upsampling_bit_for_bit(shape: tuple, factors: tuple, dtype: str) -> None:
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    with torch.no_grad():
        t = torch.nn.Upsample(scale_factor=tuple(float(f) for f in factors), mode="nearest")(torch.from_numpy(x))
    layer = keras.layers.UpSampling1D(factors[0], dtype=dtype) if len(factors) == 1 else \
        keras.layers.UpSampling3D(factors, dtype=dtype)
    assert np.array_equal(t.numpy(), np.moveaxis(to_numpy(layer(np.moveaxis(x, 1, -1))), -1, 1))


def test_upsampling_1d_refuses_linear_and_keras_defaults() -> None:
    with pytest.raises(Refusal, match="'linear'"):
        get_block("upsampling1d").params_from_torch(torch.nn.Upsample(scale_factor=2, mode="linear"), (1, 2, 5))
    assert keras.layers.UpSampling1D().size == 2 and keras.layers.UpSampling3D().size == (2, 2, 2)


# --- resize: PyTorch's rules ----------------------------------------------------------------------------------------

def _resize_grid() -> list[tuple[tuple[int, int], dict[str, Any]]]:
    points = []
    for h, w in [(1, 1), (1, 3), (3, 4), (5, 7), (8, 6), (13, 11)]:
        configs: list[dict[str, Any]] = []
        for f in [0.3, 0.5, 0.7, 0.9, 1.3, 1.5, 2.0, 2.5, 3.0, 1 / 3, 2 / 3, 1.7]:
            configs += [{"scale_factor": f}, {"scale_factor": [f, 1.5]},
                        {"scale_factor": f, "recompute_scale_factor": True}]
        configs += [{"size": [1, 1]}, {"size": [2 * h, 3 * w]}, {"size": [7, 5]}, {"size": [12, 17]}]
        for mode in ("nearest", "nearest-exact", "bilinear", "bicubic"):
            for align in ([False] if mode.startswith("nearest") else [False, True]):
                points += [((h, w), {"interpolation": mode, "align_corners": align, **c}) for c in configs]
    return points


def test_resize_keras_and_reference_are_pytorch_in_float64() -> None:
    """Interpolation2D (or Keras's Resizing where used) and the reference against PyTorch's CPU kernels, 1,000+
    points: every mode, convention, factor and size."""
    rng = np.random.default_rng(3)
    b, count = get_block("resize"), 0
    for (h, w), raw in _resize_grid():
        x = rng.standard_normal((1, 2, h, w))
        site = _site("resize", raw, x.shape)
        try:
            b.output_shape(site)
        except Refusal:  # an output length 0
            continue
        t, k, r = _three("resize", raw, x)
        assert np.abs(k - t).max() < 1e-13 and np.abs(r - t).max() < 1e-13, ((h, w), raw)
        count += 1
    assert count > 1000


def test_pytorch_nearest_index_is_float32() -> None:
    """PyTorch's 2-D nearest and nearest-exact compute floor((i [+ 0.5]) * scale) in float32 (UpSample.h): the
    harness's rule matches them on every size pair n <= 39, m <= 89; ONNX's Resize (asymmetric + floor, half_pixel +
    round_prefer_ceil), in float64, misses some."""
    misses = {"nearest": 0, "nearest-exact": 0}
    onnx_modes = {"nearest": {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
                  "nearest-exact": {"coordinate_transformation_mode": "half_pixel",
                                    "nearest_mode": "round_prefer_ceil"}}
    for n in range(1, 40):
        row = np.arange(float(n)).reshape(1, 1, 1, n)
        for m in range(1, 90):
            for mode, exact in (("nearest", False), ("nearest-exact", True)):
                got = F.interpolate(torch.from_numpy(row), size=(1, m), mode=mode).numpy().ravel()
                assert np.array_equal(nearest_source(n, m, None, exact), got), (mode, n, m)
                if not exact and m in (n, 2 * n):  # PyTorch's shortcuts
                    continue
                onnx_y = onnx_op("Resize", row, NONE, NONE, np.array([1, 1, 1, m], dtype=np.int64), mode="nearest",
                                 **onnx_modes[mode])
                misses[mode] += int(not np.array_equal(onnx_y.ravel(), got))
    assert misses == {"nearest": 72, "nearest-exact": 119}
    assert F.interpolate(torch.arange(2.0).reshape(1, 1, 1, 2), size=(1, 82)).numpy().ravel()[41] == 0


def test_pytorch_1d_and_2d_nearest_exact_differ() -> None:
    """A PyTorch inconsistency met on the way: 2 -> 41 nearest-exact reads input 1 at output 20 in 1-D, 0 in 2-D."""
    one = F.interpolate(torch.arange(2.0).reshape(1, 1, 2), size=41, mode="nearest-exact").numpy().ravel()
    two = F.interpolate(torch.arange(2.0).reshape(1, 1, 1, 2), size=(1, 41), mode="nearest-exact").numpy().ravel()
    assert one[20] == 1 and two[20] == 0


def test_pytorch_shortcuts_on_an_unchanged_axis() -> None:
    """nearest and bilinear copy an axis a factor leaves at its length (1.3 on 3 cells) and nearest reads i // 2 on a
    doubled one whatever the factor; nearest-exact and bicubic sample at 1 / factor."""
    x = torch.arange(3.0, dtype=torch.float64).reshape(1, 1, 1, 3)
    for mode in ("nearest", "bilinear"):
        assert np.array_equal(F.interpolate(x, scale_factor=(1, 1.3), mode=mode).numpy().ravel(), [0, 1, 2])
    assert np.array_equal(F.interpolate(x, scale_factor=(1, 2.1)).numpy().ravel(), [0, 0, 1, 1, 2, 2])
    assert F.interpolate(x, scale_factor=(1, 1.3), mode="nearest-exact").numpy().ravel().tolist() == [0, 1, 1]
    assert not np.allclose(F.interpolate(x, scale_factor=(1, 1.3), mode="bicubic").numpy().ravel(), [0, 1, 2])


@pytest.mark.parametrize(("raw", "field"), [
    ({"size": [4, 4], "scale_factor": 2}, "params.scale_factor"),
    ({"interpolation": "nearest", "align_corners": True}, "params.align_corners"),
    ({"interpolation": "bilinear", "size": [4, 4], "recompute_scale_factor": True}, "params.recompute_scale_factor"),
    ({"scale_factor": 0.1}, "params.scale_factor"),
])
def test_resize_refuses_what_pytorch_refuses(raw: dict, field: str) -> None:
    site = _site("resize", raw, (1, 1, 5, 5))
    with pytest.raises(Refusal) as refusal:
        get_block("resize").output_shape(site)
    assert refusal.value.field == field
    p = site.params
    kwargs = {"size": p["size"], "scale_factor": p["scale_factor"] or (None if p["size"] else 2.0),
              "mode": p["interpolation"], "align_corners": p["align_corners"] or None,
              "recompute_scale_factor": p["recompute_scale_factor"] or None}
    assert _torch_refuses(lambda: F.interpolate(torch.zeros(1, 1, 5, 5), **kwargs))


# --- resize: Keras's and ONNX's facts --------------------------------------------------------------------------------

def test_keras_resize_facts() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)

    def keras_out(mode: str, data: np.ndarray = x) -> np.ndarray:
        y = keras.ops.image.resize(np.moveaxis(data, 1, -1), (12, 17), interpolation=mode)
        return np.moveaxis(to_numpy(y), -1, 1)

    def torch_out(mode: str, data: np.ndarray = x, **kw: Any) -> np.ndarray:
        return F.interpolate(torch.from_numpy(data), size=(12, 17), mode=mode, **kw).numpy()

    assert inspect.signature(keras.layers.Resizing.__init__).parameters["interpolation"].default == "bilinear"
    assert inspect.signature(torch.nn.Upsample.__init__).parameters["mode"].default == "nearest"
    assert np.abs(keras_out("bilinear") - torch_out("bilinear")).max() < 2e-6  # half-pixel, float32
    assert np.abs(keras_out("bilinear") - torch_out("bilinear", align_corners=True)).max() > 0.1
    assert np.array_equal(keras_out("nearest"), torch_out("nearest-exact"))
    assert np.abs(keras_out("nearest") - torch_out("nearest")).max() > 0.5
    assert np.abs(keras_out("bicubic") - torch_out("bicubic")).max() > 0.1
    x64 = x.astype(np.float64)  # Keras's bilinear is float32 inside, whatever the dtype
    assert 1e-8 < np.abs(keras_out("bilinear", x64) - torch_out("bilinear", x64)).max() < 2e-6


def _keys_dropped_outside(n: int, m: int, a: float) -> np.ndarray:
    """TensorFlow's bicubic along one axis as measured: Keys' cubic with `a`, taps outside the image dropped and the
    rest renormalised."""
    weights = np.zeros((m, n))
    x = (np.arange(m) + 0.5) * n / m - 0.5
    low = np.floor(x).astype(int)
    for k in (-1, 0, 1, 2):
        d = np.abs(x - (low + k))
        w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a)
        inside = (low + k >= 0) & (low + k < n)
        np.add.at(weights, (np.arange(m)[inside], (low + k)[inside]), w[inside])
    return weights / weights.sum(axis=1, keepdims=True)


def test_keras_bicubic_is_keys_a_half_with_outside_taps_dropped() -> None:
    """At factors 2 and 4 to float32 accuracy (at 3 and at non-integer ratios about 1e-3 away: TensorFlow's
    ScaleAndTranslate samples its kernel otherwise there); never PyTorch's a = -0.75."""
    x = np.random.default_rng(5).standard_normal((1, 4, 4, 2))
    keras_y = to_numpy(keras.ops.image.resize(x, (16, 8), interpolation="bicubic"))
    want = np.einsum("oh,nhwc,pw->nopc", _keys_dropped_outside(4, 16, -0.5), x, _keys_dropped_outside(4, 8, -0.5))
    assert np.abs(keras_y - want).max() < 1e-6
    pytorch_a = np.einsum("oh,nhwc,pw->nopc", _keys_dropped_outside(4, 16, -0.75), x,
                          _keys_dropped_outside(4, 8, -0.75))
    assert np.abs(keras_y - pytorch_a).max() > 1e-2


def test_onnx_reference_runtime_resize_defects() -> None:
    """Why resize's reference calls ONNX's coefficient functions and not its Resize (onnx 1.23.2): the neighbours are
    picked in edge-padded coordinates (7 -> 17, output 8 samples 3.0000000000000004 and reads cell 2), and cubic
    coefficients are float32 (a constant input comes back 2e-7 off)."""
    row = np.arange(7.0).reshape(1, 1, 1, 7)
    onnx_y = onnx_op("Resize", row, NONE, NONE, np.array([1, 1, 1, 17], dtype=np.int64), mode="linear",
                     coordinate_transformation_mode="half_pixel")
    torch_y = F.interpolate(torch.from_numpy(row), size=(1, 17), mode="bilinear").numpy()
    assert torch_y.ravel()[8] == 3.0 and abs(onnx_y.ravel()[8] - 2.0) < 1e-12
    constant = np.full((1, 1, 1, 1), 0.7)
    cubic = onnx_op("Resize", constant, NONE, NONE, np.array([1, 1, 2, 3], dtype=np.int64), mode="cubic",
                    coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75)
    assert 1e-8 < np.abs(cubic - 0.7).max() < 1e-6
    ours = get_block("resize").reference(_site("resize", {"interpolation": "bicubic", "size": [2, 3]}, (1, 1, 1, 1)),
                                         constant, {})
    assert np.abs(ours - 0.7).max() < 1e-15


def test_resize_onnx_agrees_where_it_has_no_defect() -> None:
    """ONNX Resize's conventions are PyTorch's: bilinear half_pixel (not pytorch_half_pixel: a 1-cell output samples
    the centre) and align_corners, cubic a = -0.75 with edge clamping (exclude_outside 0), to float32 accuracy."""
    x = np.random.default_rng(6).standard_normal((1, 2, 5, 4))
    for mode, onnx_mode, extra in (("bilinear", "linear", {}), ("bicubic", "cubic", {"cubic_coeff_a": -0.75})):
        for align, transform in ((False, "half_pixel"), (True, "align_corners")):
            for size in ((1, 1), (7, 9), (3, 2)):
                torch_y = F.interpolate(torch.from_numpy(x), size=size, mode=mode, align_corners=align).numpy()
                onnx_y = onnx_op("Resize", x, NONE, NONE, np.array([1, 2, *size], dtype=np.int64), mode=onnx_mode,
                                 coordinate_transformation_mode=transform, **extra)
                assert np.abs(onnx_y - torch_y).max() < 1e-5, (mode, align, size)
    centre = F.interpolate(torch.from_numpy(x), size=(1, 1), mode="bilinear").numpy()
    corner = onnx_op("Resize", x, NONE, NONE, np.array([1, 2, 1, 1], dtype=np.int64), mode="linear",
                     coordinate_transformation_mode="pytorch_half_pixel")
    assert np.abs(corner - x[:, :, :1, :1]).max() == 0 and np.abs(centre - corner).max() > 0.1


def test_interpolation2d_reloads(tmp_path: Path) -> None:
    x = np.random.default_rng(7).standard_normal((1, 5, 4, 2))
    inputs = keras.Input((5, 4, 2), dtype="float64")
    layer = Interpolation2D((8, 6), "bicubic", True, (1.7, 1.5), dtype="float64")
    keras.Model(inputs, layer(inputs)).save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects={"Interpolation2D": Interpolation2D})
    assert np.array_equal(to_numpy(loaded(x)), to_numpy(layer(x)))


class _Interpolations(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = torch.nn.Upsample(scale_factor=2)  # upsampling2d's, as before
        self.bilinear = torch.nn.UpsamplingBilinear2d(scale_factor=1.5)  # align_corners=True, not whole: resize

    def forward(self, x: Any) -> Any:
        x = self.bilinear(self.up(x))
        x = F.interpolate(x, size=(7, 9), mode="bicubic", align_corners=False)
        return F.interpolate(x, scale_factor=0.6, mode="nearest-exact", recompute_scale_factor=True)


def test_port_reads_resizing(tmp_path: Path) -> None:
    ported = port_model(_Interpolations(), input_shape=(2, 3, 3, 4), out=tmp_path / "ported")
    assert ported.blocks == ["upsampling2d", "resize", "resize", "resize"]
    assert ported.passed, ported.result.message if ported.result else ""
    params = get_block("resize").params_from_torch(torch.nn.UpsamplingBilinear2d(scale_factor=1.5), (1, 1, 4, 4))
    assert params == {"interpolation": "bilinear", "scale_factor": 1.5, "align_corners": True}
    with pytest.raises(Refusal, match="'area'"):
        get_block("resize").params_from_torch(torch.nn.Upsample(size=3, mode="area"), (1, 1, 6, 6))


def test_resize_output_size_is_floor_of_the_product() -> None:
    for n, f in [(5, 2.5), (7, 1.3), (10, 0.3), (3, 1 / 3)]:
        site = _site("resize", {"scale_factor": f}, (1, 1, n, n))
        y = F.interpolate(torch.zeros(1, 1, n, n), scale_factor=f)
        assert get_block("resize").output_shape(site)[2:] == tuple(y.shape[2:]) == (math.floor(n * f),) * 2
