"""Each other Keras backend runs in a worker process, its tests prefetched side by side with this process's
(xfw_harness.suite.backends): a worker that crashes makes that one test an error naming the backend and the signal, and
the tests after it run in a fresh worker; results keep the run's order whatever order the backends finish in.

The crash is planted into Keras on JAX by a `sitecustomize` module on the run's PYTHONPATH (the worker inherits it):
keras.layers.ReLU kills its process with SIGSEGV, as a framework's native crash would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from xfw_harness.core.frameworks import installed_backends

pytestmark = pytest.mark.skipif("jax" not in installed_backends(), reason="needs Keras's JAX backend (make setup)")

CRASH = '''
import os
import signal

if os.environ.get("KERAS_BACKEND") == "jax":
    import keras

    def _crash(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGSEGV)

    keras.layers.ReLU.call = _crash
'''

CASES = """
- name: before
  block: conv2d
  params: {filters: 3, kernel_size: 3}
  input: {shape: [1, 2, 6, 6]}
- name: crashes_on_jax
  block: relu
  input: {shape: [1, 2, 4, 4]}
- name: after
  block: dense
  params: {units: 3}
  input: {shape: [2, 5]}
"""


@pytest.fixture(scope="module")
def crashed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], str]:
    folder = tmp_path_factory.mktemp("crash")
    (folder / "site").mkdir()
    (folder / "site" / "sitecustomize.py").write_text(textwrap.dedent(CRASH), encoding="utf-8")
    (folder / "cases.yaml").write_text(CASES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "HARNESS_KERAS_BACKENDS")}
    env["PYTHONPATH"] = os.pathsep.join([str(folder / "site"), *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, "-m", "xfw_harness", "run", "cases.yaml", "--keras-backend", "tensorflow",
                           "--keras-backend", "jax", "--json", "results.json"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))["results"]
    return results, proc.stdout


def test_a_crashing_worker_fails_that_test_only_and_names_backend_and_signal(crashed_run: tuple) -> None:
    results, _ = crashed_run
    by_id = {r["id"].split("::", 1)[1]: r for r in results}
    crashed = by_id["crashes_on_jax[cpu-jax]"]
    assert crashed["status"] == "error"
    assert "the Keras jax worker process died (killed by SIGSEGV)" in crashed["message"], crashed["message"]
    assert "crashes_on_jax[cpu-jax]" in crashed["message"]
    others = {k: r["status"] for k, r in by_id.items() if k != "crashes_on_jax[cpu-jax]"}
    # Before it, the same worker; after it, a fresh one; TensorFlow's own run in this process is untouched.
    assert others == {"before[cpu-tensorflow]": "passed", "before[cpu-jax]": "passed",
                      "crashes_on_jax[cpu-tensorflow]": "passed", "after[cpu-tensorflow]": "passed",
                      "after[cpu-jax]": "passed"}, others


def test_results_come_in_the_runs_order(crashed_run: tuple) -> None:
    results, stdout = crashed_run
    planned = [f"{case}[cpu-{backend}]" for case in ("before", "crashes_on_jax", "after")
               for backend in ("tensorflow", "jax")]
    printed = [line.split("::", 1)[1].split()[0] for line in stdout.splitlines() if "cases.yaml::" in line
               and line.split()[0] in ("PASS", "FAIL", "ERROR")]
    assert printed == planned
    assert sorted(r["id"].split("::", 1)[1] for r in results) == sorted(planned)
