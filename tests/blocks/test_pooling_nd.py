"""1-D and 3-D pooling, dilation and adaptive pooling (xfw_harness/blocks/pooling.py, global_pooling.py,
pooling_layers.py): the references against PyTorch's own float64 functions over grids (PyTorch's adaptive window
rule itself: tests/core/test_spatial.py), the harness's Keras layers, `xfw-harness port`'s precedence between
global, window and adaptive pooling, and the hand ports' refusals."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from xfw_harness.blocks import Site, get_block
from xfw_harness.blocks.pooling_layers import DilatedMaxPooling, PoolSumOverCount
from xfw_harness.core.errors import Refusal
from xfw_harness.core.frameworks import keras, to_numpy, torch
from xfw_harness.core.schema import normalise_params
from xfw_harness.tools.port.translate import block_for_module, readers

F = torch.nn.functional


def _site(block: str, raw: dict[str, Any], shape: tuple[int, ...], dtype: str = "float64",
          written: frozenset[str] | None = None) -> Site:
    return Site(normalise_params(get_block(block).params, raw), tuple(shape), dtype, "eval", written=written)


def _x(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _keras_out(layer: Any, x: np.ndarray) -> np.ndarray:
    """A Keras layer on a channels-first array: moved channels-last and back."""
    out = to_numpy(layer(np.moveaxis(x, 1, -1)))
    return np.moveaxis(out, -1, 1) if out.ndim == x.ndim else out


def _all_three(block: str, raw: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = get_block(block)
    site = _site(block, raw, x.shape)
    with torch.no_grad():
        t = b.torch_module(site).double()(torch.from_numpy(x)).numpy()
    return t, _keras_out(b.keras_layer(site), x), b.reference(site, x, {})


@pytest.mark.parametrize(("block", "shape", "out"), [
    ("adaptive_avg_pool1d", (2, 3, 9), [4]), ("adaptive_max_pool1d", (2, 3, 4), [7]),
    ("adaptive_avg_pool2d", (2, 2, 7, 10), [5, 4]), ("adaptive_max_pool2d", (1, 2, 7, 10), [None, 3]),
    ("adaptive_avg_pool3d", (1, 2, 4, 5, 7), [3, None, 9]), ("adaptive_max_pool3d", (1, 2, 4, 5, 7), [3, 2, 5])])
def test_adaptive_pooling_all_three_agree(block: str, shape: tuple[int, ...], out: list[int | None]) -> None:
    """PyTorch's module, the harness's AdaptivePooling and the NumPy reference, float64, None entries included."""
    t, k, ref = _all_three(block, {"output_size": out}, _x(shape))
    np.testing.assert_allclose(k, t, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(ref, t, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("spatial", [1, 2, 3])
def test_window_pool_references_equal_torch_functions(spatial: int) -> None:
    """ONNX's reference (as the blocks call it) against PyTorch's float64 max_pool/avg_pool{1,2,3}d: windows,
    strides, padding PyTorch takes, dilation (max), ceil mode, both divisors."""
    x = _x((1, 2, *(5, 6, 4)[:spatial]), seed=spatial)
    fmax, favg = getattr(F, f"max_pool{spatial}d"), getattr(F, f"avg_pool{spatial}d")
    for k, s, p, d, ceil in itertools.product((1, 2, 3), (1, 2), (0, 1), (1, 2), (False, True)):
        if p > k // 2 or (k - 1) * d + 1 > min(x.shape[2:]) + 2 * p:
            continue
        raw = {"pool_size": k, "strides": s, "padding": p, "ceil_mode": ceil}
        want = fmax(torch.from_numpy(x), k, s, p, d, ceil_mode=ceil).numpy()
        site = _site(f"max_pool{spatial}d", {**raw, "dilation": d}, x.shape)
        assert get_block(f"max_pool{spatial}d").output_shape(site) == want.shape
        np.testing.assert_array_equal(get_block(f"max_pool{spatial}d").reference(site, x, {}), want)
        for include in (False, True):
            want = favg(torch.from_numpy(x), k, s, p, ceil_mode=ceil, count_include_pad=include).numpy()
            site = _site(f"avg_pool{spatial}d", {**raw, "count_include_pad": include}, x.shape)
            np.testing.assert_allclose(get_block(f"avg_pool{spatial}d").reference(site, x, {}), want, rtol=1e-13,
                                       atol=1e-13)


def test_dilated_max_pooling_layer_equals_torch() -> None:
    """The taps' maximum in keras.ops against MaxPool2d(dilation), valid: each tap a strided slice."""
    x = _x((2, 3, 11, 9))
    for k, s, d in (((3, 2), (1, 1), (2, 3)), ((2, 2), (2, 3), (3, 1)), ((3, 3), (2, 2), (2, 2))):
        want = F.max_pool2d(torch.from_numpy(x), k, s, dilation=d).numpy()
        np.testing.assert_array_equal(_keras_out(DilatedMaxPooling(k, s, d, dtype="float64"), x), want)


def test_tap_average_equals_average_pool() -> None:
    """PoolSumOverCount by taps (3-D float64, where TensorFlow has no AvgPool3D kernel) is the average pool."""
    x = _x((1, 2, 5, 6, 7))
    layer = PoolSumOverCount((2, 3, 2), (1, 2, 2), ((0, 1), (1, 1), (0, 0)), ((0, 0),) * 3, by_taps=True,
                             dtype="float64")
    xp = np.pad(x, [(0, 0), (0, 0), (0, 1), (1, 1), (0, 0)])
    mask = np.pad(np.ones((1, 1, 5, 6, 7)), [(0, 0), (0, 0), (0, 1), (1, 1), (0, 0)])
    pool = torch.nn.functional.avg_pool3d
    want = (pool(torch.from_numpy(xp), (2, 3, 2), (1, 2, 2)) / pool(torch.from_numpy(mask), (2, 3, 2), (1, 2, 2)))
    np.testing.assert_allclose(_keras_out(layer, x), want.numpy(), rtol=1e-14, atol=1e-15)


def test_onnx_reference_global_max_pool_is_wrong_outside_2d() -> None:
    """Why global max pooling's reference is NumPy: ONNX's reference GlobalMaxPool reduces the last two axes, the
    spatial ones only in 2-D (if this starts passing, ONNX fixed it)."""
    from xfw_harness.blocks.reference import onnx_op
    assert onnx_op("GlobalMaxPool", _x((2, 5, 9))).shape == (2, 1)  # the channels reduced: not [2, 5, 1]
    assert onnx_op("GlobalMaxPool", _x((2, 3, 3, 4, 5))).shape == (2, 3, 3, 1, 1, 1)  # the depth kept, rank 6
    for block, shape in (("global_max_pool1d", (2, 5, 9)), ("global_max_pool3d", (2, 3, 3, 4, 5))):
        x = _x(shape)
        got = get_block(block).reference(_site(block, {"keepdims": True}, shape), x, {})
        np.testing.assert_array_equal(got, getattr(F, f"adaptive_max_pool{len(shape) - 2}d")(
            torch.from_numpy(x), 1).numpy())


@pytest.mark.parametrize(("module", "shape", "block", "params"), [
    (torch.nn.AdaptiveAvgPool2d(1), (1, 2, 7, 7), "global_avg_pool2d", {"keepdims": True}),
    (torch.nn.AdaptiveAvgPool2d((2, None)), (1, 2, 8, 5), "avg_pool2d", {"pool_size": [4, 1]}),
    (torch.nn.AdaptiveAvgPool2d((3, 4)), (1, 2, 7, 8), "adaptive_avg_pool2d", {"output_size": [3, 4]}),
    (torch.nn.AdaptiveMaxPool2d((None, 3)), (1, 2, 7, 8), "adaptive_max_pool2d", {"output_size": [None, 3]}),
    (torch.nn.AdaptiveMaxPool1d(1), (1, 2, 7), "global_max_pool1d", {"keepdims": True}),
    (torch.nn.AdaptiveMaxPool1d(3), (1, 2, 9), "max_pool1d", {"pool_size": 3}),
    (torch.nn.AdaptiveAvgPool1d(4), (1, 2, 9), "adaptive_avg_pool1d", {"output_size": 4}),
    (torch.nn.AdaptiveAvgPool3d((2, 3, 1)), (1, 2, 4, 5, 6), "adaptive_avg_pool3d", {"output_size": [2, 3, 1]}),
    (torch.nn.MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True), (1, 2, 9), "max_pool1d",
     {"pool_size": 3, "strides": 2, "padding": 1, "dilation": 2, "ceil_mode": True}),
    (torch.nn.MaxPool2d(3, dilation=(1, 2)), (1, 2, 9, 9), "max_pool2d", {"pool_size": 3, "dilation": [1, 2]}),
    (torch.nn.AvgPool3d((2, 1, 2), padding=(1, 0, 0)), (1, 2, 4, 5, 6), "avg_pool3d",
     {"pool_size": [2, 1, 2], "padding": [1, 0, 0], "count_include_pad": True})])
def test_port_reads_global_window_then_adaptive(module: Any, shape: tuple[int, ...], block: str,
                                                params: dict[str, Any]) -> None:
    """Adaptive pooling to 1 is global pooling, to a divisor of the input window pooling (Keras's own layers), any
    other size the adaptive block; window pooling of 1 and 3 axes with dilation and padding as written."""
    got, got_params = block_for_module(module, "m", shape, readers())
    assert (got.name, got_params) == (block, params)


def test_native_keras_adaptive_max_refused_where_it_kills_the_process() -> None:
    """Keras's AdaptiveMaxPooling dies with SIGFPE where ceil(n/k) + 1 > n (measured in a child process): refused;
    elsewhere the hand port is Keras's own layer, which agrees with PyTorch."""
    with pytest.raises(Refusal, match="SIGFPE"):
        get_block("adaptive_max_pool1d").native_keras_layer(_site("adaptive_max_pool1d", {"output_size": 1}, (1, 2, 3),
                                                                  written=frozenset({"output_size"})))
    site = _site("adaptive_max_pool2d", {"output_size": [5, 4]}, (1, 2, 7, 10), written=frozenset({"output_size"}))
    b = get_block("adaptive_max_pool2d")
    x = _x((1, 2, 7, 10))
    with torch.no_grad():
        want = b.native_torch_module(site).double()(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(_keras_out(b.native_keras_layer(site), x), want)


def test_native_dilation_and_3d_dtype() -> None:
    """dilation goes to PyTorch only (Keras's pooling has none); Keras's 3-D pooling has no float64 CPU kernel."""
    raw = {"pool_size": 3, "strides": 1, "dilation": 2}
    site = _site("max_pool2d", raw, (1, 2, 7, 7), written=frozenset(raw))
    m, k = get_block("max_pool2d").native_torch_module(site), get_block("max_pool2d").native_keras_layer(site)
    assert m.dilation == (2, 2) and isinstance(k, keras.layers.MaxPooling2D)
    with pytest.raises(Refusal, match="no float64 CPU kernel"):
        get_block("avg_pool3d").native_keras_layer(_site("avg_pool3d", {"pool_size": 2}, (1, 1, 4, 4, 4),
                                                         written=frozenset({"pool_size"})))


def test_dilated_window_without_input_is_refused() -> None:
    """Taps wider apart than the input: a window of only padding would be -inf; refused with the reason."""
    with pytest.raises(Refusal, match="taps all fall in the padding"):
        get_block("max_pool1d").output_shape(_site("max_pool1d", {"pool_size": 2, "strides": 1, "dilation": 3,
                                                                  "padding": 2}, (1, 1, 1)))


class _Volume(torch.nn.Module):
    """A 3-D pooling chain written in the functional form (graph capture), ending in a mean over D, H and W."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool3d(x, 2, 1, dilation=(1, 2, 1))
        x = F.avg_pool3d(x, (2, 1, 2), padding=(1, 0, 0), ceil_mode=True)
        return F.adaptive_max_pool3d(x, (3, 2, 5)).mean((2, 3, 4))


@pytest.mark.parametrize(("model", "shape", "blocks"), [
    (torch.nn.Sequential(torch.nn.MaxPool1d(3, 2, padding=1, dilation=2, ceil_mode=True), torch.nn.AvgPool1d(2),
                         torch.nn.AdaptiveAvgPool1d(3), torch.nn.AdaptiveMaxPool1d(2), torch.nn.AdaptiveAvgPool1d(1)),
     (2, 3, 29), ["max_pool1d", "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d", "global_avg_pool1d"]),
    (torch.nn.Sequential(torch.nn.MaxPool2d(3, 1, padding=1, dilation=2), torch.nn.AdaptiveAvgPool2d((3, None)),
                         torch.nn.AdaptiveMaxPool2d(5)),
     (2, 3, 11, 9), ["max_pool2d", "avg_pool2d", "adaptive_max_pool2d"]),
    (_Volume(), (1, 2, 6, 7, 9), ["max_pool3d", "avg_pool3d", "adaptive_max_pool3d", "global_avg_pool3d"])])
def test_port_verifies_and_saves_a_keras_model_that_reloads(model: Any, shape: tuple[int, ...], blocks: list[str],
                                                            tmp_path: Any) -> None:
    """xfw-harness port of 1-D, 2-D and 3-D pooling chains (modules and functional calls): each layer read by its block,
    the case verified against the model, and the saved .keras file (the harness's own pooling layers named for
    loading) gives the model's output on a new input."""
    from xfw_harness.tools.port import port_model
    ported = port_model(model, shape, out=tmp_path, name="pooled")
    assert ported.passed and ported.blocks == blocks
    keras.backend.clear_session()
    reloaded = keras.models.load_model(ported.keras_path, custom_objects=ported.custom_objects)
    x = _x((3, *shape[1:]), seed=5).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = np.asarray(reloaded(np.moveaxis(x, 1, -1)))
    np.testing.assert_allclose(np.moveaxis(got, -1, 1) if got.ndim > 2 else got, want, rtol=1e-5, atol=1e-6)
