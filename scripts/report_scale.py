"""Size and load time of the HTML report: on the shipped suite and on a generated suite of about 2,000 tests.

    .venv/bin/python scripts/report_scale.py [--tests 2000] [--out reports/scale] [--keras-backend B ...]
    (or: make report-scale)

Both suites run on the Keras backends given (repeatable; default every installed one, as `xfw-harness run`): the
generated one has about `--tests` tests in all, its points shared out among the backends, so that the report
shows each point's backends side by side as a real run's does. The shipped suite on JAX takes many times
TensorFlow's time (JAX compiles every op per shape).

The generated suite mixes blocks and sweeps like the shipped one, and makes about 2% of its tests fail (a conv
with tolerance 0, which summation-order differences break) so that the report carries pictures for them, as it
would for a real run with failures. Load time is the median, over 5 loads in headless Chromium, of the page's
own reportReadyMs: from the start of navigation to the table of every test drawn. The figures go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
from xfw_harness.cases import load_paths
from xfw_harness.report.browser import browser_unavailable_reason, chromium, load_time_ms
from xfw_harness.report.html import write_report
from xfw_harness.suite.backends import select_backends
from xfw_harness.suite.collect import plan_tests
from xfw_harness.suite.results import results_document, write_json

# Each template is a case whose `sweep` gets `input.seed: [0 .. n)` added to reach the wanted size.
TEMPLATES = [
    {"block": "conv2d", "params": {"filters": 4, "kernel_size": 3},
     "sweep": {"padding": [0, 1, "same", "valid"], "strides": [1, 2]}, "input": {"shape": [1, 3, 12, 12]}},
    {"block": "max_pool2d", "params": {"pool_size": 2}, "sweep": {"padding": ["valid", "same", 1]},
     "input": {"shape": [1, 3, 9, 9]}},
    {"block": "avg_pool2d", "params": {"pool_size": 3, "strides": 2}, "sweep": {"count_include_pad": [True, False],
     "padding": ["same", 1]}, "input": {"shape": [1, 3, 9, 9]}},
    {"block": "sequential", "layers": [{"block": "conv2d", "params": {"filters": 6, "kernel_size": 3}},
                                       {"block": "relu"}, {"block": "flatten"}, {"block": "dense",
                                                                                   "params": {"units": 10}}],
     "input": {"shape": [2, 3, 8, 8]}},
    {"block": "softmax", "sweep": {"axis": [1, -1]}, "input": {"shape": [2, 5, 4, 4]}},
    {"block": "gelu", "sweep": {"approximate": ["none", "tanh"]}, "input": {"shape": [2, 4, 6, 6]}},
]
FAILING = {"block": "conv2d", "params": {"filters": 6, "kernel_size": 3, "padding": "same"},
           "input": {"shape": [1, 8, 12, 12]}, "tolerance": {"atol": 0, "rtol": 0}}


def points_per_seed(case: dict) -> int:
    n = 1
    for values in case.get("sweep", {}).values():
        n *= len(values)
    return n


def generate(folder: Path, tests: int) -> None:
    """About `tests` tests (on the CPU) in one case file, of which about 2% fail."""
    failing = max(1, tests // 50)
    per_template = (tests - failing) // len(TEMPLATES)
    cases = []
    for i, template in enumerate(TEMPLATES):
        seeds = max(1, -(-per_template // points_per_seed(template)))
        cases.append({"name": f"generated_{i}_{template['block']}", **template, "devices": ["cpu"],
                      "sweep": {**template.get("sweep", {}), "input.seed": list(range(seeds))}})
    cases.append({"name": "generated_too_tight", **FAILING, "devices": ["cpu"],
                  "sweep": {"input.seed": list(range(failing))}})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "generated.yaml").write_text(yaml.safe_dump(cases, sort_keys=False), encoding="utf-8")


def measure(cases: Path, out: Path, browser, backends: tuple[str, ...]) -> dict:  # noqa: ANN001
    entries, _ = load_paths([cases])
    tests = plan_tests(entries, device="cpu", backends=backends)
    start = time.perf_counter()
    results = [t.run("failed").to_dict() for t in tests]
    run_s = time.perf_counter() - start
    doc = results_document(results)
    write_json(out / "results.json", doc)
    start = time.perf_counter()
    write_report(out / "index.html", doc)
    render_s = time.perf_counter() - start
    s = doc["summary"]
    return {"suite": f"{cases} ({', '.join(backends)})", "tests": s["total"], "failed": s["failed"], "run_s": run_s,
            "render_s": render_s,
            "html_kb": (out / "index.html").stat().st_size / 1024,
            "json_kb": (out / "results.json").stat().st_size / 1024,
            "load_ms": load_time_ms(browser, out / "index.html") if browser else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("reports/scale"))
    parser.add_argument("--keras-backend", action="append", metavar="BACKEND",
                        help="run on this Keras backend (repeatable; `all`); default every installed one")
    args = parser.parse_args(argv)
    backends = select_backends(args.keras_backend)
    reason = browser_unavailable_reason()
    if reason:
        print(f"load times not measured: {reason}", file=sys.stderr)
    generate(args.out / "generated_cases", max(1, args.tests // len(backends)))
    rows = []
    with chromium() if not reason else _nothing() as browser:
        rows.append(measure(Path("cases"), args.out / "shipped", browser, backends))
        rows.append(measure(args.out / "generated_cases", args.out / "generated", browser, backends))
    print("| suite | tests | failed (with pictures) | report size | results.json | opens in (median of 5) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        load = f"{r['load_ms']:.0f} ms" if r["load_ms"] is not None else "not measured"
        print(f"| {r['suite']} | {r['tests']} | {r['failed']} | {r['html_kb']:.0f} KiB | {r['json_kb']:.0f} KiB "
              f"| {load} |")
    for r in rows:
        print(f"{r['suite']}: ran in {r['run_s']:.1f} s, report written in {r['render_s']:.2f} s", file=sys.stderr)
    return 0


class _nothing:  # noqa: N801 - a stand-in for the browser context where none can be had
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
