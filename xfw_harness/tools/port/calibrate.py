"""Realistic activations for `xfw-harness port`'s comparisons: batch-norm statistics still at their initial values set
from a few forward passes of random data, on a copy of the model.

A freshly built network (random weights, running mean 0 and variance 1) lets activations shrink or grow layer after
layer: a torchvision model's output may be around 1e-9, and a comparison on it says little. Where every batch norm
of the model is at PyTorch's initial state (no batch tracked: `num_batches_tracked == 0`), a copy of the model runs
CALIBRATION_PASSES forward passes in train mode on standard normal data with cumulative averaging
(`momentum=None`), as one would estimate the statistics of a dataset, and is ported instead; the user's model is
not touched. A model with trained statistics (any batch tracked) is ported as it is.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from xfw_harness.core.frameworks import TORCH_DTYPES, torch

CALIBRATION_PASSES = 4
BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def _batch_norms(model: Any) -> list[Any]:
    return [m for m in model.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]


def uncalibrated(model: Any) -> bool:
    """Whether the model has batch norms and none has tracked a batch (their statistics are the initial ones)."""
    norms = _batch_norms(model)
    return bool(norms) and all(int(m.num_batches_tracked) == 0 for m in norms)


def copy_if_uncalibrated(model: Any) -> Any:
    """A deep copy of the model where `uncalibrated` (to calibrate without touching the user's), else the model."""
    return copy.deepcopy(model) if uncalibrated(model) else model


def calibrate_batch_norms(model: Any, shape: tuple[int, ...], dtype: str) -> str | None:
    """Set the statistics of an `uncalibrated` model in place (see the module doc), leaving it in eval mode; a note
    saying so, or None where there was nothing to do."""
    if not uncalibrated(model):
        return None
    norms = _batch_norms(model)
    momenta = [m.momentum for m in norms]
    rng = np.random.default_rng(1234)
    batch = (max(shape[0], 2), *shape[1:])  # train-mode batch norm needs more than one value per channel
    try:
        for m in norms:
            m.train()
            m.momentum = None  # cumulative moving average over the passes
        with torch.no_grad():
            for _ in range(CALIBRATION_PASSES):
                model(torch.from_numpy(rng.standard_normal(batch)).to(TORCH_DTYPES[dtype]))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()
    return (f"the model's {len(norms)} batch norms had their initial statistics (mean 0, variance 1): a copy of the "
            f"model was ported with statistics from {CALIBRATION_PASSES} forward passes of random normal data, so "
            "that its activations do not vanish; the case and the Keras model carry those statistics and the model's "
            "weights (port with --no-calibrate to keep the initial statistics)")
