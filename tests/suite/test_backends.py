"""Keras's backends as an axis of a run (xfw_harness.suite.backends): which backends a run covers, each point planned on
each of them, the worker processes that run the other backends (a crash, a hang, a fresh worker after either),
`compare: backends`, and a known difference held on some backends only (expect.backends).

Mistakes are planted in a worker through a `sitecustomize` module on PYTHONPATH (PLANT below): the worker is a
fresh `python -m xfw_harness.suite.worker` that inherits this process's environment, so nothing in the harness needs a
test-only hook.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import xfw_harness.core.frameworks as frameworks  # first: fixes the Keras backend before anything imports keras
from xfw_harness.cases import Point, load_file
from xfw_harness.core.frameworks import BACKEND, BACKENDS, ENV_BACKENDS, BackendSelectionError, installed_backends
from xfw_harness.core.verdicts import Status
from xfw_harness.engine import run_point
from xfw_harness.suite import backends as backends_module
from xfw_harness.suite.backends import (
    backends_for,
    run_backends_comparison,
    run_on_backend,
    select_backends,
    worker,
)
from xfw_harness.suite.collect import plan_tests

# A backend that runs in a worker here: torch's is the cheapest to start (PyTorch is imported anyway).
OTHER = "torch" if BACKEND != "torch" else "tensorflow"

# sitecustomize for a worker: with $HARNESS_TEST_PLANT set, tanh's PyTorch module crashes the process (`crash`) or
# hangs past any deadline (`hang`), or tanh's Keras layer computes a sigmoid (`keras`): on that backend only.
PLANT = """
import os

if os.environ.get("HARNESS_TEST_PLANT"):
    import xfw_harness.core.frameworks  # fixes the Keras backend from KERAS_BACKEND, as the worker's own imports do
    import signal
    import time

    from xfw_harness.blocks import get_block
    from xfw_harness.core.frameworks import keras, torch

    class Planted(torch.nn.Module):
        def forward(self, x):
            if os.environ["HARNESS_TEST_PLANT"] == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)  # as a framework's segfault
            while True:  # a hang the worker's own deadline cannot end: its TimedOut is swallowed
                try:
                    time.sleep(0.05)
                except BaseException:
                    pass

    tanh = type(get_block("tanh"))
    if os.environ["HARNESS_TEST_PLANT"] == "keras":
        tanh.keras_layer = lambda self, site: keras.layers.Activation("sigmoid")
    else:
        tanh.torch_module = lambda self, site: Planted()
"""

CASES = """\
- name: everywhere
  block: relu
  input: {shape: [1, 2, 3]}
  devices: [cpu]
  sweep: {input.seed: [0, 1]}
- name: some
  block: relu
  input: {shape: [1, 2, 3]}
  devices: [cpu]
  backends: [jax, torch]
- name: across
  block: tanh
  input: {shape: [1, 2, 3]}
  devices: [cpu]
  compare: backends
"""


def points_of(directory: Path, text: str) -> dict[str, list[Point]]:
    path = directory / "cases.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    entries, error = load_file(path)
    assert error is None and all(e.error is None for e in entries), [error, *(e.error for e in entries)]
    return {e.name: e.points for e in entries}


def tanh_point(cases: dict[str, list[Point]]) -> Point:
    """The `across` case's tanh as a plain PyTorch-against-Keras test."""
    return dataclasses.replace(cases["across"][0], compare_with="frameworks")


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """`planted(kind)`: OTHER's next worker starts with the mistake planted (PLANT); closed again afterwards."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(PLANT, encoding="utf-8")

    def plant(kind: str) -> None:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
        monkeypatch.setenv("HARNESS_TEST_PLANT", kind)
        worker(OTHER).close()  # a worker started before this test has no plant

    yield plant
    worker(OTHER).close()  # and the next test's worker has none


# --- selection ------------------------------------------------------------------------------------------

def test_by_default_every_installed_backend_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BACKENDS, raising=False)
    assert select_backends() == select_backends([]) == select_backends(["all"]) == installed_backends()
    assert BACKEND in installed_backends() and set(installed_backends()) <= set(BACKENDS)
    # Named ones in BACKENDS order, each once; `all` among others is every installed one.
    assert select_backends(["torch", "tensorflow", "torch"]) == ("tensorflow", "torch")
    assert select_backends(["jax", "all"]) == installed_backends()


def test_an_unknown_backend_is_refused_with_a_suggestion() -> None:
    with pytest.raises(BackendSelectionError) as e:
        select_backends(["jaxx"])
    assert "--keras-backend 'jaxx': not a Keras backend (did you mean 'jax'?)" in str(e.value)
    assert "allowed: tensorflow, jax, torch or all" in str(e.value)
    with pytest.raises(BackendSelectionError, match="'tf': not a Keras backend"):
        select_backends(["tensorflow", "tf"])


def test_a_backend_whose_library_is_missing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = next(b for b in BACKENDS if b != BACKEND)
    monkeypatch.setitem(frameworks.BACKEND_LIBRARIES, missing, "no_such_library_for_this_test")
    assert missing not in installed_backends() and BACKEND in installed_backends()
    with pytest.raises(BackendSelectionError) as e:
        select_backends([missing])
    assert f"--keras-backend {missing}: {missing} is not installed in this Python" in str(e.value)
    assert f"installed: {', '.join(installed_backends())}" in str(e.value)
    assert missing not in select_backends(["all"])


def test_the_environment_sets_the_default_and_the_option_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_BACKENDS, " torch, jax ,")
    assert select_backends() == ("jax", "torch")
    assert select_backends(["tensorflow"]) == ("tensorflow",)
    monkeypatch.setenv(ENV_BACKENDS, "tensorflow,pytorch")
    with pytest.raises(BackendSelectionError, match="'pytorch': not a Keras backend"):
        select_backends()


# --- planning -------------------------------------------------------------------------------------------

def test_each_point_is_planned_on_each_selected_backend_that_its_case_allows(tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").write_text(CASES, encoding="utf-8")
    entries, _ = load_file(tmp_path / "cases.yaml")
    planned = plan_tests(entries, backends=BACKENDS)
    assert [(t.id.split("::")[1], t.backend) for t in planned] == [
        *((f"everywhere[input.seed={s}-cpu-{b}]", b) for s in (0, 1) for b in BACKENDS),
        ("some[cpu-jax]", "jax"), ("some[cpu-torch]", "torch"),
        ("across[cpu-backends]", "backends")]  # one test comparing the backends
    assert all(t.selected == BACKENDS for t in planned)
    # One backend selected: `some` (jax and torch only) has no test; the comparison is planned (and skips: below).
    planned = plan_tests(entries, backends=("tensorflow",))
    assert [t.id.split("::")[1] for t in planned] == ["everywhere[input.seed=0-cpu-tensorflow]",
                                                      "everywhere[input.seed=1-cpu-tensorflow]",
                                                      "across[cpu-backends]"]
    assert [t.id.split("::")[1] for t in plan_tests(entries, match="-jax]", backends=BACKENDS)] == [
        "everywhere[input.seed=0-cpu-jax]", "everywhere[input.seed=1-cpu-jax]", "some[cpu-jax]"]
    some = points_of(tmp_path, CASES)["some"][0]
    assert some.backends == ("jax", "torch") and backends_for(some, ("tensorflow", "torch")) == ("torch",)


def test_an_invalid_case_is_one_error_whatever_the_backends(tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").write_text("- name: broken\n  block: relu\n  input: {shape: [1, 2]}\n"
                                         "  backends: [tensorflow, jaks]\n", encoding="utf-8")
    entries, _ = load_file(tmp_path / "cases.yaml")
    (test,) = plan_tests(entries, backends=BACKENDS)
    result = test.run()
    assert result.status == Status.ERROR and result.backend == "-" and result.id.endswith("cases.yaml::broken")
    assert "field 'backends'" in result.message and "'jaks'" in result.message


# --- the workers ----------------------------------------------------------------------------------------

def test_a_test_on_another_backend_runs_in_its_worker_and_says_so(tmp_path: Path) -> None:
    point = points_of(tmp_path, CASES)["everywhere"][0]
    here = run_on_backend(point, "cpu", BACKEND)
    there = run_on_backend(point, "cpu", OTHER)
    assert (here.status, there.status) == (Status.PASSED, Status.PASSED), there.message
    assert (here.backend, there.backend) == (BACKEND, OTHER)
    assert there.id == point.test_id("cpu", OTHER) and there.id.endswith(f"-cpu-{OTHER}]")
    assert there.to_dict()["backend"] == OTHER
    assert worker(OTHER).process is not None and worker(OTHER).process.poll() is None  # kept for the run
    assert BACKEND not in backends_module._WORKERS  # this process's backend runs here


def test_a_worker_that_dies_is_an_error_naming_the_backend_and_the_signal(
        tmp_path: Path, planted: Callable[[str], None]) -> None:
    cases = points_of(tmp_path, CASES)
    planted("crash")
    crashed = run_on_backend(tanh_point(cases), "cpu", OTHER)
    assert crashed.status == Status.ERROR and crashed.backend == OTHER
    assert f"the Keras {OTHER} worker process died (killed by SIGSEGV)" in crashed.message, crashed.message
    assert crashed.id in crashed.message and crashed.id.endswith(f"across[cpu-{OTHER}]")
    # The next test starts a fresh worker (planted too: relu does not crash), and runs.
    after = run_on_backend(cases["everywhere"][0], "cpu", OTHER)
    assert after.status == Status.PASSED, after.message


def test_a_worker_that_hangs_past_the_limit_is_killed_and_the_next_test_runs(
        tmp_path: Path, planted: Callable[[str], None], monkeypatch: pytest.MonkeyPatch) -> None:
    cases = points_of(tmp_path, CASES)
    planted("hang")
    monkeypatch.setattr(backends_module, "WORKER_GRACE_S", 2.0)
    first = run_on_backend(cases["everywhere"][0], "cpu", OTHER)  # starts the worker (its start is not timed here)
    assert first.status == Status.PASSED, first.message
    pid = worker(OTHER).process.pid
    hung = run_on_backend(tanh_point(cases), "cpu", OTHER, timeout_s=0.5)
    assert hung.status == Status.ERROR and hung.backend == OTHER
    assert f"the Keras {OTHER} worker process gave no answer in" in hung.message and "was stopped" in hung.message
    assert worker(OTHER).process is None  # killed, and forgotten
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    after = run_on_backend(cases["everywhere"][1], "cpu", OTHER)
    assert after.status == Status.PASSED and worker(OTHER).process.pid != pid


# --- compare: backends ----------------------------------------------------------------------------------

def test_compare_backends_passes_when_the_backends_agree(tmp_path: Path) -> None:
    across = points_of(tmp_path, CASES)["across"][0]
    result = run_backends_comparison(across, "cpu", (BACKEND, OTHER))
    assert result.status == Status.PASSED and result.backend == "backends", result.message
    assert result.id.endswith("across[cpu-backends]")
    whats = [v.what for v in result.verdicts]
    assert f"keras[{BACKEND}] vs torch" in whats and f"keras[{OTHER}] vs keras[{BACKEND}]" in whats
    assert result.message.startswith(f"every backend agrees: Keras on {BACKEND} and {OTHER} agrees with PyTorch")
    assert set(result.placement) == {BACKEND, OTHER}


def test_compare_backends_names_the_one_backend_whose_keras_differs(
        tmp_path: Path, planted: Callable[[str], None]) -> None:
    across = points_of(tmp_path, CASES)["across"][0]
    planted("keras")  # Keras's tanh computes a sigmoid on OTHER only
    result = run_backends_comparison(across, "cpu", (BACKEND, OTHER))
    assert result.status == Status.FAILED, result.message
    assert result.message.startswith(f"Keras on {OTHER} differs from PyTorch while Keras on {BACKEND} agrees with "
                                     f"it: the difference is Keras's on {OTHER}, not the PyTorch mapping")
    failed = {v.what for v in result.verdicts if not v.passed}
    assert {f"keras[{OTHER}] vs torch", f"keras[{OTHER}] vs keras[{BACKEND}]"} <= failed
    assert not any(BACKEND in w.split(" vs ")[0] for w in failed)


def test_compare_backends_when_a_worker_dies_names_the_backend_and_the_signal(
        tmp_path: Path, planted: Callable[[str], None]) -> None:
    across = points_of(tmp_path, CASES)["across"][0]
    planted("crash")
    result = run_backends_comparison(across, "cpu", (BACKEND, OTHER))
    assert result.status == Status.ERROR
    assert f"the Keras {OTHER} worker process died (killed by SIGSEGV)" in result.message, result.message
    assert "across[cpu-backends]" in result.message


def test_compare_backends_with_one_backend_skips_saying_why(tmp_path: Path) -> None:
    across = points_of(tmp_path, CASES)["across"][0]
    result = run_backends_comparison(across, "cpu", (BACKEND,))
    assert result.status == Status.SKIPPED
    assert f"needs Keras on two backends or more; this run has {BACKEND}" in result.message


# --- expect.backends ------------------------------------------------------------------------------------

# LeakyReLU's default slope: 0.01 in PyTorch, 0.2 in Keras (cases/known_differences.yaml): the frameworks differ on
# every backend, so a case whose difference is known on one backend only must fail on the others.
KNOWN_ON = """\
- name: slope
  block: leaky_relu
  defaults: native
  input: {shape: [2, 5]}
  devices: [cpu]
  expect: {divergent: "PyTorch's default slope is 0.01, Keras's 0.2", backends: [BACKEND_NAME]}
"""


def test_a_difference_known_on_one_backend_is_divergent_there_and_fails_elsewhere(tmp_path: Path) -> None:
    other = "jax" if "jax" in installed_backends() and BACKEND != "jax" else OTHER
    (there,) = points_of(tmp_path, KNOWN_ON.replace("BACKEND_NAME", other))["slope"]
    assert there.expect_backends == (other,) and there.divergent_here(other) and not there.divergent_here(BACKEND)
    on_other = run_on_backend(there, "cpu", other)
    assert on_other.status == Status.DIVERGENT, on_other.message
    assert on_other.message.startswith(f"known difference (expect.divergent on {other}):")
    here = run_on_backend(there, "cpu", BACKEND)
    assert here.status == Status.FAILED and "expect.divergent" not in here.message, here.message
    # Named for this backend, the same case is divergent here.
    (known_here,) = points_of(tmp_path, KNOWN_ON.replace("BACKEND_NAME", BACKEND))["slope"]
    assert run_point(known_here, "cpu").status == Status.DIVERGENT
