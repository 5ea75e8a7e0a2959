"""`compare: backends`: Keras on each backend against Keras on the others, from the same weights, as PyTorch's
CPU-vs-CUDA tests compare devices, so that a Keras bug on one backend is named as such rather than blamed on the
PyTorch mapping. Pure: every backend's outputs come in (xfw_harness.suite.backends runs them, one process per backend),
verdicts come out.

Verdicts of one point:
- "keras[B] vs torch" for each backend B: that backend's Keras against PyTorch (kind FORWARD);
- "keras[B] vs keras[A]" for each later backend B against the first one A (kind BACKEND);
- "keras[B] vs reference" and "torch vs reference" where the float64 reference could be computed (kind REFERENCE).
All under the point's tolerance, as for PyTorch against Keras. `attribution` reads them: which backends agree with
PyTorch and with the reference, and which backend alone differs.
"""

from __future__ import annotations

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine.comparing import compare
from xfw_harness.engine.tolerances import point_tolerance


def keras_label(backend: str) -> str:
    return f"keras[{backend}]"


def backend_verdicts(point: Point, torch_out: np.ndarray, keras_outs: dict[str, np.ndarray],
                     reference: np.ndarray | None) -> list[Verdict]:
    """The verdicts of a `compare: backends` point (module doc); `keras_outs` in the order of the backends run,
    channels-first; `reference` None where there is none."""
    tolerance = point_tolerance(point, torch_out)
    verdicts = [compare(out, torch_out, tolerance, f"{keras_label(b)} vs torch", (keras_label(b), "torch"),
                        kind=VerdictKind.FORWARD) for b, out in keras_outs.items()]
    (first, first_out), *others = keras_outs.items()
    verdicts += [compare(out, first_out, tolerance, f"{keras_label(b)} vs {keras_label(first)}",
                         (keras_label(b), keras_label(first)), kind=VerdictKind.BACKEND) for b, out in others]
    if reference is not None:
        ref_tolerance = point_tolerance(point, reference)
        verdicts.append(compare(torch_out, reference, ref_tolerance, "torch vs reference", ("torch", "reference"),
                                kind=VerdictKind.REFERENCE))
        verdicts += [compare(out, reference, ref_tolerance, f"{keras_label(b)} vs reference",
                             (keras_label(b), "reference"), kind=VerdictKind.REFERENCE)
                     for b, out in keras_outs.items()]
    return verdicts


def attribution(verdicts: list[Verdict], backends: list[str]) -> str:
    """One line: which backends' Keras agree with PyTorch and with the reference, and whose difference it is."""
    by_what = {v.what: v for v in verdicts}
    with_torch = [b for b in backends if by_what[f"{keras_label(b)} vs torch"].passed]
    apart = [b for b in backends if b not in with_torch]
    sides = ""
    if (torch_ref := by_what.get("torch vs reference")) is not None:
        right = (["PyTorch"] if torch_ref.passed else []) + [
            f"Keras on {b}" for b in backends if by_what[f"{keras_label(b)} vs reference"].passed]
        sides = f"; the float64 reference agrees with {_and(right) if right else 'none of them'}"
    if not apart:
        return f"every backend agrees: Keras on {_and(backends)} agrees with PyTorch{sides}"
    if with_torch:
        return (f"Keras on {_and(apart)} differs from PyTorch while Keras on {_and(with_torch)} agrees with it: the "
                f"difference is Keras's on {_and(apart)}, not the PyTorch mapping{sides}")
    return (f"Keras differs from PyTorch on every backend ({_and(backends)}): the mapping or PyTorch is the "
            f"suspect, not one backend{sides}")


def _and(names: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
