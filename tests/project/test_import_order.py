"""The harness's frameworks module must leave a process in which a user's model can still import torchvision.

With a CUDA build of torch (torch 2.14.1 with triton 3.8.0, beside tensorflow-cpu 2.21.0: requirements-zoo.txt),
loading triton after TensorFlow kills the process with SIGSEGV and no message (`import tensorflow; import triton`
exits 139; torchvision and torch._dynamo import triton), so xfw_harness/core/frameworks.py imports triton first. Only a
fresh process shows it: by the time these tests run, pytest has long imported both frameworks in its own.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None,
    reason="triton is not installed (CPU builds of torch, as in CI, have none): the crash that the import order "
           "avoids needs it; `make zoo` builds .venv-zoo, which has it")


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@needs_triton
def test_a_model_can_import_torchvision_after_the_harness() -> None:
    # torchvision where it is installed (what a user's model imports), triton itself otherwise.
    user_import = "torchvision" if importlib.util.find_spec("torchvision") is not None else "triton"
    child = run_child(f"import xfw_harness.core.frameworks\nimport {user_import}")
    assert child.returncode == 0, (
        f"`import xfw_harness.core.frameworks; import {user_import}` exited {child.returncode} (139 or -11: SIGSEGV, "
        f"triton loaded after TensorFlow; see xfw_harness/core/frameworks.py):\n{child.stderr[-3000:]}")


@needs_triton
def test_the_harness_after_tensorflow_warns_instead_of_crashing() -> None:
    # A script that imports keras first (as a ported model's printed load lines do): loading triton then is what
    # crashes, so the frameworks module must leave it alone and say why a later torchvision would die.
    child = run_child("import keras\nimport xfw_harness.core.frameworks")
    assert child.returncode == 0, (
        f"`import keras; import xfw_harness.core.frameworks` exited {child.returncode}:\n{child.stderr[-3000:]}")
    assert "RuntimeWarning: TensorFlow was imported before xfw_harness.core.frameworks" in child.stderr
