"""xfw_harness.core.native_logs: TensorFlow's native start-up banners are dropped, anything else a framework writes to
descriptor 2 while loading still reaches the terminal, and everything does when the import fails or the user asks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xfw_harness.core.native_logs import wanted

PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = ("I0000 00:00:1796645309.656930   17006 port.cc:153] oneDNN custom operations are on. You may see slightly "
          "different numerical results due to floating-point round-off errors from different computation orders.")
INFO = "I1207 12:00:01.123456   4242 cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use AVX512F"
NATIVE_WARNING = "W1207 12:00:01.123456   4242 gpu_device.cc:2344] Cannot dlopen some GPU libraries."
DT_HALF = ("E0000 00:00:1796650008.259894    8224 util.cc:131] oneDNN supports DT_HALF only on platforms with AVX-512. "
           "Falling back to the default Eigen-based implementation if present.")
NATIVE_ERROR = "E0000 00:00:1796645309.656930   17006 cuda_dnn.cc:8579] Unable to register cuDNN factory"


@pytest.mark.parametrize("line", [PREAMBLE, ONEDNN, INFO, DT_HALF])
def test_the_banners_are_dropped(line: str) -> None:
    assert not wanted(line)


@pytest.mark.parametrize("line", [NATIVE_WARNING, NATIVE_ERROR, "Segmentation fault in libfoo", "",
                                  "I am a line a user printed", "Info: I0000 in the middle"])
def test_warnings_errors_and_anything_else_are_kept(line: str) -> None:
    assert wanted(line)


SCRIPT = f"""\
import os, sys
from xfw_harness.core.native_logs import quiet_native_banners
with quiet_native_banners():
    os.write(2, {(PREAMBLE + chr(10) + ONEDNN + chr(10) + NATIVE_WARNING + chr(10)).encode()!r})
    if sys.argv[1] == "fail":
        raise ImportError("planted")
print("done")
"""


def run(mode: str, logs: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", **({"HARNESS_FRAMEWORK_LOGS": logs} if logs else {})}
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, env=env, timeout=60)


def test_what_the_block_wrote_comes_back_without_the_banners() -> None:
    done = run("ok")
    assert done.stdout == "done\n"
    assert done.stderr == NATIVE_WARNING + "\n"


def test_a_failing_import_shows_everything_it_wrote() -> None:
    failed = run("fail")
    assert PREAMBLE in failed.stderr and ONEDNN in failed.stderr and NATIVE_WARNING in failed.stderr
    assert "ImportError: planted" in failed.stderr


def test_harness_framework_logs_keeps_everything() -> None:
    kept = run("ok", logs="1")
    assert kept.stderr.splitlines() == [PREAMBLE, ONEDNN, NATIVE_WARNING]


def test_a_float16_run_prints_no_native_line(tmp_path) -> None:  # noqa: ANN001
    """TensorFlow's one-time DT_HALF line comes at start-up, filtered (xfw_harness.core.frameworks), not at the first
    float16 case."""
    (tmp_path / "half.yaml").write_text("- name: half\n  block: conv2d\n  params: {filters: 2, kernel_size: 3}\n"
                                        "  input: {shape: [1, 2, 6, 6], dtype: float16}\n  devices: [cpu]\n")
    done = subprocess.run([sys.executable, "-m", "xfw_harness", "run", "half.yaml", "--keras-backend", "tensorflow"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DT_HALF" not in done.stderr and "I0000" not in done.stderr, done.stderr
