"""The case file's JSON Schema (xfw_harness.cases.json_schema): the shipped file is current, every shipped case
validates, every block and parameter is in it, each parameter accepts what its `Param` accepts, and the mistakes the
loader rejects are rejected by the schema too (each planted below, and checked against the loader first)."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from xfw_harness.blocks import all_blocks
from xfw_harness.cases import OPTIMIZERS, RefusedPoint, load_file
from xfw_harness.cases.json_schema import SCHEMA_FILE, case_file_schema, schema_text
from xfw_harness.cases.safe_yaml import CaseLoader
from xfw_harness.core.schema import Param

ROOT = Path(__file__).resolve().parents[2]
CASE_FILES = sorted((ROOT / "cases").rglob("*.yaml"))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return case_file_schema()


@pytest.fixture(scope="module", params=[Draft202012Validator, Draft7Validator], ids=["2020-12", "draft-07"])
def validator(schema: dict[str, Any], request: pytest.FixtureRequest) -> Draft202012Validator:
    """The schema as it declares itself (2020-12), and as editors' YAML support reads it (draft-07): the same
    answers either way."""
    return request.param(schema)


def test_the_shipped_file_is_generated_from_the_registry_as_it_is() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        f"{SCHEMA_FILE} is stale: regenerate it with `make schema` (python -m xfw_harness.cases.json_schema)")


def test_the_schema_is_valid_for_2020_12_and_for_the_draft_07_editors_read(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    Draft7Validator.check_schema(schema)
    refs_with_siblings = []

    def walk(node: Any, where: str) -> None:  # draft-07 ignores every keyword beside a $ref
        if isinstance(node, dict):
            if "$ref" in node and len(node) > 1:
                refs_with_siblings.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "#")
    assert not refs_with_siblings


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_case_validates(validator: Draft202012Validator, path: Path) -> None:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=CaseLoader)  # noqa: S506 - a SafeLoader
    errors = [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(data)]
    assert not errors


def test_the_shipped_cases_are_found() -> None:
    assert len(CASE_FILES) > 30 and any(p.parent.name == "networks" for p in CASE_FILES)


def test_every_block_and_parameter_appears_with_its_doc_and_default(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    blocks = all_blocks()
    named = set(defs["case"]["properties"]["block"]["enum"]) | set(defs["layer"]["properties"]["block"]["enum"])
    assert named == set(blocks)
    for name, block in blocks.items():
        if block.holds_network:
            continue
        props = defs[f"params.{name}"]["properties"]
        assert list(props) == [p.name for p in block.params], name
        for p in block.params:
            assert p.doc in props[p.name]["description"] and p.allowed() in props[p.name]["description"]
            if "default" in props[p.name]:
                assert p.normalise(props[p.name]["default"]) == p.normalise(p.default)
    descriptions = defs["case"]["properties"]["block"]["markdownEnumDescriptions"]
    assert all(any(b.doc in d for d in descriptions) for n, b in blocks.items() if not b.nested)


def _probes() -> list[Any]:
    """Values to try on every parameter: the usual forms and mistakes, and every choice and default of every block
    (integral floats left out: JSON Schema counts 2.0 as an integer, where the loader does not)."""
    values: list[Any] = [0, 1, 2, 3, 7, 100, -1, -3, 0.5, 1.5, 0.99, 1e-8, 1.5e3, -0.5, "1e-5", "0.5", "3", "valid",
                         "same", "full", True, False, None, [], [1], [2], [0], [1, 2], [0, 0], [2, 3], [1, 2, 3],
                         [0, 0, 0], [1, 1, 1, 1], [[1, 2]], [[1, 2], [3, 4]], [[0, 1], [2, 3], [4, 5]], [1, None],
                         [None, 2, None], [0.5, 2.0], [-1, 2], [1.5, 2], [True, 1], {"a": 1}]
    params = [p for b in all_blocks().values() for p in b.params] + [p for ps in OPTIMIZERS.values() for p in ps]
    for p in params:
        values += [list(c) if isinstance(c, tuple) else c for c in p.choices]
        values += [str(c) for c in p.choices]
        if not p.required:
            values.append(json.loads(json.dumps(p.default)))
    return [v for v in values if not (isinstance(v, float) and v.is_integer())]


def _accepts(p: Param, value: Any) -> bool:
    try:
        p.normalise(value)
    except Exception:  # noqa: BLE001 - a CaseError, or a crash the schema cannot be asked to agree with
        return False
    return True


def test_each_parameter_accepts_what_its_param_accepts_and_nothing_else() -> None:
    probes = _probes()
    params = {f"{n}.{p.name}": p for n, b in all_blocks().items() for p in b.params}
    params |= {f"optimizer {n}.{p.name}": p for n, ps in OPTIMIZERS.items() for p in ps}
    disagreements = []
    for where, p in params.items():
        fragment = Draft202012Validator(p.json_schema())
        for value in probes:
            if fragment.is_valid(value) != _accepts(p, value):
                disagreements.append(f"{where} ({p.kind}) {value!r}: schema {fragment.is_valid(value)}")
    assert not disagreements


def test_the_probe_catches_a_param_schema_that_disagrees() -> None:
    """The comparison above can fail: a parameter whose schema forgot its minimum is caught."""
    p = Param("filters", "int", 1, minimum=1)
    loose = Draft202012Validator({"type": "integer"})
    assert [v for v in _probes() if loose.is_valid(v) != _accepts(p, v)]


VALID = """
- name: ok
  block: conv2d
  params: {filters: 4, kernel_size: 3}
  input: {shape: [1, 3, 8, 8]}
"""

# Each a mistake the loader rejects, planted into a valid case.
PLANTED = {
    "unknown block": ("block: conv2d", "block: conv2dd"),
    "unknown parameter": ("kernel_size: 3}", "kernel_size: 3, stride: 2}"),
    "wrong type": ("filters: 4", "filters: four"),
    "bool for an int": ("filters: 4", "filters: true"),
    "value outside an enum": ("kernel_size: 3}", "kernel_size: 3, padding_mode: mirror}"),
    "unknown top-level key": ("  block: conv2d", "  block: conv2d\n  tolerence: {atol: 1.0e-5}"),
    "missing required parameter": ("filters: 4, ", ""),
    "epsilon: 1e-5 (YAML text)": ("block: conv2d\n  params: {filters: 4, kernel_size: 3}",
                                  "block: batch_norm2d\n  params: {epsilon: 1e-5}"),
    "a string where a number is wanted in the tolerance": ("  block: conv2d",
                                                           "  block: conv2d\n  tolerance: {rtol: 1e-5}"),
    "unknown mode": ("  block: conv2d", "  block: conv2d\n  mode: training"),
    "unknown dtype": ("shape: [1, 3, 8, 8]}", "shape: [1, 3, 8, 8], dtype: float8}"),
    "input without a shape": ("{shape: [1, 3, 8, 8]}", "{seed: 1}"),
    "values without fill: values": ("shape: [1, 3, 8, 8]}", "shape: [1, 3, 8, 8], values: [[1.0]]}"),
    "negative seed": ("shape: [1, 3, 8, 8]}", "shape: [1, 3, 8, 8], seed: -1}"),
    "unknown sweep key": ("  block: conv2d", "  block: conv2d\n  sweep: {filter: [1, 2]}"),
    "bad sweep value": ("  block: conv2d", "  block: conv2d\n  sweep: {strides: [1, -2]}"),
    "weights on a block without weights": ("block: conv2d\n  params: {filters: 4, kernel_size: 3}",
                                           "block: relu\n  weights: {path: w.npz}"),
    "check outside its choices": ("  block: conv2d", "  block: conv2d\n  check: [forward, gradient]"),
    "steps over the limit": ("  block: conv2d", "  block: conv2d\n  check: train_step\n  steps: 1000"),
    "unknown optimizer": ("  block: conv2d", "  block: conv2d\n  check: train_step\n  optimizer: {name: rmsprop}"),
    "an optimizer's unknown key": ("  block: conv2d",
                                   "  block: conv2d\n  check: train_step\n  optimizer: {name: sgd, beta_1: 0.9}"),
    "adam's beta of 1": ("  block: conv2d",
                         "  block: conv2d\n  check: train_step\n  optimizer: {name: adam, beta_1: 1.0}"),
    "expect.refuses without divergent": ("  block: conv2d", "  block: conv2d\n  expect: {refuses: no}"),
    "expect.fails without an expectation": ("  block: conv2d", "  block: conv2d\n  expect: {fails: values}"),
    "unknown device": ("  block: conv2d", "  block: conv2d\n  devices: [tpu]"),
    "a backend outside the list": ("  block: conv2d", "  block: conv2d\n  backends: [mxnet]"),
    "params on a sequential": ("block: conv2d\n  params: {filters: 4, kernel_size: 3}",
                               "block: sequential\n  params: {filters: 4}\n  layers: [{block: relu}]"),
    "a layer's unknown parameter": ("block: conv2d\n  params: {filters: 4, kernel_size: 3}",
                                    "block: sequential\n  layers: [{block: relu, params: {inplace: true}}]"),
    "a layer's unknown key": ("block: conv2d\n  params: {filters: 4, kernel_size: 3}",
                              "block: sequential\n  layers: [{block: relu, param: {}}]"),
    "a network nested": ("block: conv2d\n  params: {filters: 4, kernel_size: 3}",
                         "block: sequential\n  layers: [{block: sequential, layers: [{block: relu}]}]"),
    "a composite as a case": ("block: conv2d\n  params: {filters: 4, kernel_size: 3}",
                              "block: residual\n  layers: [{block: relu}]"),
    "a graph node without a name": ("block: conv2d\n  params: {filters: 4, kernel_size: 3}",
                                    "block: graph\n  nodes: [{block: relu}]"),
    "a layer's empty keras_params": ("block: conv2d\n  params: {filters: 4, kernel_size: 3}",
                                     "block: sequential\n  defaults: native\n"
                                     "  layers: [{block: relu, keras_params: {}}]"),
    "torch_params' unknown parameter": ("kernel_size: 3}", "kernel_size: 3}\n  defaults: native\n"
                                                           "  torch_params: {padding_mod: reflect}"),
}


def _case(name: str) -> str:
    old, new = PLANTED[name]
    assert old in VALID, name
    return VALID.replace(old, new, 1)


def _loader_errors(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "case.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    entries, error = load_file(path)
    errors = [str(error)] if error else []
    for entry in entries:
        errors += [str(entry.error)] if entry.error else []
        errors += [str(p.error) for p in entry.points if isinstance(p, RefusedPoint)]
    return errors


def test_the_valid_case_is_valid_to_both(validator: Draft202012Validator, tmp_path: Path) -> None:
    assert _loader_errors(VALID, tmp_path) == []
    assert validator.is_valid(yaml.load(VALID, Loader=CaseLoader))  # noqa: S506


@pytest.mark.parametrize("name", PLANTED)
def test_a_mistake_the_loader_rejects_is_rejected_by_the_schema(validator: Draft202012Validator, tmp_path: Path,
                                                                name: str) -> None:
    text = _case(name)
    assert _loader_errors(text, tmp_path), f"the loader accepts {name!r}: not a planted mistake"
    assert not validator.is_valid(yaml.load(text, Loader=CaseLoader)), name  # noqa: S506


def test_yaml_1e5_is_text_to_the_loader_and_so_to_the_schema(validator: Draft202012Validator) -> None:
    data = yaml.load(_case("epsilon: 1e-5 (YAML text)"), Loader=CaseLoader)  # noqa: S506
    assert data[0]["params"]["epsilon"] == "1e-5"
    fixed = yaml.load(_case("epsilon: 1e-5 (YAML text)").replace("1e-5", "1.0e-5"), Loader=CaseLoader)  # noqa: S506
    assert math.isclose(fixed[0]["params"]["epsilon"], 1e-5) and validator.is_valid(fixed)
