"""The raw framework behaviours that the harness's adapters encode, asserted against PyTorch and Keras/TF directly.

These tests never call the harness. Each one pins one fact of /work/shared/framework-facts.md (or what was
measured in its place) and names, in its docstring, the source in the framework's repository and the harness
code that relies on it. When a framework release changes a behaviour, the failing test says which adapter to
revisit. Inputs are small and seeded; the whole file runs in a few seconds on two cores.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xfw_harness.core.frameworks import (  # first: fixes KERAS_BACKEND=tensorflow before keras is imported
    keras,
    tf,
    torch,
)

F = torch.nn.functional


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def _nchw(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(y, -1, 1))


def _np(value: object) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return keras.ops.convert_to_numpy(value)


# ---------------------------------------------------------------------------------------------------------------
# Layouts and weights
# ---------------------------------------------------------------------------------------------------------------

def test_conv2d_kernel_layout_and_group_order() -> None:
    """Fact: torch Conv2d weight is [out, in/groups, kh, kw], Keras Conv2D kernel (kh, kw, in/groups, out); the
    conversion is permute(2, 3, 1, 0) (not (3, 2, 1, 0), which swaps kh/kw: hence kh != kw here), and both
    frameworks put output channels [g*out/groups, (g+1)*out/groups) on input group g (groups=2).

    Source: torch/nn/modules/conv.py (_ConvNd weight shape); keras/src/layers/convolutional/base_conv.py
    (kernel_shape = kernel_size + (input_channel // groups, filters)).
    Relied on by: xfw_harness/layout.py conv_kernel_to_keras / conv_kernel_to_torch; xfw_harness/blocks/convolution.py
    Conv2D.transfer_weights (groups passed unchanged to both frameworks).
    """
    cin, cout, kh, kw, groups = 4, 6, 3, 2, 2
    x = _rng(1).standard_normal((2, cin, 7, 6))
    conv = torch.nn.Conv2d(cin, cout, (kh, kw), groups=groups, bias=False, dtype=torch.float64)
    assert tuple(conv.weight.shape) == (cout, cin // groups, kh, kw)
    layer = keras.layers.Conv2D(cout, (kh, kw), groups=groups, use_bias=False, dtype="float64")
    layer.build((None, 7, 6, cin))
    assert tuple(layer.kernel.shape) == (kh, kw, cin // groups, cout)
    weight = _np(conv.weight)
    layer.kernel.assign(weight.transpose(2, 3, 1, 0))
    expected = _np(conv(torch.from_numpy(x)))
    got = _nchw(_np(layer(_nhwc(x))))
    assert got.shape == expected.shape == (2, cout, 5, 5)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # The grouping is a real constraint: output channel 0 must not see input group 1's channels.
    x_group1_only = x.copy()
    x_group1_only[:, : cin // groups] = 0
    assert np.all(_np(conv(torch.from_numpy(x_group1_only)))[:, : cout // groups] == 0)


def test_linear_weight_is_out_in_and_dense_kernel_is_in_out() -> None:
    """Fact: torch Linear weight is [out, in]; Keras Dense kernel is (in, out): Dense kernel = weight.T.

    Source: torch/nn/modules/linear.py; keras/src/layers/core/dense.py (kernel shape (input_dim, units)).
    Relied on by: xfw_harness/layout.py dense_kernel_to_keras / dense_kernel_to_torch; xfw_harness/blocks/dense.py
    Dense.transfer_weights.
    """
    x = _rng(2).standard_normal((4, 5))
    linear = torch.nn.Linear(5, 3, dtype=torch.float64)
    assert tuple(linear.weight.shape) == (3, 5)
    dense = keras.layers.Dense(3, dtype="float64")
    dense.build((None, 5))
    assert tuple(dense.kernel.shape) == (5, 3)
    dense.kernel.assign(_np(linear.weight).T)
    dense.bias.assign(_np(linear.bias))
    np.testing.assert_allclose(_np(dense(x)), _np(linear(torch.from_numpy(x))), rtol=0, atol=1e-12)


def test_linear_and_dense_act_on_the_last_axis() -> None:
    """Fact: Linear/Dense on a 4-D tensor act on the last axis: W of NCHW in torch, C of NHWC in Keras.

    Source: torch/nn/modules/linear.py (F.linear over the last dim); keras/src/layers/core/dense.py
    (ops.matmul(inputs, kernel)).
    Relied on by: xfw_harness/blocks/dense.py TorchChannelsLinear (moves C last for torch; Keras Dense unchanged).
    """
    x = _rng(3).standard_normal((2, 3, 4, 5))  # NCHW: C=3, W=5
    linear = torch.nn.Linear(5, 2, bias=False, dtype=torch.float64)
    assert tuple(linear(torch.from_numpy(x)).shape) == (2, 3, 4, 2)
    dense = keras.layers.Dense(2, use_bias=False, dtype="float64")
    y = _np(dense(_nhwc(x)))  # NHWC: C=3 is last
    assert y.shape == (2, 4, 5, 2)
    np.testing.assert_allclose(y, _nhwc(x) @ _np(dense.kernel), rtol=0, atol=1e-12)


def test_flatten_orders() -> None:
    """Fact (as measured, narrower than framework-facts.md): torch.flatten(x, 1) on NCHW orders features (C, H, W);
    keras.layers.Flatten() (data_format from keras.config.image_data_format(), 'channels_last') on NHWC orders them
    (H, W, C). Flatten(data_format='channels_first') does NOT leave that alone: it moves axis 1 last before
    flattening, so on an NCHW tensor it gives (H, W, C) and on an NHWC tensor (W, C, H) -- never torch's order.

    Source: torch/nn/modules/flatten.py; keras/src/layers/reshaping/flatten.py (call: transpose to channels-last
    when data_format is channels_first).
    Relied on by: xfw_harness/layout.py flatten_permutation / dense_after_flatten_kernel_to_keras;
    xfw_harness/blocks/dense.py Flatten (keras.layers.Flatten() with the default data_format) and Dense after it.
    """
    n, c, h, w = 2, 3, 4, 5
    x = np.arange(n * c * h * w, dtype=np.float32).reshape(n, c, h, w)
    torch_flat = _np(torch.flatten(torch.from_numpy(x), 1))
    np.testing.assert_array_equal(torch_flat, x.reshape(n, -1))  # (C, H, W)
    hwc = x.transpose(0, 2, 3, 1).reshape(n, -1)
    assert keras.config.image_data_format() == "channels_last"
    np.testing.assert_array_equal(_np(keras.layers.Flatten()(_nhwc(x))), hwc)
    assert not np.array_equal(hwc, torch_flat)
    channels_first = keras.layers.Flatten(data_format="channels_first")
    np.testing.assert_array_equal(_np(channels_first(x)), hwc)  # on NCHW: (H, W, C), as Keras's own NHWC order
    np.testing.assert_array_equal(_np(channels_first(_nhwc(x))), x.transpose(0, 3, 1, 2).reshape(n, -1))  # (W, C, H)


# ---------------------------------------------------------------------------------------------------------------
# Padding
# ---------------------------------------------------------------------------------------------------------------

def test_torch_same_padding_refuses_stride() -> None:
    """Fact: torch Conv2d(padding='same') raises ValueError for stride > 1 (and accepts stride 1).

    Source: torch/nn/modules/conv.py (_ConvNd.__init__: "padding='same' is not supported for strided convolutions").
    Relied on by: xfw_harness/blocks/convolution.py Conv2D.torch_module (padding='same' only at stride (1, 1); else
    explicit ZeroPad2d).
    """
    torch.nn.Conv2d(3, 4, 3, stride=1, padding="same")
    with pytest.raises(ValueError, match="strided"):
        torch.nn.Conv2d(3, 4, 3, stride=2, padding="same")


def test_tf_same_puts_odd_padding_bottom_right() -> None:
    """Fact: TF/Keras 'same' with k=3, s=2 on an even input (28) pads total 1, all of it at the bottom/right: it
    equals an explicit pad of (0, 1) then 'valid'. Naive symmetric padding k//2 = 1 shifts the grid: O(1) error.

    Source: tensorflow/core/framework/kernel_shape_util.cc (GetWindowedOutputSizeVerbose: pad_before = total/2);
    keras/src/backend/tensorflow/nn.py (conv passes padding='SAME' to tf.nn.convolution).
    Relied on by: xfw_harness/spatial.py same_padding_1d; xfw_harness/blocks/convolution.py (ZeroPad2d for
    asymmetric pads).
    """
    x = _rng(4).standard_normal((1, 3, 28, 28))
    conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=0, bias=False, dtype=torch.float64)
    layer = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False, dtype="float64")
    layer.build((None, 28, 28, 3))
    layer.kernel.assign(_np(conv.weight).transpose(2, 3, 1, 0))
    keras_same = _nchw(_np(layer(_nhwc(x))))
    assert keras_same.shape == (1, 4, 14, 14)
    xt = torch.from_numpy(x)
    bottom_right = _np(conv(F.pad(xt, (0, 1, 0, 1))))
    np.testing.assert_allclose(keras_same, bottom_right, rtol=0, atol=1e-12)
    symmetric = _np(F.conv2d(xt, conv.weight, stride=2, padding=1))
    assert symmetric.shape == keras_same.shape
    assert np.max(np.abs(symmetric - keras_same)) > 0.5


def test_torch_same_at_stride_one_matches_tf_same() -> None:
    """Fact: at stride 1, torch padding='same' splits an odd total (even kernel, or dilation) as TF does: total//2
    before, the extra pixel after (bottom/right), so torch 'same' == Keras 'same' for kernel (2, 4), dilation (2, 1).

    Source: torch/nn/modules/conv.py (_ConvNd.__init__: left_pad = total_padding // 2, the rest on the right);
    tensorflow/core/framework/kernel_shape_util.cc.
    Relied on by: xfw_harness/blocks/convolution.py Conv2D.torch_module (padding='same' whenever strides == (1, 1)).
    """
    x = _rng(12).standard_normal((1, 2, 7, 8))
    conv = torch.nn.Conv2d(2, 3, (2, 4), padding="same", dilation=(2, 1), bias=False, dtype=torch.float64)
    layer = keras.layers.Conv2D(3, (2, 4), padding="same", dilation_rate=(2, 1), use_bias=False, dtype="float64")
    layer.build((None, 7, 8, 2))
    layer.kernel.assign(_np(conv.weight).transpose(2, 3, 1, 0))
    expected = _np(conv(torch.from_numpy(x)))
    assert expected.shape == (1, 3, 7, 8)
    np.testing.assert_allclose(_nchw(_np(layer(_nhwc(x)))), expected, rtol=0, atol=1e-12)
    # Height: kh=2 at dilation 2 spans 3 rows, total 2 -> (1, 1). Width: kw=4, total 3 -> (left 1, right 2).
    np.testing.assert_allclose(expected, _np(F.conv2d(F.pad(torch.from_numpy(x), (1, 2, 1, 1)), conv.weight,
                                                      dilation=(2, 1))), rtol=0, atol=1e-12)


def test_keras_conv_refuses_stride_with_dilation() -> None:
    """Fact: Keras Conv2D raises ValueError for strides > 1 together with dilation_rate > 1 (each alone is fine).

    Source: keras/src/layers/convolutional/base_conv.py (BaseConv.__init__).
    Relied on by: xfw_harness/blocks/convolution.py Conv2D.keras_layer (stride-1 conv then Subsample2D).
    """
    keras.layers.Conv2D(4, 3, strides=2)
    keras.layers.Conv2D(4, 3, dilation_rate=2)
    with pytest.raises(ValueError, match="dilation_rate"):
        keras.layers.Conv2D(4, 3, strides=2, dilation_rate=2)


# ---------------------------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------------------------

def test_default_pool_stride_is_the_window() -> None:
    """Fact: torch MaxPool2d/AvgPool2d(stride=None) use the kernel size; Keras MaxPooling2D/AveragePooling2D
    (strides=None) use pool_size.

    Source: torch/nn/modules/pooling.py (stride if stride is not None else kernel_size);
    keras/src/layers/pooling/base_pooling.py (strides = pool_size if strides is None).
    Relied on by: xfw_harness/blocks/pooling.py _WindowPool.geometry (strides default: pool_size).
    """
    x = _rng(5).standard_normal((1, 2, 7, 8)).astype(np.float32)
    for torch_cls, keras_cls in ((torch.nn.MaxPool2d, keras.layers.MaxPooling2D),
                                 (torch.nn.AvgPool2d, keras.layers.AveragePooling2D)):
        assert torch_cls((3, 2)).stride == (3, 2)
        assert tuple(keras_cls((3, 2)).strides) == (3, 2)
        assert tuple(torch_cls((3, 2))(torch.from_numpy(x)).shape) == (1, 2, 2, 4)
        assert tuple(keras_cls((3, 2))(_nhwc(x)).shape) == (1, 2, 4, 2)


def test_torch_max_pool_refuses_padding_over_half_the_window() -> None:
    """Fact: torch MaxPool2d (and AvgPool2d) refuse padding > kernel_size // 2 (RuntimeError at the call).

    Source: aten/src/ATen/native/Pool.h (pool2d_shape_check: "pad should be at most half of effective kernel size").
    Relied on by: xfw_harness/blocks/pooling.py _WindowPool.torch_native_padding (else an explicit pad first).
    """
    x = torch.randn(1, 1, 6, 6)
    assert tuple(torch.nn.MaxPool2d(3, stride=1, padding=1)(x).shape) == (1, 1, 6, 6)
    assert tuple(torch.nn.MaxPool2d(2, stride=1, padding=1)(x).shape) == (1, 1, 7, 7)  # even k: k//2 accepted
    for pool in (torch.nn.MaxPool2d(3, stride=1, padding=2), torch.nn.AvgPool2d(3, stride=1, padding=2)):
        with pytest.raises(RuntimeError, match="at most half"):
            pool(x)


def test_max_pool_padding_is_minus_infinity() -> None:
    """Fact: torch max pooling pads with -inf: on an all-negative input the border maxima are negative (a zero pad
    would give 0). Keras MaxPooling2D 'same' likewise ignores the padded cells.

    Source: aten/src/ATen/native/cpu/MaxPoolKernel.cpp (out-of-range taps skipped); TF max pool SAME
    (tensorflow/core/kernels/maxpooling_op.cc).
    Relied on by: xfw_harness/blocks/pooling.py MaxPool2D (torch native padding; SpatialPadding(-inf) elsewhere;
    Keras 'same' natively).
    """
    x = -1.0 - _rng(6).random((1, 2, 6, 6))  # all in [-2, -1)
    xt = torch.from_numpy(x)
    torch_out = _np(torch.nn.MaxPool2d(3, stride=1, padding=1)(xt))
    assert np.all(torch_out < 0)
    np.testing.assert_array_equal(torch_out, _np(F.max_pool2d(F.pad(xt, (1, 1, 1, 1), value=-math.inf), 3, 1)))
    keras_out = _nchw(_np(keras.layers.MaxPooling2D(3, strides=1, padding="same", dtype="float64")(_nhwc(x))))
    np.testing.assert_array_equal(keras_out, torch_out)
    # Strided 'same' on an odd input pads the bottom/right only, with -inf as well.
    odd = x[:, :, :5, :5]
    keras_strided = _nchw(_np(keras.layers.MaxPooling2D(2, strides=2, padding="same", dtype="float64")(_nhwc(odd))))
    assert keras_strided.shape == (1, 2, 3, 3)
    assert np.all(keras_strided < 0)
    np.testing.assert_array_equal(
        keras_strided, _np(F.max_pool2d(F.pad(torch.from_numpy(odd), (0, 1, 0, 1), value=-math.inf), 2, 2)))


def test_avg_pool_divisor_with_padding() -> None:
    """Fact: torch AvgPool2d count_include_pad defaults to True (3x3 window over ones, padding 1: corner 4/9);
    TF/Keras AveragePooling2D 'same' divides by the real cells only (corner 1.0), as torch count_include_pad=False.

    Source: torch/nn/modules/pooling.py (AvgPool2d count_include_pad=True); tensorflow/core/kernels/avgpooling_op.cc
    (tensorflow#45579: SAME excludes padding).
    Relied on by: xfw_harness/blocks/pooling.py AvgPool2D (count_include_pad passed explicitly; Keras 'same' used only
    when padding is excluded; KerasAveragePoolingExcludingPadding / TorchAvgPoolExcludingPadding otherwise).
    """
    ones = np.ones((1, 1, 5, 5), dtype=np.float32)
    default = torch.nn.AvgPool2d(3, stride=1, padding=1)
    assert default.count_include_pad is True
    torch_incl = _np(default(torch.from_numpy(ones)))
    np.testing.assert_allclose(torch_incl[0, 0, 0, 0], 4 / 9, rtol=1e-6)
    np.testing.assert_allclose(torch_incl[0, 0, 0, 1], 6 / 9, rtol=1e-6)
    np.testing.assert_allclose(torch_incl[0, 0, 2, 2], 1.0, rtol=1e-6)
    torch_excl = _np(torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)(torch.from_numpy(ones)))
    np.testing.assert_allclose(torch_excl, 1.0, rtol=1e-6)
    keras_same = _np(keras.layers.AveragePooling2D(3, strides=1, padding="same")(_nhwc(ones)))
    assert keras_same.shape == (1, 5, 5, 1)
    np.testing.assert_allclose(keras_same, 1.0, rtol=1e-6)
    # Strided 'same' (padding only at the bottom/right) excludes those cells too: 1.0, not 0.5.
    keras_strided = _np(keras.layers.AveragePooling2D(2, strides=2, padding="same")(_nhwc(ones)))
    assert keras_strided.shape == (1, 3, 3, 1)
    np.testing.assert_allclose(keras_strided, 1.0, rtol=1e-6)


def test_global_pool_shapes() -> None:
    """Fact: Keras GlobalAveragePooling2D/GlobalMaxPooling2D give [N, C] unless keepdims=True ([N, 1, 1, C]);
    torch AdaptiveAvgPool2d(1)/AdaptiveMaxPool2d(1) keep [N, C, 1, 1].

    Source: keras/src/layers/pooling/base_global_pooling.py (keepdims=False); torch/nn/modules/pooling.py.
    Relied on by: xfw_harness/blocks/pooling.py TorchGlobalPool (flattens unless keepdims) and _GlobalPool.keras_layer.
    """
    x = _rng(7).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for torch_cls, keras_cls in ((torch.nn.AdaptiveAvgPool2d, keras.layers.GlobalAveragePooling2D),
                                 (torch.nn.AdaptiveMaxPool2d, keras.layers.GlobalMaxPooling2D)):
        assert tuple(torch_cls(1)(torch.from_numpy(x)).shape) == (2, 3, 1, 1)
        assert tuple(keras_cls()(_nhwc(x)).shape) == (2, 3)
        assert tuple(keras_cls(keepdims=True)(_nhwc(x)).shape) == (2, 1, 1, 3)


# ---------------------------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------------------------

def test_leaky_relu_default_slopes() -> None:
    """Fact: LeakyReLU default negative slope: torch 0.01; keras.layers.LeakyReLU 0.3; keras.activations.leaky_relu
    and tf.nn.leaky_relu 0.2.

    Source: torch/nn/modules/activation.py; keras/src/layers/activations/leaky_relu.py;
    keras/src/activations/activations.py; tensorflow/python/ops/nn_ops.py.
    Relied on by: xfw_harness/blocks/activations.py leaky_relu (negative_slope passed explicitly; default 0.01).
    """
    x = np.array([-2.0, 3.0], dtype=np.float32)
    np.testing.assert_allclose(_np(torch.nn.LeakyReLU()(torch.from_numpy(x))), [-0.02, 3.0], rtol=1e-6)
    np.testing.assert_allclose(_np(F.leaky_relu(torch.from_numpy(x))), [-0.02, 3.0], rtol=1e-6)
    np.testing.assert_allclose(_np(keras.layers.LeakyReLU()(x)), [-0.6, 3.0], rtol=1e-6)
    np.testing.assert_allclose(_np(keras.activations.leaky_relu(x)), [-0.4, 3.0], rtol=1e-6)
    np.testing.assert_allclose(_np(tf.nn.leaky_relu(x)), [-0.4, 3.0], rtol=1e-6)


def _exact_gelu(x: np.ndarray) -> np.ndarray:
    return np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.tolist()])


def test_gelu_defaults_and_gap_between_forms() -> None:
    """Fact: torch GELU defaults to approximate='none' (exact erf form); keras.activations.gelu defaults to
    approximate=False (exact); keras.ops.gelu defaults to approximate=True (tanh form). The forms differ by up to
    ~4.7e-4 (max over a dense grid of [-8, 8]).

    Source: torch/nn/modules/activation.py (GELU); keras/src/activations/activations.py (gelu);
    keras/src/ops/nn.py (gelu).
    Relied on by: xfw_harness/blocks/activations.py gelu (approximate passed explicitly to keras.activations.gelu);
    cases/activations.yaml gelu cases (the exact/tanh mix-up must exceed their tolerance).
    """
    grid = np.linspace(-8.0, 8.0, 20001)
    xt = torch.from_numpy(grid)
    assert torch.nn.GELU().approximate == "none"
    torch_exact = _np(F.gelu(xt))
    torch_tanh = _np(F.gelu(xt, approximate="tanh"))
    np.testing.assert_allclose(_np(torch.nn.GELU()(xt)), torch_exact, rtol=0, atol=0)
    keras_default = _np(keras.activations.gelu(grid))
    np.testing.assert_allclose(keras_default, _np(keras.activations.gelu(grid, approximate=False)), rtol=0, atol=0)
    np.testing.assert_allclose(keras_default, torch_exact, rtol=0, atol=1e-7)
    ops_default = _np(keras.ops.gelu(grid))
    np.testing.assert_allclose(ops_default, _np(keras.ops.gelu(grid, approximate=True)), rtol=0, atol=0)
    np.testing.assert_allclose(ops_default, torch_tanh, rtol=0, atol=1e-7)
    gap = float(np.max(np.abs(torch_exact - torch_tanh)))
    assert 1e-4 < gap < 1e-3, gap  # measured 4.73e-4


def test_tf_float64_gelu_is_float32_accurate() -> None:
    """Fact: TF's float64 GELU rounds its constants to float32 (math_ops.cast of a Python float): max |error| of
    tf.nn.gelu / keras.activations.gelu in float64 against the exact x*Phi(x) is ~5e-9, while torch float64 gelu
    is within ~1e-16.

    Source: tensorflow/python/ops/nn_ops.py (gelu); keras/src/backend/tensorflow/nn.py (gelu -> tf.nn.gelu).
    Relied on by: cases/activations.yaml gelu_float64 (atol 2e-8: must exceed TF's error and stay below the
    4.7e-4 exact/tanh gap). If TF becomes float64-accurate, that tolerance can be tightened.
    """
    x = np.linspace(-6.0, 6.0, 4001)
    exact = _exact_gelu(x)
    torch_err = float(np.max(np.abs(_np(F.gelu(torch.from_numpy(x))) - exact)))
    assert torch_err < 1e-14, torch_err  # measured 4.4e-16
    for name, got in (("tf.nn.gelu", tf.nn.gelu(x, approximate=False)), ("keras", keras.activations.gelu(x))):
        err = float(np.max(np.abs(_np(got) - exact)))
        assert 1e-9 < err < 2e-8, (name, err)  # measured 5.0e-9
    tanh_err = float(np.max(np.abs(_np(keras.activations.gelu(x, approximate=True))
                                   - _np(F.gelu(torch.from_numpy(x), approximate="tanh")))))
    assert tanh_err < 2e-8, tanh_err  # measured ~9e-10 (the gelu_float64 tanh sweep point)


def test_torch_softmax_implicit_dim() -> None:
    """Fact: torch softmax with dim=None picks dim 0 (the batch!) for a 3-D input and dim 1 for 4-D, warning
    about the implicit choice; Keras Softmax defaults to axis=-1.

    Source: torch/nn/functional.py (_get_softmax_dim: 0 for ndim 0, 1, 3, else 1);
    keras/src/layers/activations/softmax.py (axis=-1).
    Relied on by: xfw_harness/blocks/activations.py Softmax (dim and axis always passed explicitly).
    """
    x3 = torch.from_numpy(_rng(8).standard_normal((2, 3, 4)))
    x4 = torch.from_numpy(_rng(9).standard_normal((2, 3, 4, 5)))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y3 = F.softmax(x3)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y4 = F.softmax(x4)
    np.testing.assert_array_equal(_np(y3), _np(F.softmax(x3, dim=0)))
    assert not np.allclose(_np(y3), _np(F.softmax(x3, dim=-1)))
    np.testing.assert_array_equal(_np(y4), _np(F.softmax(x4, dim=1)))
    keras_default = _np(keras.layers.Softmax(dtype="float64")(x4.numpy()))
    np.testing.assert_allclose(keras_default, _np(F.softmax(x4, dim=-1)), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Dropout and training mode
# ---------------------------------------------------------------------------------------------------------------

def test_training_mode_defaults() -> None:
    """Fact: a torch module starts in training mode (nn.Dropout().training is True: it drops); a Keras Dropout
    layer called without `training` is the identity (inference).

    Source: torch/nn/modules/module.py (Module.__init__: training=True); keras/src/layers/layer.py (training
    defaults to None -> False outside fit); keras/src/layers/regularization/dropout.py.
    Relied on by: xfw_harness/blocks/dropout.py and xfw_harness/runner.py (module.train(mode == 'train'); Keras called
    with training=mode == 'train').
    """
    x = np.ones((64, 64), dtype=np.float32)
    torch_dropout = torch.nn.Dropout(0.5)
    assert torch_dropout.training is True
    with torch.random.fork_rng():
        torch.manual_seed(0)
        assert np.any(_np(torch_dropout(torch.from_numpy(x))) == 0)
    keras_dropout = keras.layers.Dropout(0.5, seed=0)
    np.testing.assert_array_equal(_np(keras_dropout(x)), x)
    assert np.any(_np(keras_dropout(x, training=True)) == 0)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.7])
def test_dropout_scales_survivors_by_inverse_keep(rate: float) -> None:
    """Fact: survivors are scaled by 1/(1-p) (torch) and 1/(1-rate) (Keras): each equals x/(1-p) within 2 ulp
    (float32), and the zero fraction is within 5 sigma of p.

    Source: aten/src/ATen/native/Dropout.cpp (input * mask / (1 - p)); keras/src/backend/tensorflow/random.py
    (dropout -> tf.nn.experimental.stateless_dropout: x * 1/(1 - rate)).
    Relied on by: xfw_harness/compare.py check_dropout_sample (0 or x/(1-rate) within 4 ulp, 5-sigma zero fraction);
    xfw_harness/blocks/dropout.py.
    """
    n = 20000
    x = (1.0 + _rng(10).random(n)).astype(np.float32) * np.where(_rng(11).random(n) < 0.5, -1, 1).astype(np.float32)
    scaled = x.astype(np.float64) / (1.0 - rate)
    eps = float(np.finfo(np.float32).eps)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch_out = _np(torch.nn.Dropout(rate)(torch.from_numpy(x)))
    outputs = {"torch": torch_out, "keras": _np(keras.layers.Dropout(rate, seed=0)(x, training=True))}
    for name, y in outputs.items():
        assert y.dtype == np.float32, name
        dropped = y == 0
        sigma = math.sqrt(rate * (1 - rate) / n)
        assert abs(dropped.mean() - rate) <= 5 * sigma, (name, dropped.mean())
        rel = np.abs(y[~dropped] - scaled[~dropped]) / np.abs(scaled[~dropped])
        assert rel.max() <= 2 * eps, (name, rel.max() / eps)
