"""`xfw-harness fuzz BLOCK [--keras-backend B ...]`: the command, on one Keras backend or several.

The search runs PyTorch against Keras on this process's backend (xfw_harness.core.frameworks.BACKEND) in place, as
`fuzz` does. Keras fixes its backend when it is first imported, so each other backend asked for (`--keras-backend
jax`, repeatable; `all`: every installed one) is searched by a `python -m xfw_harness fuzz` child process with
KERAS_BACKEND set, whose output comes through as it is printed: the same seed draws the same examples on each
backend, and each backend's finding is its own file (xfw_harness.tools.fuzz.finding.finding_file). Exit status: 1 when
some backend found something, else 2 when one could compare nothing or was refused, else 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import BACKEND, BackendSelectionError, chosen_backends
from xfw_harness.tools.fuzz.search import fuzz, parse_dtypes
from xfw_harness.tools.fuzz.strategies import DEFAULT_DTYPES


def _here(block: str, options: dict) -> int:
    try:
        dtypes = parse_dtypes(options["dtypes"]) if options["dtypes"] is not None else DEFAULT_DTYPES
        report = fuzz(block, examples=options["examples"], seed=options["seed"], time_budget=options["time_budget"],
                      out=Path(options["out"]), device=options["device"], dtypes=dtypes,
                      include_known=options["include_known"])
    except CaseError as e:  # an unknown block or a bad option, refused before the search
        print(f"xfw-harness fuzz: {e.message}", file=sys.stderr)
        return 2
    print(report.summary(), flush=True)
    if report.finding is not None:
        return 1
    if (why := report.nothing_run()) is not None:  # compared nothing: not "found nothing"
        print(f"xfw-harness fuzz: {why}", file=sys.stderr)
        return 2
    return 0


def _elsewhere(block: str, options: dict, backend: str) -> int:
    """The search in a child process running Keras on `backend`; its output passes through."""
    argv = [sys.executable, "-m", "xfw_harness", "fuzz", block, "--examples", str(options["examples"]), "--seed",
            str(options["seed"]), "--out", str(options["out"]), "--device", options["device"], "--keras-backend",
            backend]
    argv += ["--time-budget", str(options["time_budget"])] if options["time_budget"] is not None else []
    argv += ["--dtypes", options["dtypes"]] if options["dtypes"] is not None else []
    argv += ["--include-known"] if options["include_known"] else []
    done = subprocess.run(argv, env={**os.environ, "KERAS_BACKEND": backend}, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, text=True, check=False)
    print(done.stdout, end="", flush=True)
    if done.returncode < 0:
        print(f"xfw-harness fuzz: the Keras {backend} process died (signal {-done.returncode})", file=sys.stderr)
        return 2
    return done.returncode


def command(block: str, backends: list[str] | None = None, **options: object) -> int:
    """`xfw-harness fuzz`: `options` are fuzz's (examples, seed, time_budget, out, device, dtypes as the option's text,
    include_known); `backends` the --keras-backend values. The exit status (module doc)."""
    try:
        chosen = chosen_backends(backends, default=(BACKEND,))
    except BackendSelectionError as e:
        print(f"xfw-harness fuzz: {e}", file=sys.stderr)
        return 2
    codes = []
    for i, backend in enumerate(chosen):
        if i:
            print(flush=True)
        codes.append(_here(block, options) if backend == BACKEND else _elsewhere(block, options, backend))
    return 1 if 1 in codes else max(codes)
