"""The harness as a user gets it: the wheel and sdist built with the standard build tool (pypa/build), the wheel
installed into a fresh virtual environment outside the repository, and a user's own project (a plain test and
YAML cases under tests/, no configuration) run with pytest there. Issue 17: the README had no install section,
the extras named no backend, YAML cases under tests/ were ignored.

Versions are held to requirements.lock (pip's --constraint), so the install comes from the same wheels as
`make setup` (the machine's cache in CI). It takes about two minutes: one test does all of it.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONV_CASES = """\
- name: my_conv
  block: conv2d
  params: {filters: 4, kernel_size: 3, padding: 1}
  input: {shape: [2, 3, 8, 8]}
  devices: [cpu]
- name: my_pool
  block: max_pool2d
  params: {pool_size: 2}
  input: {shape: [2, 3, 8, 8]}
  devices: [cpu]
"""
PLAIN = "def test_my_own_code():\n    assert sum([1, 2]) == 3\n"


def run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: int = 900) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the fresh environment's bin/, the dist folder): the wheel installed with the `cpu` extra."""
    tmp = tmp_path_factory.mktemp("user")
    dist = tmp / "dist"
    # --no-isolation: the build back end (setuptools) of the environment running the tests, not one downloaded.
    run(sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", dist, ROOT, cwd=tmp)
    (wheel,) = dist.glob("*.whl")
    run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp)
    bin_dir = tmp / "venv" / "bin"
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--constraint", ROOT / "requirements.lock", f"{wheel}[cpu]", cwd=tmp)
    return bin_dir, dist


def test_a_users_project_runs_its_plain_tests_and_yaml_cases_with_pytest(installed: tuple[Path, Path],
                                                                         tmp_path: Path) -> None:
    bin_dir, dist = installed
    project = tmp_path / "my_project"
    (project / "tests" / "layers").mkdir(parents=True)
    (project / "tests" / "test_mine.py").write_text(PLAIN)
    (project / "tests" / "layers" / "test_conv.yaml").write_text(CONV_CASES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KERAS_BACKEND", "HARNESS_", "VIRTUAL"))}
    out = run(bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project, env=env)
    # Two cases, each on the three backends the `cpu` extra installs, and the plain test.
    assert "7 passed" in out, out
    out = run(bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", cwd=project,
              env=env)
    assert "tests/layers/test_conv.yaml::my_conv[cpu-jax]" in out and "tests/test_mine.py::test_my_own_code" in out
    # The commands: the package imports from the environment, not from the repository.
    out = run(bin_dir / "python", "-c", "import xfw_harness; print(xfw_harness.__file__)", cwd=project, env=env)
    assert str(ROOT) not in out and "site-packages" in out
    assert "1 file" in run(bin_dir / "xfw-harness", "check", "tests/layers/test_conv.yaml", cwd=project, env=env)


def test_the_wheel_carries_the_schema_and_the_report_page(installed: tuple[Path, Path]) -> None:
    _, dist = installed
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("xfw_harness/data/case-file.schema.json", "xfw_harness/report/templates/report.html",
                   "xfw_harness/report/templates/report.js", "xfw_harness/pytest_plugin.py"):
        assert needed in names, f"{wheel.name} lacks {needed}"
    assert len(list(dist.glob("*.tar.gz"))) == 1


def test_the_wheel_claims_only_its_own_names(installed: tuple[Path, Path]) -> None:
    """PyPI's unrelated `harness` distribution installs a `harness` package and a `harness` command: this one installs
    only `xfw_harness` (import), `xfw-harness` (command) and the pytest plugin `xfw_harness`, so both can live in one
    environment (issue 17)."""
    _, dist = installed
    (wheel,) = dist.glob("*.whl")
    archive = zipfile.ZipFile(wheel)
    top = {name.split("/")[0] for name in archive.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"xfw_harness"}, top
    (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(archive.read(entry_points).decode())
    assert dict(parser["console_scripts"]) == {"xfw-harness": "xfw_harness.cli:main"}
    assert dict(parser["pytest11"]) == {"xfw_harness": "xfw_harness.pytest_plugin"}
