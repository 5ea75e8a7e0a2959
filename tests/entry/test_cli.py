"""`python -m xfw_harness`: `list` and `run`, in-process through xfw_harness.cli.main and (a few) as real
subprocesses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.blocks import all_blocks
from xfw_harness.cli import main
from xfw_harness.core.frameworks import BACKEND, available_devices, gpu_unavailable_reason, installed_backends
from xfw_harness.report.html import unpack

PROJECT = Path(__file__).resolve().parents[2]
# Keras on this process's backend only, in process (no worker): these tests are not about the backends
# (tests/suite/test_backends.py is); ids end in it.
HERE = ("--keras-backend", BACKEND)

GOOD = """\
- name: tiny_conv
  block: conv2d
  params: {filters: 2, kernel_size: 3}
  input: {shape: [1, 2, 5, 5]}
  devices: [cpu]
  sweep: {padding: [0, same]}
"""
MIXED = """\
- name: first
  block: relu
  input: {shape: [1, 2, 5, 5]}
  devices: [cpu]
- name: broken
  block: conv2d
  params: {filters: 0, kernel_size: 3}
  input: {shape: [1, 2, 5, 5]}
- name: last
  block: max_pool2d
  params: {pool_size: 2}
  input: {shape: [1, 2, 5, 5]}
  devices: [cpu]
"""


def write(directory: Path, text: str, name: str = "cases.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def summary(out: str) -> tuple[int, int, int, int]:
    m = re.search(r"^(\d+) passed, (\d+) failed, (\d+) errors, (\d+) skipped in [\d.]+s$", out, re.M)
    assert m, f"no summary line in:\n{out}"
    return tuple(int(x) for x in m.groups())


def lines_starting(out: str, tag: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.startswith(tag + " ")]


def subprocess_harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xfw_harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


# --- real subprocesses ----------------------------------------------------------------------------------

def test_list_subprocess_shows_every_block_with_parameters_and_defaults(tmp_path: Path) -> None:
    proc = subprocess_harness("list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    listed = {line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")}
    assert listed == {*all_blocks(), "sequential"}
    for block in all_blocks().values():
        for p in block.params:
            assert re.search(rf"^    {p.name}\s+default {re.escape(p.describe_default())}\s", out, re.M), p.name
    assert re.search(r"^    negative_slope\s+default 0\.01\s", out, re.M)
    assert re.search(r"^    kernel_size\s+default required\s", out, re.M)
    assert re.search(r"^    use_bias\s+default true\s", out, re.M)
    assert re.search(r"^    strides\s+default pool_size\s", out, re.M)
    assert "allowed: an integer >= 1 or a list [h, w] of two such integers" in out


def test_run_subprocess_bad_case_reported_good_cases_still_run(tmp_path: Path) -> None:
    write(tmp_path, MIXED)
    proc = subprocess_harness("run", *HERE, "cases.yaml", "missing.yaml", "--json", "out/results.json", "--html",
                              "out/report.html", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    assert lines_starting(proc.stdout, "PASS") == [f"cases.yaml::first[cpu-{BACKEND}]",
                                                   f"cases.yaml::last[cpu-{BACKEND}]"]
    assert lines_starting(proc.stdout, "ERROR") == ["cases.yaml::broken"]
    assert "cases.yaml: case 'broken': field 'params.filters': got 0; allowed: an integer >= 1" in proc.stdout
    assert re.search(r"^INVALID  missing\.yaml: cannot read the file: .*No such file", proc.stdout, re.M)
    assert summary(proc.stdout) == (2, 0, 2, 0)  # the broken case and the missing file are the two errors

    doc = json.loads((tmp_path / "out/results.json").read_text())
    assert doc["summary"] == {"passed": 2, "failed": 0, "divergent": 0, "error": 2, "skipped": 0, "total": 4}
    statuses = {r["id"]: r["status"] for r in doc["results"]}
    assert statuses[f"cases.yaml::first[cpu-{BACKEND}]"] == statuses[f"cases.yaml::last[cpu-{BACKEND}]"] == "passed"
    assert statuses["cases.yaml::broken"] == "error"

    html = (tmp_path / "out/report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html.lower()
    # Self-contained: nothing loaded from elsewhere (the SVG namespace URI in the script is a name, not a load).
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "@import" not in html
    assert not re.search(r"<script[^>]*\bsrc=", html, re.I) and not re.search(r"<link[^>]*stylesheet", html, re.I)
    rows = {r["id"]: r for r in unpack(html)["rows"]}
    assert "params.filters" in rows["cases.yaml::broken"]["message"] and f"cases.yaml::first[cpu-{BACKEND}]" in rows


# --- in-process -----------------------------------------------------------------------------------------

def test_list_unknown_block_exits_2_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "list", "conv2")
    assert code == 2 and out == ""
    assert "unknown block 'conv2'" in err and "did you mean 'conv2d'" in err


def test_list_named_block_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "list", "leaky_relu")
    assert code == 0
    assert out.startswith("leaky_relu  (activations)")
    assert re.search(r"negative_slope\s+default 0\.01", out)
    assert "conv2d" not in out and "sequential" not in out


def test_run_passing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, GOOD)
    code, out, _ = run_cli(capsys, "run", *HERE, "cases.yaml")
    assert code == 0, out
    assert lines_starting(out, "PASS") == [f"cases.yaml::tiny_conv[padding=0-cpu-{BACKEND}]",
                                           f"cases.yaml::tiny_conv[padding=same-cpu-{BACKEND}]"]
    assert re.search(rf"^PASS   cases\.yaml::tiny_conv\[padding=0-cpu-{BACKEND}\]  max abs \S+  max rel \S+$", out,
                     re.M)
    assert summary(out) == (2, 0, 0, 0)
    assert "2 passed, 0 failed" in out


def test_run_quiet_prints_only_the_summary_when_all_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, GOOD)
    code, out, _ = run_cli(capsys, "run", *HERE, "-q", "cases.yaml")
    assert code == 0 and "PASS" not in out and summary(out) == (2, 0, 0, 0)


def test_run_json_summary_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MIXED)
    code, out, _ = run_cli(capsys, "run", *HERE, "cases.yaml", "--json", "r.json")
    assert code == 1
    doc = json.loads((tmp_path / "r.json").read_text())
    passed, failed, errors, skipped = summary(out)
    assert doc["summary"] == {"passed": passed, "failed": failed, "error": errors, "skipped": skipped,
                              "divergent": 0, "total": passed + failed + errors + skipped}
    assert (passed, errors) == (2, 1)
    assert sorted(r["id"] for r in doc["results"]) == ["cases.yaml::broken", f"cases.yaml::first[cpu-{BACKEND}]",
                                                       f"cases.yaml::last[cpu-{BACKEND}]"]
    broken = next(r for r in doc["results"] if r["case"] == "broken")
    assert "field 'params.filters'" in broken["message"]
    assert "results: r.json" in out


def test_run_failing_golden_value_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, """\
        - name: wrong_golden
          block: relu
          input: {fill: values, values: [[1.0, -2.0, 3.0]]}
          expect: {output: [[1.0, 0.0, 4.0]]}
          devices: [cpu]
        """)
    code, out, _ = run_cli(capsys, "run", *HERE, "cases.yaml")
    assert code == 1
    assert lines_starting(out, "FAIL") == [f"cases.yaml::wrong_golden[cpu-{BACKEND}]"]
    assert "values differ" in out and "worst element at [0, 2]" in out
    assert summary(out) == (0, 1, 0, 0)


def test_run_k_filters_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, GOOD)
    code, out, _ = run_cli(capsys, "run", *HERE, "cases.yaml", "-k", "padding=same")
    assert code == 0
    assert lines_starting(out, "PASS") == [f"cases.yaml::tiny_conv[padding=same-cpu-{BACKEND}]"]
    assert summary(out) == (1, 0, 0, 0)
    code, out, _ = run_cli(capsys, "run", *HERE, "cases.yaml", "-k", "no-such-test")
    assert code == 1  # nothing ran: not a success
    assert summary(out) == (0, 0, 0, 0)


def test_run_device_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, """\
        - name: both
          block: tanh
          input: {shape: [1, 2, 5, 5]}
          devices: [cpu, gpu]
        """)
    code, out, _ = run_cli(capsys, "run", *HERE, "cases.yaml")
    gpu_missing = gpu_unavailable_reason()
    if gpu_missing:
        assert code == 0 and summary(out) == (1, 0, 0, 1)
        assert lines_starting(out, "SKIP") == [f"cases.yaml::both[gpu-{BACKEND}]"]
        skip_reason = out.split(f"SKIP   cases.yaml::both[gpu-{BACKEND}]", 1)[1].splitlines()[1]
        assert "gpu" in skip_reason.lower() and gpu_missing in skip_reason
    else:
        assert code == 0 and summary(out) == (2, 0, 0, 0)
    code, out, _ = run_cli(capsys, "run", *HERE, "cases.yaml", "--device", "cpu")
    assert code == 0
    assert lines_starting(out, "PASS") == [f"cases.yaml::both[cpu-{BACKEND}]"] and f"[gpu-{BACKEND}]" not in out
    assert summary(out) == (1, 0, 0, 0)


def test_run_missing_path_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "run", *HERE, "nope.yaml")
    assert code == 1
    assert "nope.yaml" in out and "No such file" in out and "Traceback" not in out + err
    assert summary(out) == (0, 0, 1, 0)


def test_run_empty_folder_is_not_a_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", *HERE, str(tmp_path))
    assert code == 1 and summary(out) == (0, 0, 0, 0)


def test_bad_option_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", str(tmp_path), "--device", "tpu"])
    assert exc.value.code == 2
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_port_is_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """`xfw-harness port` itself is tested in tests/tools/test_port.py; here: it is wired in, with its usage."""
    with pytest.raises(SystemExit) as exc:
        main(["port", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "MODULE:FACTORY" in out and "--weights" in out and "--input-shape" in out and "--out" in out
    assert main(["port", "not_a_spec"]) == 2
    assert "expected MODULE:FACTORY" in capsys.readouterr().err


def test_the_first_steps_in_help_work_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from xfw_harness.cli import build_parser

    epilog = build_parser().epilog
    steps = [line.strip().split("  ")[0] for line in epilog.splitlines() if line.startswith("  xfw-harness ")][:4]
    assert steps == ["xfw-harness list conv2d", "xfw-harness new conv2d > my_case.yaml", "xfw-harness run my_case.yaml",
                     "xfw-harness show my_case.yaml::conv2d_case"]
    monkeypatch.chdir(tmp_path)
    for step in steps:
        argv, _, target = step.removeprefix("xfw-harness ").partition(" > ")
        code, out, err = run_cli(capsys, *argv.split())
        assert code == 0, (step, err)
        if argv.startswith("run"):
            # As written, on every installed Keras backend (this one here, the others in their workers).
            assert lines_starting(out, "PASS") == [f"my_case.yaml::conv2d_case[{d}-{b}]" for d in available_devices()
                                                   for b in installed_backends()]
        if target:
            (tmp_path / target).write_text(out, encoding="utf-8")


def test_run_keras_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MIXED)
    code, out, err = run_cli(capsys, "run", "cases.yaml", "--keras-backend", "bogus")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("harness: --keras-backend 'bogus': not a Keras backend") and "tensorflow, jax, torch" in err
    # Another backend runs in its worker; each result says where Keras ran; the invalid case has no backend.
    other = "torch" if BACKEND != "torch" else "tensorflow"
    code, out, _ = run_cli(capsys, "run", "cases.yaml", "--keras-backend", other, "--json", "r.json")
    assert code == 1 and lines_starting(out, "PASS") == [f"cases.yaml::first[cpu-{other}]",
                                                         f"cases.yaml::last[cpu-{other}]"]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert {r["id"]: r["backend"] for r in doc["results"]} == {
        f"cases.yaml::first[cpu-{other}]": other, "cases.yaml::broken": "-", f"cases.yaml::last[cpu-{other}]": other}


GOLDEN_WRONG = """\
- name: wrong_values
  block: relu
  input: {fill: values, values: [[-1.5, 0.0, 2.5]]}
  expect: {output: [[0.0, 0.0, 2.0]]}
  devices: [cpu]
- name: wrong_shape
  block: relu
  input: {fill: values, values: [[-1.5, 0.0, 2.5]]}
  expect: {shape: [1, 4]}
  devices: [cpu]
"""


def test_a_failed_expectation_heads_its_line_and_row_with_its_own_figures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17: a wrong golden value showed `FAIL ... max abs 0.00e+00`, PyTorch against Keras (which agree), on its
    headline. The headline is the failing comparison's: its name and figures (relu(2.5) = 2.5 against 2.0: max abs
    0.5, max rel 0.25), or the check that failed where it has no figures; the report's row holds the same figures."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, GOLDEN_WRONG)
    code, out, _ = run_cli(capsys, "run", *HERE, "cases.yaml", "--html", "report.html")
    assert code == 1, out
    assert re.search(rf"^FAIL   cases\.yaml::wrong_values\[cpu-{BACKEND}\]  \[torch vs expected\] max abs 5\.00e-01  "
                     r"max rel 2\.50e-01$", out, re.M), out
    assert re.search(rf"^FAIL   cases\.yaml::wrong_shape\[cpu-{BACKEND}\]  \[expected shape\] shape check failed$",
                     out, re.M), out
    rows = {r["id"]: r for r in unpack((tmp_path / "report.html").read_text())["rows"]}
    values = rows[f"cases.yaml::wrong_values[cpu-{BACKEND}]"]
    assert (values["headline"], values["max_abs"], values["max_rel"]) == ("torch vs expected", 0.5, 0.25)
    shape = rows[f"cases.yaml::wrong_shape[cpu-{BACKEND}]"]
    assert (shape["headline"], shape["max_abs"], shape["max_rel"]) == ("expected shape", None, None)


IMPLICIT_DIM = """\
- name: log_softmax_implicit_dim
  block: log_softmax
  defaults: native
  input: {shape: [2, 3, 5]}
  expect:
    divergent: "PyTorch's implicit log_softmax dim is 0 for a 3-D input; Keras's axis is -1"
"""


@pytest.mark.parametrize("quiet", [False, True])
def test_run_quiet_leaves_out_known_differences_and_the_frameworks_warnings(tmp_path: Path, quiet: bool) -> None:
    """`--quiet`: failures, errors and the summary only (issue 17: a quiet `make report` printed tf.function
    warnings and 29 SKIP/DIVERGENT lines). The case is a known difference whose PyTorch call warns (an implicit
    softmax dim is deprecated): without --quiet both show, which is what makes this test able to fail."""
    (tmp_path / "implicit.yaml").write_text(IMPLICIT_DIM)
    run = subprocess.run([sys.executable, "-m", "xfw_harness", "run", "implicit.yaml", *HERE, *(["-q"] * quiet)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert ("DIVERGENT" in run.stdout) != quiet
    assert ("Implicit dimension choice for log_softmax has been deprecated" in run.stderr) != quiet, run.stderr
    assert "0 failed, 0 errors" in run.stdout
    assert "I0000" not in run.stderr and "absl::InitializeLog" not in run.stderr  # TensorFlow's banners: never
