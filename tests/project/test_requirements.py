"""Both install files (requirements.lock for CPU machines and CI, requirements-gpu.txt for CUDA machines) must
pin every package the harness imports: `make setup` installs the package itself with --no-deps, so a dependency
missing from the file it reads is missing from the venv (requirements-gpu.txt once lacked onnx and scipy, and
`import xfw_harness` failed on a GPU machine)."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert "==" in line, f"{path.name}: {line!r} is not pinned with =="
            pins[_name(line)] = line.split("==", 1)[1].strip()
    return pins


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCK = _pins(ROOT / "requirements.lock")
GPU = _pins(ROOT / "requirements-gpu.txt")


@pytest.mark.parametrize("dependency", PROJECT["dependencies"])
def test_every_dependency_is_pinned_in_both_install_files(dependency: str) -> None:
    name = _name(dependency)
    assert name in LOCK, f"requirements.lock does not pin {name} ({dependency} in pyproject.toml)"
    assert name in GPU, f"requirements-gpu.txt does not pin {name} ({dependency} in pyproject.toml)"


def test_each_file_pins_its_tensorflow() -> None:
    assert "tensorflow-cpu" in LOCK and "tensorflow" not in LOCK, "CI installs the CPU build of TensorFlow"
    assert "tensorflow[and-cuda]" in (ROOT / "requirements-gpu.txt").read_text(encoding="utf-8")
    assert LOCK["tensorflow-cpu"] == GPU["tensorflow"], "CPU and GPU runs should use the same TensorFlow release"


def test_packages_in_both_files_have_the_same_version() -> None:
    """A GPU run is compared with a CPU run of the same suite: the same releases on both."""
    differ = {name: (LOCK[name], GPU[name]) for name in LOCK.keys() & GPU.keys() if LOCK[name] != GPU[name]}
    assert not differ, f"requirements.lock and requirements-gpu.txt pin different versions: {differ}"


def test_tools_the_makefile_runs_are_pinned_for_gpu_machines_too() -> None:
    """`make test`, `make bench`, `make profile` and the browser test use these with either file."""
    for tool in ("pytest-xdist", "pytest-benchmark", "ruff", "playwright", "pyinstrument"):
        assert tool in LOCK and tool in GPU, f"{tool} must be pinned in both install files"
