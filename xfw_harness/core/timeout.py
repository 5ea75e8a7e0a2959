"""A per-test time limit: a test whose framework hangs becomes an `error` result, and the run goes on.

`Deadline(seconds)` arms a SIGALRM timer (signal.setitimer); when it fires, the handler raises `TimedOut` in the
code that is running, which unwinds the test like any exception. `TimedOut` derives from BaseException, so a
framework's own `except Exception` cannot swallow it.

Limits, by construction:
- POSIX only, and only on the main thread of a process (Python runs signal handlers there): elsewhere (Windows,
  a worker thread) `Deadline` does nothing and a test has no time limit.
- Python runs a signal handler between bytecodes. A framework call that never returns to Python (a deadlock in
  C++, a kernel that runs for an hour) cannot be interrupted: the test times out when the call returns, or
  never. Against that only a process boundary helps: `pytest -n N` (pytest-xdist reports a killed worker's test
  as crashed) or the CI job's own time limit.
- A timer another tool set (pytest-timeout's signal method) is suspended while a test runs and re-armed with
  its remaining time afterwards.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

DEFAULT_TIMEOUT_S = 120.0
ENV_VAR = "HARNESS_TIMEOUT"


class TimedOut(BaseException):  # noqa: N818 - reads as what happened: `except TimedOut`
    """Raised inside a test that ran past its time limit; the message says where it was."""


def default_timeout() -> float:
    """The per-test limit in seconds: $HARNESS_TIMEOUT when set (0 or less: none), else DEFAULT_TIMEOUT_S."""
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{ENV_VAR}={text!r}: expected a number of seconds (0: no limit)") from None
    return value if math.isfinite(value) else 0.0


def can_interrupt() -> bool:
    """Whether a Deadline can interrupt code here: a POSIX process's main thread."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class Deadline:
    """`with Deadline(seconds, where):` raises TimedOut in the block once `seconds` have passed.

    `where(frame)` names what the interrupted code was doing (e.g. "running PyTorch's conv2d"), from the frame
    the signal landed in. seconds <= 0 or None: no limit.
    """

    def __init__(self, seconds: float | None, where: Callable[[FrameType | None], str] | None = None) -> None:
        self.seconds = seconds if seconds and seconds > 0 else 0.0
        self.where = where
        self.active = False  # the timer is armed and the block has not left
        self._old_handler: object = None
        self._old_timer = (0.0, 0.0)
        self._start = 0.0

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        if not self.active:  # the block has just left: nothing to interrupt
            return
        self.active = False
        doing = ""
        if self.where is not None:
            try:
                doing = self.where(frame)
            except Exception:  # noqa: BLE001 - naming the stage is a nicety; the timeout stands
                doing = ""
        raise TimedOut(f"timed out after {self.seconds:g} s" + (f" while {doing}" if doing else ""))

    def __enter__(self) -> Deadline:
        if not self.seconds or not can_interrupt():
            return self
        self._start = time.monotonic()
        self._old_handler = signal.signal(signal.SIGALRM, self._fire)
        self.active = True
        self._old_timer = signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._old_handler is None:
            return
        self.active = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._old_handler)  # type: ignore[arg-type]
        self._old_handler = None
        remaining, interval = self._old_timer
        if remaining > 0:  # someone else's timer, suspended meanwhile: re-armed with what it had left
            left = remaining - (time.monotonic() - self._start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), interval)
