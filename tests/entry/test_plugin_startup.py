"""The plugin in a user's project: installed, it is active in every pytest run of the environment, so a run without
case files must not load the frameworks (issue 17: a one-line test took 14.5 s instead of 1.95 s), and case files
are found where pytest finds tests. Each run is a fresh `python -m pytest` process in a project folder of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "keras", "tensorflow", "jax", "onnx", "matplotlib", "scipy")
PLAIN_TEST = f"""\
import sys


def test_nothing_heavy_was_imported(pytestconfig):
    assert pytestconfig.pluginmanager.hasplugin("xfw_harness")  # the plugin is active, not left out
    loaded = [name for name in {HEAVY!r} if name in sys.modules]
    assert loaded == [], f"the harness plugin loaded {{loaded}} in a run without case files"
"""
CASE = """\
- name: tiny_relu
  block: relu
  input: {shape: [1, 2, 3, 3]}
  devices: [cpu]
"""


def pytest_in(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=project,
                          capture_output=True, text=True, timeout=600)


def test_a_run_without_case_files_imports_no_framework(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_plain.py").write_text(PLAIN_TEST)
    run = pytest_in(tmp_path, "-q", "tests")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "harness: torch" not in run.stdout  # the frameworks' header comes with case tests only


def test_the_startup_check_catches_a_plugin_that_imports_a_framework(tmp_path: Path) -> None:
    """The check above fails when something at start-up loads a framework (planted: a conftest importing torch)."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_plain.py").write_text(PLAIN_TEST)
    (tmp_path / "conftest.py").write_text("import torch  # noqa: F401\n")
    run = pytest_in(tmp_path, "-q", "tests")
    assert run.returncode == 1 and "the harness plugin loaded ['torch']" in run.stdout, run.stdout


def test_case_files_named_test_star_yaml_are_collected_anywhere_others_are_not(tmp_path: Path) -> None:
    (tmp_path / "tests" / "layers").mkdir(parents=True)
    (tmp_path / "tests" / "layers" / "test_relu.yaml").write_text(CASE)
    (tmp_path / "tests" / "layers" / "settings.yaml").write_text("not: a case file\n")  # a user's own YAML
    (tmp_path / "tests" / "test_plain.py").write_text("def test_plain():\n    pass\n")
    run = pytest_in(tmp_path, "--collect-only", "-q", "--keras-backend", "tensorflow")
    ids = [line for line in run.stdout.splitlines() if "::" in line]
    assert ids == ["tests/layers/test_relu.yaml::tiny_relu[cpu-tensorflow]", "tests/test_plain.py::test_plain"], \
        run.stdout + run.stderr


def test_the_ini_option_sets_the_patterns_and_a_case_run_prints_the_header(tmp_path: Path) -> None:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "relu_cases.yml").write_text(CASE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nharness_case_files = *_cases.yml\n")
    run = pytest_in(tmp_path, "--keras-backend", "tensorflow", "checks")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "harness: Keras backends tensorflow (--keras-backend)" in run.stdout


def test_a_bad_keras_backend_is_a_usage_error_without_case_files(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    run = pytest_in(tmp_path, "--keras-backend", "jaxx")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--keras-backend 'jaxx': not a Keras backend (did you mean 'jax'?)" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize("framework_logs", [False, True])
def test_the_frameworks_start_up_banners_are_silenced_unless_asked_for(tmp_path: Path, framework_logs: bool) -> None:
    (tmp_path / "test_relu.yaml").write_text(CASE)
    # -s: pytest's own capture would hide them either way (it shows what collection wrote only on an error).
    run = pytest_in(tmp_path, "-q", "-s", "--keras-backend", "tensorflow", *(["--framework-logs"] * framework_logs))
    assert run.returncode == 0, run.stdout + run.stderr
    banner = "All log messages before absl::InitializeLog() is called are written to STDERR"
    # tensorflow-cpu 2.21.0 prints the banner on import; with --framework-logs it comes through.
    assert (banner in run.stderr) == framework_logs, run.stderr


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which `modules` are not installed, as far as Python can tell: a sitecustomize sets
    sys.modules[name] = None, which makes `import name` raise ModuleNotFoundError and find_spec(name) None."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules))
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "HARNESS_KERAS_BACKENDS")}
    return {**env, "PYTHONPATH": str(site)}


def test_without_tensorflow_keras_runs_on_another_installed_backend(tmp_path: Path) -> None:
    (tmp_path / "test_relu.yaml").write_text(CASE)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env=without(tmp_path, "tensorflow", "jax", "jaxlib"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "this process on torch" in run.stdout and "1 passed" in run.stdout


def test_a_backend_asked_for_but_missing_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    (tmp_path / "test_relu.yaml").write_text(CASE)
    env = {**without(tmp_path, "tensorflow"), "KERAS_BACKEND": "tensorflow"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode != 0
    assert ("Keras on its tensorflow backend cannot be imported in this Python" in run.stdout
            and "pip install 'xfw-harness[tensorflow]'" in run.stdout), run.stdout
    assert "Traceback" not in run.stdout + run.stderr


REPORT_HEAVY = f"""\
import sys


def pytest_unconfigure(config):
    print("HEAVY", [name for name in {HEAVY!r} if name in sys.modules])
"""


def test_block_markers_are_listed_and_accepted_without_case_files_or_frameworks(tmp_path: Path) -> None:
    """`pytest --markers` lists one marker per block and --strict-markers accepts `@pytest.mark.conv2d` in a run
    with no case file (before: only after a case file was collected), and neither loads a framework."""
    (tmp_path / "conftest.py").write_text(REPORT_HEAVY)
    run = pytest_in(tmp_path, "--markers")
    assert "@pytest.mark.conv2d: harness cases that use the conv2d block (" in run.stdout, run.stdout
    assert "HEAVY []" in run.stdout, run.stdout
    (tmp_path / "test_marked.py").write_text("import pytest\n\n\n@pytest.mark.conv2d\ndef test_marked():\n    pass\n")
    run = pytest_in(tmp_path, "-q", "-s", "--strict-markers")
    assert run.returncode == 0 and "1 passed" in run.stdout and "HEAVY []" in run.stdout, run.stdout + run.stderr
    assert pytest_in(tmp_path, "-q", "--strict-markers", "-m", "conv2d").returncode == 0
    # The checks themselves still work: an unknown marker in -m, and on a test.
    assert pytest_in(tmp_path, "-q", "--strict-markers", "-m", "conv2dd").returncode == pytest.ExitCode.USAGE_ERROR
    (tmp_path / "test_marked.py").write_text("import pytest\n\n\n@pytest.mark.conv2dd\ndef test_marked():\n    pass\n")
    run = pytest_in(tmp_path, "-q", "--strict-markers")
    assert run.returncode != 0 and "'conv2dd' not found in `markers`" in run.stdout, run.stdout


def test_the_header_is_printed_under_xdist_too(tmp_path: Path) -> None:
    """pytest-xdist's controller collects nothing itself: the header comes once, from the workers' collections."""
    (tmp_path / "test_relu.yaml").write_text(CASE)
    run = pytest_in(tmp_path, "-n", "2", "--keras-backend", "tensorflow")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("harness: Keras backends tensorflow (--keras-backend)") == 1, run.stdout
    assert "harness: torch " in run.stdout
