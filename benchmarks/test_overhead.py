"""The harness's overhead: the shipped suite's forward checks through the harness (load the YAML, plan, build,
transfer, run, compare, make the results document) against the bare framework calls they need (build each layer in
both frameworks, transfer the weights, run both, and for a network run each Keras layer on PyTorch's input to it),
in the same process. Goal: harness / bare <= 1.25.

Only forward checks are timed (`forward_only`): gradients, optimiser steps, running statistics, the float64
reference, native builds and cpu-vs-gpu runs are work a hand-written check would do too, at the same framework
cost, and they are not what this measures."""

from __future__ import annotations

import dataclasses
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from xfw_harness.cases import load_paths
from xfw_harness.core.frameworks import TORCH_DTYPES, keras, tf, to_numpy, to_torch, torch
from xfw_harness.core.layout import shape_to_channels_last
from xfw_harness.suite.collect import plan_tests
from xfw_harness.suite.results import results_document

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
    torch_outs = []
    with torch.no_grad():
        t = to_torch(x)
        for m in modules:
            t = m(t)
            torch_outs.append(to_numpy(t))
    y = tf.constant(point.sites[0].layout.to_keras(x))
    for k in layers:
        y = k(y, training=point.mode == "train")
    if point.sequential and len(layers) > 1:  # each layer fed the same input, as the harness judges a network
        for i, (k, site) in enumerate(zip(layers, point.sites)):
            k(tf.constant(site.layout.to_keras(x if i == 0 else torch_outs[i - 1])), training=point.mode == "train")
    keras.backend.clear_session(free_memory=False)
    return torch_outs[-1], to_numpy(y)


def forward_only(point) -> bool:  # noqa: ANN001
    """A point whose only check is the forward comparison (see the module's docstring)."""
    return (point.checks == ("forward",) and point.defaults == "harness" and point.expect_reference is None
            and point.compare_with == "frameworks"
            and not (point.mode == "train" and any(layer.block.name == "batch_norm2d" for layer in point.layers)))


def timed_tests() -> list:
    tests = plan_tests(load_paths([CASES])[0], device="cpu")
    return [t for t in tests if t.point is not None and forward_only(t.point)]


def harness_suite() -> tuple[int, float]:
    """Run the timed tests through the harness: (how many, seconds). Loading is per file, for every case in it, so
    the timed tests are charged the share of the load time that their number is of all tests."""
    start = time.perf_counter()
    planned = plan_tests(load_paths([CASES])[0], device="cpu")
    load_s = time.perf_counter() - start
    # The float64 reference, computed at every point by default, is a check of its own, not overhead: the timed
    # tests opt out of it (expect.reference: false), as the bare loop has none.
    tests = [dataclasses.replace(t, point=dataclasses.replace(t.point, expect_reference=False))
             for t in planned if t.point is not None and forward_only(t.point)]
    start = time.perf_counter()
    doc = results_document([t.run().to_dict() for t in tests])
    run_s = time.perf_counter() - start
    assert doc["summary"]["failed"] == doc["summary"]["error"] == 0, doc["summary"]
    return len(tests), load_s * len(tests) / len(planned) + run_s


def bare_suite(points: list) -> None:
    for p in points:
        bare(p)


def test_harness_overhead_on_the_shipped_suite(benchmark) -> None:  # noqa: ANN001
    points = [t.point for t in timed_tests()]
    harness_suite()  # warm both paths up: first calls pay one-off costs
    bare_suite(points)
    harness_s, bare_s = [], []
    for _ in range(ROUNDS):  # interleaved, so that drift in the machine's speed hits both alike
        n, seconds = harness_suite()
        harness_s.append(seconds)
        start = time.perf_counter()
        bare_suite(points)
        bare_s.append(time.perf_counter() - start)
    ratio = statistics.median(harness_s) / statistics.median(bare_s)
    benchmark.extra_info.update(tests=n, harness_s=statistics.median(harness_s), bare_s=statistics.median(bare_s),
                                ratio=ratio, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    benchmark.pedantic(harness_suite, rounds=1, iterations=1)
    print(f"\nharness {statistics.median(harness_s):.2f} s, bare {statistics.median(bare_s):.2f} s, "
          f"ratio {ratio:.3f} over {n} tests")
    assert ratio <= GOAL, f"harness / bare = {ratio:.3f} > {GOAL}: profile a run (docs/performance.md) and fix it"
