"""`compare: devices`: the same framework on the CPU and on the GPU must agree, as PyTorch's own CPU-vs-CUDA
consistency tests do (an op's CUDA result checked against its CPU result: test_ops.py's `test_compare_cpu`).

Such a point is one test, on the `gpu` device (its id ends in `[...-gpu]`, `xfw-harness run --device gpu` and
`pytest -m gpu` select it): each framework runs the point on the CPU and on the GPU, from the same weights
(PyTorch initialises on the CPU from the case's seed; Keras gets those weights), and gives one verdict per framework,
"torch cpu vs gpu" and "keras cpu vs gpu", GPU output against CPU output under the default tolerance (two correct
implementations that sum in different orders, as for torch vs keras) or the case's. Without a CUDA device the test
is skipped with the reason. Where Keras's backend has no GPU (tensorflow-cpu, a CPU-only jaxlib) its verdict is
left out and the message says so, rather than passing a CPU-vs-CPU comparison.

Dropout in train mode (the last layer) draws different masks on each device: what comes before it is compared, and
each device's sample gets the block's own statistical check (`check_sample`, as in
xfw_harness.engine.run.compare_outputs: element-wise for dropout, channel-wise for spatial_dropout2d).
"""

from __future__ import annotations

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core import frameworks
from xfw_harness.core.verdicts import Status, Verdict, VerdictKind
from xfw_harness.engine import plants
from xfw_harness.engine.build import build_keras, build_torch, forward_keras, forward_torch
from xfw_harness.engine.comparing import compare
from xfw_harness.engine.judge import judge
from xfw_harness.engine.result import Result
from xfw_harness.engine.tolerances import point_tolerance

FRAMEWORKS = ("torch", "keras")
DEVICES = ("cpu", "gpu")


def unavailable_reason() -> str | None:
    """Why a devices comparison cannot run here, or None."""
    reason = frameworks.gpu_unavailable_reason()
    return f"compare: devices needs a GPU: {reason}" if reason else None


def _outputs(point: Point, x: np.ndarray, device: str) -> dict[str, list[np.ndarray]]:
    modules = build_torch(point, device)
    layers = build_keras(point, modules, device)
    return {"torch": forward_torch(point, modules, x, device), "keras": forward_keras(point, layers, x, device)}


def device_verdicts(point: Point, x: np.ndarray, outs: dict[str, dict[str, list[np.ndarray]]],
                    frameworks_compared: tuple[str, ...] = FRAMEWORKS) -> list[Verdict]:
    """Per framework: its GPU outputs against its CPU outputs (`outs[device][framework]`, every layer's)."""
    verdicts = []
    sampled, site = point.layers[-1].block, point.sites[-1]  # the block says what of a sample can be checked
    for name in frameworks_compared:
        cpu, gpu = outs["cpu"][name], outs["gpu"][name]
        if point.sampled:
            if len(point.layers) > 1:
                verdicts.append(compare(gpu[-2], cpu[-2], point_tolerance(point, cpu[-2]),
                                        f"{name} cpu vs gpu before dropout", ("gpu", "cpu"), kind=VerdictKind.DEVICE))
            for device, chain in (("cpu", cpu), ("gpu", gpu)):
                verdicts.append(plants.check_sample(sampled, site, chain[-2] if len(chain) > 1 else x, chain[-1],
                                                     f"{name} {device} dropout sample"))
        else:
            verdicts.append(compare(gpu[-1], cpu[-1], point_tolerance(point, cpu[-1]), f"{name} cpu vs gpu",
                                    ("gpu", "cpu"), kind=VerdictKind.DEVICE))
    return verdicts


def run(result: Result, point: Point) -> Result:
    """Fill `result` (a runner Result on the gpu device) for a `compare: devices` point and return it."""
    if reason := unavailable_reason():
        result.status, result.message = Status.SKIPPED, reason
        return result
    result.placement = {name: f"cpu vs {where}" for name, where in frameworks.placement("gpu").items()}
    x = point.input.make()
    outs = {device: _outputs(point, x, device) for device in DEVICES}
    compared = FRAMEWORKS if frameworks.keras_has_gpu() else ("torch",)
    result.shapes = {"input": list(x.shape), **{name: list(outs["gpu"][name][-1].shape) for name in FRAMEWORKS}}
    result.verdicts = device_verdicts(point, x, outs, compared)
    result.status, result.message = judge(point, result.verdicts)
    if "keras" not in compared:
        result.message += (f"\nkeras cpu vs gpu: not compared: {frameworks.keras_gpu_missing()} here (a CPU-only "
                           f"build of Keras's {frameworks.BACKEND} backend?), so Keras ran on the CPU both times")
    return result
