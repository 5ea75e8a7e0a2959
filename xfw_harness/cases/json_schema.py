"""The JSON Schema of a case file, generated from the one source of the rules: the block registry (every block, its
parameters' `Param.json_schema`, defaults and docs) and the loader's own tables (xfw_harness.cases.model, fields).

Editors read it to validate and complete case files as they are typed (docs/writing-cases.md, "Editor support");
the package ships it as xfw_harness/data/case-file.schema.json, which `make schema` (`python -m
xfw_harness.cases.json_schema`) regenerates and tests/cases/test_json_schema.py holds to this module's output.

It declares draft 2020-12 but uses only the keywords draft-07 reads alike (editors' YAML support reads draft-07): no
`$ref` beside other keywords, `if`/`then` instead of `dependentRequired`. It checks the form of a case; what needs
the values together (a kernel larger than its input, `optimizer` without `check: train_step`, whether a network
layer's required parameters are given, since a sweep `layers.<index>.<param>` may give them, a file's contents) is
the loader's, which `xfw-harness check` runs.
What JSON cannot say: `2.0` is an integer to JSON Schema, and YAML 1.2 editors read `1e-5` as a number (the
loader's YAML 1.1 reads text: set the editor to YAML 1.1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from xfw_harness.blocks import MAX_ELEMENTS, Block, all_blocks
from xfw_harness.cases.fields import EXPECT_FAILS, OPTIMIZERS
from xfw_harness.cases.model import (
    CASE_KEYS,
    CASE_SWEEP_KEYS,
    CHECKS,
    COMPARES,
    DEFAULTS,
    DTYPES,
    EXPECT_KEYS,
    FILL_KEYS,
    FILLS,
    GRAPH_INPUT,
    INPUT_KEYS,
    INPUT_SWEEP_KEYS,
    LAYER_KEYS,
    MAX_STEPS,
    MODES,
    NAME_RE,
    NODE_KEYS,
    NODE_NAME_RE,
    PLANT_CHANGES,
    PLANT_KEYS,
    PORT_KEYS,
    TOLERANCE_KEYS,
)
from xfw_harness.core.backend_choice import BACKENDS, DEVICES
from xfw_harness.core.generated import write_generated
from xfw_harness.core.schema import Param

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "data" / "case-file.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# What each key of a case means, for an editor's hover. The keys themselves come from the loader's tables; a test
# fails when a table has a key without a line here.
KEY_DOCS = {
    "name": "unique in its file; part of the test id (letters, digits, '_', '.', '-')",
    "description": "what the case is about (free text)",
    "block": "a registered block (`xfw-harness list`), or a network block (its layers under the key it names)",
    "params": "the block's framework-neutral parameters (the block reference); those left out take its default",
    "layers": "a network's layers, each {block, params, weights}, applied in order",
    "nodes": "a graph's nodes, each {name, block, params, inputs}; the last is the output",
    "input": "the input: always channels-first (N, C, ...), whatever the framework",
    "weights": "{path: FILE.npz}: PyTorch-layout arrays named as the block's weights; default: PyTorch's init",
    "sweep": "lists of values; each combination is its own test",
    "mode": "how the layers run: eval, or train (dropout, batch statistics)",
    "tolerance": "overrides the default tolerance (docs/tolerances.md)",
    "expect": "checks besides torch vs keras: shape, golden output, canary, known difference",
    "devices": "where the case runs; default: every device present",
    "check": "what is compared: forward (always), backward, train_step",
    "steps": "train-mode forward passes and optimiser steps",
    "optimizer": "for check: train_step, PyTorch's conventions; default: every optimiser with its defaults",
    "compare": "frameworks: torch vs keras; devices: each framework's CPU vs GPU; backends: Keras on each backend",
    "defaults": "harness: every parameter explicit; native: each framework's own defaults (a hand port)",
    "torch_params": "with defaults: native, the parameters a hand port wrote for PyTorch alone",
    "keras_params": "with defaults: native, the parameters a hand port wrote for Keras alone",
    "max_elements": "raises the budget of every array the case makes (a large model's weights)",
    "backends": "the Keras backends the case runs on; default: every one the run selects",
    "inputs": "a graph node's inputs: `input` (the network's) or names of nodes written before it",
    "input.shape": "channels-first (N, C, ...)",
    "input.dtype": "the input's dtype (and the layers')",
    "input.fill": "how the input is made",
    "input.seed": "seeds the fill, PyTorch's weight init and dropout",
    "input.values": "with fill: values, the input as a nested list, channels-first",
    "input.path": "with fill: file, a .npy next to the case file",
    "tolerance.atol": "absolute tolerance",
    "tolerance.rtol": "relative tolerance",
    "expect.shape": "the output's channels-first shape",
    "expect.output": "golden values: a nested list (channels-first) or a .npy path",
    "expect.fails": "a canary: passes only when the expectation (or the plant) is reported wrong by this check",
    "expect.plant": "a canary's difference planted into one comparison of the run: in, side, at, value/plus/times",
    "expect.divergent": "a documented real difference, why: passes only while torch and keras differ",
    "expect.reference": "true: require the float64 reference (computed at every point unless false: then only when "
                        "the frameworks disagree)",
    "expect.refuses": "with divergent: the difference is Keras refusing the hand port with this text",
    "expect.backends": "with divergent: the Keras backends on which the difference holds",
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _doc(key: str, schema: dict[str, Any], default: Any = None) -> dict[str, Any]:
    """`schema` with its key's description (and a default to complete with); a `$ref` goes under allOf, since
    draft-07 ignores whatever stands beside one."""
    out = {"allOf": [schema]} if "$ref" in schema else dict(schema)
    out["description"] = KEY_DOCS[key]
    if default is not None:
        out["default"] = default
    return out


def _list_of(item: dict[str, Any], at_least: int = 1) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": at_least}


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, (tuple, list)) else value


def param_schema(p: Param) -> dict[str, Any]:
    """One parameter: what it accepts, its doc, what is allowed and its default."""
    schema = dict(p.json_schema())
    schema["description"] = f"{p.doc}. Allowed: {p.allowed()}. Default: {p.describe_default()}."
    if not p.required and not p.default_text and p.default is not None:
        schema["default"] = _jsonable(p.default)
    return schema


def params_object(params: tuple[Param, ...], required: bool = False) -> dict[str, Any]:
    """A `params` mapping of a block (or an optimiser's keys): its parameters and nothing else."""
    schema: dict[str, Any] = {"type": "object", "properties": {p.name: param_schema(p) for p in params},
                              "additionalProperties": False}
    if required and (names := [p.name for p in params if p.required]):
        schema["required"] = names
    return schema


def _enum(names: dict[str, Block]) -> dict[str, Any]:
    """A block name: completion lists each with its doc."""
    return {"enum": list(names), "markdownEnumDescriptions": [f"{b.doc} ({b.family})" for b in names.values()]}


def _when(key: str, value: Any, then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {key: {"const": value}}, "required": [key]}, "then": then}


def _layer(blocks: dict[str, Block], graph: bool, nested: bool) -> dict[str, Any]:
    """An item of a network's `layers` (a chain), `nodes` (`graph`), or a composite block's lists (`nested`): its
    keys are the block's, so each block has its `then` (additionalProperties sees only its own properties)."""
    keys = NODE_KEYS if graph else LAYER_KEYS
    cases = []
    for name, block in blocks.items():
        props: dict[str, Any] = {k: {} for k in keys}
        props["params"] = _ref(f"params.{name}")
        for key in PORT_KEYS:
            props[key] = _ref(f"params.{name}")
        if not block.weight_names or nested:  # the runner reads weights files into top-level layers only
            props.pop("weights")
        for key, required in block.nested.items():
            props[key] = _list_of(_ref("layer.nested"), 1 if required else 0)
        then: dict[str, Any] = {"properties": props, "additionalProperties": False}
        if needed := [key for key, required in block.nested.items() if required]:
            then["required"] = needed
        cases.append(_when("block", name, then))
    props = {"block": _enum(blocks), "params": {"type": "object"}, "weights": _ref("weights")}
    props |= {key: _doc(key, {"type": "object", "minProperties": 1}) for key in PORT_KEYS}
    if graph:
        props["name"] = {"type": "string", "pattern": NODE_NAME_RE.pattern, "not": {"const": GRAPH_INPUT},
                         "description": "the node's name, unique among the nodes"}
        name = {"type": "string"}
        props["inputs"] = _doc("inputs", {"anyOf": [name, _list_of(name)]})
    return {"type": "object", "required": ["block", "name"] if graph else ["block"], "properties": props,
            "allOf": cases}


def _sweep(block: Block, input_props: dict[str, Any], case_props: dict[str, Any]) -> dict[str, Any]:
    """A case's `sweep`: lists of values for the block's parameters (or `layers.<index>.<param>` in a network),
    INPUT_SWEEP_KEYS and CASE_SWEEP_KEYS, each value checked as the key it sets."""
    assert all(k.split(".", 1)[1] in input_props for k in INPUT_SWEEP_KEYS) and set(CASE_SWEEP_KEYS) <= set(case_props)
    props = {key: _list_of(_ref(f"case/properties/input/properties/{key.split('.', 1)[1]}"))
             for key in INPUT_SWEEP_KEYS}
    props |= {key: _list_of(_ref(f"case/properties/{key}")) for key in CASE_SWEEP_KEYS}
    schema: dict[str, Any] = {"type": "object", "minProperties": 1, "additionalProperties": False}
    if block.holds_network:
        schema["patternProperties"] = {rf"^{key}\.[0-9]+\.\w+$": _list_of({}) for key in block.nested}
    else:
        props |= {p.name: _list_of(_ref(f"params.{block.name}/properties/{p.name}")) for p in block.params}
    schema["properties"] = props
    return schema


def _case_rules(name: str, block: Block, network_keys: tuple[str, ...], input_props: dict[str, Any],
                case_props: dict[str, Any]) -> dict[str, Any]:
    """What a case of `block` may and must have."""
    then: dict[str, Any] = {"properties": {"sweep": _sweep(block, input_props, case_props)}}
    props = then["properties"]
    if block.holds_network:
        key = next(iter(block.nested))
        props[key] = _list_of(_ref("node" if block.graph else "layer"))
        props |= {k: False for k in ("params", "weights", *PORT_KEYS)}
        props |= {k: False for k in network_keys if k != key}
        then["required"] = [key]
        return _when("block", name, then)
    props["params"] = _ref(f"params.{name}")
    props |= {key: _ref(f"params.{name}") for key in PORT_KEYS}
    props |= {k: False for k in network_keys}
    if not block.weight_names:
        props["weights"] = False
    # A required parameter may be given by the sweep alone.
    if rules := [{"anyOf": [{"required": [where], "properties": {where: {"required": [p.name]}}}
                            for where in ("params", "sweep")]} for p in block.params if p.required]:
        then["allOf"] = rules
    return _when("block", name, then)


def _input(defaults: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `input` mapping, and its properties (which its sweep keys reuse)."""
    props = {
        "shape": _doc("input.shape", _list_of({"type": "integer", "minimum": 1}, 2)),
        "dtype": _doc("input.dtype", {"enum": list(DTYPES)}, defaults["input.dtype"]),
        "fill": _doc("input.fill", {"enum": list(FILLS)}, defaults["input.fill"]),
        "seed": _doc("input.seed", {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}, defaults["input.seed"]),
        "values": _doc("input.values", {"type": "array"}),
        "path": _doc("input.path", {"type": "string", "pattern": r"\.npy$"}),
    }
    assert tuple(props) == INPUT_KEYS, "a key of INPUT_KEYS has no schema here"
    rules = []
    for fill, key in FILL_KEYS.items():  # each data key is read with its fill only, and that fill needs it
        only_with = {"required": ["fill"], "properties": {"fill": {"const": fill}}}
        rules.append({"if": {"required": [key]}, "then": only_with})
        rules.append(_when("fill", fill, {"required": [key]}))
    return {"type": "object", "properties": props, "additionalProperties": False, "allOf": rules}, props


def _expect() -> dict[str, Any]:
    backends = _list_of({"enum": list(BACKENDS)})
    text = {"type": "string", "pattern": r"\S"}
    props = {
        "shape": _list_of({"type": "integer", "minimum": 1}),
        "output": {"anyOf": [{"type": "string", "pattern": r"\.npy$"}, {"type": "array"}]},
        "fails": {"enum": list(EXPECT_FAILS)},
        "plant": _plant(),
        "divergent": text,
        "reference": {"type": "boolean"},
        "refuses": text,
        "backends": backends,
    }
    assert tuple(props) == EXPECT_KEYS, "a key of EXPECT_KEYS has no schema here"
    rules = [{"if": {"required": [key]}, "then": {"required": ["divergent"]}} for key in ("refuses", "backends")]
    rules.append({"if": {"required": ["fails"]}, "then": {"anyOf": [{"required": ["shape"]},
                                                                    {"required": ["output"]},
                                                                    {"required": ["plant"]}],
                                                          "not": {"required": ["divergent"]}}})
    rules.append({"if": {"required": ["plant"]}, "then": {"required": ["fails"]}})  # only a canary plants
    rules.append(_when("fails", "sample", {"required": ["plant"]}))
    return {"type": "object", "properties": {k: _doc(f"expect.{k}", v) for k, v in props.items()},
            "additionalProperties": False, "allOf": rules}


def _plant() -> dict[str, Any]:
    """expect.plant (xfw_harness.cases.fields.read_expect_plant): a comparison's side, element and change."""
    props = {
        "in": {"type": "string", "pattern": r"\S", "description": "the comparison, as results name it"},
        "side": {"type": "string", "pattern": r"\S", "description": "which of its two arrays"},
        "at": {**_list_of({"type": "integer", "minimum": 0}),
               "description": "an index or its leading part; default: all"},
        "value": {"type": "number", "description": "set the elements to this (.nan, .inf, -.inf too)"},
        "plus": {"type": "number", "description": "add this to the elements"},
        "times": {"type": "number", "description": "multiply the elements by this"},
    }
    assert tuple(props) == PLANT_KEYS, "a key of PLANT_KEYS has no schema here"
    one_change = [{"required": [c], "not": {"anyOf": [{"required": [o]} for o in PLANT_CHANGES if o != c]}}
                  for c in PLANT_CHANGES]
    return {"type": "object", "properties": props, "additionalProperties": False, "required": ["in", "side"],
            "oneOf": one_change}


def _optimizer() -> dict[str, Any]:
    name = {"enum": list(OPTIMIZERS)}
    rules = [_when("name", opt, {"properties": {"name": name, **params_object(params)["properties"]},
                                 "additionalProperties": False}) for opt, params in OPTIMIZERS.items()]
    return {"type": "object", "required": ["name"], "properties": {"name": name}, "allOf": rules}


def case_file_schema() -> dict[str, Any]:
    """The JSON Schema of a case file (a YAML list of cases), from the registry and the loader's tables."""
    blocks = all_blocks()
    layers = {n: b for n, b in blocks.items() if not b.holds_network}  # a network cannot be nested
    cases = {n: b for n, b in blocks.items() if b.holds_network or not b.nested}  # a composite is a layer
    network_keys = tuple(dict.fromkeys(key for b in blocks.values() if b.holds_network for key in b.nested))
    defaults = loader_defaults()
    input_schema, input_props = _input(defaults)
    checks = {"enum": list(CHECKS)}
    props: dict[str, Any] = {
        "name": {"type": "string", "pattern": NAME_RE.pattern},
        "description": {"type": "string"},
        "block": _enum(cases),
        "params": {"type": "object"},
        "layers": {"type": "array"},
        "nodes": {"type": "array"},
        "input": input_schema,
        "weights": _ref("weights"),
        "sweep": {"type": "object"},
        "mode": {"enum": list(MODES)},
        "tolerance": {"type": "object", "minProperties": 1, "additionalProperties": False,
                      "properties": {k: _doc(f"tolerance.{k}", {"type": "number", "minimum": 0})
                                     for k in TOLERANCE_KEYS}},
        "expect": _expect(),
        "devices": _list_of({"enum": list(DEVICES)}),
        "check": {"anyOf": [checks, _list_of(checks)]},
        "steps": {"type": "integer", "minimum": 1, "maximum": MAX_STEPS},
        "optimizer": {"anyOf": [_ref("optimizer"), _list_of(_ref("optimizer"))]},
        "compare": {"enum": list(COMPARES)},
        "defaults": {"enum": list(DEFAULTS)},
        "torch_params": {"type": "object", "minProperties": 1},
        "keras_params": {"type": "object", "minProperties": 1},
        "max_elements": {"type": "integer", "minimum": MAX_ELEMENTS},
        "backends": _list_of({"enum": list(BACKENDS)}),
    }
    assert tuple(props) == CASE_KEYS, "a key of CASE_KEYS has no schema here"
    # The input's shape: written, read from its data (FILL_KEYS), or given by the sweep alone.
    assert "input.shape" in INPUT_SWEEP_KEYS
    has_shape = {"anyOf": [{"required": ["shape"]},
                           {"required": ["fill"], "properties": {"fill": {"enum": list(FILL_KEYS)}}}]}
    shape_rule = {"if": {"required": ["sweep"], "properties": {"sweep": {"required": ["input.shape"]}}},
                  "else": {"required": ["input"], "properties": {"input": has_shape}}}
    case = {"type": "object", "required": ["name", "block"], "additionalProperties": False,
            "properties": {k: _doc(k, v, defaults.get(k)) for k, v in props.items()},
            "allOf": [shape_rule, *(_case_rules(n, b, network_keys, input_props, props) for n, b in cases.items())]}
    defs: dict[str, Any] = {"case": case, "layer": _layer(layers, graph=False, nested=False),
                            "node": _layer(layers, graph=True, nested=False),
                            "layer.nested": _layer(layers, graph=False, nested=True),
                            "weights": {"type": "object", "required": ["path"], "additionalProperties": False,
                                        "properties": {"path": {"type": "string", "pattern": r"\.npz$"}}},
                            "optimizer": _optimizer()}
    defs |= {f"params.{n}": params_object(b.params) for n, b in layers.items()}
    return {"$schema": DRAFT, "title": "xfw-harness case file",
            "description": "A YAML list of cases, each comparing a block (or a network) in PyTorch and in Keras "
                           "(docs/writing-cases.md).",
            "type": "array", "items": _ref("case"), "$defs": defs}


def loader_defaults() -> dict[str, Any]:
    """What the loader makes of the case keys a minimal case leaves out (an editor completes with them): read from
    a case loaded by the loader itself, not written down a second time."""
    from xfw_harness.cases.loader import load_case

    block = next(n for n, b in all_blocks().items() if not b.nested and not any(p.required for p in b.params)
                 and b.arity == 1 and (b.ranks is None or 2 in b.ranks))
    entry = load_case("<defaults>", 0, {"name": "defaults", "block": block, "input": {"shape": [1, 1]}}, Path(), set())
    if entry.error is not None:
        raise entry.error
    point = entry.points[0]
    return {"mode": point.mode, "check": list(point.checks), "steps": point.steps, "compare": point.compare_with,
            "defaults": point.defaults, "input.dtype": point.input.dtype, "input.fill": point.input.fill,
            "input.seed": point.input.seed}


def schema_text() -> str:
    """The schema as the shipped file holds it."""
    return json.dumps(case_file_schema(), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m xfw_harness.cases.json_schema [FILE]`: write the schema (default: the shipped file)."""
    return write_generated(sys.argv[1:] if argv is None else argv, SCHEMA_FILE, schema_text)


if __name__ == "__main__":
    sys.exit(main())
