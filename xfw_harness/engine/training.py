"""Everything a training loop touches, after the forward comparison: running statistics (train mode),
`check: backward` (xfw_harness.engine.backward), `check: train_step` (xfw_harness.engine.train_step, with the optimiser
mappings of xfw_harness.engine.optimizers). Each verdict is one more `Verdict` of the point, so statuses, messages,
`judge` and the report treat them like the forward ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.verdicts import Verdict
from xfw_harness.engine.backward import backward_verdicts
from xfw_harness.engine.statistics import running_state_verdicts
from xfw_harness.engine.train_step import train_step_verdicts
from xfw_harness.engine.weights_map import mapped_weights


def training_verdicts(point: Point, device: str, x: np.ndarray, modules: list[Any], layers: list[Any]
                      ) -> list[Verdict]:
    """The verdicts beyond the forward comparison that the point asks for: running statistics (train mode),
    gradients (`check: backward`), optimiser steps (`check: train_step`, one set per optimiser), after a failed
    "weights mapped" verdict for each weight or state the block's weight_copies leave out (those cannot be
    compared)."""
    trainables, states, verdicts = mapped_weights(point, modules, layers)
    if point.mode == "train" and states:  # rebuilt afresh for its steps: only where there is state to compare
        verdicts += running_state_verdicts(point, device)
    if "backward" in point.checks:
        verdicts += backward_verdicts(point, device, x, modules, layers, trainables)
    if "train_step" in point.checks:
        for opt in point.optimizers:
            verdicts += train_step_verdicts(point, device, opt)
    return verdicts
