"""Splitting a suite into N disjoint shards that together cover it, balanced by expected cost, the same on every
machine: `xfw-harness run --shard K/N` and `pytest --harness-shard K/N`.

Cost of a test: its measured duration in an earlier results file where one is given (`--shard-durations`, as
pytest-split does), else an estimate from the case: a fixed cost per layer built in both frameworks (what
dominates small tests: building a Keras layer takes milliseconds, see benchmarks/test_block_speed.py) plus the
multiply-adds of each layer. Tests are dealt greedily, most expensive first, each to the least loaded shard
(ties broken by shard number, costs tied broken by test id), which keeps every shard within one test's cost of
the mean. Only the ids and costs decide: the same ids give the same shards on every machine.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Estimated seconds, fitted by least squares to the shipped suite's measured durations on the 2-core CI machine:
# a test's fixed cost, building and running one layer in both frameworks, and one multiply-add.
TEST_S = 0.0037
LAYER_S = 0.0032
MULTIPLY_ADD_S = 3e-10


class ShardError(ValueError):
    """A --shard value that is not K/N with 1 <= K <= N."""


def parse_shard(text: str) -> tuple[int, int]:
    """"K/N" -> (K, N), 1-based K: `--shard 2/4` is the second of four shards."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ShardError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 1/4")
    return int(m.group(1)), int(m.group(2))


def estimated_cost(point: Any) -> float:
    """Expected seconds for one test of `point` (a xfw_harness.cases.loader.Point): layers built plus multiply-adds."""
    work = 0.0
    for layer, site in zip(point.layers, point.sites):
        out = math.prod(layer.block.output_shape(site))
        work += out * max(1, layer.block.reduction_length(site))
    return TEST_S + LAYER_S * len(point.layers) + MULTIPLY_ADD_S * work


def assign(costs: Mapping[str, float], n: int) -> list[list[str]]:
    """The ids of `costs` dealt into `n` shards: largest first, each to the least loaded (deterministic)."""
    shards: list[list[str]] = [[] for _ in range(n)]
    loads = [(0.0, i) for i in range(n)]
    heapq.heapify(loads)
    for test_id in sorted(costs, key=lambda t: (-costs[t], t)):
        load, i = heapq.heappop(loads)
        shards[i].append(test_id)
        heapq.heappush(loads, (load + costs[test_id], i))
    return shards


def select(ids: Iterable[str], estimates: Mapping[str, float], k: int, n: int,
           durations: Mapping[str, float] | None = None) -> set[str]:
    """The ids of shard `k` of `n` (1-based). A measured duration, where given, replaces the estimate; a test
    without either counts the median of the known costs."""
    ids = list(dict.fromkeys(ids))
    durations = durations or {}
    known = [durations.get(i, estimates.get(i)) for i in ids]
    known = [c for c in known if c is not None]
    fallback = sorted(known)[len(known) // 2] if known else 1.0
    costs = {i: float(durations.get(i, estimates.get(i, fallback))) for i in ids}
    return set(assign(costs, n)[k - 1])


def select_shard(spec: str, tests: Iterable[tuple[str, Any]], durations_path: str | None = None) -> set[str]:
    """The ids of shard `spec` ("K/N") among `tests`, pairs (id, point or None for a test with no case), balanced
    by the durations in the results file at `durations_path` where given. What `xfw-harness run --shard` and
    `pytest --harness-shard` both call; raises ShardError or xfw_harness.suite.results.ResultsFileError."""
    from xfw_harness.suite.results import read_results

    k, n = parse_shard(spec)
    durations = durations_from(read_results(Path(durations_path))) if durations_path else {}
    tests = list(tests)
    estimates = {test_id: estimated_cost(point) for test_id, point in tests if point is not None}
    return select([test_id for test_id, _ in tests], estimates, k, n, durations)


def durations_from(doc: Mapping[str, Any]) -> dict[str, float]:
    """Measured seconds per test id from a results document (xfw_harness.suite.results.read_results)."""
    return {r["id"]: float(r["duration_s"]) for r in doc.get("results", []) if r.get("duration_s")}
