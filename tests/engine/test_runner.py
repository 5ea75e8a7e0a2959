"""The runner's own behaviour: errors say which layer and which stage, and one failing test never stops the rest."""

from __future__ import annotations

import numpy as np
import pytest

import xfw_harness.blocks.convolution as convolution
from xfw_harness.blocks import get_block
from xfw_harness.cases import load_paths
from xfw_harness.core.frameworks import BACKEND, torch
from xfw_harness.suite.collect import plan_tests

NET = """
- name: net
  block: sequential
  layers:
    - {block: relu}
    - {block: conv2d, params: {filters: 4, kernel_size: [3, 2]}}
  input: {shape: [1, 3, 8, 8]}
"""


def test_weight_transfer_error_names_the_layer_and_the_stage(run_case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convolution, "conv_kernel_to_keras", lambda w: np.ascontiguousarray(w.transpose(3, 2, 1, 0)))
    (result,) = run_case(NET)
    assert result.status == "error"
    assert result.message.startswith("ValueError while transferring the weights into Keras for layers[1] (conv2d):")
    assert "(3, 2, 3, 4)" in result.message and "(2, 3, 3, 4)" in result.message
    assert "\n" not in result.message and len(result.message) < 600  # not Keras's dump of the whole variable


class _Explodes(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


def test_a_framework_error_is_one_tests_error_and_the_others_still_run(tmp_path, monkeypatch) -> None:
    relu = type(get_block("relu"))
    monkeypatch.setattr(relu, "torch_module", lambda self, site: _Explodes())
    path = tmp_path / "cases.yaml"
    path.write_text(NET + """
- name: alone
  block: conv2d
  params: {filters: 2, kernel_size: 3}
  input: {shape: [1, 1, 5, 5]}
""", encoding="utf-8")
    entries, errors = load_paths([path])
    assert not errors
    results = [test.run() for test in plan_tests(entries, device="cpu", backends=(BACKEND,))]
    assert [r.status for r in results] == ["error", "passed"]
    assert results[0].message.startswith("RuntimeError while running PyTorch's layers[0] (relu): boom")


def test_results_files_are_strict_json(tmp_path) -> None:
    import json

    from xfw_harness.suite.results import read_results, write_results

    path = tmp_path / "results.json"
    write_results(path, [{"id": "x", "status": "failed", "verdicts": [{"metrics": {"max_rel": float("inf"),
                                                                                    "worst_actual": float("nan")}}]}])
    text = path.read_text(encoding="utf-8")
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
    metrics = read_results(path)["results"][0]["verdicts"][0]["metrics"]
    assert metrics == {"max_rel": "inf", "worst_actual": "nan"}
