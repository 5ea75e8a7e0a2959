"""Benchmarks (`make bench`): pytest-benchmark, not part of `make test`. Results: reports/bench.json, which
`xfw-harness run/report --bench` turns into the report's speed table."""

from __future__ import annotations

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
