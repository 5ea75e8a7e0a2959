"""Sharding: N parts that are disjoint, cover every test, are balanced and are the same on every machine; through
`xfw-harness run --shard` and `pytest --harness-shard`."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
from xfw_harness.cases import load_paths
from xfw_harness.cli import _shard, main
from xfw_harness.core.frameworks import BACKEND, installed_backends
from xfw_harness.suite.collect import plan_tests
from xfw_harness.suite.sharding import ShardError, assign, estimated_cost, parse_shard, select

PROJECT = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]
HERE = ("--keras-backend", BACKEND)  # runs on this process's backend only (in process): sharding is the same on any


def test_parse_shard() -> None:
    assert parse_shard("2/4") == (2, 4) and parse_shard(" 1 / 1 ") == (1, 1)
    for bad in ("0/3", "4/3", "1/0", "a/b", "1", "1/2/3", "-1/2"):
        with pytest.raises(ShardError, match="expected K/N"):
            parse_shard(bad)


costs_st = st.dictionaries(st.text("abcdefgh[]-:", min_size=1, max_size=12),
                           st.floats(min_value=0.0, max_value=10.0, allow_nan=False), min_size=0, max_size=60)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(costs=costs_st, n=st.integers(1, 8))
def test_shards_are_disjoint_complete_balanced_and_order_independent(costs: dict[str, float], n: int) -> None:
    shards = assign(costs, n)
    assert len(shards) == n
    flat = [i for s in shards for i in s]
    assert sorted(flat) == sorted(costs), "every test in exactly one shard"
    if costs:
        loads = [sum(costs[i] for i in s) for s in shards]
        # Greedy largest-first: no shard exceeds the mean by more than one test's cost.
        assert max(loads) <= sum(costs.values()) / n + max(costs.values()) + 1e-9
    shuffled = dict(random.Random(0).sample(list(costs.items()), len(costs)))
    assert assign(shuffled, n) == shards, "the split depends on ids and costs only, not on their order"


def test_measured_durations_replace_estimates() -> None:
    ids = [f"t{i}" for i in range(10)]
    estimates = dict.fromkeys(ids, 1.0)
    slow = select(ids, estimates, 1, 2, durations={"t3": 100.0})
    other = select(ids, estimates, 2, 2, durations={"t3": 100.0})
    assert {"t3"} in (slow, other), "a test measured slower than all the others together gets a shard to itself"


def test_the_shipped_suite_splits_into_disjoint_complete_shards() -> None:
    tests = plan_tests(load_paths([PROJECT / "cases"])[0])
    for n in (1, 2, 3, 7):
        parts = [_shard(tests, f"{k}/{n}", None) for k in range(1, n + 1)]
        ids = [t.id for part in parts for t in part]
        assert sorted(ids) == sorted(t.id for t in tests) and len(ids) == len(set(ids))
        est = [sum(estimated_cost(t.point) for t in part) for part in parts]
        assert max(est) - min(est) <= max(estimated_cost(t.point) for t in tests) + 1e-12


CASES = """\
- name: many
  block: relu
  input: {shape: [1, 2, 4, 4]}
  devices: [cpu]
  sweep: {input.seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
- name: conv
  block: conv2d
  params: {filters: 4, kernel_size: 3}
  input: {shape: [1, 3, 16, 16]}
  devices: [cpu]
  sweep: {strides: [1, 2]}
"""


def test_harness_run_shards_cover_the_run_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(textwrap.dedent(CASES), encoding="utf-8")
    main(["run", str(cases), *HERE, "--json", str(tmp_path / "all.json"), "-q"])
    everything = {r["id"] for r in json.loads((tmp_path / "all.json").read_text())["results"]}
    seen: list[str] = []
    for k in (1, 2, 3):
        assert main(["run", str(cases), *HERE, "--shard", f"{k}/3", "--json", str(tmp_path / f"{k}.json"), "-q",
                     "--shard-durations", str(tmp_path / "all.json")]) == 0
        seen += [r["id"] for r in json.loads((tmp_path / f"{k}.json").read_text())["results"]]
    assert sorted(seen) == sorted(everything) and len(everything) == 13
    capsys.readouterr()
    assert main(["run", str(cases), "--shard", "3/2"]) == 2
    assert "expected K/N" in capsys.readouterr().err


def test_pytest_shards_cover_the_collection_once(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", cases=textwrap.dedent(CASES))
    pytester.makepyfile(test_plain="def test_a(): pass\ndef test_b(): pass\n")
    # Collected on every installed Keras backend (collection starts no worker): 13 points on each, 2 plain tests.
    collected = []
    for k in (1, 2):
        result = pytester.runpytest_inprocess("--collect-only", "-q", "--harness-shard", f"{k}/2", "cases.yaml",
                                              "test_plain.py")
        collected += [line for line in result.outlines if "::" in line]
    every = pytester.runpytest_inprocess("--collect-only", "-q", "cases.yaml", "test_plain.py")
    assert sorted(collected) == sorted(line for line in every.outlines if "::" in line)
    total = 13 * len(installed_backends()) + 2
    assert len(collected) == total and len(set(collected)) == total
    bad = pytester.runpytest_inprocess("--harness-shard", "0/2", "cases.yaml")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR and "expected K/N" in "\n".join(bad.errlines)


def test_durations_from_a_results_file_written_before_backends_weigh_todays_tensorflow_tests(tmp_path: Path) -> None:
    """A results file from before backends were an axis names no backend and its ids end in the device: its tests
    ran on TensorFlow, and their measured durations apply to today's TensorFlow ids (not to JAX's or torch's)."""
    from xfw_harness.suite.results import read_results
    from xfw_harness.suite.sharding import durations_from

    old = {"schema": 2, "shards": [{"label": "old", "environment": {}}], "environment": {}, "summary": {}, "cases": {},
           "results": [{"id": "c.yaml::a[cpu]", "file": "c.yaml", "case": "a", "device": "cpu", "status": "passed",
                        "duration_s": 7.0}]}
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    durations = durations_from(read_results(tmp_path / "old.json"))
    assert durations == {"c.yaml::a[cpu-tensorflow]": 7.0}
    ids = ["c.yaml::a[cpu-tensorflow]", "c.yaml::a[cpu-jax]", "c.yaml::b[cpu-tensorflow]"]
    assert select(ids, {i: 1.0 for i in ids}, 1, 2, durations) == {"c.yaml::a[cpu-tensorflow]"}  # 7 s alone
