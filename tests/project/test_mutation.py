"""The mutation check (scripts/mutation.py, `make mutation`) in short: every mutant still applies to the current
sources, and a few representative mutants, run through the same code path, are caught by the shipped cases while
the unchanged harness survives them (so the check can say "not caught")."""

from __future__ import annotations

import importlib.util
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


mutants = _load("mutants")
mutation = _load("mutation")
BY_NAME = {m.name: m for m in mutants.MUTANTS}


def test_there_are_enough_realistic_mutants_across_the_harness() -> None:
    assert len(mutants.MUTANTS) >= 20 and len(BY_NAME) == len(mutants.MUTANTS), "names must be unique"
    files = {m.file for m in mutants.MUTANTS}
    for family in ("core/layout.py", "core/spatial.py", "core/compare.py", "engine/forward.py", "blocks/convolution.py",
                   "blocks/dense.py", "blocks/pooling.py", "blocks/activations.py", "blocks/dropout.py"):
        assert family in files, f"no mutant in xfw_harness/{family}"


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=lambda m: m.name)
def test_every_mutant_applies_exactly_once_and_compiles(mutant) -> None:  # noqa: ANN001
    """A refactor that moves the code a mutant targets must fail here, not silently test nothing."""
    mutation.check_applies(mutant)


def test_a_mutant_that_does_not_apply_is_refused() -> None:
    missing = mutants.Mutant("gone", "core/layout.py", "this text is nowhere", "x", "")
    twice = mutants.Mutant("twice", "core/layout.py", "np.ascontiguousarray", "x", "")
    for m, says in ((missing, "occurs 0 times"), (twice, r"occurs ([2-9]|\d\d+) times")):
        with pytest.raises(mutation.MutantError, match=says):
            mutation.check_applies(m)
    broken = mutants.Mutant("broken", "core/layout.py", "def to_channels_last(", "def to_channels_last((", "")
    with pytest.raises(mutation.MutantError, match="does not compile"):
        mutation.check_applies(broken)


def test_representative_mutants_are_caught_and_the_identity_survives() -> None:
    """Three mutants (a layout bug, a shared-default bug only golden values see, a lenient tolerance only the
    canaries see) each against the case file that should catch it; the identity and a mutant that breaks the
    import against the same files. Run as `make mutation` runs them: a copy of the package, a child process."""
    runs = [
        (BY_NAME["conv_kernel_3210"], ["cases/conv2d.yaml"]),
        (BY_NAME["pool_stride_defaults_to_1"], ["cases/pooling.yaml"]),
        (BY_NAME["tolerance_10x_looser"], ["cases/canaries.yaml"]),
        (mutants.IDENTITY, ["cases/canaries.yaml", "cases/pooling.yaml"]),
        (mutants.Mutant("import_crash", "core/layout.py", "CHANNELS_LAST = Layout()",
                        "CHANNELS_LAST = Layout()\nraise RuntimeError('mutant')", ""), ["cases/canaries.yaml"]),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        kernel, stride, tolerance, identity, crash = pool.map(lambda run: mutation.run_mutant(*run, timeout_s=300),
                                                              runs)
    assert kernel.verdict == "caught" and kernel.test.startswith("cases/conv2d.yaml::"), kernel
    assert stride.verdict == "caught", stride
    # On one Keras backend, the child's ($HARNESS_KERAS_BACKENDS, else KERAS_BACKEND, else tensorflow).
    backend = os.environ.get("HARNESS_KERAS_BACKENDS", os.environ.get("KERAS_BACKEND", "tensorflow"))
    assert stride.test == f"cases/pooling.yaml::max_pool_default_strides_golden[cpu-{backend}]", stride
    assert tolerance.verdict == "caught" and tolerance.test.startswith("cases/canaries.yaml::golden_off_by"), tolerance
    assert identity.verdict == "survived" and identity.ran > 50, identity
    assert crash.verdict == "invalid" and "does not import" in crash.message and "mutant" in crash.message, crash
