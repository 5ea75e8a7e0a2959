"""Forward time of each block in PyTorch and in Keras, side by side, on the same input: the case each block declares
for it (`Block.benchmark`, a size a real network has: batch 8, 32 channels, 32x32 unless the block says otherwise),
on the CPU and on the GPU where there is one. Only the forward pass is timed: the layers are built and their weights
copied once, outside the timing; GPU work is synchronised before the clock stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from xfw_harness.blocks import all_blocks
from xfw_harness.cases import Point, load_case
from xfw_harness.core.frameworks import gpu_unavailable_reason, keras_device, placement, tf, torch, torch_device
from xfw_harness.engine import build_keras, build_torch

ENTRIES = [load_case("<benchmark>", i, block.benchmark_case(), Path.cwd(), set())
           for i, block in enumerate(all_blocks().values())]
POINTS = {e.name: e.points[0] for e in ENTRIES if e.points and isinstance(e.points[0], Point)}


def _forward(point, device: str, framework: str):  # noqa: ANN001, ANN202 - a zero-argument callable
    modules = build_torch(point, device)
    x = point.input.make()
    training = point.mode == "train"
    if framework == "torch":
        t = torch.from_numpy(x).to(torch_device(device))

        def run() -> None:
            with torch.no_grad():
                y = t
                for m in modules:
                    y = m(y)
            if device == "gpu":
                torch.cuda.synchronize()
        return run
    layers = build_keras(point, modules, device)
    with keras_device(device):
        t = tf.constant(point.sites[0].layout.to_keras(x))

    def run() -> None:
        with keras_device(device):
            y = t
            for k in layers:
                y = k(y, training=training)
            y.numpy()  # waits for the device
    return run


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("case", sorted(POINTS))
def test_forward(benchmark, case: str, framework: str, device: str) -> None:  # noqa: ANN001
    if device == "gpu" and (reason := gpu_unavailable_reason()):
        pytest.skip(f"gpu: {reason}")
    point = POINTS[case]
    run = _forward(point, device, framework)
    run()  # warm up: first-call work (kernel selection, tracing) is not the steady state
    benchmark.group = f"{case} on {device}"
    benchmark.extra_info.update(case=case, blocks=point.blocks, framework=framework, device=device,
                                input_shape=list(point.input.shape), dtype=point.input.dtype,
                                ran_on=placement(device)[framework])
    benchmark(run)
