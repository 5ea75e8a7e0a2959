"""The frameworks' native start-up banners, kept off the user's terminal.

TensorFlow's C++ libraries log to the process's file descriptor 2 while they load, before Python's logging or
TF_CPP_MIN_LOG_LEVEL can have a say: with tensorflow-cpu 2.21.0 every process that imports Keras on TensorFlow
printed absl's "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR" and an
INFO line "I0000 ... port.cc:153] oneDNN custom operations are on ..." twice (two of its shared libraries each log
it). Measured on this version: TF_CPP_MIN_LOG_LEVEL=3, GLOG_minloglevel=2, ABSL_MIN_LOG_LEVEL=2 and
TF_ENABLE_ONEDNN_OPTS=1 each leave the lines there. So the imports run with descriptor 2 captured, and what they
wrote is given back afterwards without the native INFO lines and absl's preamble: a native warning or error (W, E,
F lines) and anything else reaches the terminal as before, and all of it when the import fails.

HARNESS_FRAMEWORK_LOGS=1 (`xfw-harness --framework-logs`, `pytest --framework-logs`) keeps everything.

And `xfw-harness run --quiet` leaves out the frameworks' Python warnings (quiet_warnings), not the harness's own.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

from xfw_harness.core.errors import HarnessWarning

ENV_FRAMEWORK_LOGS = "HARNESS_FRAMEWORK_LOGS"

# absl's native INFO lines ("I1207 12:00:00.000000 1234 file.cc:153] ...", and "I0000 00:00:1796645309.656930 ..."
# before its logging is initialised: seconds since the epoch) and the preamble it prints before the first of them.
DROPPED = (re.compile(r"^I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "),
           re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
           # an E-level line that is no error (xfw_harness.core.frameworks makes it come at start-up)
           re.compile(r"^E\d{4} \S+ +\d+ util\.cc:\d+\] oneDNN supports DT_HALF only on platforms with AVX-512\."))


def wanted(line: str) -> bool:
    """Whether a line a framework wrote to descriptor 2 while loading reaches the terminal."""
    return not any(pattern.match(line) for pattern in DROPPED)


def keep_all() -> bool:
    """Whether the user asked to see the frameworks' native logs (HARNESS_FRAMEWORK_LOGS=1)."""
    return os.environ.get(ENV_FRAMEWORK_LOGS, "") not in ("", "0")


@contextlib.contextmanager
def quiet_native_banners() -> Iterator[None]:
    """Runs the block with descriptor 2 captured, then writes back what was written there but the banners (all of
    it if the block raises, or under HARNESS_FRAMEWORK_LOGS=1)."""
    if keep_all():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = text if failed else "".join(line for line in text.splitlines(keepends=True)
                                               if wanted(line.rstrip("\n")))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


@contextlib.contextmanager
def quiet_warnings(quiet: bool) -> Iterator[None]:
    """Under --quiet the frameworks' own warnings (a deprecated call that a known-difference case makes on purpose)
    are noise, in this process and in the backends' workers; the harness's own (a case likely not meant) are not.
    Restored afterwards: main() also runs inside other programs' processes (the tests)."""
    if not quiet:
        yield
        return
    before = os.environ.get("PYTHONWARNINGS")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", category=HarnessWarning)
        os.environ["PYTHONWARNINGS"] = "ignore"
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("PYTHONWARNINGS", None)
            else:
                os.environ["PYTHONWARNINGS"] = before
