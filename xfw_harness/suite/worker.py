"""A worker process running Keras on one backend for a run whose own process runs another (xfw_harness.suite.backends
starts it with KERAS_BACKEND set): `python -m xfw_harness.suite.worker READ_FD WRITE_FD`.

It reads (function name, arguments) requests from READ_FD and answers each with (True, value) or (False, the
error's text) on WRITE_FD, pickled (multiprocessing.connection), until the parent closes its end. The functions it
serves are FUNCTIONS; points travel pickled, their blocks by name (xfw_harness.blocks.registry).
"""

from __future__ import annotations

import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from xfw_harness.core.frameworks import versions
from xfw_harness.suite.local import final_outputs, run_test

FUNCTIONS: dict[str, Any] = {"run_test": run_test, "final_outputs": final_outputs, "versions": versions}


def serve(requests: Connection, answers: Connection) -> None:
    while True:
        try:
            name, args = requests.recv()
        except EOFError:  # the run is over
            return
        try:
            answer = (True, FUNCTIONS[name](*args))
        except Exception as e:  # noqa: BLE001 - the parent reports it as the test's error
            answer = (False, f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exception(e)[-3:]))
        answers.send(answer)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
