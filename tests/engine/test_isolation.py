"""A framework that raises, returns NaN or hangs on one test gives that test an error (or failed) verdict, and the
run carries on with the others; a worker process that dies in a parallel run is reported, not lost."""

from __future__ import annotations

import json
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness import cli
from xfw_harness.blocks import get_block
from xfw_harness.core.frameworks import BACKEND, keras, torch
from xfw_harness.core.timeout import DEFAULT_TIMEOUT_S, ENV_VAR, Deadline, TimedOut, can_interrupt, default_timeout
from xfw_harness.engine import run_point

pytest_plugins = ["pytester"]

THREE = """\
- name: first
  block: relu
  input: {shape: [1, 4]}
  devices: [cpu]
- name: victim
  block: sequential
  layers: [{block: relu}, {block: tanh}]
  input: {shape: [1, 4]}
  devices: [cpu]
- name: last
  block: sigmoid
  input: {shape: [1, 4]}
  devices: [cpu]
"""


class Hang(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while True:
            time.sleep(0.01)


class Boom(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class NaNs(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, float("nan"))


class KerasHang(keras.layers.Layer):
    def call(self, x):  # noqa: ANN001, ANN201
        while True:
            time.sleep(0.01)


def _plant_torch(monkeypatch: pytest.MonkeyPatch, module: type) -> None:
    """tanh's PyTorch side replaced by `module` (only the victim case uses tanh)."""
    monkeypatch.setattr(type(get_block("tanh")), "torch_module", lambda self, site: module())


def _run_three(case_points, timeout_s: float | None = None) -> list:  # noqa: ANN001
    return [run_point(p, "cpu", timeout_s) for p in case_points(THREE)]


def test_a_hang_in_pytorch_is_an_error_naming_the_layer_and_the_run_goes_on(case_points, monkeypatch) -> None:  # noqa: ANN001
    _plant_torch(monkeypatch, Hang)
    start = time.perf_counter()
    first, victim, last = _run_three(case_points, timeout_s=1)
    assert time.perf_counter() - start < 10
    assert (first.status, victim.status, last.status) == ("passed", "error", "passed")
    assert victim.message == "timed out after 1 s while running PyTorch's layers[1] (tanh) (in " + victim.id + ")"


def test_a_hang_in_keras_is_an_error_too(case_points, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(type(get_block("tanh")), "keras_layer", lambda self, site: KerasHang())
    first, victim, last = _run_three(case_points, timeout_s=1)
    assert (first.status, victim.status, last.status) == ("passed", "error", "passed")
    assert "timed out after 1 s while running Keras's layers[1] (tanh)" in victim.message


def test_a_framework_that_raises_is_an_error_and_the_run_goes_on(case_points, monkeypatch) -> None:  # noqa: ANN001
    _plant_torch(monkeypatch, Boom)
    first, victim, last = _run_three(case_points)
    assert (first.status, victim.status, last.status) == ("passed", "error", "passed")
    assert victim.message.startswith("RuntimeError while running PyTorch's layers[1] (tanh): CUDA error: an illegal")


def test_a_framework_that_returns_nan_fails_the_nonfinite_check(case_points, monkeypatch) -> None:  # noqa: ANN001
    _plant_torch(monkeypatch, NaNs)
    first, victim, last = _run_three(case_points)
    assert (first.status, victim.status, last.status) == ("passed", "failed", "passed")
    assert victim.verdicts[0].check == "nonfinite" and "NaN/Inf in different places: 4 of 4" in victim.message


def test_cli_timeout_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    _plant_torch(monkeypatch, Hang)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "three.yaml").write_text(THREE, encoding="utf-8")
    code = cli.main(["run", "three.yaml", "--keras-backend", BACKEND, "--timeout", "0.5", "--json", "r.json"])
    out = capsys.readouterr().out
    assert code == 1
    statuses = {r["case"]: r["status"] for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert statuses == {"first": "passed", "victim": "error", "last": "passed"}
    assert "timed out after 0.5 s while running PyTorch's layers[1] (tanh)" in out


def test_default_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_timeout() == DEFAULT_TIMEOUT_S == 120
    monkeypatch.setenv(ENV_VAR, "2.5")
    assert default_timeout() == 2.5
    monkeypatch.setenv(ENV_VAR, "0")
    assert default_timeout() == 0
    monkeypatch.setenv(ENV_VAR, "soon")
    with pytest.raises(ValueError, match="HARNESS_TIMEOUT='soon'"):
        default_timeout()


def test_the_environment_default_applies_to_run_point(case_points, monkeypatch) -> None:  # noqa: ANN001
    _plant_torch(monkeypatch, Hang)
    monkeypatch.setenv(ENV_VAR, "0.5")
    victim = _run_three(case_points)[1]
    assert victim.status == "error" and "timed out after 0.5 s" in victim.message
    monkeypatch.setenv(ENV_VAR, "soon")
    assert {r.message for r in _run_three(case_points)} == {
        "HARNESS_TIMEOUT='soon': expected a number of seconds (0: no limit)"}


def test_deadline_restores_an_outer_timer_and_handler() -> None:
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with Deadline(5):
            time.sleep(0.1)
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] < 0.95  # re-armed with what it had left
        deadline = time.monotonic() + 5
        while not fired and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fired == [1]
        with pytest.raises(TimedOut, match="timed out after 0.1 s"), Deadline(0.1):
            time.sleep(5)
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_off_the_main_thread_there_is_no_timeout_and_nothing_breaks() -> None:
    seen = []

    def work() -> None:
        seen.append(can_interrupt())
        with Deadline(0.05):
            time.sleep(0.2)  # not interrupted: signals are only delivered to the main thread
        seen.append("done")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [False, "done"]


CRASH_CONFTEST = """
import os

import xfw_harness.core.frameworks
from xfw_harness.core.frameworks import torch
from xfw_harness.blocks import get_block


class Die(torch.nn.Module):
    def forward(self, x):
        os._exit(1)  # the worker process dies, as on a segfault in a framework


type(get_block("tanh")).torch_module = lambda self, site: Die()
"""


def test_a_worker_that_dies_is_reported_and_the_others_still_run(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", cases=THREE + textwrap.dedent("""\
        - name: more
          block: relu
          input: {shape: [2, 4]}
          devices: [cpu]
          sweep: {input.seed: [0, 1, 2, 3]}
        """))
    pytester.makeconftest(CRASH_CONFTEST)
    result = pytester.runpytest_subprocess("cases.yaml", "-n", "2", "--harness-results", "r.json",
                                           "-p", "no:cacheprovider", "--keras-backend", BACKEND)
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines([f"*worker 'gw*' crashed while running 'cases.yaml::victim[[]cpu-{BACKEND}[]]'*"])
    doc = json.loads((pytester.path / "r.json").read_text())
    statuses = {r["id"]: r["status"] for r in doc["results"]}
    assert statuses.pop(f"cases.yaml::victim[cpu-{BACKEND}]") == "error"
    assert len(statuses) == 6 and set(statuses.values()) == {"passed"}
    victim = next(r for r in doc["results"] if r["case"] == "victim")
    assert "crashed" in victim["message"] and victim["device"] == "cpu" and victim["backend"] == BACKEND


HANG_CONFTEST = """
import time

from xfw_harness.core.frameworks import torch
from xfw_harness.blocks import get_block

_saved = {}


class Hang(torch.nn.Module):
    def forward(self, x):
        while True:
            time.sleep(0.01)


def pytest_runtest_setup(item):
    cls = type(get_block("tanh"))
    _saved["torch_module"] = cls.torch_module
    cls.torch_module = lambda self, site: Hang()


def pytest_runtest_teardown(item):
    type(get_block("tanh")).torch_module = _saved.pop("torch_module")
"""


def test_pytest_timeout_option(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", cases=THREE)
    pytester.makeconftest(HANG_CONFTEST)
    result = pytester.runpytest_inprocess("cases.yaml", "--harness-timeout", "0.5", "-p", "no:cacheprovider",
                                           "--keras-backend", BACKEND)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*ERROR: timed out after 0.5 s while running PyTorch's layers[[]1[]] (tanh)*"])
