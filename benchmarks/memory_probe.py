"""Peak memory of a run of N generated tests, in a fresh process: `python benchmarks/memory_probe.py N`.

Prints one JSON line: tests run, resident memory before the tests, its peak while they run (sampled every 25
tests and at the end) and the process's peak (which importing TensorFlow sets).
Used by benchmarks/test_memory.py for 200 and 2,000 tests.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from report_scale import generate  # noqa: E402

import xfw_harness.core.frameworks  # noqa: E402, F401  (first: fixes the Keras backend)
from xfw_harness.cases import load_paths  # noqa: E402
from xfw_harness.suite.collect import plan_tests  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def resident_mb() -> float:
    """Resident memory now (Linux); the process's peak elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return peak_mb()


def main() -> None:
    n = int(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), n)
        tests = plan_tests(load_paths([tmp])[0], device="cpu")
        before = resident_mb()
        statuses, during = [], before
        for i, t in enumerate(tests):
            statuses.append(t.run("none").status)
            if i % 25 == 0:
                during = max(during, resident_mb())
        during = max(during, resident_mb())
    # The process's own peak comes from importing TensorFlow, before any test: the resident memory sampled
    # while the tests run is what a leak would grow.
    print(json.dumps({"tests": len(tests), "errors": statuses.count("error"), "before_mb": round(before, 1),
                      "peak_mb": round(during, 1), "process_peak_mb": round(peak_mb(), 1)}))


if __name__ == "__main__":
    main()
