"""Determinism: the same case, seed and versions give bit-identical inputs, weights and verdict metrics, across
runs, across processes, and between serial and parallel (pytest-xdist) runs.

A sample of the shipped suite (every 5th test, and every dropout test in train mode, whose masks come from the
seeded generators) is run twice in this process, once serially and once with `-n 2` in pytest subprocesses; the
results files must agree exactly, except for the durations. The inputs and the weights of both frameworks are
hashed per point, here and in another process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.cases import load_paths
from xfw_harness.core.frameworks import BACKEND, to_numpy, torch
from xfw_harness.engine import build_keras, build_torch
from xfw_harness.suite.collect import PlannedTest, plan_tests
from xfw_harness.suite.results import strict_json

ROOT = Path(__file__).resolve().parents[2]
VOLATILE = ("duration_s",)  # what may differ between two runs of the same test


def sample() -> list[PlannedTest]:
    """Every 5th shipped CPU test, and every dropout test in train mode; not the hand ports Keras refuses to build
    (`expect.refuses`: there are no Keras weights to digest). On this process's Keras backend: the digests build
    Keras here."""
    entries, errors = load_paths([ROOT / "cases"])
    assert not errors
    tests = [t for t in plan_tests(entries, device="cpu", backends=(BACKEND,))
             if t.point is None or not t.point.expect_refuses]
    chosen = [t for i, t in enumerate(tests) if i % 5 == 0 or (
        t.point is not None and t.point.mode == "train" and t.point.layers[-1].block.stochastic)]
    assert len(chosen) >= 60 and any(t.point.mode == "train" for t in chosen)
    return chosen


def digests(tests: list[PlannedTest]) -> dict[str, dict[str, str]]:
    """Per test: sha256 of its input, of PyTorch's initial weights (state_dict) and of the Keras weights."""
    def h(arrays: list[np.ndarray]) -> str:
        digest = hashlib.sha256()
        for a in arrays:
            digest.update(str((a.dtype.str, a.shape)).encode())
            digest.update(np.ascontiguousarray(a).tobytes())
        return digest.hexdigest()

    out = {}
    for test in tests:
        point = test.point
        modules = build_torch(point, "cpu")
        layers = build_keras(point, modules, "cpu")
        out[test.id] = {
            "input": h([point.input.make()]),
            "torch": h([to_numpy(v) for m in modules for v in m.state_dict().values()]),
            "keras": h([np.asarray(w.numpy()) for k in layers for w in k.weights]),
        }
    return out


def comparable(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Results by id, as a results file holds them (strict JSON), without what may differ between runs (and what a
    results file keeps elsewhere: the case's YAML, once per case)."""
    skip = (*VOLATILE, "shard", "case_yaml", "details")
    return {r["id"]: {k: v for k, v in strict_json(r).items() if k not in skip} for r in results}


@pytest.fixture(scope="module")
def tests() -> list[PlannedTest]:
    return sample()


def test_two_runs_in_one_process_are_identical(tests: list[PlannedTest]) -> None:
    first = comparable([t.run("none").to_dict() for t in tests])
    second = comparable([t.run("none").to_dict() for t in reversed(tests)])  # in the other order, too
    assert first == second
    dropout = [r for r in first.values() if any(v["what"].endswith("dropout sample") for v in r["verdicts"])]
    assert dropout and all(r["status"] == "passed" for r in dropout)


def test_inputs_and_weights_are_bit_identical_across_builds_and_processes(tests: list[PlannedTest]) -> None:
    here = digests(tests)
    assert digests(list(reversed(tests))) == here
    code = ("import json; import tests.engine.test_determinism as d; "
            "print(json.dumps(d.digests(d.sample())))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == here


def test_serial_and_parallel_pytest_runs_write_identical_results(tests: list[PlannedTest], tmp_path: Path) -> None:
    ids = [t.id for t in tests]
    docs = {}
    # The frameworks' thread counts set their summation order (a conv's weight gradient differs in the last bits
    # between 1 and 2 threads), and xdist workers get fewer threads (xfw_harness.core.frameworks.THREADS): every run
    # here gets this process's count, so that what is compared is the harness's own determinism.
    env = {**os.environ, "HARNESS_THREADS": str(torch.get_num_threads())}
    for name, extra in (("serial", ["-p", "no:xdist"]), ("parallel", ["-n", "2"])):
        path = tmp_path / f"{name}.json"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra,
                               "--keras-backend", BACKEND, "--harness-results", str(path), *ids], cwd=ROOT,
                              capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:]
        docs[name] = json.loads(path.read_text(encoding="utf-8"))
    serial, parallel = (comparable(docs[n]["results"]) for n in ("serial", "parallel"))
    assert sorted(serial) == sorted(ids)
    assert serial == parallel
    assert serial == comparable([t.run("none").to_dict() for t in tests])  # and as run in this process
