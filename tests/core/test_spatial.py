"""xfw_harness/spatial.py against TensorFlow's `same` and PyTorch's output sizes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import keras, tf, to_numpy, torch
from xfw_harness.core.schema import Param
from xfw_harness.core.spatial import (
    adaptive_windows,
    ceil_output_size_1d,
    ceil_overhang,
    ceil_overhang_1d,
    effective_kernel,
    is_symmetric,
    output_size,
    output_size_1d,
    pool_output_size,
    resolve_padding,
    same_padding_1d,
    torch_pad_arg,
)

FEW = settings(max_examples=30, deadline=None)

sizes = st.integers(1, 20)
kernels = st.integers(1, 6)
strides = st.integers(1, 4)
dilations = st.integers(1, 3)


def _tf_pad(x: tf.Tensor, pads: tuple, value: float = 0.0) -> tf.Tensor:
    (top, bottom), (left, right) = pads
    return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=value)


@FEW
@given(size=st.tuples(sizes, sizes), kernel=st.tuples(kernels, kernels), stride=st.tuples(strides, strides),
       dilation=st.tuples(dilations, dilations), seed=st.integers(0, 2**16))
def test_same_padding_equals_tensorflow_same(size, kernel, stride, dilation, seed) -> None:
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal((1, *size, 2)))
    k = tf.constant(rng.standard_normal((*kernel, 2, 3)))
    same = tf.nn.conv2d(x, k, strides=stride, padding="SAME", dilations=dilation).numpy()

    pads = resolve_padding("same", size, kernel, stride, dilation)
    assert pads == tuple(same_padding_1d(*a) for a in zip(size, kernel, stride, dilation))
    assert same.shape[1:3] == tuple(math.ceil(n / s) for n, s in zip(size, stride))
    assert output_size(size, kernel, stride, pads, dilation) == same.shape[1:3]
    for before, after in pads:
        assert after - before in (0, 1)  # the odd pixel goes after
    explicit = tf.nn.conv2d(_tf_pad(x, pads), k, strides=stride, padding="VALID", dilations=dilation).numpy()
    np.testing.assert_allclose(explicit, same, rtol=1e-12, atol=1e-12)


@FEW
@given(size=sizes, kernel=kernels, stride=strides, dilation=dilations)
def test_same_padding_1d_total_is_minimal(size, kernel, stride, dilation) -> None:
    before, after = same_padding_1d(size, kernel, stride, dilation)
    assert before >= 0 and after >= 0
    out = math.ceil(size / stride)
    assert output_size_1d(size, kernel, stride, (before, after), dilation) == out
    if before + after:  # one pixel less padding would lose the last window
        assert output_size_1d(size, kernel, stride, (before, after - 1), dilation) < out


@pytest.mark.parametrize(("size", "kernel", "stride", "expect"), [
    (28, 3, 2, (0, 1)),  # even input, stride 2: all padding at the bottom, not k//2 on both sides
    (27, 3, 2, (1, 1)),
    (5, 4, 1, (1, 2)),
    (6, 1, 3, (0, 0)),
])
def test_same_padding_known_values(size, kernel, stride, expect) -> None:
    assert same_padding_1d(size, kernel, stride) == expect


@pytest.mark.parametrize(("size", "kernel", "stride", "dilation"), [
    ((28, 28), (3, 3), (2, 2), (1, 1)),
    ((10, 9), (4, 2), (2, 3), (1, 1)),
    ((12, 12), (3, 3), (1, 1), (2, 2)),
    ((8, 11), (2, 5), (2, 1), (1, 1)),  # Keras refuses stride > 1 with dilation > 1
])
def test_keras_conv2d_same_equals_explicit_padding(size, kernel, stride, dilation) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, *size, 2)).astype(np.float64)
    pads = resolve_padding("same", size, kernel, stride, dilation)
    same = keras.layers.Conv2D(3, kernel, strides=stride, padding="same", dilation_rate=dilation, dtype="float64")
    valid = keras.layers.Conv2D(3, kernel, strides=stride, padding="valid", dilation_rate=dilation, dtype="float64")
    same.build(x.shape)
    valid.build((1, size[0] + sum(pads[0]), size[1] + sum(pads[1]), 2))
    valid.set_weights(same.get_weights())
    want = to_numpy(same(x))
    got = to_numpy(valid(_tf_pad(tf.constant(x), pads)))
    assert want.shape[1:3] == output_size(size, kernel, stride, pads, dilation)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if not is_symmetric(pads):
        # The mirrored asymmetric padding (odd pixel first) computes something else.
        mirrored = tuple((after, before) for before, after in pads)
        other = to_numpy(valid(_tf_pad(tf.constant(x), mirrored)))
        assert np.max(np.abs(other - want)) > 1e-3


@FEW
@given(size=st.tuples(sizes, sizes), pool=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(strides, strides), seed=st.integers(0, 2**16))
def test_max_pool_same_equals_minus_inf_padding(size, pool, stride, seed) -> None:
    x = tf.constant(-np.abs(np.random.default_rng(seed).standard_normal((1, *size, 2))))  # all negative
    same = tf.nn.max_pool2d(x, pool, stride, padding="SAME").numpy()
    pads = resolve_padding("same", size, pool, stride)
    assert same.shape[1:3] == output_size(size, pool, stride, pads)
    explicit = tf.nn.max_pool2d(_tf_pad(x, pads, -np.inf), pool, stride, padding="VALID").numpy()
    np.testing.assert_array_equal(explicit, same)


@FEW
@given(size=st.tuples(st.integers(1, 16), st.integers(1, 16)), kernel=st.tuples(kernels, kernels),
       stride=st.tuples(strides, strides), dilation=st.tuples(dilations, dilations),
       pads=st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)), st.tuples(st.integers(0, 3), st.integers(0, 3))))
def test_output_size_equals_torch(size, kernel, stride, dilation, pads) -> None:
    conv = torch.nn.Conv2d(1, 1, kernel, stride=stride, dilation=dilation, padding=0, bias=False)
    x = torch.nn.functional.pad(torch.zeros(1, 1, *size), torch_pad_arg(pads))
    ours = output_size(size, kernel, stride, pads, dilation)
    try:
        with torch.no_grad():
            theirs = tuple(conv(x).shape[2:])
    except RuntimeError:  # torch refuses a kernel larger than the padded input
        assert min(ours) <= 0
    else:
        assert ours == theirs
    for i in range(2):
        assert ours[i] == output_size_1d(size[i], kernel[i], stride[i], pads[i], dilation[i])


@FEW
@given(size=st.tuples(st.integers(1, 16), st.integers(1, 16)), kernel=st.tuples(kernels, kernels),
       stride=st.tuples(strides, strides), padding=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_symmetric_padding_equals_torch_conv_padding(size, kernel, stride, padding) -> None:
    pads = resolve_padding(padding, size, kernel, stride)
    assert pads == ((padding[0], padding[0]), (padding[1], padding[1]))
    assert is_symmetric(pads)
    conv = torch.nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, bias=False)
    ours = output_size(size, kernel, stride, pads)
    try:
        with torch.no_grad():
            theirs = tuple(conv(torch.zeros(1, 1, *size)).shape[2:])
    except RuntimeError:
        assert min(ours) <= 0
    else:
        assert ours == theirs


def test_valid_padding() -> None:
    assert resolve_padding("valid", (7, 8), (3, 2), (2, 1)) == ((0, 0), (0, 0))
    x = tf.zeros((1, 7, 8, 1))
    got = tf.nn.conv2d(x, tf.zeros((3, 2, 1, 1)), strides=(2, 1), padding="VALID").shape[1:3]
    assert output_size((7, 8), (3, 2), (2, 1), ((0, 0), (0, 0))) == tuple(got)


def test_torch_pad_arg_order() -> None:
    pads = ((1, 2), (3, 4))  # (top, bottom), (left, right)
    assert torch_pad_arg(pads) == (3, 4, 1, 2)
    x = np.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    got = torch.nn.functional.pad(torch.from_numpy(x), torch_pad_arg(pads)).numpy()
    want = np.pad(x, [(0, 0), (0, 0), (1, 2), (3, 4)])
    assert got.shape == (1, 1, 5, 10)
    np.testing.assert_array_equal(got, want)


def test_is_symmetric() -> None:
    assert is_symmetric(((1, 1), (0, 0)))
    assert not is_symmetric(((0, 1), (2, 2)))
    assert not is_symmetric(((2, 2), (1, 0)))


# --- ceil mode (PyTorch's pooling_output_shape_pad_lr) ----------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(size=st.tuples(st.integers(1, 16), st.integers(1, 16)), kernel=st.tuples(kernels, kernels),
       stride=st.tuples(strides, strides), data=st.data())
def test_ceil_output_size_equals_torch(size, kernel, stride, data) -> None:
    """Against PyTorch's own ceil_mode, for every padding its pooling layers take (symmetric, at most half the
    window), the drop rule included; PyTorch refuses an output of size 0."""
    padding = tuple(data.draw(st.integers(0, k // 2)) for k in kernel)
    pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    ours = pool_output_size(size, kernel, stride, pads, True)
    try:
        theirs = tuple(torch.nn.functional.max_pool2d(torch.zeros(1, 1, *size), kernel, stride, padding,
                                                      ceil_mode=True).shape[2:])
    except RuntimeError:
        assert min(ours) <= 0
    else:
        assert ours == theirs
    assert pool_output_size(size, kernel, stride, pads, False) == output_size(size, kernel, stride, pads)


@settings(max_examples=80, deadline=None)
@given(size=st.integers(1, 20), kernel=kernels, stride=strides, data=st.data())
def test_ceil_mode_windows(size, kernel, stride, data) -> None:
    """Any padding smaller than the window (the harness also pads asymmetrically, and beyond half the window):
    ceil mode has the floor-mode windows and at most one more; every window starts before the end of the input;
    the overhang is less than a stride; floor mode over the input padded with the overhang has exactly ceil
    mode's windows (what the Keras side and the explicit PyTorch padding compute)."""
    pads = (data.draw(st.integers(0, kernel - 1)), data.draw(st.integers(0, kernel - 1)))
    floor, ceil = output_size_1d(size, kernel, stride, pads), ceil_output_size_1d(size, kernel, stride, pads)
    assert floor <= ceil <= floor + 1
    if ceil > 0:
        assert (ceil - 1) * stride < size + pads[0]  # the last window starts in the input or the left padding
        overhang = ceil_overhang_1d(size, kernel, stride, pads)
        assert 0 <= overhang < stride
        assert output_size_1d(size, kernel, stride, (pads[0], pads[1] + overhang)) == ceil
        if overhang:
            assert ceil == floor + 1
        one_more = ceil * stride  # the next window would start past the input or past the rounded-up span
        assert one_more >= size + pads[0] or one_more + kernel > size + sum(pads) + stride - 1
    assert ceil_overhang((size, size), (kernel, kernel), (stride, stride), (pads, pads)) == (
        ceil_overhang_1d(size, kernel, stride, pads),) * 2


@pytest.mark.parametrize(("size", "kernel", "stride", "pads", "want"), [
    (5, 2, 2, (1, 1), 3),  # 4 after rounding up; the 4th would start at padded 6, the bottom padding: dropped
    (6, 3, 2, (1, 1), 4),  # the 4th starts at padded 6, the last real row: kept (it overhangs by 1)
    (2, 3, 2, (0, 0), 1),  # a window larger than the input fits once
    (1, 3, 2, (0, 0), 0),
    (7, 3, 1, (1, 1), 7),  # stride 1: ceil mode changes nothing
])
def test_ceil_output_size_known_values(size, kernel, stride, pads, want) -> None:
    assert ceil_output_size_1d(size, kernel, stride, pads) == want


@pytest.mark.parametrize("sizes", [(9,), (5, 6, 7)])
def test_padding_arithmetic_of_any_rank(sizes: tuple[int, ...]) -> None:
    """1-D and 3-D: resolve_padding and output_size per axis as in 2-D, and torch_pad_arg in F.pad's order (the last
    axis first), checked against torch.nn.functional.pad itself."""
    rank = len(sizes)
    kernel, stride, dilation = (3, 2, 4)[:rank], (2,) * rank, (1, 2, 1)[:rank]
    pads = resolve_padding("same", sizes, kernel, stride, dilation)
    assert pads == tuple(same_padding_1d(*a) for a in zip(sizes, kernel, stride, dilation))
    assert output_size(sizes, kernel, stride, pads, dilation) == tuple(math.ceil(n / s) for n, s in zip(sizes, stride))
    assert resolve_padding((1,) * rank, sizes, kernel, stride) == ((1, 1),) * rank
    assert resolve_padding("valid", sizes, kernel, stride) == ((0, 0),) * rank
    assert output_size(sizes, kernel, stride, resolve_padding("valid", sizes, kernel, stride)) == tuple(
        output_size_1d(n, k, s, (0, 0)) for n, k, s in zip(sizes, kernel, stride))
    uneven = tuple((i, 2 * i + 1) for i in range(rank))
    x = torch.from_numpy(np.arange(float(np.prod(sizes))).reshape(1, 1, *sizes))
    padded = to_numpy(torch.nn.functional.pad(x, torch_pad_arg(uneven)))
    np.testing.assert_array_equal(padded, np.pad(to_numpy(x), [(0, 0), (0, 0), *uneven]))


def test_pair_params_of_any_rank() -> None:
    """A pair Param of size 1 or 3 (a 1-D or 3-D block's) takes an integer or a list of that many; size 2 is the
    2-D blocks' [h, w], its wording unchanged."""
    for size, written, want in ((1, [4], (4,)), (1, 4, (4,)), (3, [1, 2, 3], (1, 2, 3)), (3, 2, (2, 2, 2))):
        assert Param("k", "pair", minimum=1, size=size).normalise(written) == want
        assert Param("p", "padding", size=size).normalise(written) == want
    with pytest.raises(CaseError, match=r"a list \[d, h, w\] of three such integers"):
        Param("k", "pair", minimum=1, size=3).normalise([1, 2])
    assert Param("k", "pair", minimum=1).allowed() == "an integer >= 1 or a list [h, w] of two such integers"
    assert Param("p", "padding").normalise("same") == "same"


def test_adaptive_windows_are_pytorch_start_and_end_index() -> None:
    """floor(i*n/k) .. ceil((i+1)*n/k), as integers (slice bounds): the windows' maxima and means are PyTorch's
    adaptive pooling exactly, every n in 1..11 and k in 1..14 (k > n too), and a floor end index would not be
    (5 -> 3). (Moved here from tests/blocks/test_pooling_nd.py: it pins xfw_harness.core.spatial.)"""
    for n, k in itertools.product(range(1, 12), range(1, 15)):
        assert adaptive_windows(n, k) == [(math.floor(i * n / k), math.ceil((i + 1) * n / k)) for i in range(k)]
        x = np.random.default_rng(n * 20 + k).standard_normal((1, 2, n))
        windows = adaptive_windows(n, k)
        assert all(type(a) is int and type(b) is int for a, b in windows)
        got = np.stack([x[..., a:b].max(-1) for a, b in windows], -1)
        np.testing.assert_array_equal(got, torch.nn.functional.adaptive_max_pool1d(torch.from_numpy(x), k).numpy())
        got = np.stack([x[..., a:b].mean(-1) for a, b in windows], -1)
        np.testing.assert_allclose(got, torch.nn.functional.adaptive_avg_pool1d(torch.from_numpy(x), k).numpy(),
                                   rtol=1e-12, atol=1e-12)
    assert adaptive_windows(5, 3) == [(0, 2), (1, 4), (3, 5)]


@pytest.mark.parametrize(("kernel", "dilation", "span"), [((3,), (2,), (5,)), ((1, 4), (5, 1), (1, 4)),
                                                          ((2, 3, 2), (3, 2, 1), (4, 5, 2))])
def test_effective_kernel_is_the_span_pytorch_pools_over(kernel: tuple, dilation: tuple, span: tuple) -> None:
    """(k - 1) * d + 1 cells per axis: an input of exactly that span gives one output of PyTorch's dilated max pool,
    and the span's last cell is inside the window (a large value there is the output)."""
    assert effective_kernel(kernel, dilation) == span
    pool = {1: torch.nn.functional.max_pool1d, 2: torch.nn.functional.max_pool2d,
            3: torch.nn.functional.max_pool3d}[len(kernel)]
    x = torch.zeros(1, 1, *span, dtype=torch.float64)
    x[(0, 0, *(s - 1 for s in span))] = 7.0
    out = pool(x, kernel, stride=1, dilation=dilation)
    assert tuple(out.shape[2:]) == (1,) * len(kernel) and out.item() == 7.0
