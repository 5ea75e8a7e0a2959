"""xfw_harness/layout.py against brute force and against the frameworks themselves."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xfw_harness.core.frameworks import keras, to_numpy, torch
from xfw_harness.core.layout import (
    CHANNELS_LAST,
    Layout,
    channel_vector_to_keras,
    channels_last_axes,
    conv_kernel_to_keras,
    conv_kernel_to_torch,
    conv_transpose_kernel_to_keras,
    conv_transpose_kernel_to_torch,
    dense_after_flatten_kernel_to_keras,
    dense_kernel_to_keras,
    dense_kernel_to_torch,
    depthwise_kernel_to_keras,
    depthwise_kernel_to_torch,
    flatten_permutation,
    grouped_conv_transpose_kernel_to_keras,
    grouped_conv_transpose_kernel_to_torch,
    shape_to_channels_last,
    to_channels_first,
    to_channels_last,
)

SHAPES = {2: (3, 5), 3: (2, 3, 7), 4: (2, 3, 4, 5), 5: (2, 3, 4, 5, 6)}


def _arange(shape: tuple[int, ...]) -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)


@pytest.mark.parametrize("rank", sorted(SHAPES))
def test_channels_round_trip(rank: int) -> None:
    x = _arange(SHAPES[rank])
    last = to_channels_last(x)
    assert last.shape == shape_to_channels_last(x.shape)
    if rank > 2:
        # Brute force: element (n, c, *s) of the channels-first tensor is element (n, *s, c) of the channels-last.
        for idx in itertools.product(*(range(d) for d in x.shape)):
            n, c, *s = idx
            assert last[(n, *s, c)] == x[idx]
        assert last.shape != x.shape
    else:
        np.testing.assert_array_equal(last, x)
    np.testing.assert_array_equal(to_channels_first(last), x)
    assert to_channels_first(last).shape == x.shape


@pytest.mark.parametrize(("rank", "axis"), [(r, a) for r in sorted(SHAPES) for a in range(-r, r)])
def test_keras_axis_of_a_channels_last_tensor(rank: int, axis: int) -> None:
    # Give every axis a distinct size so that an axis is identified by its length.
    shape = tuple(range(2, 2 + rank))
    x = _arange(shape)
    k = Layout().keras_axis(axis, rank)
    assert 0 <= k < rank
    last = Layout().to_keras(x)
    np.testing.assert_array_equal(last, to_channels_last(x))
    assert last.shape[k] == x.shape[axis]
    # Moving the named axis to the front in both layouts gives the same slices, in the same order.
    front_first = np.moveaxis(x, axis, 0)
    front_last = np.moveaxis(last, k, 0)
    for i in range(x.shape[axis]):
        np.testing.assert_array_equal(np.sort(front_first[i], axis=None), np.sort(front_last[i], axis=None))
    # A reduction along the axis agrees after converting layouts.
    np.testing.assert_array_equal(to_channels_last(np.cumsum(x, axis=axis)), np.cumsum(last, axis=k))


def _torch_conv(kh: int, kw: int, cin: int, cout: int, groups: int, seed: int = 0) -> torch.nn.Conv2d:
    torch.manual_seed(seed)
    return torch.nn.Conv2d(cin, cout, (kh, kw), groups=groups, bias=True)


def _keras_conv(kh: int, kw: int, cin: int, cout: int, groups: int, h: int, w: int) -> keras.layers.Conv2D:
    layer = keras.layers.Conv2D(cout, (kh, kw), groups=groups, padding="valid")
    layer.build((1, h, w, cin))
    return layer


def test_conv_kernel_non_square_grouped_matches_torch() -> None:
    kh, kw, cin, cout, groups, h, w = 3, 2, 4, 6, 2, 7, 9
    conv = _torch_conv(kh, kw, cin, cout, groups)
    x = np.random.default_rng(0).standard_normal((2, cin, h, w)).astype(np.float32)
    with torch.no_grad():
        expected = to_numpy(conv(torch.from_numpy(x)))
    weight = to_numpy(conv.weight)
    assert weight.shape == (cout, cin // groups, kh, kw)

    layer = _keras_conv(kh, kw, cin, cout, groups, h, w)
    kernel = conv_kernel_to_keras(weight)
    assert kernel.shape == (kh, kw, cin // groups, cout)
    layer.kernel.assign(kernel)
    layer.bias.assign(to_numpy(conv.bias))
    got = to_channels_first(to_numpy(layer(to_channels_last(x))))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(conv_kernel_to_torch(kernel), weight)

    # The (3, 2, 1, 0) permutation swaps kh and kw: with a 3x2 kernel Keras refuses it by shape.
    wrong = np.ascontiguousarray(weight.transpose(3, 2, 1, 0))
    assert wrong.shape == (kw, kh, cin // groups, cout)
    with pytest.raises(ValueError):
        layer.kernel.assign(wrong)


def test_conv_kernel_wrong_permutation_square_gives_other_values() -> None:
    # A square kernel hides the swap from a shape check: only values show it.
    k, cin, cout, groups, h, w = 3, 4, 4, 2, 6, 6
    conv = _torch_conv(k, k, cin, cout, groups, seed=1)
    x = np.random.default_rng(1).standard_normal((1, cin, h, w)).astype(np.float32)
    with torch.no_grad():
        expected = to_numpy(conv(torch.from_numpy(x)))
    weight = to_numpy(conv.weight)
    layer = _keras_conv(k, k, cin, cout, groups, h, w)
    layer.bias.assign(to_numpy(conv.bias))

    layer.kernel.assign(np.ascontiguousarray(weight.transpose(3, 2, 1, 0)))  # same shape as the right one here
    wrong = to_channels_first(to_numpy(layer(to_channels_last(x))))
    assert np.max(np.abs(wrong - expected)) > 0.1

    layer.kernel.assign(conv_kernel_to_keras(weight))
    right = to_channels_first(to_numpy(layer(to_channels_last(x))))
    np.testing.assert_allclose(right, expected, rtol=1e-5, atol=1e-5)


def test_dense_kernel_non_square() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(5, 3)
    x = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    with torch.no_grad():
        expected = to_numpy(linear(torch.from_numpy(x)))
    dense = keras.layers.Dense(3)
    dense.build((4, 5))
    kernel = dense_kernel_to_keras(to_numpy(linear.weight))
    assert kernel.shape == (5, 3)
    dense.kernel.assign(kernel)
    dense.bias.assign(to_numpy(linear.bias))
    np.testing.assert_allclose(to_numpy(dense(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(dense_kernel_to_torch(kernel), to_numpy(linear.weight))
    with pytest.raises(ValueError):
        dense.kernel.assign(to_numpy(linear.weight))  # untransposed: (3, 5) where (5, 3) is needed


def test_flatten_permutation_brute_force() -> None:
    c, h, w = 3, 4, 5
    perm = flatten_permutation((c, h, w))
    x = np.random.default_rng(3).standard_normal((2, c, h, w))
    torch_flat = x.reshape(2, -1)
    keras_flat = to_channels_last(x).reshape(2, -1)
    np.testing.assert_array_equal(keras_flat, torch_flat[..., perm])
    assert sorted(perm.tolist()) == list(range(c * h * w))
    assert not np.array_equal(perm, np.arange(c * h * w))
    # One channel, or a rank-1 per-sample tensor: no permutation.
    np.testing.assert_array_equal(flatten_permutation((7,)), np.arange(7))
    np.testing.assert_array_equal(flatten_permutation((1, 2, 3)), np.arange(6))


def test_flatten_then_dense_matches_torch() -> None:
    n, c, h, w, units = 2, 3, 4, 5, 6
    torch.manual_seed(4)
    linear = torch.nn.Linear(c * h * w, units)
    model = torch.nn.Sequential(torch.nn.Flatten(), linear)
    x = np.random.default_rng(4).standard_normal((n, c, h, w)).astype(np.float32)
    with torch.no_grad():
        expected = to_numpy(model(torch.from_numpy(x)))

    dense = keras.layers.Dense(units)
    kmodel = keras.Sequential([keras.layers.Flatten(), dense])
    kmodel.build((n, h, w, c))
    dense.bias.assign(to_numpy(linear.bias))
    weight = to_numpy(linear.weight)

    dense.kernel.assign(dense_after_flatten_kernel_to_keras(weight, (c, h, w)))
    got = to_numpy(kmodel(to_channels_last(x)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    dense.kernel.assign(dense_kernel_to_keras(weight))  # the plain transpose: the same shape, rows in C,H,W order
    wrong = to_numpy(kmodel(to_channels_last(x)))
    assert np.max(np.abs(wrong - expected)) > 0.1


def test_flattened_layout_round_trip() -> None:
    c, h, w = 3, 2, 4
    layout = Layout(flattened_from=(c, h, w))
    x = np.random.default_rng(5).standard_normal((2, c, h, w))
    torch_flat = x.reshape(2, -1)
    keras_flat = layout.to_keras(torch_flat)
    # What Keras's Flatten makes of the channels-last tensor.
    np.testing.assert_array_equal(keras_flat, to_channels_last(x).reshape(2, -1))
    np.testing.assert_array_equal(layout.to_channels_first(keras_flat), torch_flat)
    assert not np.array_equal(keras_flat, torch_flat)
    # The axes of a flattened (rank 2) tensor are the same in both layouts.
    assert [layout.keras_axis(a, 2) for a in (-2, -1, 0, 1)] == [0, 1, 0, 1]


def test_plain_layout_round_trip() -> None:
    layout = Layout()
    x = _arange((2, 3, 4, 5))
    np.testing.assert_array_equal(layout.to_keras(x), np.moveaxis(x, 1, -1))
    np.testing.assert_array_equal(layout.to_channels_first(layout.to_keras(x)), x)
    assert layout.keras_axis(1, 4) == 3


def _keras_output(layer: keras.Layer, x: np.ndarray) -> np.ndarray:
    return to_channels_first(to_numpy(layer(to_channels_last(x))))


@pytest.mark.parametrize("multiplier", [1, 3])
def test_depthwise_kernel_matches_torch_and_round_trips(multiplier: int) -> None:
    """Brute force against the frameworks: Conv2d(groups=in) and DepthwiseConv2D agree in float64 with the
    converted kernel (3x2, so kh/kw stay apart), and the inverse gives PyTorch's weight back."""
    cin, kh, kw, h, w = 3, 3, 2, 6, 7
    torch.manual_seed(5)
    conv = torch.nn.Conv2d(cin, cin * multiplier, (kh, kw), groups=cin, bias=False).double()
    x = np.random.default_rng(5).standard_normal((2, cin, h, w))
    with torch.no_grad():
        expected = to_numpy(conv(torch.from_numpy(x)))
    weight = to_numpy(conv.weight)
    layer = keras.layers.DepthwiseConv2D((kh, kw), depth_multiplier=multiplier, use_bias=False, dtype="float64")
    layer.build((1, h, w, cin))
    kernel = depthwise_kernel_to_keras(weight, multiplier)
    assert kernel.shape == (kh, kw, cin, multiplier)
    layer.kernel.assign(kernel)
    np.testing.assert_allclose(_keras_output(layer, x), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(depthwise_kernel_to_torch(kernel), weight)
    # Element by element: PyTorch's output channel c*m + q is Keras's kernel[..., c, q].
    for c in range(cin):
        for q in range(multiplier):
            np.testing.assert_array_equal(kernel[:, :, c, q], weight[c * multiplier + q, 0])


def test_depthwise_kernel_split_the_wrong_way_gives_other_values() -> None:
    """Rows split as (m, in) instead of (in, m): the same shape, other values once m > 1 and in > 1."""
    cin, m, k = 3, 2, 3
    weight = np.random.default_rng(6).standard_normal((cin * m, 1, k, k))
    wrong = np.ascontiguousarray(weight.reshape(m, cin, k, k).transpose(2, 3, 1, 0))
    right = depthwise_kernel_to_keras(weight, m)
    assert wrong.shape == right.shape and not np.array_equal(wrong, right)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_transpose_kernel_matches_torch_and_round_trips(stride: int) -> None:
    """ConvTranspose2d [in, out, kh, kw] -> Conv2DTranspose (kh, kw, out, in), checked against both frameworks in
    float64 with 3 inputs, 5 outputs and a 3x2 kernel (a swap of in/out or of kh/kw changes the shape)."""
    cin, cout, kh, kw, h, w = 3, 5, 3, 2, 4, 5
    torch.manual_seed(7)
    conv = torch.nn.ConvTranspose2d(cin, cout, (kh, kw), stride=stride, bias=False).double()
    x = np.random.default_rng(7).standard_normal((2, cin, h, w))
    with torch.no_grad():
        expected = to_numpy(conv(torch.from_numpy(x)))
    weight = to_numpy(conv.weight)
    assert weight.shape == (cin, cout, kh, kw)
    layer = keras.layers.Conv2DTranspose(cout, (kh, kw), strides=stride, output_padding=0, use_bias=False,
                                         dtype="float64")
    layer.build((1, h, w, cin))
    kernel = conv_transpose_kernel_to_keras(weight)
    assert kernel.shape == (kh, kw, cout, cin)
    layer.kernel.assign(kernel)
    np.testing.assert_allclose(_keras_output(layer, x), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(conv_transpose_kernel_to_torch(kernel), weight)
    with pytest.raises(ValueError):
        layer.kernel.assign(np.ascontiguousarray(weight.transpose(2, 3, 0, 1)))  # (kh, kw, in, out): in/out swapped


def test_conv_transpose_kernel_is_not_flipped_and_in_out_matter() -> None:
    """With as many outputs as inputs and a square kernel, two plausible wrong conversions keep the shape: the
    spatially flipped kernel ("a transposed convolution is a convolution with the flipped kernel") and in/out
    swapped. Both give other values; the conversion is the conv kernel's permutation, applied to [in, out, ...]."""
    c, k, h = 4, 3, 5
    torch.manual_seed(8)
    conv = torch.nn.ConvTranspose2d(c, c, k, stride=2, bias=False).double()
    x = np.random.default_rng(8).standard_normal((1, c, h, h))
    with torch.no_grad():
        expected = to_numpy(conv(torch.from_numpy(x)))
    weight = to_numpy(conv.weight)
    layer = keras.layers.Conv2DTranspose(c, k, strides=2, output_padding=0, use_bias=False, dtype="float64")
    layer.build((1, h, h, c))
    np.testing.assert_array_equal(conv_transpose_kernel_to_keras(weight), conv_kernel_to_keras(weight))
    for wrong in (conv_transpose_kernel_to_keras(weight)[::-1, ::-1], np.transpose(weight, (2, 3, 0, 1))):
        layer.kernel.assign(np.ascontiguousarray(wrong))
        assert np.max(np.abs(_keras_output(layer, x) - expected)) > 0.1
    layer.kernel.assign(conv_transpose_kernel_to_keras(weight))
    np.testing.assert_allclose(_keras_output(layer, x), expected, rtol=1e-12, atol=1e-12)



@pytest.mark.parametrize(("spatial", "kernel", "size"), [(1, (3,), (7,)), (3, (2, 3, 1), (3, 4, 5))])
def test_conv_kernels_of_any_rank_match_torch_and_round_trip(spatial: int, kernel: tuple, size: tuple) -> None:
    """Conv1d [out, in, l] -> Conv1D (l, in, out) and Conv3d [out, in, d, h, w] -> Conv3D (d, h, w, in, out); their
    transposes [in, out, ...] -> (..., out, in): both frameworks agree in float64 through the conversions, with
    3 inputs, 5 outputs and a non-cubic kernel (a swap of in/out or of spatial axes changes the shape)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, *size))
    torch.manual_seed(9)
    for torch_cls, keras_cls, convert, back in (
            (getattr(torch.nn, f"Conv{spatial}d"), getattr(keras.layers, f"Conv{spatial}D"), conv_kernel_to_keras,
             conv_kernel_to_torch),
            (getattr(torch.nn, f"ConvTranspose{spatial}d"), getattr(keras.layers, f"Conv{spatial}DTranspose"),
             conv_transpose_kernel_to_keras, conv_transpose_kernel_to_torch)):
        conv = torch_cls(3, 5, kernel, bias=False).double()
        with torch.no_grad():
            expected = to_numpy(conv(torch.from_numpy(x)))
        layer = keras_cls(5, kernel, use_bias=False, dtype="float64")
        layer.build((1, *size, 3))
        weight = to_numpy(conv.weight)
        layer.kernel.assign(convert(weight))
        np.testing.assert_allclose(_keras_output(layer, x), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(back(convert(weight)), weight)


def test_grouped_conv_transpose_kernel_matches_torch_and_round_trips() -> None:
    """ConvTranspose2d(6, 9, groups=3)'s weight [6, 3, kh, kw] -> (3, kh, kw, out/g, in/g): group j's Keras kernel at
    [j] computes PyTorch's group j on its channel slice (float64); the rows split as (groups, in/groups): split the
    other way, each group gets every third channel's kernel and other values."""
    g, cin, cout, kh, kw = 3, 6, 9, 3, 2
    torch.manual_seed(10)
    conv = torch.nn.ConvTranspose2d(cin, cout, (kh, kw), stride=2, groups=g, bias=False).double()
    x = np.random.default_rng(10).standard_normal((2, cin, 4, 5))
    with torch.no_grad():
        expected = to_numpy(conv(torch.from_numpy(x)))
    weight = to_numpy(conv.weight)
    kernel = grouped_conv_transpose_kernel_to_keras(weight, g)
    assert kernel.shape == (g, kh, kw, cout // g, cin // g)
    np.testing.assert_array_equal(grouped_conv_transpose_kernel_to_torch(kernel), weight)
    wrong = np.ascontiguousarray(np.transpose(weight.reshape(cin // g, g, cout // g, kh, kw).swapaxes(0, 1),
                                              (0, 3, 4, 2, 1)))
    for candidate, agrees in ((kernel, True), (wrong, False)):
        parts = []
        for j in range(g):
            layer = keras.layers.Conv2DTranspose(cout // g, (kh, kw), strides=2, use_bias=False, dtype="float64")
            layer.build((1, 4, 5, cin // g))
            layer.kernel.assign(candidate[j])
            parts.append(_keras_output(layer, x[:, j * cin // g:(j + 1) * cin // g]))
        got = np.concatenate(parts, axis=1)
        assert np.allclose(got, expected, rtol=1e-12, atol=1e-12) == agrees


@pytest.mark.parametrize("shape", [(), (5,), (3, 5), (2, 3, 7), (2, 3, 4, 5), (2, 3, 4, 5, 6)])
def test_shape_to_channels_last_is_the_shape_of_the_moved_tensor(shape: tuple[int, ...]) -> None:
    """The shape Keras's input is declared with is the shape of the tensor `to_channels_last` makes, at every rank
    (rank 2 and below as they are)."""
    assert shape_to_channels_last(shape) == to_channels_last(np.zeros(shape)).shape


def test_channel_vector_after_a_flatten_is_permuted_into_kerass_feature_order() -> None:
    """One value per feature of a flattened (C, H, W) tensor (a PReLU's slopes, a batch norm's statistics after a
    flatten) lands where Keras's Flatten puts that feature: the value of PyTorch's feature i is Keras's at the
    feature's channels-last position, as for the activations themselves."""
    c, h, w = 3, 2, 2
    features = np.arange(c * h * w, dtype=np.float64) * 10
    got = channel_vector_to_keras(features, (c * h * w,), (c, h, w))
    np.testing.assert_array_equal(got, Layout(flattened_from=(c, h, w)).to_keras(features[None])[0])
    assert not np.array_equal(got, features)
    np.testing.assert_array_equal(channel_vector_to_keras(features, (c * h * w,)), features)  # not flattened: as is


@pytest.mark.parametrize("flattened_from", [None, (3, 2, 2)])
def test_one_value_is_broadcast_whether_or_not_the_tensor_was_flattened(flattened_from: tuple | None) -> None:
    """A single value [1] (PReLU with one slope) fills every position of Keras's weight: after a flatten there is
    nothing to permute."""
    np.testing.assert_array_equal(channel_vector_to_keras(np.array([0.25]), (12,), flattened_from), np.full(12, 0.25))
    np.testing.assert_array_equal(channel_vector_to_keras(np.array([0.25]), (1, 1, 3), flattened_from),
                                  np.full((1, 1, 3), 0.25))


def test_a_permute_records_where_pytorchs_axes_went() -> None:
    """After torch.permute(x, (0, 2, 3, 1)) PyTorch holds NHWC, as Keras already does: Keras's tensor is PyTorch's
    as it is (axes (0, 1, 2, 3)), which is not the standard layout, and to_keras gives Keras's tensor from PyTorch's."""
    x = _arange((2, 3, 4, 5))
    keras_x = CHANNELS_LAST.to_keras(x)
    layout = CHANNELS_LAST.permuted((0, 2, 3, 1))
    assert layout == Layout(axes=(0, 1, 2, 3)) and not layout.standard
    np.testing.assert_array_equal(layout.to_keras(np.transpose(x, (0, 2, 3, 1))), keras_x)
    other = CHANNELS_LAST.permuted((0, 1, 3, 2))  # H and W swapped in PyTorch only
    np.testing.assert_array_equal(other.to_keras(np.transpose(x, (0, 1, 3, 2))), keras_x)
    assert not other.standard


def test_a_permute_back_to_channels_first_is_the_standard_layout_again() -> None:
    """ConvNeXt's permute to NHWC and back: the layout is channels-last again, standard, so the blocks that take
    only channels-first tensors accept it."""
    layout = CHANNELS_LAST.permuted((0, 2, 3, 1)).permuted((0, 3, 1, 2))
    assert layout == CHANNELS_LAST and layout.standard and layout.describe() == "channels-last"


@pytest.mark.parametrize(("layout", "text"), [
    (CHANNELS_LAST, "channels-last"),
    (Layout(flattened_from=(3, 4, 5)), "flattened from [3, 4, 5]"),
    (Layout(axes=(0, 1, 2, 3)), "axes [0, 1, 2, 3] of PyTorch's tensor"),
])
def test_describe_names_the_layout_as_errors_show_it(layout: Layout, text: str) -> None:
    """The words a refusal uses for a tensor's layout (a dense after a permute, a merge of different layouts)."""
    assert layout.describe() == text


@pytest.mark.parametrize("per_sample", [(3, 4), (2, 3, 4), (2, 1, 3, 4)])
def test_flatten_permutation_of_a_1d_2d_or_3d_blocks_output(per_sample: tuple[int, ...]) -> None:
    """After a Conv1d, (C, L) flattens in that order in PyTorch and as (L, C) in Keras: the permutation of every
    rank of per-sample tensor is Keras's flatten of the channels-last tensor."""
    x = _arange((2, *per_sample))
    perm = flatten_permutation(per_sample)
    np.testing.assert_array_equal(to_channels_last(x).reshape(2, -1), x.reshape(2, -1)[..., perm])
    assert not np.array_equal(perm, np.arange(perm.size))


@pytest.mark.parametrize(("rank", "axes"), [(0, ()), (1, (0,)), (2, (0, 1)), (3, (0, 2, 1)), (4, (0, 2, 3, 1)),
                                            (5, (0, 2, 3, 4, 1))])
def test_channels_last_axes_of_every_rank(rank: int, axes: tuple[int, ...]) -> None:
    """The channels move last from rank 3 on; a rank-2 (N, features) or lower tensor is held as it is."""
    assert channels_last_axes(rank) == axes


@pytest.mark.parametrize("layout", [CHANNELS_LAST, Layout(axes=(0, 1, 2, 3)), Layout(axes=(0, 3, 1, 2)),
                                    Layout(flattened_from=(3, 4, 5))])
def test_keras_shape_is_the_shape_to_keras_gives(layout: Layout) -> None:
    """The shape a Keras layer is built for is the shape of the tensor Keras holds, for every kind of layout."""
    shape = (2, 60) if layout.flattened_from else (2, 3, 4, 5)
    assert layout.keras_shape(shape) == layout.to_keras(_arange(shape)).shape
    if not layout.flattened_from:
        assert layout.keras_shape(shape) == tuple(shape[a] for a in (layout.axes or (0, 2, 3, 1)))
