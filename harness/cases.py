"""The case loader: YAML case files in, validated `Point`s (one case at one sweep combination) out.

Every problem becomes a `CaseError` that names the file, the case and the field; a bad case never hides
the others in its file. The format is described in README.md ("Writing a case").
"""

from __future__ import annotations

import itertools
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness.compare import Tolerance
from harness.errors import CaseError, Refusal, did_you_mean
from harness.frameworks import DEVICES
from harness.layout import CHANNELS_LAST
from harness.registry import Block, Site, get_block
from harness.schema import normalise_params

CASE_KEYS = ("name", "description", "block", "params", "layers", "input", "weights", "sweep", "mode", "tolerance",
             "expect", "devices")
LAYER_KEYS = ("block", "params", "weights")
INPUT_KEYS = ("shape", "dtype", "fill", "seed", "values", "path")
FILLS = ("normal", "uniform", "arange", "values", "file")
DTYPES = ("float32", "float64")
MODES = ("eval", "train")
INPUT_SWEEP_KEYS = ("input.shape", "input.dtype", "input.seed")
# Refuse inputs larger than this before allocating anything (4 GiB of float64 would stall a 24 GiB runner).
MAX_ELEMENTS = 1 << 26
NAME_RE = re.compile(r"^[\w.\-]+$")


@dataclass(frozen=True)
class Layer:
    block: Block
    params: dict[str, Any]  # normalised
    weights: Path | None = None


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"
    fill: str = "normal"
    seed: int = 0
    values: Any = None
    path: Path | None = None

    def make(self) -> np.ndarray:
        """The channels-first input array; the same for the same spec, on every machine."""
        if self.fill == "values":
            return np.asarray(self.values, dtype=self.dtype)
        if self.fill == "file":
            return np.load(self.path, allow_pickle=False).astype(self.dtype)
        if self.fill == "arange":
            return np.arange(math.prod(self.shape), dtype=np.float64).reshape(self.shape).astype(self.dtype)
        rng = np.random.default_rng(self.seed)
        if self.fill == "uniform":
            return rng.uniform(-1.0, 1.0, self.shape).astype(self.dtype)
        return rng.standard_normal(self.shape).astype(self.dtype)


@dataclass
class Point:
    """One case at one sweep combination: everything needed to run it on a device."""

    file: str
    case: str
    sweep: dict[str, Any]  # the swept keys and their values at this point, as written
    layers: list[Layer]
    sequential: bool
    input: InputSpec
    mode: str
    sites: list[Site]
    output_shape: tuple[int, ...]
    tolerance: Tolerance | None
    expect_shape: tuple[int, ...] | None
    expect_output: np.ndarray | None
    devices: tuple[str, ...] | None
    raw: dict[str, Any] = field(default_factory=dict)  # the case at this point, sweep applied
    source: dict[str, Any] = field(default_factory=dict)  # the case as written, sweep included

    @property
    def sweep_id(self) -> str:
        return sweep_id(self.sweep)

    def test_id(self, device: str) -> str:
        return f"{self.file}::{self.case}[{'-'.join(filter(None, [self.sweep_id, device]))}]"

    @property
    def blocks(self) -> list[str]:
        return [layer.block.name for layer in self.layers]


@dataclass
class RefusedPoint:
    """A sweep point that cannot run; the rest of its case still runs."""

    sweep: dict[str, Any]
    error: CaseError

    @property
    def sweep_id(self) -> str:
        return sweep_id(self.sweep)


@dataclass
class CaseEntry:
    """A case as loaded: its points, or the error that stops it from running."""

    file: str
    name: str
    block: str
    points: list[Point | RefusedPoint] = field(default_factory=list)
    error: CaseError | None = None


def sweep_id(sweep: dict[str, Any]) -> str:
    """The sweep part of a test id: `strides=3x2-padding=same`."""
    return "-".join(f"{k}={format_value(v)}" for k, v in sweep.items())


def format_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(format_value(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _inside(base: Path, relative: Any, fld: str, suffixes: tuple[str, ...]) -> Path:
    """A data path named in a case: relative to the case file's folder, never outside its tree."""
    if not isinstance(relative, str) or not relative:
        raise CaseError(f"must be a path (string) relative to the case file, got {relative!r}", field=fld)
    if Path(relative).is_absolute():
        raise CaseError(f"absolute paths are not allowed ({relative!r}); give it relative to the case file", field=fld)
    path = (base / relative).resolve()
    if not path.is_relative_to(base.resolve()):
        raise CaseError(f"{relative!r} points outside the case file's folder {base}", field=fld)
    if path.suffix not in suffixes:
        raise CaseError(f"{relative!r} must be a {' or '.join(suffixes)} file", field=fld)
    if not path.is_file():
        raise CaseError(f"file not found: {path}", field=fld)
    return path


def _check_keys(raw: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise CaseError(f"unknown key {key!r}{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}",
                            field=f"{prefix}{key}")


def _choice(value: Any, allowed: tuple[str, ...], fld: str) -> str:
    if value not in allowed:
        raise CaseError(f"got {value!r}; allowed: {', '.join(allowed)}", field=fld)
    return value


def _shape(value: Any, fld: str, min_rank: int = 2) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and len(value) >= min_rank and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value)
    if not ok:
        raise CaseError(f"got {value!r}; allowed: a list of at least {min_rank} positive integers, channels-first "
                        "(N, C, ...)", field=fld)
    if math.prod(value) > MAX_ELEMENTS:
        raise CaseError(f"{list(value)} has {math.prod(value):,} elements; the limit is {MAX_ELEMENTS:,}", field=fld)
    return tuple(value)


def _nested_array(value: Any, fld: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise CaseError("must be a nested list of numbers with a regular (rectangular) shape", field=fld) from None
    return arr


def _npy_header(path: Path, fld: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of a .npy file, from its header only: nothing is allocated or unpickled."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
    except (ValueError, OSError) as e:
        raise CaseError(f"cannot read {path.name} as a .npy array: {e}", field=fld) from None
    if dtype.hasobject:
        raise CaseError(f"{path.name} holds Python objects (a pickled array); allowed: a plain numeric array "
                        "(pickles are never loaded)", field=fld)
    if dtype.kind not in "biuf":
        raise CaseError(f"{path.name} holds {dtype} values; allowed: a numeric (bool, integer or float) array",
                        field=fld)
    if math.prod(shape) > MAX_ELEMENTS:
        raise CaseError(f"{path.name} has shape {list(shape)}, {math.prod(shape):,} elements; the limit is "
                        f"{MAX_ELEMENTS:,}", field=fld)
    return tuple(shape), dtype


def _load_npy(path: Path, fld: str) -> np.ndarray:
    _npy_header(path, fld)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CaseError(f"cannot read {path.name} as a .npy array without pickles: {e}", field=fld) from None


def _seed(value: Any, fld: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CaseError(f"got {value!r}; allowed: an integer >= 0", field=fld)
    return value


def _input_spec(raw: Any, base: Path) -> InputSpec:
    if not isinstance(raw, dict):
        raise CaseError("must be a mapping with at least `shape` (or fill: values / file)", field="input")
    _check_keys(raw, INPUT_KEYS, "input")
    fill = _choice(raw.get("fill", "normal"), FILLS, "input.fill")
    dtype = _choice(raw.get("dtype", "float32"), DTYPES, "input.dtype")
    seed = _seed(raw.get("seed", 0), "input.seed")
    for key, needs in (("values", "values"), ("path", "file")):
        if key in raw and fill != needs:
            raise CaseError(f"`{key}` is only read with fill: {needs} (fill is {fill})", field=f"input.{key}")
    values, path, data_shape = None, None, None
    if fill == "values":
        if "values" not in raw:
            raise CaseError("fill: values needs `values`: a nested list, channels-first", field="input.values")
        arr = _nested_array(raw["values"], "input.values")
        values, data_shape = arr.tolist(), arr.shape
    elif fill == "file":
        path = _inside(base, raw.get("path"), "input.path", (".npy",))
        data_shape = _npy_header(path, "input.path")[0]
    if "shape" in raw:
        shape = _shape(raw["shape"], "input.shape")
        if data_shape is not None and tuple(data_shape) != shape:
            raise CaseError(f"the {fill} data has shape {list(data_shape)} but input.shape is {list(shape)}",
                            field="input.shape")
    elif data_shape is not None:
        where = "input.values" if fill == "values" else "input.path"
        if len(data_shape) < 2 or 0 in data_shape:
            raise CaseError(f"the {fill} data has shape {list(data_shape)}; allowed: at least 2 dimensions, none "
                            "empty, channels-first (N, C, ...)", field=where)
        shape = _shape(list(data_shape), where)
    else:
        raise CaseError("missing; allowed: a list of at least 2 positive integers, channels-first (N, C, ...)",
                        field="input.shape")
    return InputSpec(shape=shape, dtype=dtype, fill=fill, seed=seed, values=values, path=path)


def _tolerance(raw: Any) -> Tolerance | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise CaseError("must be a mapping with atol and/or rtol", field="tolerance")
    _check_keys(raw, ("atol", "rtol"), "tolerance")
    for key, value in raw.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
            raise CaseError(f"got {value!r}; allowed: a number >= 0", field=f"tolerance.{key}")
    return Tolerance(atol=float(raw.get("atol", 0.0)), rtol=float(raw.get("rtol", 0.0)), source="set by the case")


def _expect(raw: Any, base: Path) -> tuple[tuple[int, ...] | None, np.ndarray | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise CaseError("must be a mapping with shape and/or output", field="expect")
    _check_keys(raw, ("shape", "output"), "expect")
    shape = _shape(raw["shape"], "expect.shape", min_rank=1) if "shape" in raw else None
    output = None
    if "output" in raw:
        value = raw["output"]
        if isinstance(value, str):
            output = _load_npy(_inside(base, value, "expect.output", (".npy",)), "expect.output").astype(np.float64)
        else:
            output = _nested_array(value, "expect.output")
    return shape, output


def _weights(raw: Any, base: Path, block: Block, fld: str) -> Path | None:
    if raw is None:
        return None
    if not block.weight_names:
        raise CaseError(f"block {block.name!r} has no weights", field=fld)
    if not isinstance(raw, dict) or set(raw) != {"path"}:
        raise CaseError("must be {path: FILE.npz}, a .npz of PyTorch-layout arrays named "
                        f"{', '.join(block.weight_names)}", field=fld)
    path = _inside(base, raw["path"], f"{fld}.path", (".npz",))
    if not zipfile.is_zipfile(path):
        raise CaseError(f"{path.name} is not a .npz archive (as numpy.savez writes)", field=f"{fld}.path")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
    except (ValueError, OSError) as e:
        raise CaseError(f"cannot read {path.name}: {e}", field=f"{fld}.path") from None
    unknown = names - set(block.weight_names)
    if unknown:
        raise CaseError(f"{path.name} holds {', '.join(sorted(unknown))}; allowed names: "
                        f"{', '.join(block.weight_names)}", field=f"{fld}.path")
    return path


def _layers(raw: dict, base: Path) -> tuple[list[Layer], bool]:
    """The case's layers, from `block` + `params` or from a sequential's `layers`."""
    if raw.get("block") == "sequential":
        if "params" in raw or "weights" in raw:
            key = "params" if "params" in raw else "weights"
            raise CaseError(f"a sequential case has no `{key}`; give them on each of its layers", field=key)
        items = raw.get("layers")
        if not isinstance(items, list) or not items:
            raise CaseError("a sequential case needs `layers`: a non-empty list of {block, params, weights}",
                            field="layers")
        layers = []
        for i, item in enumerate(items):
            where = f"layers[{i}]"
            if not isinstance(item, dict) or "block" not in item:
                raise CaseError("must be a mapping with `block` (and optional params, weights)", field=where)
            try:
                _check_keys(item, LAYER_KEYS, "")
                if item["block"] == "sequential":
                    raise CaseError("sequential cannot be nested", field="block")
                block = get_block(item["block"])
                params = normalise_params(block.params, item.get("params"))
                weights = _weights(item.get("weights"), base, block, "weights")
            except CaseError as e:
                raise e.located(field_prefix=where) from None
            layers.append(Layer(block, params, weights))
        return layers, True
    if "layers" in raw:
        raise CaseError("`layers` is only for block: sequential", field="layers")
    if "block" not in raw:
        raise CaseError("missing; allowed: a registered block name (see `python -m harness list`) or sequential",
                        field="block")
    block = get_block(raw["block"])
    params = normalise_params(block.params, raw.get("params"))
    return [Layer(block, params, _weights(raw.get("weights"), base, block, "weights"))], False


def plan(layers: list[Layer], shape: tuple[int, ...], dtype: str, mode: str, seed: int,
         sequential: bool) -> tuple[list[Site], tuple[int, ...]]:
    """Walk the layers' shape semantics: one Site per layer, and the final channels-first output shape.

    Raises Refusal (field located at the layer) for what cannot work or cannot be compared.
    """
    sites = []
    layout = CHANNELS_LAST
    for i, layer in enumerate(layers):
        site = Site(params=layer.params, in_shape=shape, dtype=dtype, mode=mode, layout=layout, seed=seed)
        try:
            layer.block.check_input(site)
            if layer.block.stochastic and mode == "train" and i != len(layers) - 1:
                raise Refusal(f"{layer.block.name} in train mode must be the last layer: the frameworks' random "
                              "masks differ, so nothing after it can be compared", field="block")
            out = layer.block.output_shape(site)
        except CaseError as e:
            if e.field == "input.shape" and i > 0:
                e = CaseError(f"{e.message} (the output of layers[{i - 1}])", field="block")
            raise e.located(field_prefix=f"layers[{i}]" if sequential and e.field != "input.shape" else None) from None
        sites.append(site)
        layout = layer.block.output_layout(site)
        shape = tuple(out)
    return sites, shape


def _sweep(raw: Any) -> dict[str, list[Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise CaseError("must be a mapping of keys to lists of values", field="sweep")
    for key, values in raw.items():
        if not isinstance(values, list) or not values:
            raise CaseError(f"must be a non-empty list of values, got {values!r}", field=f"sweep.{key}")
    return dict(raw)


def _apply_sweep(raw: dict, combo: dict[str, Any], sequential: bool) -> dict:
    """The case mapping with one sweep combination (whose keys _sweep_check accepted) written into it."""
    out = {k: v for k, v in raw.items() if k != "sweep"}
    for key, value in combo.items():
        if key in INPUT_SWEEP_KEYS:
            out["input"] = {**(out.get("input") or {}), key.split(".", 1)[1]: value}
        elif key == "mode":
            out["mode"] = value
        elif sequential:
            m = re.fullmatch(r"layers\.(\d+)\.(\w+)", key)  # a valid key: _sweep_check has seen it
            layers = [dict(item) for item in out["layers"]]
            idx, name = int(m.group(1)), m.group(2)
            layers[idx]["params"] = {**(layers[idx].get("params") or {}), name: value}
            out["layers"] = layers
        else:
            out["params"] = {**(out.get("params") or {}), key: value}
    return out


def _sweep_check(raw: dict, key: Any, sequential: bool) -> Any:
    """What checks one value of sweep key `key` (raising CaseError), or a CaseError if the key is unknown.

    Runs before any sweep value is written into the case, so an unknown key is reported as itself (sweep.KEY),
    not as the unknown parameter it would become.
    """
    if key == "input.shape":
        return lambda v: _shape(v, key)
    if key == "input.dtype":
        return lambda v: _choice(v, DTYPES, key)
    if key == "input.seed":
        return lambda v: _seed(v, key)
    if key == "mode":
        return lambda v: _choice(v, MODES, key)
    if sequential:
        items = raw.get("layers") if isinstance(raw.get("layers"), list) else []
        m = re.fullmatch(r"layers\.(\d+)\.(\w+)", str(key))
        if not m or int(m.group(1)) >= len(items):
            raise CaseError(f"unknown sweep key {key!r}; allowed for a sequential: layers.<index>.<param> with "
                            f"index < {len(items)}, {', '.join(INPUT_SWEEP_KEYS)}, mode", field=f"sweep.{key}")
        item = items[int(m.group(1))]
        try:
            block = get_block(item.get("block") if isinstance(item, dict) else None)
        except CaseError:
            return lambda v: v  # a bad layer: reported by _layers, at its own field
        name, prefix = m.group(2), f"layers.{m.group(1)}."
    else:
        try:
            block = get_block(raw.get("block"))
        except CaseError:
            return lambda v: v  # no or an unknown block: reported by _layers
        name, prefix = key, ""
    param = next((p for p in block.params if p.name == name), None)
    if param is None:
        allowed = [*(prefix + p.name for p in block.params), *INPUT_SWEEP_KEYS, "mode"]
        raise CaseError(f"unknown sweep key {key!r}; allowed: {', '.join(allowed)}", field=f"sweep.{key}")
    return param.normalise


def _point(file: str, name: str, raw: dict, base: Path, sweep: dict[str, Any], source: dict) -> Point:
    layers, sequential = _layers(raw, base)
    spec = _input_spec(raw.get("input"), base)
    mode = _choice(raw.get("mode", "eval"), MODES, "mode")
    devices = raw.get("devices")
    if devices is not None:
        if not isinstance(devices, list) or not devices or any(d not in DEVICES for d in devices):
            raise CaseError(f"got {devices!r}; allowed: a list of {', '.join(DEVICES)}", field="devices")
        devices = tuple(dict.fromkeys(devices))
    tolerance = _tolerance(raw.get("tolerance"))
    expect_shape, expect_output = _expect(raw.get("expect"), base)
    sites, out_shape = plan(layers, spec.shape, spec.dtype, mode, spec.seed, sequential)
    return Point(file=file, case=name, sweep=sweep, layers=layers, sequential=sequential, input=spec, mode=mode,
                 sites=sites, output_shape=out_shape, tolerance=tolerance, expect_shape=expect_shape,
                 expect_output=expect_output, devices=devices, raw=raw, source=source)


def load_case(file: str, index: int, raw: Any, base: Path, seen: set[str]) -> CaseEntry:
    """One case of a file: its points (a refused sweep point stands in its place) or its error."""
    name = raw.get("name") if isinstance(raw, dict) else None
    label = name if isinstance(name, str) else f"#{index + 1}"
    entry = CaseEntry(file=file, name=label, block=str(raw.get("block")) if isinstance(raw, dict) else "?")
    try:
        if not isinstance(raw, dict):
            raise CaseError(f"each case must be a mapping, got {type(raw).__name__}")
        _check_keys(raw, CASE_KEYS, "")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise CaseError(f"got {name!r}; allowed: a non-empty name of letters, digits, '_', '.', '-'",
                            field="name")
        if name in seen:
            raise CaseError("duplicate name: case names must be unique in their file", field="name")
        seen.add(name)
        sequential = raw.get("block") == "sequential"
        sweep = _sweep(raw.get("sweep"))
        for key, values in sweep.items():
            check = _sweep_check(raw, key, sequential)
            for i, value in enumerate(values):
                try:
                    check(value)
                except CaseError as e:
                    raise CaseError(e.message, field=f"sweep.{key}[{i}]") from None
        # An error in the layers (unknown block, bad parameter) is the case's, not each point's: check them once,
        # at the first point, since a required parameter may be given by the sweep alone.
        _layers(_apply_sweep(raw, {key: values[0] for key, values in sweep.items()}, sequential), base)
        combos = [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())] or [{}]
        for combo in combos:
            try:
                entry.points.append(_point(file, label, _apply_sweep(raw, combo, sequential), base, combo, raw))
            except CaseError as e:
                sweep_note = ", ".join(f"{k}={format_value(v)}" for k, v in combo.items())
                err = e.located(file=file, case=label)
                if not sweep_note:
                    raise err from None
                entry.points.append(RefusedPoint(combo, CaseError(
                    f"{err.message} (at sweep point {sweep_note})", file=file, case=label, field=err.field)))
    except CaseError as e:
        entry.error = e.located(file=file, case=label)
        entry.points = []
    return entry


class _CaseLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error, not a silent overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"the key {key!r} is given twice",
                    key_node.start_mark)
            seen[key] = True
        return super().construct_mapping(node, deep=deep)


def load_file(path: str | Path) -> tuple[list[CaseEntry], CaseError | None]:
    """All cases of one YAML file, or the file-level error (unreadable, not YAML, not a list)."""
    path = Path(path)
    file = _display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return [], CaseError(f"cannot read the file: {e}", file=file)
    try:
        data = yaml.load(text, Loader=_CaseLoader)  # noqa: S506 - a SafeLoader: no Python objects are built
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        return [], CaseError(f"invalid YAML{where}: {problem}", file=file)
    if data is None:
        return [], None
    if not isinstance(data, list):
        return [], CaseError(f"a case file must be a YAML list of cases, got a {type(data).__name__}", file=file)
    seen: set[str] = set()
    return [load_case(file, i, raw, path.parent, seen) for i, raw in enumerate(data)], None


def find_case_files(paths: list[str | Path]) -> list[Path]:
    """YAML files named, and those under folders named, in a stable order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file())
        else:
            found.append(p)
    return list(dict.fromkeys(found))
