"""The case loader's input handling: every bad input is a CaseError that names the file, the case and the field
and says what is allowed; one bad case never hides the others; defaults, normalisation and sweeps."""

from __future__ import annotations

import copy
import os
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.blocks import MAX_ELEMENTS
from xfw_harness.cases import CaseEntry, InputSpec, Point, RefusedPoint, load_file, load_paths
from xfw_harness.core.errors import CaseError, Refusal
from xfw_harness.core.frameworks import BACKEND, BACKENDS

CONV = {"name": "c", "block": "conv2d", "params": {"filters": 2, "kernel_size": 3},
        "input": {"shape": [1, 3, 8, 8]}}
NET = {"name": "c", "block": "sequential",
       "layers": [{"block": "conv2d", "params": {"filters": 2, "kernel_size": 3}}, {"block": "flatten"},
                  {"block": "dense", "params": {"units": 4}}],
       "input": {"shape": [1, 3, 8, 8]}}
RELU = {"name": "c", "block": "relu", "input": {"shape": [1, 3, 8, 8]}}
DELETE = object()


def case(base: dict = CONV, **changes: Any) -> dict:
    """A copy of `base` with top-level keys changed (DELETE removes one; a dict value is merged one level)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in {**out[key], **value}.items() if v is not DELETE}
        else:
            out[key] = value
    return out


def write(directory: Path, content: Any, name: str = "cases.yaml") -> Path:
    path = directory / name
    text = textwrap.dedent(content) if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def load(directory: Path, content: Any, name: str = "cases.yaml") -> tuple[Path, list[CaseEntry]]:
    path = write(directory, content, name)
    entries, err = load_file(path)
    assert err is None, f"unexpected file error: {err}"
    return path, entries


def case_error(directory: Path, raw: Any) -> tuple[Path, CaseError]:
    """The error of the one case in a file holding `raw`."""
    path, entries = load(directory, [raw])
    assert len(entries) == 1
    assert entries[0].error is not None, f"case loaded without error: {entries[0].points}"
    assert entries[0].points == []
    return path, entries[0].error


def points(directory: Path, raw: Any) -> list[Point]:
    _, entries = load(directory, [raw])
    assert len(entries) == 1 and entries[0].error is None, entries[0].error
    assert all(isinstance(p, Point) for p in entries[0].points), [getattr(p, "error", None) for p in entries[0].points]
    return entries[0].points


def assert_located(err: CaseError, path: Path, case_name: str | None, field: str | None, *needles: str) -> str:
    text = str(err)
    assert path.name in text and err.file is not None and err.file.endswith(path.name), text
    if case_name is not None:
        assert err.case == case_name and f"case '{case_name}'" in text, text
    if field is not None:
        assert err.field == field and f"field '{field}'" in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in: {text}"
    assert "Traceback" not in text
    return text


# --- file-level errors --------------------------------------------------------------------------------------

def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        - name: a
          block: conv2d
          params: {filters: 2, kernel_size: [3, 3}
        """)
    entries, err = load_file(path)
    assert entries == [] and err is not None
    assert_located(err, path, None, None, "invalid YAML", "line 3")


def test_file_that_is_not_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, {"name": "a", "block": "relu"})
    entries, err = load_file(path)
    assert entries == [] and err is not None
    assert_located(err, path, None, None, "a YAML list of cases", "dict")


def test_empty_file_has_no_cases_and_no_error(tmp_path: Path) -> None:
    assert load_file(write(tmp_path, "")) == ([], None)


def test_case_that_is_not_a_mapping(tmp_path: Path) -> None:
    path, entries = load(tmp_path, [case(name="ok"), 3, "text"])
    assert entries[0].error is None and len(entries[0].points) == 1
    assert_located(entries[1].error, path, "#2", None, "must be a mapping", "int")
    assert_located(entries[2].error, path, "#3", None, "must be a mapping", "str")


def test_load_paths_reports_file_errors_and_loads_the_other_files(tmp_path: Path) -> None:
    write(tmp_path, [case(name="good")], "a.yaml")
    bad = write(tmp_path, "- [unclosed\n", "b.yaml")
    (tmp_path / "notes.txt").write_text("not a case file")
    entries, errors = load_paths([tmp_path])
    assert [e.name for e in entries] == ["good"]
    assert len(errors) == 1
    assert_located(errors[0], bad, None, None, "invalid YAML", "line")


def test_load_paths_missing_file_is_a_file_error(tmp_path: Path) -> None:
    entries, errors = load_paths([tmp_path / "nope.yaml"])
    assert entries == [] and len(errors) == 1
    assert "nope.yaml" in str(errors[0]) and "cannot read" in str(errors[0])


# --- case-level errors: file, case and field named, what is allowed said ------------------------------------

BAD_CASES = [
    # id, case, (reported case name, field, substrings of the message)
    ("no-name", case(name=DELETE), "#1", "name", ["got None", "allowed: a non-empty name"]),
    ("name-with-space", case(name="a b"), "a b", "name", ["allowed: a non-empty name"]),
    ("name-not-string", case(name=5), "#1", "name", ["got 5", "allowed"]),
    ("unknown-key", case(paramz={}), "c", "paramz", ["unknown key 'paramz'", "allowed: name, description, block"]),
    ("no-block", case(block=DELETE), "c", "block", ["missing", "allowed"]),
    ("unknown-param", case(params={"stride": 2}), "c", "params.stride",
     ["unknown parameter 'stride'", "allowed: filters, kernel_size, strides, padding"]),
    ("no-param-block", case(RELU, params={"x": 1}), "c", "params.x", ["none (this block takes no"]),
    ("params-not-mapping", case(params=[1, 2]), "c", "params", ["must be a mapping", "list"]),
    ("missing-required", case(params={"kernel_size": DELETE}), "c", "params.kernel_size",
     ["missing required parameter", "an integer >= 1 or a list [h, w]"]),
    ("kernel-string", case(params={"kernel_size": "three"}), "c", "params.kernel_size",
     ["got 'three'", "allowed: an integer >= 1 or a list [h, w] of two such integers"]),
    ("filters-zero", case(params={"filters": 0}), "c", "params.filters", ["got 0", "allowed: an integer >= 1"]),
    ("filters-bool", case(params={"filters": True}), "c", "params.filters", ["got True", "allowed: an integer >= 1"]),
    ("filters-float", case(params={"filters": 2.0}), "c", "params.filters", ["got 2.0", "allowed: an integer"]),
    ("strides-3", case(params={"strides": [1, 2, 3]}), "c", "params.strides",
     ["got [1, 2, 3]", "allowed: an integer >= 1 or a list [h, w]"]),
    ("padding-word", case(params={"padding": "full"}), "c", "params.padding", ["got 'full'", '"valid" or "same"']),
    ("padding-negative", case(params={"padding": -1}), "c", "params.padding", ["got -1", "an integer >= 0"]),
    ("use-bias-string", case(params={"use_bias": "yes"}), "c", "params.use_bias", ["allowed: true or false"]),
    ("choice", case(RELU, block="gelu", params={"approximate": "fast"}), "c", "params.approximate",
     ["got 'fast'", "one of 'none', 'tanh'"]),
    ("float-range", case(RELU, block="dropout", params={"rate": 1.0}), "c", "params.rate", ["got 1.0", "<= 0.99"]),
    ("no-input", case(input=DELETE), "c", "input", ["must be a mapping", "shape"]),
    ("input-unknown-key", case(input={"size": 3}), "c", "input.size", ["unknown key 'size'", "allowed: shape, dtype"]),
    ("rank-1", case(RELU, input={"shape": [3]}), "c", "input.shape",
     ["got [3]", "at least 2 positive integers"]),
    ("zero-dim", case(input={"shape": [1, 0, 4, 4]}), "c", "input.shape", ["got [1, 0, 4, 4]", "positive integers"]),
    ("negative-dim", case(input={"shape": [1, -3, 4, 4]}), "c", "input.shape", ["got [1, -3, 4, 4]", "positive"]),
    ("float-dim", case(input={"shape": [1, 3, 4.5, 4]}), "c", "input.shape", ["4.5", "positive integers"]),
    ("string-dim", case(input={"shape": [1, "3", 4, 4]}), "c", "input.shape", ["'3'", "positive integers"]),
    ("bool-dim", case(input={"shape": [1, True, 4, 4]}), "c", "input.shape", ["True", "positive integers"]),
    ("shape-not-list", case(input={"shape": "1x3x8x8"}), "c", "input.shape", ["'1x3x8x8'", "positive integers"]),
    ("no-shape", case(input={"shape": DELETE, "seed": 1}), "c", "input.shape", ["missing", "positive integers"]),
    ("rank-mismatch", case(input={"shape": [1, 3, 8]}), "c", "input.shape",
     ["conv2d needs an input of rank 4", "[1, 3, 8]"]),
    ("dtype", case(input={"dtype": "int8"}), "c", "input.dtype",
     ["got 'int8'", "allowed: float32, float64, float16, bfloat16"]),
    ("fill", case(input={"fill": "zeros"}), "c", "input.fill",
     ["got 'zeros'", "allowed: normal, uniform, arange, values, file"]),
    ("seed-negative", case(input={"seed": -1}), "c", "input.seed", ["got -1", "an integer >= 0"]),
    ("seed-bool", case(input={"seed": True}), "c", "input.seed", ["got True", "an integer >= 0"]),
    ("values-without-fill", case(input={"values": [[1.0]]}), "c", "input.values", ["only read with fill: values"]),
    ("path-without-fill", case(input={"path": "x.npy"}), "c", "input.path", ["only read with fill: file"]),
    ("values-missing", case(input={"shape": DELETE, "fill": "values"}), "c", "input.values", ["needs `values`"]),
    ("values-mismatch", case(block="relu", params=DELETE,
                             input={"shape": [1, 2], "fill": "values", "values": [[1.0, 2.0, 3.0]]}),
     "c", "input.shape", ["the values data has shape [1, 3] but input.shape is [1, 2]"]),
    ("values-ragged", case(RELU, input={"shape": DELETE, "fill": "values",
                                                             "values": [[1, 2, 3], [4]]}),
     "c", "input.values", ["rectangular"]),
    ("values-not-numbers", case(RELU, input={"shape": DELETE, "fill": "values",
                                                                  "values": [[1, "x"]]}),
     "c", "input.values", ["nested list of numbers"]),
    ("values-scalar", case(RELU, input={"shape": DELETE, "fill": "values", "values": 3}),
     "c", "input.values", ["shape []", "at least 2 dimensions"]),
    ("values-rank-1", case(RELU, input={"shape": DELETE, "fill": "values",
                                                             "values": [1, 2]}),
     "c", "input.values", ["shape [2]", "at least 2 dimensions"]),
    ("values-empty", case(RELU, input={"shape": DELETE, "fill": "values", "values": [[]]}),
     "c", "input.values", ["shape [1, 0]", "none empty"]),
    ("sweep-unknown-key", case(sweep={"stride": [1, 2]}), "c", "sweep.stride",
     ["unknown sweep key 'stride'", "allowed: filters, kernel_size, strides", "input.shape"]),
    ("sweep-wrong-type", case(sweep={"strides": [1, "x", 2]}), "c", "sweep.strides[1]",
     ["got 'x'", "allowed: an integer >= 1 or a list [h, w]"]),
    ("sweep-pair-of-3", case(sweep={"padding": [0, [1, 2, 3]]}), "c", "sweep.padding[1]", ["got [1, 2, 3]"]),
    ("sweep-unknown-block", case(block="conv2", sweep={"strides": [1, 2]}), "c", "block",
     ["did you mean 'conv2d'"]),
    ("sweep-not-list", case(sweep={"strides": 2}), "c", "sweep.strides", ["non-empty list", "got 2"]),
    ("sweep-empty-list", case(sweep={"strides": []}), "c", "sweep.strides", ["non-empty list"]),
    ("sweep-not-mapping", case(sweep=[1, 2]), "c", "sweep", ["mapping of keys to lists"]),
    ("sweep-dtype", case(sweep={"input.dtype": ["float32", "int8"]}), "c", "sweep.input.dtype[1]",
     ["got 'int8'", "allowed: float32, float64"]),
    ("sweep-shape", case(sweep={"input.shape": [[1, 3, 8, 8], [1, 3, 0, 8]]}), "c", "sweep.input.shape[1]",
     ["positive integers"]),
    ("sweep-mode", case(sweep={"mode": ["eval", "test"]}), "c", "sweep.mode[1]", ["got 'test'", "eval, train"]),
    ("groups-channels", case(params={"filters": 4, "groups": 2}), "c", "params.groups",
     ["groups=2", "3 input channels"]),
    ("groups-filters", case(params={"filters": 4, "groups": 3}, input={"shape": [1, 6, 8, 8]}), "c",
     "params.groups", ["groups=3 does not divide filters=4"]),
    ("kernel-too-large", case(params={"kernel_size": 9}), "c", "params.kernel_size", ["larger than", "no output"]),
    ("seq-bad-units", case(NET, layers=[*NET["layers"][:2], {"block": "dense", "params": {"units": 0}}]),
     "c", "layers[2].params.units", ["got 0", "allowed: an integer >= 1"]),
    ("seq-unknown-block", case(NET, layers=[NET["layers"][0], {"block": "flaten"}]), "c", "layers[1].block",
     ["unknown block 'flaten'", "did you mean 'flatten'"]),
    ("seq-layer-key", case(NET, layers=[{"block": "relu", "parms": {}}]), "c", "layers[0].parms",
     ["unknown key 'parms'", "allowed: block, params, weights"]),
    ("seq-layer-not-mapping", case(NET, layers=["relu"]), "c", "layers[0]", ["must be a mapping with `block`"]),
    ("seq-params", case(NET, params={"units": 3}), "c", "params", ["sequential case has no `params`",
                                                                   "on each of its layers"]),
    ("seq-nested", case(NET, layers=[{"block": "relu"}, {"block": "sequential"}]), "c", "layers[1].block",
     ["cannot be nested"]),
    ("seq-no-layers", case(NET, layers=DELETE), "c", "layers", ["non-empty list"]),
    ("layers-not-sequential", case(layers=[{"block": "relu"}]), "c", "layers", ["only for block: sequential"]),
    ("seq-shape-chain", case(NET, layers=[{"block": "flatten"}, {"block": "conv2d",
                                                                  "params": {"filters": 1, "kernel_size": 1}}]),
     "c", "layers[1].block", ["rank 4", "(the output of layers[0])"]),
    ("seq-dropout-train", case(NET, mode="train", layers=[{"block": "dropout", "params": {"rate": 0.5}},
                                                          {"block": "relu"}]),
     "c", "layers[0].block", ["dropout in train mode must be the last layer"]),
    ("seq-sweep-key", case(NET, sweep={"layers.5.units": [1]}), "c", "sweep.layers.5.units",
     ["unknown sweep key 'layers.5.units'", "layers.<index>.<param>"]),
    ("seq-sweep-param", case(NET, sweep={"layers.2.unit": [1]}), "c", "sweep.layers.2.unit",
     ["unknown sweep key", "allowed: layers.2.units, layers.2.use_bias"]),
    ("seq-sweep-value", case(NET, sweep={"layers.2.units": [3, 0]}), "c", "sweep.layers.2.units[1]",
     ["got 0", "an integer >= 1"]),
    ("weights-on-relu", case(RELU, weights={"path": "w.npz"}), "c", "weights",
     ["has no weights"]),
    ("weights-not-path", case(weights="w.npz"), "c", "weights", ["must be {path: FILE.npz}", "weight, bias"]),
    ("tolerance-negative", case(tolerance={"atol": -1.0e-5}), "c", "tolerance.atol", ["-1e-05", "a number >= 0"]),
    ("tolerance-nan", case(tolerance={"rtol": float("nan")}), "c", "tolerance.rtol", ["a number >= 0"]),
    ("tolerance-key", case(tolerance={"eps": 1}), "c", "tolerance.eps", ["unknown key 'eps'", "allowed: atol, rtol"]),
    ("devices", case(devices=["cpu", "tpu"]), "c", "devices", ["'tpu'", "allowed: a list of cpu, gpu"]),
    ("devices-string", case(devices="cpu"), "c", "devices", ["allowed: a list of cpu, gpu"]),
    ("mode", case(mode="inference"), "c", "mode", ["got 'inference'", "allowed: eval, train"]),
    ("expect-key", case(expect={"dtype": "float32"}), "c", "expect.dtype", ["unknown key", "allowed: shape, output"]),
    ("expect-shape", case(expect={"shape": []}), "c", "expect.shape", ["positive integers"]),
    ("expect-output-ragged", case(expect={"output": [[1], [1, 2]]}), "c", "expect.output", ["rectangular"]),
    ("expect-output-missing", case(expect={"output": "golden.npy"}), "c", "expect.output", ["file not found"]),
    # the keys of gradients, training steps, native defaults, known differences and device comparisons
    ("check-typo", case(check=["forward", "backwards"]), "c", "check",
     ["'backwards'", "allowed: one of forward, backward, train_step or a list of them"]),
    ("check-empty", case(check=[]), "c", "check", ["got []", "allowed: one of forward"]),
    ("steps-zero", case(check="train_step", steps=0), "c", "steps", ["got 0", "an integer from 1 to 100"]),
    ("steps-float", case(check="train_step", steps=2.0), "c", "steps", ["got 2.0", "an integer from 1 to 100"]),
    ("steps-unread", case(check="backward", steps=3), "c", "steps",
     ["only read with check: train_step", "mode: train", "would change nothing"]),
    ("optimizer-empty", case(check="train_step", optimizer=[]), "c", "optimizer",
     ["got []", "non-empty list", "sgd or adam"]),
    ("optimizer-name", case(check="train_step", optimizer={"name": "rmsprop"}), "c", "optimizer.name",
     ["'rmsprop'", "name: sgd or adam"]),
    ("optimizer-param", case(check="train_step", optimizer={"name": "sgd", "nesterov": True}), "c",
     "optimizer.nesterov", ["unknown parameter 'nesterov'", "allowed: learning_rate, momentum"]),
    ("optimizer-lr-zero", case(check="train_step", optimizer=[{"name": "sgd"}, {"name": "adam", "learning_rate": 0}]),
     "c", "optimizer[1].learning_rate", ["got 0", "a number > 0"]),
    ("optimizer-beta-one", case(check="train_step", optimizer={"name": "adam", "beta_2": 1.0}), "c",
     "optimizer.beta_2", ["got 1.0", "a number >= 0 and < 1"]),
    ("optimizer-unread", case(optimizer={"name": "sgd"}), "c", "optimizer", ["only read with check: train_step"]),
    ("compare", case(compare="gpu"), "c", "compare", ["'gpu'", "allowed: frameworks, devices"]),
    ("defaults", case(defaults="keras"), "c", "defaults", ["'keras'", "allowed: harness, native"]),
    ("torch-params-unread", case(torch_params={"padding": 1}), "c", "torch_params",
     ["only read with defaults: native"]),
    ("divergent-blank", case(expect={"divergent": " "}), "c", "expect.divergent",
     ["allowed: a one-line text saying why the frameworks differ"]),
    ("reference-not-bool", case(expect={"reference": "yes"}), "c", "expect.reference", ["'yes'", "true or false"]),
    ("refuses-without-divergent", case(expect={"refuses": "strides"}), "c", "expect.refuses",
     ["with expect.divergent"]),
]


@pytest.mark.parametrize(("raw", "case_name", "field", "needles"), [b[1:] for b in BAD_CASES],
                         ids=[b[0] for b in BAD_CASES])
def test_bad_case_is_located_and_explained(tmp_path: Path, raw: dict, case_name: str, field: str,
                                           needles: list[str]) -> None:
    path, err = case_error(tmp_path, raw)
    assert_located(err, path, case_name, field, *needles)


def test_the_base_cases_used_above_are_valid(tmp_path: Path) -> None:
    # Each bad case above is one change away from these; they must load, or the tests above prove nothing.
    assert len(points(tmp_path, CONV)) == 1
    assert len(points(tmp_path, NET)) == 1


@pytest.mark.parametrize(("name", "suggestion"), [("conv2", "conv2d"), ("maxpool2d", "max_pool2d"),
                                                  ("Relu", "relu"), ("sequental", "sequential")])
def test_unknown_block_suggests_the_closest_name(tmp_path: Path, name: str, suggestion: str) -> None:
    path, err = case_error(tmp_path, case(block=name))
    text = assert_located(err, path, "c", "block", f"unknown block {name!r}")
    assert f"did you mean '{suggestion}'" in text
    assert "known blocks:" in text and "conv2d" in text and "dense" in text


def test_unknown_block_with_nothing_close_lists_the_known_blocks(tmp_path: Path) -> None:
    path, err = case_error(tmp_path, case(block="transformer_xl"))
    text = assert_located(err, path, "c", "block", "unknown block 'transformer_xl'", "known blocks:")
    assert "did you mean" not in text


def test_duplicate_names_in_one_file(tmp_path: Path) -> None:
    path, entries = load(tmp_path, [case(name="a"), case(name="a"), case(name="b")])
    assert entries[0].error is None and entries[2].error is None
    assert_located(entries[1].error, path, "a", "name", "duplicate name")


def test_the_same_name_in_two_files_is_fine(tmp_path: Path) -> None:
    write(tmp_path, [case(name="a")], "one.yaml")
    write(tmp_path, [case(name="a")], "two.yaml")
    entries, errors = load_paths([tmp_path])
    assert errors == [] and [e.error for e in entries] == [None, None]


def test_one_bad_case_never_hides_the_others(tmp_path: Path) -> None:
    path, entries = load(tmp_path, [case(name="first"), case(name="middle", params={"filters": "two"}),
                                    case(name="last", block="relu", params=DELETE)])
    assert [e.name for e in entries] == ["first", "middle", "last"]
    good = [e for e in entries if e.error is None]
    assert [e.name for e in good] == ["first", "last"]
    assert all(len(e.points) == 1 and isinstance(e.points[0], Point) for e in good)
    assert_located(entries[1].error, path, "middle", "params.filters", "got 'two'")
    assert entries[1].points == []


# --- data files named by a case --------------------------------------------------------------------------

def test_fill_file_missing_npy(tmp_path: Path) -> None:
    path, err = case_error(tmp_path, case(input={"shape": DELETE, "fill": "file", "path": "nope.npy"}))
    assert_located(err, path, "c", "input.path", "file not found", "nope.npy")


def test_fill_file_escaping_the_case_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))  # exists, but outside sub/
    path = write(tmp_path / "sub", [case(input={"shape": DELETE, "fill": "file", "path": "../x.npy"})])
    entries, _ = load_file(path)
    assert_located(entries[0].error, path, "c", "input.path", "'../x.npy' points outside the case file's folder")


def test_fill_file_absolute_path(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    raw = case(input={"shape": DELETE, "fill": "file", "path": str(tmp_path / "x.npy")})
    path, err = case_error(tmp_path, raw)
    assert_located(err, path, "c", "input.path", "absolute paths are not allowed", "relative to the case file")


def test_fill_file_wrong_suffix(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    (tmp_path / "x.npy").rename(tmp_path / "x.bin")
    path, err = case_error(tmp_path, case(input={"shape": DELETE, "fill": "file", "path": "x.bin"}))
    assert_located(err, path, "c", "input.path", "must be a .npy file")


class _Tripwire:
    """Unpickling this creates a folder: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return os.mkdir, (str(self.marker),)


def test_pickled_npy_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    np.save(tmp_path / "evil.npy", np.array([_Tripwire(marker), None], dtype=object), allow_pickle=True)
    path, err = case_error(tmp_path, case(input={"shape": DELETE, "fill": "file", "path": "evil.npy"}))
    assert_located(err, path, "c", "input.path", "evil.npy", "Python objects", "numeric")
    path, err = case_error(tmp_path, case(expect={"output": "evil.npy"}))
    assert_located(err, path, "c", "expect.output", "evil.npy", "Python objects")
    assert not marker.exists()


def test_npy_that_is_not_npy_or_not_numbers(tmp_path: Path) -> None:
    (tmp_path / "junk.npy").write_bytes(b"this is not an npy file at all")
    np.save(tmp_path / "words.npy", np.array([["a", "b"]]))
    path, err = case_error(tmp_path, case(input={"shape": DELETE, "fill": "file", "path": "junk.npy"}))
    assert_located(err, path, "c", "input.path", "cannot read junk.npy as a .npy array")
    path, err = case_error(tmp_path, case(input={"shape": DELETE, "fill": "file", "path": "words.npy"}))
    assert_located(err, path, "c", "input.path", "words.npy holds <U1", "numeric")
    # The golden output is converted to float64 when loaded: strings must be a CaseError, not a ValueError.
    path, err = case_error(tmp_path, case(expect={"output": "words.npy"}))
    assert_located(err, path, "c", "expect.output", "words.npy holds <U1", "numeric")


def test_fill_file_shape_rank_1_and_mismatch(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros(12, np.float32))
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    path, err = case_error(tmp_path, case(input={"shape": DELETE, "fill": "file", "path": "flat.npy"}))
    assert_located(err, path, "c", "input.path", "shape [12]", "at least 2 dimensions")
    path, err = case_error(tmp_path, case(input={"shape": [1, 3, 4, 4], "fill": "file", "path": "x.npy"}))
    assert_located(err, path, "c", "input.shape",
                   "the file data has shape [1, 3, 8, 8] but input.shape is [1, 3, 4, 4]")


def test_weights_npz_with_an_unknown_array_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", weight=np.zeros((2, 3, 3, 3), np.float32), gamma=np.ones(2, np.float32))
    path, err = case_error(tmp_path, case(weights={"path": "w.npz"}))
    assert_located(err, path, "c", "weights.path", "w.npz holds gamma", "allowed names: weight, bias")


def test_weights_in_a_sequential_layer_are_located_at_the_layer(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", kernel=np.zeros((4, 50), np.float32))
    layers = [*NET["layers"][:2], {"block": "dense", "params": {"units": 4}, "weights": {"path": "w.npz"}}]
    path, err = case_error(tmp_path, case(NET, layers=layers))
    assert_located(err, path, "c", "layers[2].weights.path", "holds kernel", "allowed names: weight, bias")


def test_weights_file_that_is_not_an_npz(tmp_path: Path) -> None:
    (tmp_path / "w.npz").write_bytes(b"not a zip archive")
    path, err = case_error(tmp_path, case(weights={"path": "w.npz"}))
    assert_located(err, path, "c", "weights.path", "not a .npz archive")


def test_valid_weights_and_expected_output_files_load(tmp_path: Path) -> None:
    golden = np.arange(2 * 6 * 6, dtype=np.float32).reshape(1, 2, 6, 6) / 7
    np.save(tmp_path / "golden.npy", golden)
    np.savez(tmp_path / "w.npz", weight=np.ones((2, 3, 3, 3), np.float32), bias=np.zeros(2, np.float32))
    (pt,) = points(tmp_path, case(weights={"path": "w.npz"}, expect={"output": "golden.npy"}))
    assert pt.layers[0].weights == (tmp_path / "w.npz").resolve()
    assert pt.expect_output.dtype == np.float64
    np.testing.assert_array_equal(pt.expect_output, golden.astype(np.float64))


# --- sizes: refused before anything is allocated ----------------------------------------------------------

def test_input_shape_over_the_limit_is_refused_without_allocating(tmp_path: Path) -> None:
    huge = [1, 1 << 20, 1 << 20]  # 2**40 elements: allocating it would fail or take minutes
    tracemalloc.start()
    try:
        path, err = case_error(tmp_path, case(RELU, input={"shape": huge}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_located(err, path, "c", "input.shape", f"{2 ** 40:,} elements", f"the limit is {MAX_ELEMENTS:,}")
    assert peak < 50 * 2 ** 20


def test_input_shape_at_the_limit_is_accepted(tmp_path: Path) -> None:
    (pt,) = points(tmp_path, case(RELU, input={"shape": [1, MAX_ELEMENTS]}))
    assert pt.input.shape == (1, MAX_ELEMENTS) and pt.output_shape == (1, MAX_ELEMENTS)
    path, err = case_error(tmp_path, case(RELU, input={"shape": [1, MAX_ELEMENTS + 1]}))
    assert_located(err, path, "c", "input.shape", "the limit is")


def test_npy_header_over_the_limit_is_refused_without_reading_the_data(tmp_path: Path) -> None:
    # A header that claims 2**30 float64 elements (8 GiB) over a file holding none of them.
    with open(tmp_path / "big.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (1, 1 << 30)})
    tracemalloc.start()
    try:
        path, err = case_error(tmp_path, case(block="relu", params=DELETE,
                                              input={"shape": DELETE, "fill": "file", "path": "big.npy"}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_located(err, path, "c", "input.path", "big.npy", "the limit is")
    assert peak < 50 * 2 ** 20


# --- sweeps ------------------------------------------------------------------------------------------------

def test_refused_sweep_point_does_not_stop_the_other_points(tmp_path: Path) -> None:
    shapes = [[1, 3, 8, 8], [1, 3, 4, 4], [1, 3, 6, 6]]
    path, entries = load(tmp_path, [case(params={"kernel_size": 5}, sweep={"input.shape": shapes})])
    (entry,) = entries
    assert entry.error is None and len(entry.points) == 3
    first, refused, last = entry.points
    assert isinstance(first, Point) and isinstance(last, Point) and isinstance(refused, RefusedPoint)
    assert first.output_shape == (1, 2, 4, 4) and last.output_shape == (1, 2, 2, 2)
    assert refused.sweep == {"input.shape": [1, 3, 4, 4]} and refused.sweep_id == "input.shape=1x3x4x4"
    assert isinstance(refused.error, CaseError)
    assert_located(refused.error, path, "c", "params.kernel_size", "larger than the padded input 4x4",
                   "(at sweep point input.shape=1x3x4x4)")


def test_refusal_is_a_case_error() -> None:
    # Refusals (well-formed but impossible combinations) are reported like every other case error.
    assert issubclass(Refusal, CaseError)


def test_sweep_expansion_count_order_and_ids(tmp_path: Path) -> None:
    raw = {"name": "seed_conv_28x28", "block": "conv2d", "params": {"filters": 5, "kernel_size": 3},
           "input": {"shape": [1, 3, 28, 28]},
           "sweep": {"strides": [1, 2, [3, 2]], "padding": [0, 1, "valid", "same"]}}
    path, entries = load(tmp_path, [raw])
    pts = entries[0].points
    assert len(pts) == 12 and all(isinstance(p, Point) for p in pts)
    expected_sweeps = [{"strides": s, "padding": p} for s in (1, 2, [3, 2]) for p in (0, 1, "valid", "same")]
    assert [p.sweep for p in pts] == expected_sweeps
    file = entries[0].file
    assert file.endswith(path.name)
    # The id ends in the device and Keras's backend (this process's unless named; `backends` for compare: backends).
    assert pts[0].test_id("cpu") == f"{file}::seed_conv_28x28[strides=1-padding=0-cpu-{BACKEND}]"
    assert pts[-1].test_id("cpu", "jax") == f"{file}::seed_conv_28x28[strides=3x2-padding=same-cpu-jax]"
    assert pts[-1].test_id("gpu", "torch") == f"{file}::seed_conv_28x28[strides=3x2-padding=same-gpu-torch]"
    assert pts[-1].test_id("cpu", "backends") == f"{file}::seed_conv_28x28[strides=3x2-padding=same-cpu-backends]"
    assert len({p.test_id("cpu", b) for p in pts for b in BACKENDS}) == 12 * len(BACKENDS)
    by_id = {p.sweep_id: p for p in pts}
    # Output sizes: floor((28 + 2p - 3) / s) + 1; same = ceil(28 / s).
    assert by_id["strides=1-padding=0"].output_shape == (1, 5, 26, 26)
    assert by_id["strides=2-padding=1"].output_shape == (1, 5, 14, 14)
    assert by_id["strides=3x2-padding=valid"].output_shape == (1, 5, 9, 13)
    assert by_id["strides=3x2-padding=same"].output_shape == (1, 5, 10, 14)
    assert by_id["strides=3x2-padding=same"].layers[0].params["strides"] == (3, 2)
    assert by_id["strides=2-padding=1"].layers[0].params["padding"] == (1, 1)


def test_case_without_sweep_has_one_point_and_a_plain_id(tmp_path: Path) -> None:
    (pt,) = points(tmp_path, CONV)
    assert pt.sweep == {} and pt.sweep_id == ""
    assert pt.test_id("cpu").endswith(f"cases.yaml::c[cpu-{BACKEND}]")
    assert pt.test_id("gpu", "jax").endswith("cases.yaml::c[gpu-jax]")


def test_input_shape_and_dtype_swept(tmp_path: Path) -> None:
    raw = case(sweep={"input.shape": [[1, 3, 8, 8], [2, 3, 5, 7]], "input.dtype": ["float32", "float64"]})
    pts = points(tmp_path, raw)
    assert [(p.input.shape, p.input.dtype) for p in pts] == [
        ((1, 3, 8, 8), "float32"), ((1, 3, 8, 8), "float64"), ((2, 3, 5, 7), "float32"), ((2, 3, 5, 7), "float64")]
    assert [p.output_shape for p in pts] == [(1, 2, 6, 6), (1, 2, 6, 6), (2, 2, 3, 5), (2, 2, 3, 5)]
    assert [p.input.make().dtype for p in pts] == [np.float32, np.float64] * 2
    assert pts[2].sweep_id == "input.shape=2x3x5x7-input.dtype=float32"


def test_sequential_sweep_over_a_layer_parameter(tmp_path: Path) -> None:
    pts = points(tmp_path, case(NET, sweep={"layers.0.filters": [1, 4], "layers.2.units": [3]}))
    assert [p.layers[0].params["filters"] for p in pts] == [1, 4]
    assert [p.layers[2].params["units"] for p in pts] == [3, 3]
    assert [p.output_shape for p in pts] == [(1, 3), (1, 3)]
    assert [p.sites[2].in_shape for p in pts] == [(1, 36), (1, 144)]  # flatten of 1 or 4 x 6 x 6
    assert pts[1].test_id("cpu", "torch").endswith("::c[layers.0.filters=4-layers.2.units=3-cpu-torch]")
    assert pts[0].sequential and pts[0].blocks == ["conv2d", "flatten", "dense"]


# --- defaults and normalisation ---------------------------------------------------------------------------

def test_defaults_are_filled_in(tmp_path: Path) -> None:
    (pt,) = points(tmp_path, {"name": "c", "block": "conv2d", "params": {"filters": 5, "kernel_size": 3},
                              "input": {"shape": [1, 3, 28, 28]}})
    assert pt.layers[0].params == {"filters": 5, "kernel_size": (3, 3), "strides": (1, 1), "padding": (0, 0),
                                   "padding_mode": "zeros", "dilation_rate": (1, 1), "groups": 1, "use_bias": True}
    assert pt.input == InputSpec(shape=(1, 3, 28, 28), dtype="float32", fill="normal", seed=0)
    assert pt.mode == "eval" and pt.tolerance is None and pt.devices is None
    assert pt.expect_shape is None and pt.expect_output is None
    assert pt.output_shape == (1, 5, 26, 26)
    assert not pt.sequential and pt.blocks == ["conv2d"]


@pytest.mark.parametrize(("raw", "normalised"), [(3, (3, 3)), ([3, 2], (3, 2)), ((2, 5), (2, 5))])
def test_pair_normalisation(tmp_path: Path, raw: Any, normalised: tuple) -> None:
    (pt,) = points(tmp_path, case(params={"kernel_size": raw, "strides": raw}, input={"shape": [1, 3, 9, 9]}))
    assert pt.layers[0].params["kernel_size"] == normalised
    assert pt.layers[0].params["strides"] == normalised


@pytest.mark.parametrize(("raw", "normalised"), [(0, (0, 0)), (2, (2, 2)), ([1, 0], (1, 0)), ("same", "same"),
                                                 ("valid", "valid")])
def test_padding_normalisation(tmp_path: Path, raw: Any, normalised: Any) -> None:
    (pt,) = points(tmp_path, case(params={"padding": raw}))
    assert pt.layers[0].params["padding"] == normalised


def test_other_blocks_defaults(tmp_path: Path) -> None:
    (pt,) = points(tmp_path, {"name": "p", "block": "max_pool2d", "params": {"pool_size": 2},
                              "input": {"shape": [1, 3, 8, 8]}})
    assert pt.layers[0].params["strides"] is None  # None: the window size
    assert pt.output_shape == (1, 3, 4, 4)
    (pt,) = points(tmp_path, {"name": "l", "block": "leaky_relu", "input": {"shape": [2, 3]}})
    assert pt.layers[0].params == {"negative_slope": 0.01}


def test_tolerance_devices_mode_and_expect_are_read(tmp_path: Path) -> None:
    raw = case(tolerance={"atol": 1.0e-5}, devices=["cpu", "cpu"], mode="train", expect={"shape": [1, 2, 6, 6]})
    (pt,) = points(tmp_path, raw)
    assert (pt.tolerance.atol, pt.tolerance.rtol) == (1.0e-5, 0.0)
    assert pt.devices == ("cpu",) and pt.mode == "train" and pt.expect_shape == (1, 2, 6, 6)


# --- the input data ----------------------------------------------------------------------------------------

def test_make_is_deterministic_per_seed() -> None:
    for fill in ("normal", "uniform"):
        a = InputSpec(shape=(2, 3, 4, 4), fill=fill, seed=7).make()
        b = InputSpec(shape=(2, 3, 4, 4), fill=fill, seed=7).make()
        c = InputSpec(shape=(2, 3, 4, 4), fill=fill, seed=8).make()
        assert a.shape == (2, 3, 4, 4) and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_fill_ranges() -> None:
    x = InputSpec(shape=(4, 5000), fill="uniform", seed=1, dtype="float64").make()
    assert x.dtype == np.float64 and x.min() >= -1.0 and x.max() < 1.0
    assert x.min() < -0.99 and x.max() > 0.99  # covers the range, not a corner of it
    n = InputSpec(shape=(4, 5000), fill="normal", seed=1).make()
    assert abs(float(n.mean())) < 0.05 and 0.95 < float(n.std()) < 1.05 and n.min() < -3
    a = InputSpec(shape=(2, 3, 2), fill="arange", dtype="float64").make()
    np.testing.assert_array_equal(a.ravel(), np.arange(12.0))
    assert a.shape == (2, 3, 2) and a.dtype == np.float64


def test_fill_values_infers_the_shape_and_keeps_the_values(tmp_path: Path) -> None:
    values = [[[1.5, -2.0], [0.25, 4.0]]]
    (pt,) = points(tmp_path, {"name": "v", "block": "relu", "input": {"fill": "values", "values": values}})
    assert pt.input.shape == (1, 2, 2)
    np.testing.assert_array_equal(pt.input.make(), np.array(values, np.float32))
    (pt,) = points(tmp_path, {"name": "v", "block": "relu",
                              "input": {"shape": [1, 2, 2], "fill": "values", "values": values, "dtype": "float64"}})
    assert pt.input.make().dtype == np.float64


def test_fill_file_reads_the_array(tmp_path: Path) -> None:
    data = np.random.default_rng(3).standard_normal((1, 3, 8, 8))
    np.save(tmp_path / "x.npy", data)
    (pt,) = points(tmp_path, case(input={"shape": DELETE, "fill": "file", "path": "x.npy"}))
    assert pt.input.shape == (1, 3, 8, 8) and pt.output_shape == (1, 2, 6, 6)
    np.testing.assert_array_equal(pt.input.make(), data.astype(np.float32))


@pytest.mark.parametrize(("yaml_text", "field", "suggestion"), [
    ("params: {filters: 2, kernel_size: 3, stride: 2}", "params.stride", "strides"),
    ("params: {filters: 2, kernel_size: 3}\n  tolerence: {atol: 1.0}", "tolerence", "tolerance"),
])
def test_misspelt_key_suggests_the_closest_name(tmp_path: Path, yaml_text: str, field: str, suggestion: str) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(f"- name: c\n  block: conv2d\n  {yaml_text}\n  input: {{shape: [1, 1, 5, 5]}}\n", encoding="utf-8")
    (entry,), err = load_file(path)
    assert err is None and entry.error is not None
    assert entry.error.field == field
    assert f"(did you mean '{suggestion}'?)" in str(entry.error) and "; allowed:" in str(entry.error)


def test_a_key_given_twice_is_an_error_with_its_line_not_a_silent_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text("- name: a\n  block: relu\n  input: {shape: [1, 2]}\n  input: {shape: [1, 3]}\n", encoding="utf-8")
    entries, err = load_file(path)
    assert entries == [] and err is not None
    assert "line 4" in str(err) and "the key 'input' is given twice" in str(err) and str(path.name) in str(err)


def test_yaml_tags_never_build_python_objects(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    marker = tmp_path / "created"
    path.write_text(f"- name: a\n  block: !!python/object/apply:os.mkdir ['{marker}']\n", encoding="utf-8")
    entries, err = load_file(path)
    assert err is not None and "invalid YAML" in str(err)
    assert not marker.exists()


@pytest.mark.parametrize(("written", "number"), [("1e-5", 1e-5), ("1E5", 1e5), ("2.5e3", 2500.0), ("+3e-2", 0.03),
                                                 ("1.0e5", 1e5), ('"0.5"', 0.5)])
def test_a_number_yaml_reads_as_text_gets_how_to_write_it(tmp_path: Path, written: str, number: float) -> None:
    """YAML 1.1 reads 1e-5 (no dot) and 1.0e5 (no sign) as strings: the error says so, and the form it suggests is
    read back as the number meant, by the harness's own loader."""
    path = tmp_path / "case.yaml"
    path.write_text(f"- name: eps\n  block: batch_norm2d\n  params: {{epsilon: {written}}}\n"
                    "  input: {shape: [2, 3, 4, 4]}\n", encoding="utf-8")
    (entry,), _ = load_file(path)
    message = str(entry.error)
    assert "field 'params.epsilon'" in message and "allowed: a number >= 0 (" in message
    suggested = written.strip('"') if "quoted" in message else message.rsplit("write ", 1)[1].rstrip(")")
    path.write_text(path.read_text(encoding="utf-8").replace(written, suggested), encoding="utf-8")
    (entry,), _ = load_file(path)
    assert entry.error is None, entry.error
    assert entry.points[0].layers[0].params["epsilon"] == pytest.approx(number, rel=1e-15)


@pytest.mark.parametrize(("written", "word"), [("inf", ".inf"), ("-Infinity", "-.inf"), ("nan", ".nan")])
def test_infinity_and_nan_written_as_python_spells_them_get_yamls_words(tmp_path: Path, written: str,
                                                                         word: str) -> None:
    """float() reads 'inf' and 'nan', YAML 1.1 does not: the hint gives YAML's word, which it reads as the number."""
    path = tmp_path / "case.yaml"
    path.write_text(f"- name: c\n  block: leaky_relu\n  params: {{negative_slope: {written}}}\n"
                    "  input: {shape: [2, 3]}\n", encoding="utf-8")
    (entry,), _ = load_file(path)
    assert str(entry.error).endswith(f"(YAML reads {written} as text: write {word}, YAML's word for it)"), entry.error
    path.write_text(path.read_text(encoding="utf-8").replace(written, word), encoding="utf-8")
    (entry,), _ = load_file(path)
    assert "YAML reads" not in str(entry.error)  # now a number (which the parameter may still refuse)


def test_text_that_is_no_number_gets_no_number_hint(tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text("- name: eps\n  block: batch_norm2d\n  params: {epsilon: small}\n  input: {shape: [2, 3, 4, 4]}\n",
                    encoding="utf-8")
    (entry,), _ = load_file(path)
    assert str(entry.error).endswith("got 'small'; allowed: a number >= 0")
