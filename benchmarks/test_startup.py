"""Start-up: what the pytest plugin costs a run without case files (goal: within noise of no plugin, issue 17), and
how long the text commands take to answer. Each is a fresh process, timed wall-clock, several rounds (the median
is what counts: a 2-core machine's first run pays for cold files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLAIN = "def test_one():\n    assert 1 + 1 == 2\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plain_project")
    (folder / "test_plain.py").write_text(PLAIN)
    return folder


def run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("plugin", ["with_plugin", "without_plugin"])
def test_plain_pytest_run(benchmark, project: Path, plugin: str) -> None:  # noqa: ANN001
    """A one-test pytest run in a project without case files, with the harness's plugin and with -p no:xfw_harness."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(["-p", "no:xfw_harness"] *
                                                                             (plugin == "without_plugin"))]
    benchmark.pedantic(run, args=(cmd, project), rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(kind="startup", what=f"pytest, one plain test, {plugin.replace('_', ' ')}")


@pytest.mark.parametrize("command", [["--help"], ["list"], ["new", "conv2d"], ["check", "cases/conv2d.yaml"],
                                     ["check", "cases/"]], ids=lambda c: " ".join(c))
def test_text_command(benchmark, command: list[str]) -> None:  # noqa: ANN001
    benchmark.pedantic(run, args=([sys.executable, "-m", "xfw_harness", *command], ROOT), rounds=3, iterations=1,
                       warmup_rounds=1)
    benchmark.extra_info.update(kind="startup", what="xfw-harness " + " ".join(command))
