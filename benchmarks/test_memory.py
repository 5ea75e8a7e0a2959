"""Memory stays bounded: a run of 2,000 tests peaks no higher than a run of 200, give or take a little (each run
in a fresh process; the generated suite of scripts/report_scale.py). Layers and Keras's global state are released
after every test (xfw_harness.engine.run.run_point); before that was done, memory grew about 0.14 MB per six-layer
network built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).with_name("memory_probe.py")
ALLOWED_GROWTH_MB = 40  # peak of 2,000 tests minus peak of 200 tests


def probe(n: int) -> dict:
    out = subprocess.run([sys.executable, str(PROBE), str(n)], capture_output=True, text=True, timeout=900,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_number_of_tests(benchmark) -> None:  # noqa: ANN001
    small = probe(200)
    large = benchmark.pedantic(probe, args=(2000,), rounds=1, iterations=1)
    benchmark.extra_info.update(tests_small=small["tests"], peak_mb_small=small["peak_mb"],
                                tests_large=large["tests"], peak_mb_large=large["peak_mb"],
                                growth_mb=large["peak_mb"] - small["peak_mb"])
    print(f"\npeak memory: {small['tests']} tests {small['peak_mb']} MB, {large['tests']} tests {large['peak_mb']} MB")
    assert large["errors"] == small["errors"] == 0  # (about 2% fail by design: tolerance 0, for the report)
    assert large["peak_mb"] - small["peak_mb"] <= ALLOWED_GROWTH_MB, (small, large)
