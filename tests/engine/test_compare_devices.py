"""`compare: devices` (xfw_harness/cross_device.py): each framework's CPU run against its own GPU run.

This machine has no GPU, so the code path runs with a faked second device: the `gpu` placement is monkeypatched
to the CPU (both sides then compute on the CPU, through every step a real GPU run takes), and a difference planted
on one side only must be caught, named by framework. On a machine with CUDA the shipped cases/devices.yaml runs for
real (the last test); elsewhere its tests are skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xfw_harness.engine.build as build
import xfw_harness.engine.devices as cross_device
from xfw_harness.cases import load_file
from xfw_harness.core import frameworks
from xfw_harness.core.frameworks import BACKEND, BACKENDS, keras, torch
from xfw_harness.engine import run_point
from xfw_harness.suite.collect import devices_for, plan_tests

pytest_plugins = ["pytester"]

PROJECT = Path(__file__).resolve().parents[2]
NO_GPU = frameworks.gpu_unavailable_reason()

NETWORK = """
- name: conv_gelu
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 8, kernel_size: 3, padding: same}}
    - {block: gelu}
    - {block: global_avg_pool2d}
  input: {shape: [2, 4, 9, 9]}
  compare: devices
"""


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `gpu` device that is the CPU: CUDA and TensorFlow's GPU reported present, every placement on the CPU."""
    monkeypatch.setattr(frameworks, "gpu_unavailable_reason", lambda: None)
    monkeypatch.setattr(frameworks, "keras_has_gpu", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU (the CPU)")
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: None)
    monkeypatch.setattr(build, "torch_device", lambda device: torch.device("cpu"))
    monkeypatch.setattr(build, "keras_device", lambda device: frameworks.keras_device("cpu"))


def _gpu_side(monkeypatch: pytest.MonkeyPatch, name: str, change) -> list[str]:
    """Wrap the builders xfw_harness.engine.devices calls (build_torch or build_keras) so that `change(built)` applies
    to what is built for the gpu only;
    returns the devices the builder was called for."""
    calls: list[str] = []
    real = getattr(cross_device, name)

    def built(point, *args):
        device = args[-1]
        calls.append(device)
        out = real(point, *args)
        if device == "gpu":
            change(out)
        return out

    monkeypatch.setattr(cross_device, name, built)
    return calls


def test_identical_devices_agree_with_one_verdict_per_framework(fake_gpu, case_points) -> None:
    (point,) = case_points(NETWORK)
    result = run_point(point, "gpu")
    assert result.status == "passed", result.message
    assert [v.what for v in result.verdicts] == ["torch cpu vs gpu", "keras cpu vs gpu"]
    assert all(v.metrics["max_abs"] == 0.0 for v in result.verdicts)  # the same CPU kernels on both sides
    assert result.placement == {"torch": "cpu vs cuda (Fake GPU (the CPU))", "keras": "cpu vs gpu"}
    assert result.shapes == {"input": [2, 4, 9, 9], "torch": [2, 8], "keras": [2, 8]}
    assert result.id.endswith(f"::conv_gelu[gpu-{BACKEND}]")


def test_a_difference_planted_in_pytorch_on_the_gpu_is_caught(fake_gpu, case_points, monkeypatch) -> None:
    """The gpu side's GELU computes the tanh form (at most 4.7e-4 off): torch cpu vs gpu fails, keras passes."""
    def tanh_gelu(modules):
        for module in modules:
            for sub in module.modules():
                if isinstance(sub, torch.nn.GELU):
                    sub.approximate = "tanh"

    calls = _gpu_side(monkeypatch, "build_torch", tanh_gelu)
    (point,) = case_points(NETWORK)
    result = run_point(point, "gpu")
    assert sorted(calls) == ["cpu", "gpu"]
    assert result.status == "failed"
    torch_v, keras_v = result.verdicts
    assert torch_v.what == "torch cpu vs gpu" and not torch_v.passed and torch_v.check == "values"
    assert keras_v.what == "keras cpu vs gpu" and keras_v.passed
    assert "[torch cpu vs gpu] values differ" in result.message and "gpu [2, 8], cpu [2, 8]" in result.message


def test_a_difference_planted_in_keras_on_the_gpu_is_caught(fake_gpu, case_points, monkeypatch) -> None:
    """The gpu side's Keras conv loses its bias: keras cpu vs gpu fails, torch passes."""
    def drop_bias(layers):
        conv = layers[0]
        conv.bias.assign(np.zeros(conv.bias.shape, np.float32))

    _gpu_side(monkeypatch, "build_keras", drop_bias)
    (point,) = case_points(NETWORK)
    result = run_point(point, "gpu")
    assert result.status == "failed"
    assert [(v.what, v.passed) for v in result.verdicts] == [("torch cpu vs gpu", True), ("keras cpu vs gpu", False)]


def test_keras_without_a_tensorflow_gpu_is_not_compared_and_says_so(fake_gpu, case_points, monkeypatch) -> None:
    monkeypatch.setattr(frameworks, "keras_has_gpu", lambda: False)
    (point,) = case_points(NETWORK)
    result = run_point(point, "gpu")
    assert result.status == "passed", result.message
    assert [v.what for v in result.verdicts] == ["torch cpu vs gpu"]
    assert "keras cpu vs gpu: not compared: TensorFlow sees no GPU" in result.message
    assert result.placement["keras"] == "cpu vs cpu (TensorFlow sees no GPU)"


def test_dropout_in_train_mode_compares_what_comes_before_and_checks_each_sample(fake_gpu, case_points) -> None:
    (point,) = case_points("""
        - name: dense_dropout
          block: sequential
          layers:
            - {block: dense, params: {units: 64}}
            - {block: dropout, params: {rate: 0.3}}
          mode: train
          input: {shape: [64, 32]}
          compare: devices
        """)
    result = run_point(point, "gpu")
    assert result.status == "passed", result.message
    assert [v.what for v in result.verdicts] == [
        "torch cpu vs gpu before dropout", "torch cpu dropout sample", "torch gpu dropout sample",
        "keras cpu vs gpu before dropout", "keras cpu dropout sample", "keras gpu dropout sample"]


def test_spatial_dropout_samples_get_the_channel_wise_check(fake_gpu, case_points) -> None:
    """Each device's spatial_dropout2d sample is judged by the block's own check_sample (channels are the unit of
    the draw), as in a torch-vs-keras run. The element-wise check counts C*H*W correlated draws as independent:
    with 4 channels of 256 elements, it accepts only exactly 2 of 4 channels dropped, and failed this correct run."""
    (point,) = case_points("""
        - name: spatial_dropout
          block: spatial_dropout2d
          params: {rate: 0.5}
          mode: train
          input: {shape: [2, 2, 16, 16], seed: 3}
          compare: devices
        """)
    result = run_point(point, "gpu")
    assert result.status == "passed", result.message
    samples = [v for v in result.verdicts if v.what.endswith("dropout sample")]
    assert [v.what for v in samples] == ["torch cpu dropout sample", "torch gpu dropout sample",
                                         "keras cpu dropout sample", "keras gpu dropout sample"]
    assert all(v.metrics["unit"] == "channels" and v.metrics["n"] == 4 for v in samples)
    assert all("dropped-channel fraction" in v.message for v in samples)


def test_reduced_precision_on_both_devices(fake_gpu, case_points) -> None:
    (point,) = case_points(NETWORK.replace("input: {shape: [2, 4, 9, 9]}",
                                           "input: {shape: [2, 4, 9, 9], dtype: bfloat16}"))
    result = run_point(point, "gpu")
    assert result.status == "passed", result.message
    assert "bfloat16 default" in result.verdicts[0].message


def test_without_a_gpu_the_test_is_skipped_with_the_reason(case_points, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (point,) = case_points(NETWORK)
    result = run_point(point, "gpu")
    assert result.status == "skipped"
    assert result.message.startswith("compare: devices needs a GPU: PyTorch")
    assert "sees no CUDA device" in result.message
    assert result.verdicts == []


def test_a_devices_point_is_one_test_on_the_gpu_device(case_points) -> None:
    (point,) = case_points(NETWORK)
    assert devices_for(point) == ("gpu",)  # present or not: without one it is listed and skipped
    entries, _ = load_file(PROJECT / "cases" / "devices.yaml")
    planned = plan_tests(entries, backends=BACKENDS)  # on each backend: each backend's Keras on its own devices
    assert len(planned) == 10 * len(BACKENDS) and all(
        t.device == "gpu" and t.id.endswith((f"-gpu-{t.backend}]", f"[gpu-{t.backend}]")) for t in planned)
    assert {t.backend for t in planned} == set(BACKENDS)
    assert plan_tests(entries, device="cpu", backends=BACKENDS) == []


def test_pytest_collects_devices_cases_with_the_gpu_marker(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", devices=NETWORK)
    result = pytester.runpytest_inprocess("devices.yaml", "-m", "gpu", "-rs", "--keras-backend", BACKEND)
    outcomes = result.parseoutcomes()
    if NO_GPU:
        assert outcomes.get("skipped") == 1
        result.stdout.fnmatch_lines([f"*conv_gelu[[]gpu-{BACKEND}[]]: compare: devices needs a GPU*"])
    else:
        assert outcomes.get("passed") == 1


@pytest.mark.parametrize(("extra", "field", "text"), [
    ("devices: [cpu]", "devices", "must be left out or include gpu"),
    ("check: [forward, backward]", "check", "compares forward outputs only"),
    ("expect: {shape: [2, 8]}", "expect", "compares each framework with itself"),
])
def test_what_a_devices_comparison_cannot_take_is_refused(tmp_path: Path, extra: str, field: str, text: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(NETWORK + f"  {extra}\n", encoding="utf-8")
    (entry,), err = load_file(path)
    assert err is None and entry.error is not None
    assert entry.error.field == field and text in entry.error.message


def test_devices_with_gpu_are_accepted(case_points) -> None:
    for devices in ("[gpu]", "[cpu, gpu]"):
        (point,) = case_points(NETWORK + f"  devices: {devices}\n")
        assert devices_for(point) == ("gpu",)


@pytest.mark.skipif(NO_GPU is not None, reason=f"gpu: {NO_GPU}")
def test_shipped_devices_cases_pass_on_a_real_gpu() -> None:
    entries, _ = load_file(PROJECT / "cases" / "devices.yaml")
    results = [t.run() for t in plan_tests(entries, backends=(BACKEND,))]
    assert results and all(r.status == "passed" for r in results), [r.message for r in results if r.status != "passed"]
    assert all(r.placement["torch"].startswith("cpu vs cuda") for r in results)


def test_keras_placement_is_what_the_fake_patches(fake_gpu) -> None:
    """The fake moves placement, not numerics: a tensor made under the patched keras_device lives on the CPU."""
    with build.keras_device("gpu"):
        t = keras.ops.convert_to_tensor(np.ones(2, np.float32)) * 2
    assert t.device.endswith("CPU:0")
    assert build.torch_device("gpu").type == "cpu"
    assert cross_device.unavailable_reason() is None
