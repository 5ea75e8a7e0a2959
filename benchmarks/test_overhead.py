"""The harness's overhead: the whole shipped suite through the harness (load the YAML, plan, build, transfer, run,
compare, make the results document) against the bare framework calls the suite needs (build each layer in both
frameworks, transfer the weights, run both), in the same process. Goal: harness / bare <= 1.25."""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path

import numpy as np

from harness.frameworks import TORCH_DTYPES, keras, tf, to_numpy, torch
from harness.layout import shape_to_channels_last
from harness.results import results_document
from harness.runner import load_paths, plan_tests

CASES = Path(__file__).resolve().parents[1] / "cases"
GOAL = 1.25
ROUNDS = 3


def bare(point) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """What a person would write by hand for one point: the blocks' own builders, and nothing of the harness's
    checking (no comparison, no results, no error handling)."""
    torch.random.default_generator.manual_seed(point.input.seed)
    modules = [layer.block.torch_module(site) for layer, site in zip(point.layers, point.sites)]
    for m in modules:
        m.to(dtype=TORCH_DTYPES[point.input.dtype]).train(point.mode == "train")
    layers = []
    for layer, site, m in zip(point.layers, point.sites, modules):
        k = layer.block.keras_layer(site)
        k.build(shape_to_channels_last(site.in_shape))
        layer.block.transfer_weights(site, m, k)
        layers.append(k)
    x = point.input.make()
    with torch.no_grad():
        t = torch.from_numpy(x)
        for m in modules:
            t = m(t)
    y = tf.constant(point.sites[0].layout.to_keras(x))
    for k in layers:
        y = k(y, training=point.mode == "train")
    keras.backend.clear_session(free_memory=False)
    return to_numpy(t), to_numpy(y)


def harness_suite() -> int:
    entries, _ = load_paths([CASES])
    tests = plan_tests(entries, device="cpu")
    doc = results_document([t.run().to_dict() for t in tests])
    assert doc["summary"]["passed"] == doc["summary"]["total"]
    return len(tests)


def bare_suite(points: list) -> None:
    for p in points:
        bare(p)


def test_harness_overhead_on_the_shipped_suite(benchmark) -> None:  # noqa: ANN001
    points = [t.point for t in plan_tests(load_paths([CASES])[0], device="cpu") if t.point is not None]
    harness_suite()  # warm both paths up: first calls pay one-off costs
    bare_suite(points)
    harness_s, bare_s = [], []
    for _ in range(ROUNDS):  # interleaved, so that drift in the machine's speed hits both alike
        start = time.perf_counter()
        n = harness_suite()
        harness_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        bare_suite(points)
        bare_s.append(time.perf_counter() - start)
    ratio = statistics.median(harness_s) / statistics.median(bare_s)
    benchmark.extra_info.update(tests=n, harness_s=statistics.median(harness_s), bare_s=statistics.median(bare_s),
                                ratio=ratio, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    benchmark.pedantic(harness_suite, rounds=1, iterations=1)
    print(f"\nharness {statistics.median(harness_s):.2f} s, bare {statistics.median(bare_s):.2f} s, "
          f"ratio {ratio:.3f} over {n} tests")
    assert ratio <= GOAL, f"harness / bare = {ratio:.3f} > {GOAL}: profile a run (README, 'Speed') and fix it"
