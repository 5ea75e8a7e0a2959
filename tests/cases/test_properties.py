"""Property-based tests: the block adapters across their parameter space, not only at the sweep points of cases/.

Each test draws a case, writes it as YAML, loads it with the harness's own loader and runs it. The expected
output shape, and whether a combination is impossible at all, are computed here from the arithmetic
(TensorFlow's `same`: ceil(in / stride); otherwise floor((in + pads - span) / stride) + 1), independently
of xfw_harness.spatial. On a failure hypothesis shows the drawn case YAML (`note`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from xfw_harness.cases import Point, RefusedPoint, load_file
from xfw_harness.core.errors import CaseError
from xfw_harness.engine import Result, run_point


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


_counter = itertools.count()


def _yaml(case: dict) -> str:
    return yaml.safe_dump([case], sort_keys=False, default_flow_style=None)


def _load_one(text: str, directory: Path) -> Point | CaseError:
    """The one point of the one case in `text`, or the CaseError that refuses it (case error or refused point)."""
    path = directory / f"prop_{next(_counter)}.yaml"
    path.write_text(text, encoding="utf-8")
    entries, err = load_file(path)
    assert err is None, f"file error: {err}"
    assert len(entries) == 1
    entry = entries[0]
    if entry.error is not None:
        return entry.error
    assert len(entry.points) == 1, entry.points
    point = entry.points[0]
    return point.error if isinstance(point, RefusedPoint) else point


def _pair(v: int | list[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def _pairs(lo: int, hi: int) -> st.SearchStrategy:
    """An int or a [h, w] list of ints, as a case file writes them."""
    return st.one_of(st.integers(lo, hi), st.lists(st.integers(lo, hi), min_size=2, max_size=2))


def _paddings() -> st.SearchStrategy:
    """Each padding form about equally often: 'valid', 'same', an int, a pair."""
    return st.sampled_from(["valid", "same", "int", "pair"]).flatmap(
        lambda kind: st.just(kind) if kind in ("valid", "same") else
        st.integers(0, 2) if kind == "int" else st.lists(st.integers(0, 2), min_size=2, max_size=2))


# Optional parameters are written 3 times in 4 (otherwise the block's default applies).
_written = st.sampled_from([True, True, True, False])


def _pads_1d(padding: str | int | list[int], axis: int, size: int, span: int, stride: int) -> tuple[int, int]:
    """(before, after) padding along one spatial axis; `same` as TensorFlow computes it."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return total // 2, total - total // 2
    p = _pair(padding)[axis]
    return p, p


def _windows_1d(size: int, span: int, stride: int, pads: tuple[int, int]) -> list[int]:
    """Start offsets (in the padded axis) of every window that fits, floor mode."""
    padded = size + pads[0] + pads[1]
    return list(range(0, padded - span + 1, stride)) if padded >= span else []


def _check_passed(result: Result, expected: tuple[int, ...]) -> None:
    assert result.status == "passed", f"{result.status}: {result.message}"
    assert result.shapes["torch"] == list(expected), (result.shapes, expected)
    assert result.shapes["keras"] == list(expected), (result.shapes, expected)


# --- conv2d ----------------------------------------------------------------------------------------------


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    group_kind = draw(st.sampled_from(["1", "2", "in_channels"]))
    # Mostly channel counts the groups divide; sometimes any count, so refusals for groups are drawn too.
    any_channels = draw(st.sampled_from([False, False, False, True]))
    if group_kind == "1":
        groups, cin, filters = 1, draw(st.integers(1, 6)), draw(st.integers(1, 6))
    elif group_kind == "2":
        groups = 2
        cin = draw(st.integers(1, 6)) if any_channels else 2 * draw(st.integers(1, 3))
        filters = draw(st.integers(1, 6)) if any_channels else 2 * draw(st.integers(1, 3))
    else:
        cin = draw(st.integers(1, 6))
        groups = cin
        filters = draw(st.integers(1, 6)) if any_channels else cin * draw(st.integers(1, max(1, 6 // cin)))
    params = {"filters": filters, "kernel_size": draw(_pairs(1, 5))}
    for key, strategy in (("strides", _pairs(1, 3)), ("padding", _paddings()), ("dilation_rate", _pairs(1, 3)),
                          ("groups", st.just(groups)), ("use_bias", st.booleans())):
        if draw(_written) or (key == "groups" and groups != 1):
            params[key] = draw(strategy)
    shape = [draw(st.integers(1, 2)), cin, draw(st.integers(3, 12)), draw(st.integers(3, 12))]
    dtype = draw(st.sampled_from(["float32", "float64"]))
    return {"name": "conv_prop", "block": "conv2d", "params": params,
            "input": {"shape": shape, "dtype": dtype, "seed": draw(st.integers(0, 1000))}}


def _conv_expectation(case: dict) -> tuple[tuple[int, ...] | None, dict[str, bool]]:
    """(expected channels-first output shape or None, which impossibilities hold)."""
    p = case["params"]
    n, cin, h, w = case["input"]["shape"]
    k, s = _pair(p["kernel_size"]), _pair(p.get("strides", 1))
    d, g = _pair(p.get("dilation_rate", 1)), p.get("groups", 1)
    padding = p.get("padding", 0)
    reasons = {"groups_in": cin % g != 0, "groups_filters": p["filters"] % g != 0, "kernel": False}
    out = []
    for axis, size in enumerate((h, w)):
        span = (k[axis] - 1) * d[axis] + 1
        if padding == "same":
            out.append(-(-size // s[axis]))  # TensorFlow's same: ceil(in / stride), never empty
            continue
        pad = 0 if padding == "valid" else _pair(padding)[axis]
        room = size + 2 * pad - span
        if room < 0:
            reasons["kernel"] = True
        out.append(room // s[axis] + 1)
    if any(reasons.values()):
        return None, reasons
    return (n, p["filters"], *out), reasons


@_settings(150)
@given(case=conv_cases())
def test_conv2d_refuses_only_the_impossible_and_gives_the_tf_shape(case: dict, tmp_path: Path) -> None:
    text = _yaml(case)
    note(text)
    expected, reasons = _conv_expectation(case)
    loaded = _load_one(text, tmp_path)
    if isinstance(loaded, CaseError):
        message = str(loaded)
        note(f"refused: {message}")
        event("refused")
        assert expected is None, f"refused a possible combination (expected shape {expected}): {message}"
        if "input channels" in message:
            assert reasons["groups_in"], message
        elif "does not divide filters" in message:
            assert reasons["groups_filters"], message
        elif "larger than the padded input" in message:
            assert reasons["kernel"], message
        else:
            raise AssertionError(f"the refusal does not say why: {message}")
        return
    assert expected is not None, f"accepted an impossible combination ({reasons}); harness shape {loaded.output_shape}"
    event("ran")
    result = run_point(loaded, "cpu")
    note(f"result: {result.status}: {result.message}")
    _check_passed(result, expected)


# --- max_pool2d / avg_pool2d -----------------------------------------------------------------------------


@st.composite
def pool_cases(draw: st.DrawFn) -> tuple[dict, np.ndarray | None]:
    block = draw(st.sampled_from(["max_pool2d", "avg_pool2d"]))
    params: dict = {"pool_size": draw(_pairs(1, 4))}
    if draw(_written):
        params["strides"] = draw(st.one_of(st.none(), _pairs(1, 3)))
    if draw(_written):
        params["padding"] = draw(_paddings())
    if block == "avg_pool2d" and draw(_written):
        params["count_include_pad"] = draw(st.booleans())
    sizes = st.one_of(st.integers(1, 3), st.integers(4, 10), st.integers(4, 10))
    shape = [draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(sizes), draw(sizes)]
    dtype = draw(st.sampled_from(["float32", "float64"]))
    case = {"name": "pool_prop", "block": block, "params": params, "input": {"shape": shape, "dtype": dtype}}
    data = None
    if draw(st.booleans()):
        # Every value <= -1: any window whose padding counted as 0 (not -inf, or in the divisor) would differ.
        rng = np.random.default_rng(draw(st.integers(0, 1000)))
        data = -np.abs(rng.standard_normal(shape)) - 1.0 - draw(st.sampled_from([0.0, 100.0]))
        case["input"]["fill"] = "file"  # its path: written by the test
    else:
        case["input"]["seed"] = draw(st.integers(0, 1000))
    return case, data


def _pool_expectation(case: dict) -> tuple[tuple[int, ...] | None, set[str]]:
    """(expected output shape or None, why it is impossible: {'empty_window', 'no_window'} or a part of it)."""
    p = case["params"]
    n, c, h, w = case["input"]["shape"]
    k = _pair(p["pool_size"])
    s = k if p.get("strides") is None else _pair(p["strides"])
    padding = p.get("padding", "valid")
    out, why = [], set()
    for axis, size in enumerate((h, w)):
        pads = _pads_1d(padding, axis, size, k[axis], s[axis])
        starts = _windows_1d(size, k[axis], s[axis], pads)
        if not starts:
            why.add("no_window")
        elif any(start + k[axis] <= pads[0] or start >= pads[0] + size for start in starts):
            why.add("empty_window")  # a window lies wholly in the padding: max -inf, mean 0/0
        out.append(len(starts))
    return (None, why) if why else ((n, c, *out), why)


@_settings(150)
@given(drawn=pool_cases())
def test_pooling_refuses_only_empty_windows_and_gives_the_tf_shape(drawn: tuple, tmp_path: Path) -> None:
    case, data = drawn
    if data is not None:  # the all-negative input, as a .npy next to the case file
        name = f"neg_{next(_counter)}.npy"
        np.save(tmp_path / name, data)
        case["input"] = {**case["input"], "path": name}
    text = _yaml(case)
    note(text)
    expected, why = _pool_expectation(case)
    loaded = _load_one(text, tmp_path)
    if isinstance(loaded, CaseError):
        message = str(loaded)
        note(f"refused: {message}")
        event(f"refused: {' and '.join(sorted(why))}")
        assert expected is None, f"refused a possible combination (expected shape {expected}): {message}"
        if "nothing but padding" in message:
            assert "empty_window" in why, message
        elif "larger than the padded input" in message:
            assert "no_window" in why, message
        else:
            raise AssertionError(f"the refusal does not say why: {message}")
        return
    assert expected is not None, f"accepted an impossible combination ({why}); harness shape {loaded.output_shape}"
    event("ran")
    result = run_point(loaded, "cpu")
    note(f"result: {result.status}: {result.message}")
    _check_passed(result, expected)


# --- softmax ---------------------------------------------------------------------------------------------


@st.composite
def softmax_cases(draw: st.DrawFn) -> dict:
    rank = draw(st.integers(2, 5))
    shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    axis = draw(st.integers(-rank, rank - 1))
    shape[axis] = draw(st.integers(2, 5))  # a size-1 axis is trivially 1 (and Keras warns about it)
    dtype = draw(st.sampled_from(["float32", "float64"]))
    return {"name": "softmax_prop", "block": "softmax", "params": {"axis": axis},
            "input": {"shape": shape, "dtype": dtype, "seed": draw(st.integers(0, 1000))}}


@_settings(40)
@given(case=softmax_cases())
def test_softmax_any_axis_any_rank(case: dict, run_case: Callable[[str], list[Result]]) -> None:
    text = _yaml(case)
    note(text)
    [result] = run_case(text)
    note(f"result: {result.status}: {result.message}")
    _check_passed(result, tuple(case["input"]["shape"]))


# --- sequential ------------------------------------------------------------------------------------------


@st.composite
def sequential_cases(draw: st.DrawFn) -> tuple[dict, tuple[int, ...]]:
    length = draw(st.integers(2, 5))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(2, 10)), draw(st.integers(2, 10)))
    out = shape
    layers = []
    for _ in range(length):
        spatial = len(out) == 4
        kinds = ["relu", "gelu", "tanh", "dense"] + (["conv2d", "max_pool2d", "flatten"] if spatial else [])
        kind = draw(st.sampled_from(kinds))
        layer: dict = {"block": kind}
        if kind == "conv2d":
            filters, stride = draw(st.integers(1, 4)), draw(st.integers(1, 2))
            layer["params"] = {"filters": filters, "kernel_size": draw(st.integers(1, 3)), "strides": stride,
                               "padding": "same"}
            out = (out[0], filters, -(-out[2] // stride), -(-out[3] // stride))
        elif kind == "max_pool2d":
            layer["params"] = {"pool_size": 2, "padding": "same"}
            out = (out[0], out[1], -(-out[2] // 2), -(-out[3] // 2))
        elif kind == "flatten":
            out = (out[0], int(np.prod(out[1:])))
        elif kind == "dense":
            units = draw(st.integers(1, 5))
            layer["params"] = {"units": units}
            out = (out[0], units, *out[2:])
        elif kind == "gelu" and draw(st.booleans()):
            layer["params"] = {"approximate": draw(st.sampled_from(["none", "tanh"]))}
        layers.append(layer)
    dtype = draw(st.sampled_from(["float32", "float64"]))
    case = {"name": "seq_prop", "block": "sequential", "layers": layers,
            "input": {"shape": list(shape), "dtype": dtype, "seed": draw(st.integers(0, 1000))}}
    if dtype == "float64" and any(layer["block"] == "gelu" for layer in layers):
        # TensorFlow's float64 GELU rounds its constants to float32 (~5e-9 off; see gelu_float64 in
        # cases/activations.yaml): a real framework difference that a case admits with its own tolerance.
        case["tolerance"] = {"atol": 1.0e-7, "rtol": 0.0}
    return case, out


@_settings(60)
@given(drawn=sequential_cases())
def test_sequential_of_drawn_blocks(drawn: tuple, run_case: Callable[[str], list[Result]]) -> None:
    case, expected = drawn
    text = _yaml(case)
    note(text)
    [result] = run_case(text)
    note(f"result: {result.status}: {result.message}")
    _check_passed(result, expected)


# --- the independent arithmetic itself, at hand-checked points ---------------------------------------------


@pytest.mark.parametrize(("size", "span", "stride", "padding", "pads", "starts"), [
    (5, 3, 2, "valid", (0, 0), [0, 2]),
    (5, 3, 2, "same", (1, 1), [0, 2, 4]),
    (6, 3, 2, "same", (0, 1), [0, 2, 4]),
    (4, 2, 1, 1, (1, 1), [0, 1, 2, 3, 4]),
    (2, 5, 1, "valid", (0, 0), []),
])
def test_independent_window_arithmetic(size, span, stride, padding, pads, starts) -> None:
    assert _pads_1d(padding, 0, size, span, stride) == pads
    assert _windows_1d(size, span, stride, pads) == starts
