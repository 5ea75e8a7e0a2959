"""How `xfw-harness verify` and `export_tflite` judge an artefact's array against PyTorch's: the harness's comparator
(xfw_harness.core.compare) with the harness's tolerance rule (xfw_harness.core.tolerance), both arrays channels-first.

The tolerance rule wants the reduction length K of the computation (rtol = 16 * eps * sqrt(K), atol = rtol times the
largest |expected|). A whole model converted by someone else has no single K and its depth is unknown: the default,
DEFAULT_K = 4096, is about the length of a wide layer's sums (a Dense of 4096 inputs; a 3x3 convolution over 512
channels sums 4608 products) and gives float32 rtol = 16 * 2**-23 * 64 = 1.22e-4: generous for summation-order
noise that compounds over a network's layers, while a wrong epsilon, a missing bias or a transposed kernel still
lies far above it. `--tolerance-k` changes it.

The dtype of the rule is the less precise of the two arrays' (float32 for a float32 artefact against a float64
PyTorch model).
"""

from __future__ import annotations

import numpy as np

from xfw_harness.core.compare import compare
from xfw_harness.core.tolerance import EPS, Tolerance, tolerance_for
from xfw_harness.core.verdicts import Verdict, VerdictKind

DEFAULT_K = 4096


def rule_dtype(*arrays: np.ndarray) -> str:
    """The least precise float dtype among the arrays that the tolerance rule knows (float32 when none is)."""
    names = [np.asarray(a).dtype.name for a in arrays]
    known = [n for n in names if n in EPS]
    return max(known, key=lambda n: EPS[n]) if known else "float32"


def judge(actual: np.ndarray, expected: np.ndarray, what: str, names: tuple[str, str], k: int,
          kind: VerdictKind) -> Verdict:
    """`compare` of two channels-first arrays within the default tolerance for K = k."""
    tolerance: Tolerance = tolerance_for(rule_dtype(actual, expected), k, expected)
    return compare(actual, expected, tolerance, what, names, kind=kind)
