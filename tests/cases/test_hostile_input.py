"""Hostile and broken input: whatever a case file holds, the harness answers with its own error naming the file
(and the case and field where there is one), never a traceback; it never builds a Python object from a YAML
tag, never unpickles, never reads outside the case's folder, and refuses anything over its memory budget before
allocating it.

Property-based (hypothesis, derandomized: the same examples on every run) for malformed texts and structures;
example-based for each attack that has a name (billion laughs, python tags, pickles, zip bombs, symlinks).
"""

from __future__ import annotations

import itertools
import os
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import xfw_harness.cases.arrays as arrays_module
import xfw_harness.cases.loader as cases_module
import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.blocks import MAX_ELEMENTS
from xfw_harness.cases import CaseEntry, RefusedPoint, load_file
from xfw_harness.cases.arrays import MAX_HELD_NUMBERS
from xfw_harness.cases.loader import MAX_FILE_BYTES, MAX_FILE_POINTS
from xfw_harness.cases.safe_yaml import MAX_YAML_DEPTH
from xfw_harness.cases.sweeps import MAX_POINTS
from xfw_harness.core.errors import SHOW_LIMIT, CaseError, show
from xfw_harness.core.frameworks import BACKEND
from xfw_harness.core.verdicts import Status
from xfw_harness.suite.collect import plan_tests

_counter = itertools.count()
MB = 1 << 20


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def _write(directory: Path, content: str | bytes, name: str | None = None) -> Path:
    path = directory / (name or f"hostile_{next(_counter)}.yaml")
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


def _load(path: Path) -> tuple[list[CaseEntry], CaseError | None]:
    """load_file, asserting the contract: errors are CaseErrors that name the file, the case and (mostly) the field."""
    entries, error = load_file(path)
    if error is not None:
        assert isinstance(error, CaseError), repr(error)
        assert path.name in str(error) and error.file, str(error)
        assert entries == []
    for entry in entries:
        errors = [entry.error] if entry.error is not None else [
            p.error for p in entry.points if isinstance(p, RefusedPoint)]
        for e in errors:
            assert isinstance(e, CaseError), repr(e)
            text = str(e)
            assert path.name in text and f"case '{entry.name}'" in text, text
            assert len(text) < 2000, f"an error message of {len(text)} characters"
            if not e.message.startswith("each case must be a mapping"):
                assert e.field, f"no field named: {text}"
    return entries, error


def _load_and_run(path: Path, run: bool = True) -> list:
    """Load, plan and (optionally) run on the CPU everything in the file: no exception may escape."""
    entries, _ = _load(path)
    results = []
    # On this process's Keras backend only (in process): hostile input is the loader's and runner's concern, the
    # same on every backend (tests/suite/test_backends.py runs the workers).
    for test in plan_tests(entries, device="cpu", backends=(BACKEND,)):
        result = test.run("none", 30) if run else test.invalid
        if result is None:
            continue
        assert result.status in (Status.PASSED, Status.FAILED, Status.ERROR, Status.SKIPPED), result.status
        if result.status == "error":
            assert result.message and (path.name in result.message or result.file in result.message), result.message
        results.append(result)
    return results


def _error_of(directory: Path, text: str) -> str:
    """The one error the file's only case (or the file) produces."""
    path = _write(directory, text)
    entries, error = _load(path)
    if error is not None:
        return str(error)
    assert len(entries) >= 1
    errors = [str(e.error) for e in entries if e.error is not None]
    errors += [str(p.error) for e in entries for p in e.points if isinstance(p, RefusedPoint)]
    assert errors, "expected an error"
    return errors[-1]


# --- property-based: random texts and structures ---------------------------------------------------------------

@_settings(150)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_any_text_loads_or_is_a_clear_file_error(tmp_path: Path, text: str) -> None:
    _load(_write(tmp_path, text))


@_settings(100)
@given(st.binary(max_size=400))
def test_any_bytes_load_or_are_a_clear_file_error(tmp_path: Path, data: bytes) -> None:
    _load(_write(tmp_path, data))


YAML_BITS = ["- ", "name: ", "block: ", "conv2d", "relu", "sequential", "params: ", "input: ", "shape: ", "[", "]",
             "{", "}", ", ", ": ", "\n", "  ", "&a ", "*a", "!!python/object/apply:os.system ['true']", "!!binary ",
             "!!int ", "!!float ", "!!timestamp ", "2001-13-45", "<<: ", "? ", "- [", "'", '"', "#", "|\n", ">\n",
             "~", ".nan", "-.inf", "1e999", "-3", "0", "99999999999999999999999", "ünï", "\t", "%YAML 1.1\n", "---\n",
             "...\n", "!!set ", "!!omap ", "sweep: ", "layers: ", "filters: 2", "kernel_size: 3", "values: "]


@_settings(200)
@given(st.lists(st.sampled_from(YAML_BITS), max_size=40).map("".join))
def test_yaml_like_fragments_load_or_are_clear_errors(tmp_path: Path, text: str) -> None:
    note(text)
    _load(_write(tmp_path, text))


# Values of every kind YAML can give, and some it gives only with tags: wrong types for any field.
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["valid", "same", "float64", "train", "cpu", "gpu", "relu", "conv2d",
                                              "sequential", "values", "file", "../x.npy", "/etc/passwd", "a\x00.npy"])
    | st.integers(-3, 40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=16)

BASES = [
    {"name": "c", "block": "conv2d", "params": {"filters": 2, "kernel_size": 3}, "input": {"shape": [1, 2, 6, 6]}},
    {"name": "p", "block": "max_pool2d", "params": {"pool_size": 2}, "input": {"shape": [1, 2, 6, 6]},
     "sweep": {"padding": [0, "same"]}},
    {"name": "a", "block": "avg_pool2d", "params": {"pool_size": 3, "padding": 1}, "input": {"shape": [1, 1, 5, 5]}},
    {"name": "d", "block": "dense", "params": {"units": 3}, "input": {"shape": [2, 4]},
     "expect": {"shape": [2, 3]}, "tolerance": {"atol": 1e-5}},
    {"name": "s", "block": "softmax", "params": {"axis": 1}, "input": {"fill": "values", "values": [[1, 2], [3, 4]]}},
    {"name": "r", "block": "dropout", "params": {"rate": 0.5}, "mode": "train", "input": {"shape": [2, 50]}},
    {"name": "p", "block": "relu", "input": {"shape": [1, 3]},
     "expect": {"plant": {"in": "keras vs torch", "side": "keras", "at": [0, 1], "plus": 1.0}, "fails": "values"}},
    {"name": "n", "block": "sequential", "layers": [{"block": "conv2d", "params": {"filters": 2, "kernel_size": 2}},
                                                    {"block": "flatten"}, {"block": "dense", "params": {"units": 2}}],
     "input": {"shape": [1, 1, 4, 4]}, "sweep": {"layers.0.filters": [1, 2]}},
]
FIELDS = ["name", "block", "params", "input", "input.shape", "input.dtype", "input.fill", "input.seed", "input.values",
          "input.path", "weights", "weights.path", "sweep", "mode", "tolerance", "tolerance.atol", "expect",
          "expect.shape", "expect.output", "expect.fails", "expect.plant", "expect.plant.in", "expect.plant.side",
          "expect.plant.at", "expect.plant.plus", "devices", "layers", "description", "params.filters",
          "params.kernel_size", "params.strides", "params.padding", "params.pool_size", "params.units",
          "params.rate", "params.axis", "params.dilation_rate", "params.groups", "params.count_include_pad",
          "layers.0", "layers.0.params", "layers.0.block", "sweep.input.shape", "unknown_key", "params.unknown"]


def _set(case: dict, dotted: str, value: Any) -> None:
    node: Any = case
    parts = dotted.split(".")
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
        elif isinstance(node, dict):
            node = node.setdefault(part, {}) if not isinstance(node.get(part), (dict, list)) else node[part]
        if not isinstance(node, (dict, list)):
            return
    if isinstance(node, dict):
        node[parts[-1]] = value
    elif isinstance(node, list) and parts[-1].isdigit() and int(parts[-1]) < len(node):
        node[int(parts[-1])] = value


@st.composite
def broken_files(draw: st.DrawFn) -> str:
    """A case file made of valid cases with wrong values put into some of their fields, sometimes a duplicate."""
    import copy

    cases = []
    for _ in range(draw(st.integers(1, 3))):
        case = copy.deepcopy(draw(st.sampled_from(BASES)))
        for _ in range(draw(st.integers(0, 3))):
            _set(case, draw(st.sampled_from(FIELDS)), draw(JUNK))
        cases.append(case)
    if draw(st.booleans()):
        cases.append(copy.deepcopy(cases[0]))  # a duplicate name
    return yaml.safe_dump(cases, sort_keys=False, allow_unicode=True, default_flow_style=None)


@_settings(120)
@given(broken_files())
def test_wrong_types_sizes_and_values_in_any_field_never_crash_loading_or_running(tmp_path: Path, text: str) -> None:
    note(text)
    _load_and_run(_write(tmp_path, text))


@_settings(60)
@given(st.lists(st.integers(-(2**40), 2**40), min_size=0, max_size=8))
def test_any_shape_is_accepted_within_the_budget_or_refused_without_allocating(tmp_path: Path, shape: list) -> None:
    path = _write(tmp_path, yaml.safe_dump([{"name": "x", "block": "relu", "input": {"shape": shape}}]))
    tracemalloc.start()
    try:
        entries, error = _load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error is None and peak < 4 * MB, peak
    ok = len(shape) >= 2 and all(d >= 1 for d in shape) and np.prod(shape, dtype=object) <= MAX_ELEMENTS
    assert (entries[0].error is None) == ok, entries[0].error


# --- named attacks ----------------------------------------------------------------------------------------------

def _laughs(depth: int = 9, width: int = 10) -> str:
    """YAML anchors of anchors: `l{depth}` stands for width**(depth+1) numbers in a few hundred bytes."""
    refs = ", ".join(["*l{}"] * width)
    lines = [f"- defs:\n    l0: &l0 [{', '.join(['1'] * width)}]"]
    lines += [f"    l{i}: &l{i} [{refs.format(*[i - 1] * width)}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", [
    "  block: relu\n  input: {fill: values, values: [*l9]}",
    "  block: relu\n  input: {shape: [1, 2]}\n  expect: {output: [*l9]}",
    "  block: *l9",
    "  block: conv2d\n  params: {filters: *l9, kernel_size: 1}\n  input: {shape: [1, 1, 2, 2]}",
    "  block: relu\n  input: {shape: *l9}",
    "  block: relu\n  input: {shape: [1, 2]}\n  sweep: {input.seed: *l9}",
    "  block: relu\n  input: {shape: [1, 2]}\n  sweep: {input.shape: [*l9]}",
    "  block: relu\n  input: {shape: [1, 2]}\n  description: *l9",
    "  block: relu\n  input: {shape: [1, 2]}\n  tolerance: {atol: *l9}",
    "  block: relu\n  input: {shape: [1, 2]}\n  devices: *l9",
    "  block: sequential\n  layers: *l9\n  input: {shape: [1, 2]}",
], ids=["values", "expect", "block", "param", "shape", "sweep-values", "sweep-shapes", "description", "tolerance",
        "devices", "layers"])
def test_billion_laughs_is_refused_quickly_without_expanding(tmp_path: Path, where: str) -> None:
    """10**10 numbers written as aliases of aliases: refused in milliseconds, with a short message."""
    path = _write(tmp_path, _laughs() + "- name: bomb\n" + where + "\n")
    start = time.perf_counter()
    tracemalloc.start()
    try:
        entries, error = _load(path)
        _load_and_run(path, run=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 32 * MB, f"peak {peak / MB:.0f} MB"
    assert error is None
    bomb = entries[1]
    assert bomb.error is not None, "the bomb was accepted"
    assert len(str(bomb.error)) < 2000


def test_a_long_string_repeated_through_aliases_is_never_written_out(tmp_path: Path) -> None:
    """YAML writes a string in full at each alias: the case's YAML kept for the report stops at its cap."""
    refs = ", ".join(["*s"] * 20_000)  # 200 MB of text if written out
    path = _write(tmp_path, f"- name: a\n  block: relu\n  description: &s \"{'x' * 10_000}\"\n"
                            f"  input: {{shape: [1, 2]}}\n  devices: [{refs}]\n")
    start = time.perf_counter()
    tracemalloc.start()
    try:
        (entry,), _ = _load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 10 and peak < 64 * MB, (time.perf_counter() - start, peak / MB)
    assert entry.error is not None and entry.error.field == "devices"


def test_billion_laughs_message_says_how_many_numbers(tmp_path: Path) -> None:
    text = _error_of(tmp_path, _laughs() + "- name: bomb\n  block: relu\n  input: {fill: values, values: [*l9]}\n")
    assert "field 'input.values'" in text and "10,000,000,000 numbers" in text and f"{MAX_ELEMENTS:,}" in text


def test_a_list_that_contains_itself_is_refused(tmp_path: Path) -> None:
    text = _error_of(tmp_path, "- name: loop\n  block: relu\n  input: {fill: values, values: &v [1, *v]}\n")
    assert "field 'input.values'" in text and "nested more than 32 levels" in text


def test_show_is_bounded_for_any_value() -> None:
    bomb: Any = [1] * 10
    for _ in range(40):
        bomb = [bomb] * 10
    assert len(show(bomb)) <= SHOW_LIMIT and len(show("x" * 10**6)) <= SHOW_LIMIT and show([1, "a"]) == "[1, 'a']"
    loop: list = []
    loop.append(loop)
    assert len(show(loop)) <= SHOW_LIMIT


def test_deep_nesting_is_a_file_error_not_a_recursion_error(tmp_path: Path) -> None:
    text = _error_of(tmp_path, "- name: deep\n  block: relu\n  description: " + "[" * 5000 + "]" * 5000 + "\n")
    assert f"nested more than {MAX_YAML_DEPTH} levels deep" in text and "line 3" in text


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.mkdir ['{marker}']",
    "!!python/object/new:os.mkdir ['{marker}']",
    "!!python/name:os.mkdir",
    "!!python/module:os",
    "!!python/object:pathlib.Path {{}}",
    "!<tag:yaml.org,2002:python/object/apply:os.mkdir> ['{marker}']",
])
def test_python_tags_never_build_objects_or_run_code(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "code_ran"
    text = _error_of(tmp_path, f"- name: a\n  block: {tag.format(marker=marker)}\n  input: {{shape: [1, 2]}}\n")
    assert "invalid YAML at line 2" in text and "python" in text, text
    assert not marker.exists(), "a YAML tag ran code"


@pytest.mark.parametrize(("scalar", "says"), [
    ("!!int abc", "cannot read 'abc' as tag:yaml.org,2002:int"),
    ("!!float abc", "cannot read 'abc' as tag:yaml.org,2002:float"),
    ("2001-13-45", "month must be in 1..12"),
    ("!!binary a", "failed to decode base64 data"),
])
def test_scalars_their_tag_cannot_read_are_file_errors_with_the_line(tmp_path: Path, scalar: str, says: str) -> None:
    text = _error_of(tmp_path, f"- name: a\n  block: {scalar}\n  input: {{shape: [1, 2]}}\n")
    assert says in text and "line 2" in text, text


def test_a_list_used_as_a_key_is_a_file_error(tmp_path: Path) -> None:
    text = _error_of(tmp_path, "- name: a\n  block: relu\n  ? [1, 2]\n  : 3\n")
    assert "invalid YAML at line 3" in text and "the key [1, 2] is not a plain value" in text


def test_merge_keys_work_and_the_mapping_own_keys_override(tmp_path: Path) -> None:
    path = _write(tmp_path, "- &base {name: a, block: leaky_relu, input: {shape: [1, 4]}}\n"
                            "- <<: *base\n  name: b\n  params: {negative_slope: 0.2}\n")
    entries, error = _load(path)
    assert error is None and [e.name for e in entries] == ["a", "b"]
    assert all(e.error is None for e in entries)
    assert entries[1].points[0].layers[0].params["negative_slope"] == 0.2


@pytest.mark.parametrize("name", ["ünïcödé_çase", "名前", "ca.se-1"])
def test_unicode_letters_in_names_are_fine(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, yaml.safe_dump([{"name": name, "block": "relu", "input": {"shape": [1, 2]}}],
                                           allow_unicode=True))
    (result,) = _load_and_run(path)
    assert result.status == "passed" and f"::{name}[cpu-{BACKEND}]" in result.id


@pytest.mark.parametrize("name", ["emoji🙂", "with space", "", "a/b", "..\\x", "\u202etxt.exe"])
def test_other_names_are_refused_with_the_rule(tmp_path: Path, name: str) -> None:
    text = _error_of(tmp_path, yaml.safe_dump([{"name": name, "block": "relu", "input": {"shape": [1, 2]}}]))
    assert "field 'name'" in text and "letters, digits" in text


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    text = str(load_file(path)[1])
    assert "huge.yaml" in text and f"{MAX_FILE_BYTES:,}" in text


def test_a_file_that_is_not_utf8_is_a_file_error(tmp_path: Path) -> None:
    path = _write(tmp_path, b"- name: \xff\xfe\n")
    assert "cannot read the file" in str(load_file(path)[1])


# --- memory budget --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "field", "says"), [
    ({"block": "relu", "input": {"shape": [1 << 20, 1 << 20]}}, "input.shape", "the limit is"),
    ({"block": "conv2d", "params": {"filters": 1 << 24, "kernel_size": 1}, "input": {"shape": [1, 1, 4, 4]}},
     "params", "output [1, 16777216, 4, 4] would have"),
    ({"block": "conv2d", "params": {"filters": 1, "kernel_size": 1, "padding": 1 << 14},
      "input": {"shape": [1, 1, 1, 1]}}, "params", "output"),
    ({"block": "conv2d", "params": {"filters": 1 << 20, "kernel_size": 9}, "input": {"shape": [1, 8, 9, 9]}},
     "params", "padded input or weights"),
    ({"block": "max_pool2d", "params": {"pool_size": 1 << 14, "padding": (1 << 14) - 1},
      "input": {"shape": [1, 1, 2, 2]}}, "params", "padded input or weights"),
    ({"block": "avg_pool2d", "params": {"pool_size": 1 << 14, "padding": (1 << 14) - 1},
      "input": {"shape": [1, 1, 2, 2]}}, "params", "padded input or weights"),
    ({"block": "dense", "params": {"units": 1 << 20}, "input": {"shape": [1, 1 << 10]}}, "params",
     "padded input or weights"),
    ({"block": "sequential", "layers": [{"block": "dense", "params": {"units": 1 << 27}}],
      "input": {"shape": [1, 1]}}, "layers[0].params", "output"),
    ({"block": "relu", "input": {"shape": [1, 2]}, "sweep": {"input.seed": list(range(101)),
                                                             "input.dtype": ["float32", "float64"] * 50}},
     "sweep", f"the limit is {MAX_POINTS:,}"),
], ids=["input", "conv-output", "conv-padding", "conv-weights", "max-pool-padding", "avg-pool-padding",
        "dense-weights", "network-layer", "sweep-points"])
def test_over_budget_is_refused_before_allocation(tmp_path: Path, case: dict, field: str, says: str) -> None:
    path = _write(tmp_path, yaml.safe_dump([{"name": "big", **case}], default_flow_style=None))
    tracemalloc.start()
    try:
        entries, _ = _load(path)
        results = _load_and_run(path, run=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB"
    assert entries[0].error is not None and entries[0].error.field == field, entries[0].error
    assert says in str(entries[0].error) and results and results[0].status == "error"


def test_sweep_points_per_file_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each case within MAX_POINTS, but many of them (aliases make them cheap to write): the file is bounded too."""
    monkeypatch.setattr(cases_module, "MAX_FILE_POINTS", 25)  # the real limit, MAX_FILE_POINTS, is 50,000
    text = "- &c {name: c0, block: relu, input: {shape: [1, 2]}, sweep: {input.seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}\n"
    text += "".join(f"- {{<<: *c, name: c{i}}}\n" for i in range(1, 4))
    entries, _ = _load(_write(tmp_path, text))
    assert [e.error is None for e in entries] == [True, True, False, False]
    assert "make 30 sweep points; the limit is 25 per file" in str(entries[2].error)
    assert MAX_FILE_POINTS == 50_000


def test_numbers_held_per_file_are_bounded_and_shared_arrays_count_once(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrays_module, "MAX_HELD_NUMBERS", 100)  # the real limit is 2**23
    row = "[" + ", ".join(["1"] * 30) + "]"
    text = (f"- {{name: a, block: relu, input: {{fill: values, values: &v [{row}, {row}]}}}}\n"  # 60 numbers
            "- {name: b, block: tanh, input: {fill: values, values: *v}}\n"  # the same list: no more
            f"- {{name: c, block: relu, input: {{fill: values, values: [{row}, {row}]}}}}\n")  # 60 more: 120
    entries, _ = _load(_write(tmp_path, text))
    assert [e.error is None for e in entries] == [True, True, False]
    assert "the limit is 100 per file" in str(entries[2].error) and "field 'input.values'" in str(entries[2].error)
    assert MAX_HELD_NUMBERS == 1 << 23


def test_an_alias_shared_by_many_points_is_made_once(tmp_path: Path) -> None:
    row = "[" + ", ".join(["0.5"] * 64) + "]"
    text = f"- name: a\n  block: relu\n  input: {{fill: values, values: [{', '.join([row] * 64)}]}}\n" \
           "  sweep: {input.dtype: [float32, float64]}\n"
    (entry,), _ = _load(_write(tmp_path, text))
    a, b = entry.points
    assert a.input.values is b.input.values  # one list for both points


# --- safe file access -----------------------------------------------------------------------------------------

class _Tripwire:
    """Unpickling this creates a folder: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.marker,))


def test_pickles_in_npz_weights_are_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    np.savez(tmp_path / "w.npz", weight=np.array([_Tripwire(marker), None], dtype=object))
    text = _error_of(tmp_path, "- name: a\n  block: dense\n  params: {units: 1}\n  input: {shape: [1, 2]}\n"
                               "  weights: {path: w.npz}\n")
    assert "field 'weights.path'" in text and "pickle" in text
    assert not marker.exists()


def test_pickled_golden_npy_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    np.save(tmp_path / "g.npy", np.array([_Tripwire(marker), None], dtype=object), allow_pickle=True)
    text = _error_of(tmp_path, "- name: a\n  block: relu\n  input: {shape: [1, 2]}\n  expect: {output: g.npy}\n")
    assert "field 'expect.output'" in text and "pickle" in text
    assert not marker.exists()


def test_npz_zip_bomb_is_refused_from_its_headers(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "bomb.npz", weight=np.zeros(MAX_ELEMENTS + 1, dtype=np.bool_))
    assert (tmp_path / "bomb.npz").stat().st_size < MB  # 64 MiB of zeros, compressed
    tracemalloc.start()
    try:
        text = _error_of(tmp_path, "- name: a\n  block: dense\n  params: {units: 1}\n  input: {shape: [1, 2]}\n"
                                   "  weights: {path: bomb.npz}\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "field 'weights.path'" in text and f"the limit is {MAX_ELEMENTS:,}" in text
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A case folder `cases/` inside tmp_path, with a valid .npy and .npz just outside it."""
    (tmp_path / "cases").mkdir()
    np.save(tmp_path / "secret.npy", np.ones((1, 2)))
    np.savez(tmp_path / "secret.npz", weight=np.ones((1, 2)), bias=np.ones(1))
    return tmp_path


PATH_FIELDS = [  # {p}: a YAML double-quoted string (so that \0 is a NUL byte)
    ("input.path", 'input: {{fill: file, path: "{p}"}}', ".npy"),
    ("expect.output", 'input: {{shape: [1, 2]}}\n  expect: {{output: "{p}"}}', ".npy"),
    ("weights.path", 'params: {{units: 1}}\n  input: {{shape: [1, 2]}}\n  weights: {{path: "{p}"}}', ".npz"),
]


@pytest.mark.parametrize(("field", "template", "suffix"), PATH_FIELDS, ids=[f[0] for f in PATH_FIELDS])
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "symlinked-folder", "nul"])
def test_no_path_in_a_case_reads_outside_its_folder(outside: Path, field: str, template: str, suffix: str,
                                                     kind: str) -> None:
    folder = outside / "cases"
    target = outside / f"secret{suffix}"
    if kind == "dotdot":
        p = f"../secret{suffix}"
    elif kind == "absolute":
        p = str(target)
    elif kind == "symlink":
        (folder / f"link{suffix}").symlink_to(target)
        p = f"link{suffix}"
    elif kind == "symlinked-folder":
        (folder / "data").symlink_to(outside, target_is_directory=True)
        p = f"data/secret{suffix}"
    else:
        p = f"a\\0{suffix}"
    block = "dense" if field == "weights.path" else "relu"
    text = f"- name: a\n  block: {block}\n  " + template.format(p=p) + "\n"
    message = _error_of(folder, text)
    assert f"field '{field}" in message, message
    assert any(s in message for s in ("outside the case file's folder", "absolute paths are not allowed",
                                      "not a usable path")), message


def test_a_path_inside_the_folder_through_a_symlink_is_fine(outside: Path) -> None:
    folder = outside / "cases"
    (folder / "data").mkdir()
    np.save(folder / "data" / "x.npy", np.ones((1, 3)))
    (folder / "x_link.npy").symlink_to(folder / "data" / "x.npy")
    (result,) = _load_and_run(_write(folder, "- name: a\n  block: relu\n  input: {fill: file, path: x_link.npy}\n"))
    assert result.status == "passed"


def test_loading_and_running_cases_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cases name only files to read; where results go (--json, --html, --junit, --harness-results) comes from the
    command line. Loading and running a case leaves its folder and the working folder as they were."""
    folder = tmp_path / "cases"
    folder.mkdir()
    np.save(folder / "x.npy", np.arange(6.0).reshape(1, 6))
    path = _write(folder, "- name: a\n  block: softmax\n  input: {fill: file, path: x.npy}\n"
                          "  expect: {shape: [1, 6]}\n- name: b\n  block: conv2d\n  params: {filters: 1, "
                          "kernel_size: 1}\n  input: {shape: [1, 1, 2, 2]}\n  expect: {output: x.npy}\n")
    monkeypatch.chdir(tmp_path)
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    results = _load_and_run(path)
    assert [r.status for r in results] == ["passed", "failed"]
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    from xfw_harness.cases import CASE_KEYS, INPUT_KEYS

    assert not {"output", "out", "results", "report", "save", "write"} & {*CASE_KEYS, *INPUT_KEYS}


def test_a_zip_that_is_not_an_npz_is_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "w.npz", "w") as z:
        z.writestr("weight.npy", b"not an array")
    text = _error_of(tmp_path, "- name: a\n  block: dense\n  params: {units: 1}\n  input: {shape: [1, 2]}\n"
                               "  weights: {path: w.npz}\n")
    assert "field 'weights.path'" in text and "cannot read" in text
