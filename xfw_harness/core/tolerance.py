"""Tolerances: how far two correct implementations of a block may differ, from the dtype and the reduction length.

Pure arithmetic on NumPy's machine epsilons; knows nothing of frameworks or cases. `xfw_harness.core.compare` judges an
array pair against a `Tolerance`; the engine derives each comparison's tolerance with `tolerance_for`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# Unit roundoff of each dtype. The default tolerance is a multiple of it that grows with the reduction
# length K (how many products a sum in the block adds up): float32 summation-order differences between two
# correct implementations grow like sqrt(K): measured about 0.4 * sqrt(K) ulp of the output scale for conv2d
# with K from 9 to 2016 (tests/core/test_compare.py), so 16 * sqrt(K) leaves 37x headroom, while a later
# layer's mistake in a network (a GELU form mix-up, 2.3e-4, after a K=2016 conv) still lies 1.5x above it.
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps),
       "float16": float(np.finfo(np.float16).eps), "bfloat16": 2.0 ** -7}  # bfloat16: 8 significand bits
ULP_FACTOR = 16.0
# float16 and bfloat16 (measured with scripts/dtype_tolerances.py on this project's CPU machine: every shipped
# case point re-run in each dtype): both frameworks accumulate their sums in float32 and round each layer's output
# once to the dtype, so the difference is output rounding, not summation order, and does not grow with K:
#   worst |keras - torch| / (eps(dtype) * max(1, scale)), per family (float16 / bfloat16):
#     activations 0.65 / 0.65 (gelu, hard_swish, silu; elementwise, K = 1), softmax 0.50 / 0.25, conv2d
#     0.98 / 0.99 (K up to 1600), depthwise 1.39 / 0.90, conv2d_transpose 1.72 / 0.96, dense 0.48 / 0.96,
#     batch_norm2d 1.00 / 1.00, avg_pool2d 1.50 / 0.88, upsampling2d 1.50 / 1.00, max pooling, flatten, relu,
#     dropout 0, networks (sequential, up to 12 layers, K up to 2048) 1.63 / 1.22; the worst elementwise
#     |keras - torch| / (atol + rtol * |torch|) under the formula below: 0.121 / 0.125.
# So their tolerance is the float32 accumulation term (16 * eps(float32) * sqrt(K)) plus a floor of
# OUTPUT_ULPS * eps(dtype) for the roundings of the outputs: 8 ulps leaves 8x headroom (elementwise ratio; 4.6x
# over the worst error counted against the floor alone), and is K-independent, so that a mistake of more than
# 8 ulps of the output scale (0.8% in float16, 6% in bfloat16) fails at any K. A GELU form mix-up (at most
# 4.7e-4, at |y| = 2.7 where a float16 ulp is 2e-3) is below float16's resolution: rounding hides it in both.
ACCUMULATOR = {"float32": "float32", "float64": "float64", "float16": "float32", "bfloat16": "float32"}
OUTPUT_ULPS = {"float32": 0.0, "float64": 0.0, "float16": 8.0, "bfloat16": 8.0}


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    source: str = "case"  # "case" when the case set it, else how the default was derived

    def describe(self) -> str:
        return f"atol={self.atol:.3g}, rtol={self.rtol:.3g} ({self.source})"


def default_tolerance(dtype: str, reduction_length: int = 1, scale: float = 1.0) -> Tolerance:
    """The tolerance used when a case sets none.

    rtol = 16 * eps * sqrt(K); atol = rtol * max(1, scale) where scale is the largest |expected| value, so that
    elements that cancel to near zero in a long sum are judged against the size of the terms, not their sum.
    float16 and bfloat16 sum in float32: rtol = 16 * eps(float32) * sqrt(K) + 8 * eps(dtype) (see OUTPUT_ULPS).
    """
    k = max(1, int(reduction_length))
    rtol = ULP_FACTOR * EPS[ACCUMULATOR[dtype]] * math.sqrt(k) + OUTPUT_ULPS[dtype] * EPS[dtype]
    return Tolerance(
        atol=rtol * max(1.0, float(scale)),
        rtol=rtol,
        source=f"{dtype} default, reduction length {k}, scale {max(1.0, float(scale)):.3g}",
    )


def tolerance_for(dtype: str, reduction_length: int, expected: Any, override: Tolerance | None = None) -> Tolerance:
    """The tolerance of a comparison against `expected`: `override` (the case's own `tolerance`) as it is when
    given; else the default for `dtype` and K, scaled by the largest finite |expected| (1 when none is finite:
    an all-NaN or empty array has no size to scale by)."""
    if override is not None:
        return override
    magnitudes = np.abs(np.asarray(expected, np.float64))
    finite = magnitudes[np.isfinite(magnitudes)]
    return default_tolerance(dtype, reduction_length, float(finite.max()) if finite.size else 1.0)

