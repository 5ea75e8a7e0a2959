"""The pytest plugin, run inside pytest by `pytester`: collection, ids, markers, failure and skip reports, results."""

from __future__ import annotations

import json
import re

import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.core.frameworks import BACKEND, BACKENDS, gpu_unavailable_reason, installed_backends

pytest_plugins = ["pytester"]
# Keras on this process's backend only, in process (no worker): the tests that run cases are not about the backends
# (the ones below that are say so); ids end in it.
HERE = ("--keras-backend", BACKEND)

CASES = """\
- name: tiny_conv
  block: conv2d
  params: {filters: 2, kernel_size: 3}
  input: {shape: [1, 2, 5, 5]}
  devices: [cpu, gpu]
  sweep: {padding: [0, same]}
- name: tiny_relu
  block: relu
  input: {shape: [1, 2, 5, 5]}
  devices: [cpu]
"""
MIXED = """\
- name: good_one
  block: relu
  input: {shape: [1, 2, 5, 5]}
  devices: [cpu]
- name: broken
  block: dense
  params: {units: -1}
  input: {shape: [1, 4]}
- name: good_two
  block: tanh
  input: {shape: [1, 4]}
  devices: [cpu]
"""
WRONG_GOLDEN = """\
- name: wrong_golden
  block: relu
  input: {fill: values, values: [[1.0, -2.0, 3.0]]}
  expect: {output: [[1.0, 0.0, 4.0]]}
  devices: [cpu]
"""


def collected_ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and not line.startswith(("FAILED", "ERROR"))]


def test_named_yaml_file_is_collected_one_test_per_point_and_device(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", checks=CASES)
    # By default on every installed Keras backend: one test per point, device and backend, the backend last.
    result = pytester.runpytest_inprocess("checks.yaml", "--collect-only", "-q")
    assert collected_ids(result) == [f"checks.yaml::{test}-{backend}]" for test in (
        "tiny_conv[padding=0-cpu", "tiny_conv[padding=0-gpu", "tiny_conv[padding=same-cpu",
        "tiny_conv[padding=same-gpu", "tiny_relu[cpu") for backend in installed_backends()]
    assert result.ret == 0
    result = pytester.runpytest_inprocess("checks.yaml", "--collect-only", "-q", *HERE)
    assert collected_ids(result) == [
        f"checks.yaml::tiny_conv[padding=0-cpu-{BACKEND}]",
        f"checks.yaml::tiny_conv[padding=0-gpu-{BACKEND}]",
        f"checks.yaml::tiny_conv[padding=same-cpu-{BACKEND}]",
        f"checks.yaml::tiny_conv[padding=same-gpu-{BACKEND}]",
        f"checks.yaml::tiny_relu[cpu-{BACKEND}]",
    ]
    assert result.ret == 0


def test_block_markers_and_k_select(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", checks=CASES)
    result = pytester.runpytest_inprocess("checks.yaml", "--collect-only", "-q", "-m", "relu", *HERE)
    assert collected_ids(result) == [f"checks.yaml::tiny_relu[cpu-{BACKEND}]"]
    result = pytester.runpytest_inprocess("checks.yaml", "--collect-only", "-q", "-m", "conv2d and cpu", *HERE)
    assert collected_ids(result) == [f"checks.yaml::tiny_conv[padding=0-cpu-{BACKEND}]",
                                     f"checks.yaml::tiny_conv[padding=same-cpu-{BACKEND}]"]
    result = pytester.runpytest_inprocess("checks.yaml", "--collect-only", "-q", "-k", "same and gpu", *HERE)
    assert collected_ids(result) == [f"checks.yaml::tiny_conv[padding=same-gpu-{BACKEND}]"]


def test_cases_run_and_pass(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", checks=CASES)
    result = pytester.runpytest_inprocess("checks.yaml", "-m", "cpu", "-v", *HERE)
    result.assert_outcomes(passed=3, deselected=2)
    result.stdout.fnmatch_lines([f"*checks.yaml::tiny_conv[[]padding=same-cpu-{BACKEND}[]] PASSED*"])


def test_wrong_golden_value_fails_with_the_comparison_and_no_traceback(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", golden=WRONG_GOLDEN)
    result = pytester.runpytest_inprocess("golden.yaml", *HERE)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "values differ" in out
    assert "worst element at [0, 2]" in out and "expected=4" in out
    assert "Traceback" not in out and "pytest_plugin.py" not in out and "HarnessFailure" not in out
    assert "def runtest" not in out and not re.search(r"^E\s", out, re.M)
    result.stdout.fnmatch_lines([f"FAILED golden.yaml::wrong_golden[[]cpu-{BACKEND}[]]*"])


def test_invalid_case_fails_with_its_field_and_the_others_pass(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", mixed=MIXED)
    result = pytester.runpytest_inprocess("mixed.yaml", "-v", *HERE)
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "INVALID CASE" in out
    assert "mixed.yaml: case 'broken': field 'params.units': got -1; allowed: an integer >= 1" in out
    result.stdout.fnmatch_lines([f"*mixed.yaml::good_one[[]cpu-{BACKEND}[]] PASSED*", "*mixed.yaml::broken FAILED*",
                                 f"*mixed.yaml::good_two[[]cpu-{BACKEND}[]] PASSED*"])
    assert "Traceback" not in out


def test_invalid_yaml_file_fails_with_the_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", bad="- name: a\n  block: [relu\n")
    result = pytester.runpytest_inprocess("bad.yaml", *HERE)
    result.assert_outcomes(failed=1)
    assert "INVALID CASE" in result.stdout.str() and "invalid YAML at line" in result.stdout.str()


def test_harness_results_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", mixed=MIXED)
    result = pytester.runpytest_inprocess("mixed.yaml", "--harness-results", "out/results.json", *HERE)
    result.assert_outcomes(passed=2, failed=1)
    doc = json.loads((pytester.path / "out/results.json").read_text())
    assert doc["summary"] == {"passed": 2, "failed": 0, "divergent": 0, "error": 1, "skipped": 0, "total": 3}
    by_id = {r["id"]: r for r in doc["results"]}
    good_one, good_two = f"mixed.yaml::good_one[cpu-{BACKEND}]", f"mixed.yaml::good_two[cpu-{BACKEND}]"
    assert set(by_id) == {good_one, "mixed.yaml::broken", good_two}
    assert by_id[good_one]["status"] == "passed" and by_id[good_one]["backend"] == BACKEND
    assert by_id[good_one]["verdicts"][0]["passed"] is True
    assert "field 'params.units'" in by_id["mixed.yaml::broken"]["message"]


def test_results_of_two_sessions_do_not_mix(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", mixed=MIXED, other=CASES)
    pytester.runpytest_inprocess("other.yaml", "-m", "relu", "--harness-results", "first.json", *HERE)
    pytester.runpytest_inprocess("mixed.yaml", "--harness-results", "second.json", *HERE)
    first = json.loads((pytester.path / "first.json").read_text())
    second = json.loads((pytester.path / "second.json").read_text())
    assert [r["id"] for r in first["results"]] == [f"other.yaml::tiny_relu[cpu-{BACKEND}]"]
    assert second["summary"]["total"] == 3 and all(r["id"].startswith("mixed.yaml") for r in second["results"])


def test_results_of_a_session_survive_a_nested_session(pytester: pytest.Pytester) -> None:
    # pytester runs sessions inside a session in one process (as this file does): the results of the outer
    # one must not be lost or mixed with the inner one's.
    pytester.makefile(".yaml", outer="- name: outer_case\n  block: relu\n  input: {shape: [1, 2]}\n  devices: [cpu]\n")
    (pytester.path / "inner").mkdir()
    (pytester.path / "inner" / "inner.yaml").write_text(MIXED)
    pytester.makepyfile(test_nested="""
        pytest_plugins = ["pytester"]

        def test_nested(pytester):
            import shutil
            shutil.copy(pytester._request.config.rootpath / "inner" / "inner.yaml", pytester.path)
            pytester.runpytest_inprocess("inner.yaml", "--keras-backend", "BACKEND").assert_outcomes(passed=2,
                                                                                                     failed=1)
    """.replace("BACKEND", BACKEND))
    result = pytester.runpytest_inprocess("outer.yaml", "test_nested.py", "--harness-results", "outer.json", *HERE)
    result.assert_outcomes(passed=2)
    doc = json.loads((pytester.path / "outer.json").read_text())
    assert [r["id"] for r in doc["results"]] == [f"outer.yaml::outer_case[cpu-{BACKEND}]"]


def test_gpu_case_is_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    reason = gpu_unavailable_reason()
    if reason is None:
        pytest.skip("this machine has a GPU: the case runs instead of being skipped")
    pytester.makefile(".yaml", device="- name: on_gpu\n  block: relu\n  input: {shape: [1, 2]}\n  devices: [gpu]\n")
    result = pytester.runpytest_inprocess("device.yaml", "-rs", *HERE)
    result.assert_outcomes(skipped=1)
    skip_lines = [line for line in result.outlines if line.startswith("SKIPPED [1]")]
    assert len(skip_lines) == 1, result.outlines
    # Where the skip is: the case file and the test (not the plugin's source), and why: no GPU.
    assert skip_lines[0] == f"SKIPPED [1] device.yaml: on_gpu[gpu-{BACKEND}]: gpu: {reason}"
    assert "gpu" in reason.lower() or "cuda" in reason.lower()


def test_yaml_outside_the_cases_folder_is_not_collected(pytester: pytest.Pytester) -> None:
    pytester.mkdir("cases")
    (pytester.path / "cases" / "shipped.yaml").write_text(MIXED)
    pytester.mkdir("tests")
    (pytester.path / "tests" / "config.yaml").write_text("this: is not a case file\n")
    (pytester.path / "tests" / "test_plain.py").write_text("def test_plain():\n    pass\n")
    (pytester.path / "settings.yml").write_text("- not: a case\n")
    result = pytester.runpytest_inprocess("--collect-only", "-q", *HERE)
    ids = collected_ids(result)
    assert "tests/test_plain.py::test_plain" in ids
    assert {i for i in ids if i.startswith("cases/")} == {
        f"cases/shipped.yaml::good_one[cpu-{BACKEND}]", "cases/shipped.yaml::broken",
        f"cases/shipped.yaml::good_two[cpu-{BACKEND}]"}
    assert not any("config.yaml" in i or "settings.yml" in i for i in ids)
    assert "config.yaml" not in result.stdout.str()
    # Named on the command line, the same file is collected (and is not a valid case file).
    result = pytester.runpytest_inprocess("tests/config.yaml", *HERE)
    result.assert_outcomes(failed=1)
    assert "INVALID CASE" in result.stdout.str() and "a YAML list of cases" in result.stdout.str()


def test_cases_folder_is_configurable(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nharness_cases = mycases\n")
    pytester.mkdir("mycases")
    (pytester.path / "mycases" / "x.yaml").write_text(CASES)
    pytester.mkdir("cases")
    (pytester.path / "cases" / "y.yaml").write_text(CASES)
    ids = collected_ids(pytester.runpytest_inprocess("--collect-only", "-q"))
    assert ids and all(i.startswith("mycases/x.yaml::") for i in ids)


# --- Keras's backends -----------------------------------------------------------------------------------

ACROSS = """\
- name: across
  block: tanh
  input: {shape: [1, 2, 3]}
  devices: [cpu]
  compare: backends
"""
OTHER = "torch" if BACKEND != "torch" else "tensorflow"  # a backend that runs in a worker here


def test_keras_backend_option_and_backend_markers_select(pytester: pytest.Pytester) -> None:
    if "jax" not in installed_backends():
        pytest.skip("JAX is not installed here")
    pytester.makefile(".yaml", checks=CASES, across=ACROSS)
    result = pytester.runpytest_inprocess("checks.yaml", "--collect-only", "-q", "--keras-backend", "jax", "-m", "jax")
    assert collected_ids(result) == [f"checks.yaml::{t}-jax]" for t in (
        "tiny_conv[padding=0-cpu", "tiny_conv[padding=0-gpu", "tiny_conv[padding=same-cpu",
        "tiny_conv[padding=same-gpu", "tiny_relu[cpu")]
    result = pytester.runpytest_inprocess("checks.yaml", "across.yaml", "--collect-only", "-q", "-m",
                                          "relu and torch", "--strict-markers")
    assert collected_ids(result) == ["checks.yaml::tiny_relu[cpu-torch]"]
    result = pytester.runpytest_inprocess("checks.yaml", "across.yaml", "--collect-only", "-q", "-m", "backends",
                                          "--strict-markers")
    assert collected_ids(result) == ["across.yaml::across[cpu-backends]"]  # one test comparing the backends
    markers = pytester.runpytest_inprocess("--markers").stdout.str()
    for backend in BACKENDS:
        assert f"@pytest.mark.{backend}: harness cases run with Keras on its {backend} backend" in markers
    assert "@pytest.mark.backends: harness cases comparing Keras's backends with each other" in markers


def test_the_header_names_the_backends_and_a_bad_one_is_a_usage_error(pytester: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makefile(".yaml", checks=CASES)
    result = pytester.runpytest_inprocess("checks.yaml", "--collect-only", "--keras-backend", "torch",
                                          "--keras-backend", "tensorflow")
    result.stdout.fnmatch_lines(["harness: Keras backends tensorflow, torch (--keras-backend)"])
    result = pytester.runpytest_inprocess("checks.yaml", "--keras-backend", "jaxx")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--keras-backend 'jaxx': not a Keras backend (did you mean 'jax'?)" in "\n".join(result.errlines)
    assert "Traceback" not in result.stdout.str() + "\n".join(result.errlines)
    monkeypatch.setenv("HARNESS_KERAS_BACKENDS", "tensorflow,pytorch")
    result = pytester.runpytest_inprocess("checks.yaml", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "'pytorch': not a Keras backend" in "\n".join(result.errlines)


def test_a_case_runs_in_another_backends_worker_and_compare_backends_runs_both(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", checks=CASES, across=ACROSS)
    result = pytester.runpytest_inprocess("checks.yaml", "across.yaml", "-v", "-m", "relu or backends",
                                          "--keras-backend", BACKEND, "--keras-backend", OTHER,
                                          "--harness-results", "r.json")
    result.assert_outcomes(passed=3, deselected=8)
    doc = json.loads((pytester.path / "r.json").read_text())
    assert {r["id"]: (r["backend"], r["status"]) for r in doc["results"]} == {
        f"checks.yaml::tiny_relu[cpu-{BACKEND}]": (BACKEND, "passed"),
        f"checks.yaml::tiny_relu[cpu-{OTHER}]": (OTHER, "passed"),
        "across.yaml::across[cpu-backends]": ("backends", "passed")}
    across = next(r for r in doc["results"] if r["backend"] == "backends")
    assert {f"keras[{OTHER}] vs keras[{BACKEND}]", f"keras[{BACKEND}] vs torch"} <= {v["what"] for v in
                                                                                      across["verdicts"]}


@pytest.mark.parametrize(("nodeid", "case", "device", "backend"), [
    ("cases/conv2d.yaml::grid[strides=2-cpu-jax]", "grid", "cpu", "jax"),
    ("c.yaml::c[axis=-1-gpu-torch]", "c", "gpu", "torch"),  # a sweep value with a '-'
    ("c.yaml::c[cpu-tensorflow]", "c", "cpu", "tensorflow"),
    ("c.yaml::c[cpu-backends]", "c", "cpu", "backends"),  # compare: backends
    ("c.yaml::broken", "broken", "-", "-"),  # an invalid case
    ("c.yaml::c[seed=1]", "c", "-", "-"),  # a refused sweep point
    ("c.yaml::c[mode=cpu-jaxx]", "c", "-", "-"),
])
def test_a_crashed_test_is_recorded_with_its_device_and_backend(nodeid: str, case: str, device: str,
                                                                backend: str) -> None:
    from types import SimpleNamespace

    from xfw_harness.pytest_plugin import _crashed

    (result,) = _crashed(SimpleNamespace(nodeid=nodeid, longreprtext="worker 'gw0' crashed while running it"))
    assert (result["id"], result["case"], result["device"], result["backend"]) == (nodeid, case, device, backend)
    assert result["status"] == "error" and "crashed" in result["message"]
    assert _crashed(SimpleNamespace(nodeid="tests/test_x.py::test_a[cpu-jax]", longreprtext="")) == []
