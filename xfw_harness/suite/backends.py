"""Keras's backends as an axis of a run: every case runs PyTorch against Keras on each selected backend
(tensorflow, jax, torch), and `compare: backends` runs Keras on each against the others.

Keras fixes its backend when it is first imported, so one process runs one backend. This process runs its own
(KERAS_BACKEND, tensorflow by default) in place; each other backend gets one worker process (xfw_harness.suite.worker,
started on its first test with KERAS_BACKEND set, kept for the run, like a pytest-xdist worker), which runs the
test and sends back its `Result`. A worker that dies (a framework's crash) makes that test an error naming the
signal, and the next test starts a fresh worker; a worker that does not answer within the test's time limit plus
WORKER_GRACE_S is killed likewise.

Running side by side: a run that knows its tests before it starts (xfw-harness run; pytest without pytest-xdist)
`prefetch`es each other backend's tests: a thread per backend feeds them, in the run's order, to a worker of the
prefetch's own (started from the environment as it was then) while this process runs its own tests, and each
test's turn takes its result from there. The backends then run at the same time, each in its process (the wall
time is the slowest backend's, not the sum), and results still come in the run's order. Those workers run with
$HARNESS_THREADS set to the cores shared out between the backends' processes.

Selecting: `select_backends` reads `--keras-backend` (repeatable; `all`) and $HARNESS_KERAS_BACKENDS
(comma-separated); by default every installed backend (xfw_harness.core.frameworks.installed_backends).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from xfw_harness.cases import Point
from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import BACKEND, chosen_backends, installed_backends
from xfw_harness.core.timeout import default_timeout
from xfw_harness.core.verdicts import Status, Verdict, VerdictKind
from xfw_harness.engine import Result, build_torch, judge, point_result
from xfw_harness.engine.backends import attribution, backend_verdicts
from xfw_harness.engine.plants import planting
from xfw_harness.engine.third_opinion import copied_weights, reference_outputs
from xfw_harness.suite.local import final_outputs, run_test

COMPARED = "backends"  # the backend part of a `compare: backends` test's id
WORKER_GRACE_S = 60.0  # past the test's own limit (which the worker enforces itself) before the worker is killed


def select_backends(names: Iterable[str] | None = None) -> tuple[str, ...]:
    """The backends a run covers, in BACKENDS order: `names` (`all`: every installed one), else
    $HARNESS_KERAS_BACKENDS, else every installed backend (xfw_harness.core.frameworks.chosen_backends)."""
    return chosen_backends(names)


def backends_for(point: Point, selected: tuple[str, ...]) -> tuple[str, ...]:
    """The backends a point's tests run on: the selected ones its case allows (`backends:`); a `compare: backends`
    point is one test whose backend part is `backends`."""
    if point.compare_with == COMPARED:
        return (COMPARED,)
    return tuple(b for b in selected if point.backends is None or b in point.backends)


class WorkerDied(RuntimeError):
    """A backend's worker process died or stopped answering while running a test."""


class BackendWorker:
    """One process running Keras on `backend` (module doc)."""

    def __init__(self, backend: str, env: dict[str, str] | None = None, threads: str | None = None) -> None:
        self.backend = backend
        self.env = env  # the environment its process starts with (None: this process's at the time)
        self.threads = threads  # $HARNESS_THREADS for its process, unless the environment sets it
        self.process: subprocess.Popen | None = None
        self.requests: Connection | None = None
        self.answers: Connection | None = None
        self.lock = threading.Lock()  # one request at a time

    def _start(self) -> None:
        ours_read, theirs_write = os.pipe()
        theirs_read, ours_write = os.pipe()
        env = {**(os.environ if self.env is None else self.env), "KERAS_BACKEND": self.backend}
        env.pop("PYTEST_XDIST_WORKER_COUNT", None)  # its thread cap is for pytest-xdist's own workers
        if self.threads is not None:
            env.setdefault("HARNESS_THREADS", self.threads)
        self.process = subprocess.Popen([sys.executable, "-m", "xfw_harness.suite.worker", str(theirs_read),
                                         str(theirs_write)], pass_fds=(theirs_read, theirs_write), env=env,
                                        stdin=subprocess.DEVNULL)
        os.close(theirs_read)
        os.close(theirs_write)
        self.requests = Connection(ours_write, readable=False)
        self.answers = Connection(ours_read, writable=False)

    def call(self, function: str, *args: Any, timeout_s: float) -> Any:
        """`function(*args)` in the worker (xfw_harness.suite.worker.FUNCTIONS); WorkerDied when it dies or does not
        answer within timeout_s (0: no limit), RuntimeError with the worker's message when the function raised."""
        with self.lock:
            if _STOPPING.is_set():
                raise WorkerDied(f"the run is over: the Keras {self.backend} worker was stopped")
            return self._call(function, args, timeout_s)

    def _call(self, function: str, args: tuple, timeout_s: float) -> Any:
        if self.process is None or self.process.poll() is not None:
            self._start()
        try:
            self.requests.send((function, args))
            if timeout_s and not self.answers.poll(timeout_s):
                self.close()
                raise WorkerDied(f"the Keras {self.backend} worker process gave no answer in {timeout_s:.0f} s and "
                                 "was stopped")
            ok, value = self.answers.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self.process.wait()
            self.close()
            raise WorkerDied(f"the Keras {self.backend} worker process died ({_exit_text(code)})") from None
        if not ok:
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        for end in (self.requests, self.answers):
            if end is not None:
                with contextlib.suppress(OSError):
                    end.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = self.requests = self.answers = None


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


_WORKERS: dict[str, BackendWorker] = {}  # the run's own turns: a test run in place of prefetching, compare: backends
_PREFETCHING: list[BackendWorker] = []  # each prefetch's workers, its own (module doc)
_PREFETCHED: dict[str, Future] = {}  # test id -> its result, coming from a backend's prefetching thread
_STOPPING = threading.Event()


def worker(backend: str) -> BackendWorker:
    if backend not in _WORKERS:
        _WORKERS[backend] = BackendWorker(backend)
    return _WORKERS[backend]


@atexit.register
def close_workers() -> None:
    _STOPPING.set()
    for w in [*_WORKERS.values(), *_PREFETCHING]:
        w.close()


def prefetch(tests: Iterable[tuple[Point, str, str]], details: str = "failed", timeout_s: float | None = None) -> None:
    """Start running `tests` ((point, device, backend), in the run's order) of the backends other than this
    process's in their workers, a thread per backend (module doc); `run_on_backend` then takes each one's result."""
    by_backend: dict[str, list[tuple[Point, str, Future]]] = {}
    for point, device, backend in tests:
        if backend in (BACKEND, COMPARED):
            continue
        future: Future = Future()
        _PREFETCHED[point.test_id(device, backend)] = future
        by_backend.setdefault(backend, []).append((point, device, future))
    if not by_backend:
        return
    share = str(max(1, (os.cpu_count() or 1) // (len(by_backend) + 1)))
    limit = _limit(timeout_s)
    for backend, queue in by_backend.items():
        # Its own worker, started from the environment as it is now: what the run does meanwhile (a test of the
        # harness itself planting a mistake into a backend's next worker, closing one) cannot reach it.
        feeder = BackendWorker(backend, env=dict(os.environ), threads=share)
        _PREFETCHING.append(feeder)
        threading.Thread(target=_feed, args=(feeder, queue, details, timeout_s, limit), daemon=True,
                         name=f"harness-{backend}").start()


def _feed(feeder: BackendWorker, queue: list[tuple[Point, str, Future]], details: str, timeout_s: float | None,
          limit: float) -> None:
    backend = feeder.backend
    for point, device, future in queue:
        if _STOPPING.is_set():
            future.set_result(point_result(point, device, backend, message="the run stopped before this test ran"))
            continue
        try:
            future.set_result(feeder.call("run_test", point, device, details, timeout_s, timeout_s=limit))
        except (WorkerDied, RuntimeError) as e:
            future.set_result(point_result(point, device, backend,
                                           message=f"{e} (in {point.test_id(device, backend)})"))


def _limit(timeout_s: float | None) -> float:
    try:
        limit = default_timeout() if timeout_s is None else timeout_s
    except ValueError:
        limit = 0.0
    return limit + WORKER_GRACE_S if limit else 0.0


def run_on_backend(point: Point, device: str, backend: str, details: str = "failed",
                   timeout_s: float | None = None) -> Result:
    """One test of `point` on `device` with Keras on `backend`: here, or in that backend's worker."""
    if backend == BACKEND:
        return run_test(point, device, details, timeout_s)
    if (future := _PREFETCHED.pop(point.test_id(device, backend), None)) is not None:
        return future.result()
    try:
        return worker(backend).call("run_test", point, device, details, timeout_s, timeout_s=_limit(timeout_s))
    except (WorkerDied, RuntimeError) as e:
        return point_result(point, device, backend, message=f"{e} (in {point.test_id(device, backend)})")


def _final_outputs(point: Point, device: str, backend: str, timeout_s: float | None
                   ) -> tuple[Result, np.ndarray | None, np.ndarray | None]:
    if backend == BACKEND:
        return final_outputs(point, device, timeout_s)
    return worker(backend).call("final_outputs", point, device, timeout_s, timeout_s=_limit(timeout_s))


def _reference(point: Point, x: np.ndarray, device: str) -> np.ndarray | None:
    try:
        return reference_outputs(point, x, copied_weights(point, build_torch(point, "cpu")))[-1]
    except Exception:  # noqa: BLE001 - no reference here (a block without one, dropout): the backends still compare
        return None


def run_backends_comparison(point: Point, device: str, selected: tuple[str, ...],
                            timeout_s: float | None = None) -> Result:
    """A `compare: backends` test: Keras on each selected backend the case allows, from the same weights, against
    PyTorch, the first backend and the float64 reference (xfw_harness.engine.backends)."""
    result = point_result(point, device, COMPARED)
    backends = [b for b in selected if point.backends is None or b in point.backends]
    if len(backends) < 2:
        result.status = Status.SKIPPED
        result.message = (f"compare: backends needs Keras on two backends or more; this run has "
                          f"{', '.join(backends) or 'none'} (--keras-backend; installed: "
                          f"{', '.join(installed_backends())})")
        return result
    single = dataclasses.replace(point, compare_with="frameworks")
    # A canary's plant names a comparison of backends: each backend's own run is a plain one.
    plain = dataclasses.replace(single, expect_fails=None, expect_plant=None)
    keras_outs: dict[str, np.ndarray] = {}
    torch_out = None
    for backend in backends:
        try:
            run, torch_final, keras_final = _final_outputs(plain, device, backend, timeout_s)
        except (WorkerDied, RuntimeError) as e:
            result.message = f"{e} (in {point.test_id(device, COMPARED)})"
            return result
        if run.status == Status.SKIPPED:
            result.status, result.message = Status.SKIPPED, f"on {backend}: {run.message}"
            return result
        if keras_final is None:
            result.message = f"Keras on {backend} could not run it: {run.message}"
            return result
        keras_outs[backend] = keras_final
        torch_out = torch_final if torch_out is None else torch_out
        result.placement[backend] = run.placement.get("keras", "")
    x = point.input.make()
    result.shapes = {"input": list(x.shape), "torch": list(torch_out.shape),
                     **{f"keras[{b}]": list(out.shape) for b, out in keras_outs.items()}}
    reference = _reference(single, x, device)
    try:
        with planting(point):
            result.verdicts = backend_verdicts(point, torch_out, keras_outs, reference)
    except CaseError as e:  # a plant that names a side or an element this comparison does not have
        result.message = str(e.located(file=point.file, case=point.case))
        return result
    if reference is None:
        result.verdicts.append(Verdict("reference", True, "unavailable", "no float64 reference for this point",
                                       kind=VerdictKind.REFERENCE))
    status, message = judge(single, result.verdicts)
    result.status, result.message = status, "\n".join([attribution(result.verdicts, backends), message])
    return result
