"""Reading `block: graph` cases: every mistake in a graph's nodes is refused with the file, the case and the field,
and says what is allowed; the other cases of the file still load. A graph's node parameter sweeps, a residual as a
node, a network's weights budget raised by `max_elements`, and the loader's numbering of inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.blocks import MAX_ELEMENTS, NETWORK_INPUT
from xfw_harness.cases import Point, load_file
from xfw_harness.engine import run_point

STEM = {"name": "stem", "block": "conv2d", "params": {"filters": 4, "kernel_size": 3, "padding": 1}}


def _graph(*nodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "g", "block": "graph", "nodes": list(nodes), "input": {"shape": [2, 3, 6, 6]}, **extra}


def _load(tmp_path: Path, *cases: dict[str, Any]) -> list[Any]:
    path = tmp_path / "graphs.yaml"
    path.write_text(yaml.safe_dump(list(cases), sort_keys=False), encoding="utf-8")
    entries, error = load_file(path)
    assert error is None, error
    return entries


@pytest.mark.parametrize(("nodes", "field", "says"), [
    ([STEM, {"name": "act", "block": "relu", "inputs": ["stme"]}], "nodes[1].inputs[0]",
     "allowed: 'input' or the name of a node written before this one"),
    ([{**STEM, "inputs": ["act"]}, {"name": "act", "block": "relu"}], "nodes[0].inputs[0]",
     "each comes after its inputs"),
    ([STEM, {"name": "stem", "block": "relu"}], "nodes[1].name", "duplicate node name 'stem' (also nodes[0])"),
    ([STEM, {"name": "input", "block": "relu"}], "nodes[1].name", "other than 'input'"),
    ([STEM, {"block": "relu"}], "nodes[1].name", "allowed: a name of letters"),
    ([STEM, {"name": "act", "block": "relu", "inputs": []}], "nodes[1].inputs", "a non-empty list"),
    ([STEM, {"name": "join", "block": "add", "inputs": ["stem"]}], "nodes[1].inputs",
     "add joins two or more inputs, got 1"),
    ([STEM, {"name": "act", "block": "relu", "inputs": ["stem", "input"]}], "nodes[1].inputs",
     "relu takes one input, got 2"),
    ([STEM, {"name": "dead", "block": "relu"}, {"name": "out", "block": "sigmoid", "inputs": ["stem"]}],
     "nodes[1].name", "node 'dead' feeds no later node and is not the output"),
    ([STEM, {"name": "join", "block": "add", "inputs": ["stem", "input"]}], "nodes[1].inputs",
     "do not broadcast together"),
    ([STEM, {"name": "act", "block": "relu", "colour": "red"}], "nodes[1].colour", "unknown key"),
])
def test_a_mistake_in_a_graph_is_refused_with_its_field(tmp_path: Path, nodes: list, field: str, says: str) -> None:
    bad, good = _load(tmp_path, _graph(*nodes), {**_graph(STEM), "name": "fine"})
    problem = bad.error or next(p.error for p in bad.points if not isinstance(p, Point))
    assert problem.field == field, str(problem)
    assert says in problem.message, str(problem)
    assert str(problem).startswith(str(tmp_path / "graphs.yaml")) and "case 'g'" in str(problem)
    assert good.error is None and isinstance(good.points[0], Point)  # one bad case never hides the others


def test_a_join_is_no_layer_of_a_sequential(tmp_path: Path) -> None:
    (entry,) = _load(tmp_path, {"name": "s", "block": "sequential", "input": {"shape": [2, 3, 6, 6]},
                                "layers": [{k: v for k, v in STEM.items() if k != "name"}, {"block": "add"}]})
    problem = entry.error or entry.points[0].error
    assert problem.field == "layers[1].inputs" and "add joins two or more inputs, got 1" in problem.message


def test_inputs_default_to_the_node_before_and_name_the_network_input(tmp_path: Path) -> None:
    (entry,) = _load(tmp_path, _graph(STEM, {"name": "act", "block": "relu"},
                                      {"name": "join", "block": "concatenate", "inputs": ["act", "input"]}))
    point = entry.points[0]
    assert [layer.inputs for layer in point.layers] == [(NETWORK_INPUT,), (0,), (1, NETWORK_INPUT)]
    assert point.output_shape == (2, 7, 6, 6)
    assert point.layer_label(2) == "nodes[2] join (concatenate)"


def test_a_sweep_of_a_nodes_parameter_and_a_residual_as_a_node_run(tmp_path: Path) -> None:
    residual = {"name": "res", "block": "residual", "layers": [
        {"block": "conv2d", "params": {"filters": 4, "kernel_size": 3, "padding": 1}}, {"block": "relu"}]}
    (entry,) = _load(tmp_path, _graph(STEM, residual, {"name": "join", "block": "add", "inputs": ["res", "stem"]},
                                      sweep={"nodes.0.kernel_size": [1, 3]}))
    assert [p.sweep_id for p in entry.points] == ["nodes.0.kernel_size=1", "nodes.0.kernel_size=3"]
    assert [run_point(p, "cpu").status for p in entry.points] == ["passed", "passed"]
    assert entry.points[0].layer_label(1) == "nodes[1] res (residual)"


def test_max_elements_raises_the_budget_and_is_refused_below_the_default(tmp_path: Path) -> None:
    big = {"name": "big", "block": "dense", "params": {"units": 70_000_000 // 1000}}
    case = {"name": "g", "block": "graph", "nodes": [{"name": "flat", "block": "flatten"}, big],
            "input": {"shape": [1, 1000]}}
    (refused,) = _load(tmp_path, case)
    assert "a case may raise it with `max_elements`" in str(refused.error)
    (raised,) = _load(tmp_path, {**case, "max_elements": 2 * MAX_ELEMENTS})
    assert isinstance(raised.points[0], Point) and raised.points[0].max_elements == 2 * MAX_ELEMENTS
    (low,) = _load(tmp_path, {**case, "max_elements": 5})
    assert low.error.field == "max_elements" and "at least" in low.error.message


LAYER = {k: v for k, v in STEM.items() if k != "name"}


@pytest.mark.parametrize(("case", "field", "says"), [
    # a network's key on a case of another kind was silently ignored: the case ran without those layers
    ({"name": "g", "block": "conv2d", "params": {"filters": 4, "kernel_size": 3}, "nodes": [STEM],
      "input": {"shape": [2, 3, 6, 6]}}, "nodes", "`nodes` is only for block: graph"),
    ({"name": "g", "block": "conv2d", "params": {"filters": 4, "kernel_size": 3}, "layers": [LAYER],
      "input": {"shape": [2, 3, 6, 6]}}, "layers", "`layers` is only for block: sequential"),
    ({**_graph(STEM), "layers": [LAYER]}, "layers", "a graph case has no `layers` (that is block: sequential's)"),
    ({"name": "g", "block": "sequential", "layers": [LAYER], "nodes": [STEM], "input": {"shape": [2, 3, 6, 6]}},
     "nodes", "a sequential case has no `nodes` (that is block: graph's); its layers go in `layers`"),
])
def test_another_networks_key_is_refused_not_ignored(tmp_path: Path, case: dict, field: str, says: str) -> None:
    (entry,) = _load(tmp_path, case)
    assert entry.error is not None and entry.error.field == field, entry.error
    assert says in entry.error.message, str(entry.error)
