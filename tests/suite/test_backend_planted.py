"""A Keras bug on one backend only is caught, and blamed on that backend, not on the PyTorch mapping.

Two mistakes are planted into Keras itself, each on one backend, by a `sitecustomize` module on the PYTHONPATH of a
`xfw-harness run` (the run's worker processes inherit it): Keras's torch-backend transposed convolution returns its
output shifted down by one pixel (what keras PR #22876 fixed: torch-backend Conv2DTranspose with padding='same' and
strides=2 was shifted by one pixel, the shapes right), and Keras's BatchNormalization on JAX takes its momentum the
other way round (1 - momentum: a running average that keeps 0.1 of the old statistics instead of 0.9). The run
covers all three backends: each mistake must fail its own backend's tests only (the same cases passing on the
other two are the control, from the same run), and the `compare: backends` test must say whose difference it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from xfw_harness.core.frameworks import installed_backends

pytestmark = pytest.mark.skipif(len(installed_backends()) < 3, reason="needs Keras's three backends installed "
                                "(make setup installs them)")

PLANTS = '''
import os

backend = os.environ.get("KERAS_BACKEND", "tensorflow")
if backend == "torch":
    import keras
    import torch
    from keras.src.backend.torch import nn

    _conv_transpose = nn.conv_transpose

    def _shifted(*args, **kwargs):  # one pixel down: row i gets row i - 1 (channels-last: axis 1 is the height)
        return torch.roll(_conv_transpose(*args, **kwargs), 1, dims=1)

    nn.conv_transpose = _shifted
elif backend == "jax":
    import keras

    _init = keras.layers.BatchNormalization.__init__

    def _momentum_the_other_way(self, *args, momentum=0.99, **kwargs):
        _init(self, *args, momentum=1.0 - momentum, **kwargs)

    keras.layers.BatchNormalization.__init__ = _momentum_the_other_way
'''

CASES = """
- name: conv_transpose_same
  block: conv2d_transpose
  params: {filters: 4, kernel_size: 3, strides: 2, padding: same}
  input: {shape: [2, 3, 7, 6]}
- name: conv_transpose_same_backends
  block: conv2d_transpose
  compare: backends
  params: {filters: 4, kernel_size: 3, strides: 2, padding: same}
  input: {shape: [2, 3, 7, 6]}
- name: batch_norm_steps
  block: batch_norm2d
  params: {momentum: 0.1}
  mode: train
  steps: 3
  input: {shape: [4, 5, 6, 3]}
"""


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("planted")
    (folder / "site").mkdir()
    (folder / "site" / "sitecustomize.py").write_text(textwrap.dedent(PLANTS), encoding="utf-8")
    (folder / "cases.yaml").write_text(CASES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "HARNESS_KERAS_BACKENDS")}
    env["PYTHONPATH"] = os.pathsep.join([str(folder / "site"), *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, "-m", "xfw_harness", "run", "cases.yaml", "--keras-backend", "all",
                           "--quiet", "--json", "results.json"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=900)
    assert (folder / "results.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))["results"]
    return {r["id"].split("::", 1)[1]: r for r in results}


def test_a_one_pixel_shift_in_one_backends_transposed_conv_fails_that_backend_only(planted_run: dict) -> None:
    statuses = {b: planted_run[f"conv_transpose_same[cpu-{b}]"]["status"] for b in ("tensorflow", "jax", "torch")}
    assert statuses == {"tensorflow": "passed", "jax": "passed", "torch": "failed"}, statuses
    assert "values differ" in planted_run["conv_transpose_same[cpu-torch]"]["message"]


def test_compare_backends_names_the_backend_whose_keras_differs(planted_run: dict) -> None:
    result = planted_run["conv_transpose_same_backends[cpu-backends]"]
    assert result["status"] == "failed"
    first = result["message"].splitlines()[0]
    assert first.startswith("Keras on torch differs from PyTorch while Keras on tensorflow and jax agrees with it: "
                            "the difference is Keras's on torch, not the PyTorch mapping"), first
    verdicts = {v["what"]: v["passed"] for v in result["verdicts"]}
    assert verdicts["keras[torch] vs torch"] is False and verdicts["keras[torch] vs keras[tensorflow]"] is False
    assert verdicts["keras[jax] vs torch"] and verdicts["keras[jax] vs keras[tensorflow]"]
    assert verdicts["keras[tensorflow] vs torch"]
    assert verdicts.get("keras[torch] vs reference") is False and verdicts.get("torch vs reference") is True


def test_a_batch_norm_momentum_taken_the_other_way_on_one_backend_fails_that_backend_only(planted_run: dict) -> None:
    statuses = {b: planted_run[f"batch_norm_steps[cpu-{b}]"]["status"] for b in ("tensorflow", "jax", "torch")}
    assert statuses == {"tensorflow": "passed", "jax": "failed", "torch": "passed"}, statuses
    failed = [v for v in planted_run["batch_norm_steps[cpu-jax]"]["verdicts"] if not v["passed"]]
    assert failed and all(v["kind"] == "statistics" for v in failed), failed
    assert any("running_mean" in v["what"] or "moving_mean" in v["what"] for v in failed), [v["what"] for v in failed]
