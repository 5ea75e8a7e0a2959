"""Realistic adapter and harness bugs, each an exact text replacement in one file of the harness package.

scripts/mutation.py applies them one at a time to a copy of harness/ and runs the shipped cases against each:
every mutant must make at least one shipped test fail or error. `old` must occur exactly once in its file, so a
refactor that moves the code a mutant targets makes that mutant fail loudly (tests/test_mutation.py checks it in
`make test`) instead of silently testing nothing.

Mutants that touch code both frameworks share (the padding arithmetic, a default, the pooling geometry) make both
compute the same wrong thing: only golden values and expected shapes catch those. Mutants that make the harness
more lenient (a looser tolerance, a skipped check) cannot make a correct comparison fail: the canaries of
cases/canaries.yaml, which must fail, catch them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to harness/
    old: str
    new: str
    why: str  # the realistic mistake it stands for


MUTANTS: tuple[Mutant, ...] = (
    # --- layout.py: the NCHW/NHWC and weight-layout conversions -------------------------------------------------
    Mutant("conv_kernel_3210", "layout.py",
           "return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))",
           "return np.ascontiguousarray(weight.transpose(3, 2, 1, 0))",
           "conv kernel transposed (3, 2, 1, 0): kh and kw swapped, hidden by square kernels"),
    Mutant("conv_kernel_not_transposed", "layout.py",
           "return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))",
           "return np.ascontiguousarray(weight.reshape(weight.shape[2], weight.shape[3], weight.shape[1], "
           "weight.shape[0]))",
           "conv kernel reshaped to Keras's shape instead of transposed: right shape, scrambled values"),
    Mutant("dense_kernel_not_transposed", "layout.py",
           '''    """Linear weight [out, in] -> Dense kernel (in, out)."""
    return np.ascontiguousarray(weight.T)''',
           '''    """Linear weight [out, in] -> Dense kernel (in, out)."""
    return np.ascontiguousarray(weight.reshape(weight.shape[1], weight.shape[0]))''',
           "dense kernel reshaped (in, out) instead of transposed"),
    Mutant("flatten_not_permuted", "layout.py",
           "return np.moveaxis(idx, 0, -1).ravel() if len(unflattened) > 1 else idx.ravel()",
           "return idx.ravel()",
           "Keras's (H, W, C) flatten order taken for PyTorch's (C, H, W)"),
    Mutant("dense_after_flatten_not_permuted", "layout.py",
           "return np.ascontiguousarray(weight[:, flatten_permutation(unflattened)].T)",
           "return np.ascontiguousarray(weight.T)",
           "a dense after a flatten gets the plain transpose: its rows stay in C, H, W order"),
    Mutant("softmax_axis_not_mapped", "layout.py",
           "return rank - 1 if axis == 1 else axis - 1",
           "return axis",
           "softmax's channels-first axis given to Keras unchanged (the wrong axis of an NHWC tensor)"),
    Mutant("nhwc_by_reshape", "layout.py",
           "return np.moveaxis(x, 1, -1) if x.ndim > 2 else x",
           "return x.reshape(shape_to_channels_last(x.shape)) if x.ndim > 2 else x",
           "NCHW -> NHWC by a reshape instead of a transpose"),
    # --- spatial.py: padding and output sizes -------------------------------------------------------------------
    Mutant("same_symmetric", "spatial.py",
           "return tuple(same_padding_1d(*args) for args in zip(size, kernel, stride, dilation))",
           "return tuple((k // 2, k // 2) for k in kernel)",
           "`same` as a symmetric k//2 padding (right only at stride 1 with an odd kernel)"),
    Mutant("same_odd_pixel_first", "spatial.py",
           "return total // 2, total - total // 2",
           "return total - total // 2, total // 2",
           "`same`'s odd padding pixel put at the top/left (Caffe style) instead of the bottom/right"),
    Mutant("output_size_ceil_mode", "spatial.py",
           "return span // stride + 1 if span >= 0 else 0",
           "return -(-span // stride) + 1 if span >= 0 else 0",
           "output size rounded up (ceil mode) instead of down"),
    Mutant("pad_order_top_first", "spatial.py",
           "return left, right, top, bottom",
           "return top, bottom, left, right",
           "torch.nn.functional.pad given (top, bottom, left, right): it wants the last axis first"),
    # --- blocks/convolution.py ----------------------------------------------------------------------------------
    Mutant("conv_bias_dropped", "blocks/convolution.py",
           'if "bias" in w:',
           "if False:",
           "conv bias never copied into Keras"),
    Mutant("conv_int_padding_ignored_in_keras", "blocks/convolution.py",
           "layers.append(keras.layers.ZeroPadding2D(padding=pads, dtype=site.dtype))",
           "pass",
           "Keras has no numeric padding: the ZeroPadding2D forgotten"),
    Mutant("dilated_stride_not_subsampled", "blocks/convolution.py",
           '''            layers += [keras.layers.Conv2D(strides=1, padding="valid", **common),
                       Subsample2D(p["strides"], dtype=site.dtype)]''',
           '''            layers += [keras.layers.Conv2D(strides=1, padding="valid", **common)]''',
           "stride dropped where Keras refuses stride with dilation"),
    # --- blocks/dense.py ----------------------------------------------------------------------------------------
    Mutant("dense_bias_dropped", "blocks/dense.py",
           'if "bias" in w:',
           "if False:",
           "dense bias never copied into Keras"),
    Mutant("dense_on_last_axis", "blocks/dense.py",
           "return linear if site.rank == 2 else TorchChannelsLinear(linear)",
           "return linear",
           "PyTorch's Linear left on the last axis (W of NCHW) of a rank > 2 input"),
    Mutant("flatten_channels_first_format", "blocks/dense.py",
           "return keras.layers.Flatten(dtype=site.dtype)",
           'return keras.layers.Flatten(data_format="channels_first", dtype=site.dtype)',
           "Keras Flatten(data_format='channels_first') taken as the fix for the flatten order"),
    # --- blocks/pooling.py --------------------------------------------------------------------------------------
    Mutant("pool_stride_defaults_to_1", "blocks/pooling.py",
           's = p["strides"] or k',
           's = p["strides"] or (1, 1)',
           "pooling strides default to 1 instead of pool_size (in the shared geometry: both frameworks)"),
    Mutant("max_pool_zero_padding_keras", "blocks/pooling.py",
           "return keras.Sequential([ConstantPadding2D(pads, NEG_INF, dtype=site.dtype),",
           "return keras.Sequential([keras.layers.ZeroPadding2D(pads, dtype=site.dtype),",
           "max pooling padded with zeros instead of -inf"),
    Mutant("max_pool_zero_padding_torch", "blocks/pooling.py",
           "torch.nn.ConstantPad2d(torch_pad_arg(pads), NEG_INF)",
           "torch.nn.ZeroPad2d(torch_pad_arg(pads))",
           "PyTorch's explicit max-pool padding with zeros instead of -inf"),
    Mutant("avg_count_include_pad_inverted", "blocks/pooling.py",
           'include = site.params["count_include_pad"]',
           'include = not site.params["count_include_pad"]',
           "count_include_pad passed inverted to PyTorch"),
    Mutant("keras_same_avg_counts_real_cells_only", "blocks/pooling.py",
           'if padding == "valid" or (padding == "same" and not include):',
           'if padding in ("valid", "same"):',
           "Keras's `same` average pooling used with count_include_pad: true (it divides by the real cells)"),
    Mutant("count_include_pad_default_true", "blocks/pooling.py",
           'Param("count_include_pad", "bool", False,',
           'Param("count_include_pad", "bool", True,',
           "count_include_pad defaulting to PyTorch's true (in the schema: both frameworks)"),
    Mutant("global_pool_keepdims_ignored", "blocks/pooling.py",
           "return pooled if self.keepdims else torch.flatten(pooled, 1)",
           "return torch.flatten(pooled, 1)",
           "global pooling's keepdims ignored on the PyTorch side"),
    # --- blocks/activations.py ----------------------------------------------------------------------------------
    Mutant("leaky_relu_keras_default_slope", "blocks/activations.py",
           'keras.layers.LeakyReLU(negative_slope=p["negative_slope"], dtype=dt)',
           "keras.layers.LeakyReLU(dtype=dt)",
           "Keras's LeakyReLU left at its default slope 0.3 (PyTorch's is 0.01)"),
    Mutant("leaky_relu_default_0.3", "blocks/activations.py",
           'Param("negative_slope", "float", 0.01,',
           'Param("negative_slope", "float", 0.3,',
           "the harness's default slope taken from Keras (in the schema: both frameworks)"),
    Mutant("gelu_keras_tanh_default", "blocks/activations.py",
           'functools.partial(keras.activations.gelu, approximate=p["approximate"] == "tanh")',
           "keras.activations.gelu",
           "keras.activations.gelu left at its default, the tanh approximation"),
    Mutant("gelu_default_tanh", "blocks/activations.py",
           'Param("approximate", "choice", "none",',
           'Param("approximate", "choice", "tanh",',
           "GELU defaulting to the tanh form (in the schema: both frameworks)"),
    Mutant("softmax_implicit_dim", "blocks/activations.py",
           'torch.nn.Softmax(dim=site.params["axis"] % site.rank)',
           "torch.nn.Softmax()",
           "PyTorch's implicit softmax dim (0 for 3-D inputs, 1 otherwise)"),
    Mutant("elu_alpha_not_passed", "blocks/activations.py",
           'keras.layers.ELU(alpha=p["alpha"], dtype=dt)',
           "keras.layers.ELU(dtype=dt)",
           "ELU's alpha not passed to Keras"),
    # --- blocks/dropout.py --------------------------------------------------------------------------------------
    Mutant("dropout_not_scaled", "blocks/dropout.py",
           'return torch.nn.Dropout(p=site.params["rate"])',
           '''rate = site.params["rate"]

        class UnscaledDropout(torch.nn.Module):  # a hand-written dropout that forgets 1 / (1 - rate)
            def forward(self, x):
                return x * (torch.rand_like(x) >= rate) if self.training else x

        return UnscaledDropout()''',
           "dropout's survivors not scaled by 1 / (1 - rate)"),
    Mutant("dropout_keep_probability", "blocks/dropout.py",
           'keras.layers.Dropout(site.params["rate"], seed=site.seed, dtype=site.dtype)',
           'keras.layers.Dropout(1 - site.params["rate"], seed=site.seed, dtype=site.dtype)',
           "TF1's keep_prob passed where Keras wants the drop rate"),
    # --- compare.py: the comparator and the default tolerance ---------------------------------------------------
    Mutant("tolerance_10x_looser", "compare.py",
           "rtol = ULP_FACTOR * EPS[dtype] * math.sqrt(k)",
           "rtol = 10 * ULP_FACTOR * EPS[dtype] * math.sqrt(k)",
           "a default tolerance ten times too loose"),
    Mutant("tolerance_grows_like_k", "compare.py",
           "rtol = ULP_FACTOR * EPS[dtype] * math.sqrt(k)",
           "rtol = ULP_FACTOR * EPS[dtype] * k",
           "the default tolerance growing like K instead of sqrt(K)"),
    Mutant("nonfinite_check_skipped", "compare.py",
           "if bad_nonfinite.any():",
           "if False:",
           "NaN/Inf placement not compared"),
    Mutant("values_compared_with_10x_tolerance", "compare.py",
           "bad = diff > tolerance.atol + tolerance.rtol * np.abs(np.where(finite, b64, 0.0))",
           "bad = diff > 10 * (tolerance.atol + tolerance.rtol * np.abs(np.where(finite, b64, 0.0)))",
           "the comparison itself ten times too lenient, whatever the tolerance"),
    # --- runner.py: which comparisons are made ------------------------------------------------------------------
    Mutant("golden_comparison_skipped", "runner.py",
           "if point.expect_output is not None:",
           "if False:",
           "expect.output never compared"),
    Mutant("expected_shape_check_skipped", "runner.py",
           "if point.expect_shape is not None and point.expect_shape != point.output_shape:",
           "if False:",
           "expect.shape never compared"),
    Mutant("case_tolerance_ignored", "runner.py",
           "if point.tolerance is not None:",
           "if False:",
           "a case's own tolerance ignored (the default used instead)"),
    # --- cases.py: the loader -----------------------------------------------------------------------------------
    Mutant("input_dtype_ignored", "cases.py",
           'dtype = _choice(raw.get("dtype", "float32"), DTYPES, "input.dtype")',
           'dtype = _choice(raw.get("dtype", "float32"), DTYPES, "input.dtype") and "float32"',
           "input.dtype ignored: float64 cases silently run in float32"),
)

# No change at all: it must survive, or the check could not tell a mutant from the real harness.
IDENTITY = Mutant("identity", "runner.py", "", "", "no change (the control: it must survive)")
