"""Running a script with Keras on each backend, for the tests of what the harness's Keras code computes there: a
process has one Keras backend (fixed when keras is imported), so each backend gets a fresh Python that prints its
figures as JSON after `RESULT `."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xfw_harness.core.frameworks import BACKENDS, installed_backends

ROOT = Path(__file__).resolve().parents[2]


def run_on_backend(backend: str, script: str) -> dict[str, Any]:
    """`script` in a fresh Python whose Keras runs on `backend` (from the repository root); the JSON it prints
    after RESULT."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"{backend}: rc {proc.returncode}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def figures_on_every_backend(script: str) -> Any:
    """A module-scoped fixture: (backend, the script's figures there), once per installed backend."""

    @pytest.fixture(scope="module", params=list(BACKENDS))
    def figures(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
        if request.param not in installed_backends():
            pytest.skip(f"Keras's {request.param} backend is not installed")
        return request.param, run_on_backend(request.param, script)

    return figures
