"""The forward verdicts of a point: PyTorch's output against Keras's (or, for a sampled dropout, what comes before
it and each framework's sample on its own), each output's shape against the block's stated semantics, and both
against the case's expectations (expect.shape, expect.output)."""

from __future__ import annotations

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.compare import SHAPE_KEY
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.engine import plants
from xfw_harness.engine.comparing import compare
from xfw_harness.engine.tolerances import point_tolerance


def compare_outputs(point: Point, x: np.ndarray, torch_outs: list[np.ndarray],
                    keras_outs: list[np.ndarray]) -> list[Verdict]:
    """The verdicts of a point: torch vs keras first, then each against the expected shape and golden values."""
    t, k = torch_outs[-1], keras_outs[-1]
    verdicts: list[Verdict] = []
    if point.sampled:
        sampled, site = point.layers[-1].block, point.sites[-1]  # the block says what of a sample can be checked
        if len(point.layers) > 1:
            tin, kin = torch_outs[-2], keras_outs[-2]
            verdicts.append(compare(kin, tin, point_tolerance(point, tin), "keras vs torch before dropout",
                                    ("keras", "torch"), kind=VerdictKind.FORWARD))
        else:
            tin = kin = x
        verdicts.append(plants.check_sample(sampled, site, tin, t, "torch dropout sample"))
        verdicts.append(plants.check_sample(sampled, site, kin, k, "keras dropout sample"))
    else:
        verdicts.append(compare(k, t, point_tolerance(point, t), "keras vs torch", ("keras", "torch"),
                                kind=VerdictKind.FORWARD))
    for name, out in (("torch", t), ("keras", k)) if point.defaults != "native" else ():  # native layers may differ
        if tuple(out.shape) != point.output_shape:
            verdicts.append(Verdict(f"{name} vs harness shape", False, "shape",
                                    f"{name} output shape {list(out.shape)} differs from the shape the block's "
                                    f"semantics give, {list(point.output_shape)}: the adapter is wrong",
                                    {SHAPE_KEY + name: list(out.shape),
                                     SHAPE_KEY + "expected": list(point.output_shape)},
                                    kind=VerdictKind.SEMANTICS))
    if point.expect_shape is not None and point.expect_shape != point.output_shape:
        verdicts.append(Verdict("expected shape", False, "shape",
                                f"expect.shape is {list(point.expect_shape)} but the output is "
                                f"{list(point.output_shape)}", {"shape_expected": list(point.expect_shape)},
                                kind=VerdictKind.GOLDEN))
    if point.expect_output is not None:
        for name, out in (("torch", t), ("keras", k)):
            verdicts.append(compare(out, point.expect_output, point_tolerance(point, point.expect_output),
                                    f"{name} vs expected", (name, "expected"), kind=VerdictKind.GOLDEN))
    return verdicts
