"""The device layer: reduced precision off, where each framework runs, and the gpu path as far as a CPU allows.

On a machine with a CUDA device the last tests run the gpu path for real; elsewhere they are skipped with
the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from xfw_harness.core import frameworks
from xfw_harness.core.frameworks import BACKEND, gpu_unavailable_reason, keras_device, placement, tf, torch
from xfw_harness.engine import build_torch, run_point

NO_GPU = gpu_unavailable_reason()
CONV = """
- name: conv
  block: conv2d
  params: {filters: 4, kernel_size: [3, 2], strides: 2, padding: same}
  input: {shape: [2, 3, 12, 11]}
"""


def test_reduced_precision_is_off_in_both_frameworks() -> None:
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.get_float32_matmul_precision() == "highest"
    assert tf.config.experimental.tensor_float_32_execution_enabled() is False


def test_cpu_placement() -> None:
    assert placement("cpu") == {"torch": "cpu", "keras": "cpu"}
    with keras_device("cpu"):
        t = tf.constant([1.0]) * 2
    assert t.device.endswith("CPU:0")


def test_gpu_present_in_torch_only_puts_keras_on_the_cpu_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")
    monkeypatch.setattr(frameworks, "keras_has_gpu", lambda: False)
    assert gpu_unavailable_reason() is None
    assert frameworks.available_devices() == ("cpu", "gpu")
    assert placement("gpu") == {"torch": "cuda (Fake GPU)", "keras": "cpu (TensorFlow sees no GPU)"}
    with keras_device("gpu"):
        t = tf.constant([1.0]) * 2
    assert t.device.endswith("CPU:0")
    assert frameworks.torch_device("gpu").type == "cuda"


def test_gpu_absent_in_torch_is_unavailable_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    reason = gpu_unavailable_reason()
    assert reason and "sees no CUDA device" in reason and torch.__version__ in reason
    assert frameworks.available_devices() == ("cpu",)


def test_gpu_point_is_skipped_with_the_reason_without_cuda(case_points, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (point,) = case_points(CONV)
    result = run_point(point, "gpu")
    assert result.status == "skipped"
    assert "gpu:" in result.message and "sees no CUDA device" in result.message
    assert result.id.endswith(f"[gpu-{BACKEND}]")


def _child(code: str, backend: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "KERAS_BACKEND": backend},
                          capture_output=True, text=True, timeout=300)


def test_keras_backend_chooses_the_backend_and_an_unknown_one_is_refused() -> None:
    proc = _child("import xfw_harness.core.frameworks", "tensorflw")
    assert proc.returncode != 0
    assert "KERAS_BACKEND='tensorflw': the harness runs Keras on tensorflow, jax, torch" in proc.stderr
    # JAX: 64-bit types on (else float64 cases would silently run in float32), no TensorFlow imported for Keras.
    proc = _child("import xfw_harness.core.frameworks as f, jax, numpy as np; "
                  "print(f.BACKEND, f.keras.backend.backend(), f.tf is None, jax.config.jax_enable_x64, "
                  "f.keras_tensor(np.zeros(2)).dtype, f.versions()['backend'])", "jax")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["jax", "jax", "True", "True", "float64", "jax"]


def test_keras_imported_first_on_another_backend_is_refused() -> None:
    proc = _child("import os; import keras; os.environ['KERAS_BACKEND'] = 'jax'; import xfw_harness.core.frameworks",
                  "torch")
    assert proc.returncode != 0
    assert "Keras runs on 'torch' in this process, KERAS_BACKEND says 'jax'" in proc.stderr


@pytest.mark.skipif(NO_GPU is not None, reason=f"gpu: {NO_GPU}")
def test_gpu_run_matches_and_records_placement(case_points) -> None:
    (point,) = case_points(CONV)
    result = run_point(point, "gpu")
    assert result.status == "passed", result.message
    assert result.placement["torch"].startswith("cuda")


@pytest.mark.skipif(NO_GPU is not None, reason=f"gpu: {NO_GPU}")
def test_weights_are_the_same_on_every_device(case_points) -> None:
    # PyTorch initialises on the CPU from the case's seed, then moves: a gpu test compares the same weights.
    (point,) = case_points(CONV)
    cpu = [p.detach().numpy() for p in build_torch(point, "cpu")[0].parameters()]
    gpu = [p.detach().cpu().numpy() for p in build_torch(point, "gpu")[0].parameters()]
    assert all(np.array_equal(a, b) for a, b in zip(cpu, gpu))
