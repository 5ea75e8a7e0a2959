"""The case loader: YAML case files in, validated `Point`s (one case at one sweep combination) out.

Every problem becomes a `CaseError` that names the file, the case and the field; a bad case never hides
the others in its file. The format is described in README.md ("Writing a case").
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import itertools
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness.blocks import MAX_ELEMENTS, Block, Layer, Site, all_blocks, get_block, network_block, plan
from harness.core.errors import CaseError, Refusal, did_you_mean, show
from harness.core.frameworks import DEVICES
from harness.core.schema import Param, normalise_params
from harness.core.tolerance import Tolerance

CASE_KEYS = ("name", "description", "block", "params", "layers", "input", "weights", "sweep", "mode", "tolerance",
             "expect", "devices", "check", "steps", "optimizer", "compare", "defaults", "torch_params",
             "keras_params")
CHECKS = ("forward", "backward", "train_step")  # `check:` what is compared (forward only by default)
COMPARES = ("frameworks", "devices")  # `compare:` torch vs keras (default), or each framework's cpu vs gpu
DEFAULTS = ("harness", "native")  # `defaults:` every parameter explicit (default), or only those written
FRAMEWORKS = ("torch", "keras")
MAX_STEPS = 100
# `defaults: native` only: parameters a hand port wrote for one framework alone (merged over `params` there).
PORT_KEYS = ("torch_params", "keras_params")
LAYER_KEYS = ("block", "params", "weights", *PORT_KEYS)
INPUT_KEYS = ("shape", "dtype", "fill", "seed", "values", "path")
FILLS = ("normal", "uniform", "arange", "values", "file")
DTYPES = ("float32", "float64", "float16", "bfloat16")  # a bfloat16 array is ml_dtypes.bfloat16 (NUMPY_DTYPES)
MODES = ("eval", "train")
INPUT_SWEEP_KEYS = ("input.shape", "input.dtype", "input.seed")
MAX_POINTS = 10_000  # sweep points of one case (the product of its sweep lists' lengths)
MAX_FILE_POINTS = 50_000  # sweep points of all the cases of one file
MAX_HELD_NUMBERS = 1 << 23  # numbers of the inline and golden arrays that one file's points hold while loaded
MAX_FILE_BYTES = 16 << 20  # a case file's size; large arrays belong in .npy files
MAX_YAML_DEPTH = 64  # nesting of YAML lists and mappings
NAME_RE = re.compile(r"^[\w.\-]+$")


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"
    fill: str = "normal"
    seed: int = 0
    values: Any = None
    path: Path | None = None

    def make(self) -> np.ndarray:
        """The channels-first input array; the same for the same spec, on every machine. float16 and bfloat16
        (ml_dtypes.bfloat16) values are drawn in float64 like the others and rounded once to the dtype: both
        frameworks are fed this one array."""
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
    source_yaml: str = ""  # the case as written, sweep included (YAML, made once per case: see case_yaml)
    expect_fails: str | None = None  # a canary: the check that every comparison with the expectation must fail
    checks: tuple[str, ...] = ("forward",)  # `check:` what is compared, in CHECKS
    steps: int = 1  # `steps:` train-mode forward passes (running statistics) and optimiser steps
    optimizers: tuple[dict[str, Any], ...] = ()  # `optimizer:` for check train_step, normalised (OPTIMIZERS)
    compare_with: str = "frameworks"  # `compare:` one of COMPARES
    defaults: str = "harness"  # `defaults:` one of DEFAULTS
    expect_divergent: str | None = None  # `expect.divergent: WHY`: a documented real difference (known_differences)
    expect_reference: bool = False  # `expect.reference: true`: both frameworks are also checked against the reference
    expect_refuses: str | None = None  # `expect.refuses: TEXT`: Keras's refusal (ValueError) of a hand port says TEXT
    # `defaults: native` with torch_params / keras_params: each framework's own sites (else both build from `sites`)
    framework_sites: dict[str, list[Site]] = field(default_factory=dict)

    def sites_for(self, framework: str) -> list[Site]:
        """The sites `framework` ("torch" or "keras") builds its layers from."""
        return self.framework_sites.get(framework, self.sites)

    def training(self, framework: str) -> bool | None:
        """The training flag `framework` runs with: the case's mode; in `defaults: native` mode without a written
        `mode`, None: each framework's own default, as a hand port leaves it (a PyTorch module is built in training
        mode, a Keras layer called without `training` runs in inference)."""
        if self.defaults == "native" and "mode" not in self.raw:
            return True if framework == "torch" else None
        return self.mode == "train"

    @property
    def sampled(self) -> bool:
        """Train mode with a stochastic last layer (dropout): the output is a random sample, which the block's
        check_sample judges in each framework (on each device) alone; what comes before it is compared."""
        return self.mode == "train" and self.layers[-1].block.stochastic

    def layer_label(self, index: int) -> str:
        """How messages name layer `index`: `layers[2] (conv2d)` in a network, the block's name in a one-block case."""
        name = self.layers[index].block.name
        return f"layers[{index}] ({name})" if self.sequential else name

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


def display_path(path: Path) -> str:
    """A path as users see it in messages: relative to the working folder where it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _inside(base: Path, relative: Any, fld: str, suffixes: tuple[str, ...]) -> Path:
    """A data path named in a case: relative to the case file's folder, never outside its tree."""
    if not isinstance(relative, str) or not relative:
        raise CaseError(f"must be a path (string) relative to the case file, got {show(relative)}", field=fld)
    if Path(relative).is_absolute():
        raise CaseError(f"absolute paths are not allowed ({show(relative)}); give it relative to the case file",
                        field=fld)
    try:
        path = (base / relative).resolve()  # symlinks resolved: a link that leads outside is outside
    except (ValueError, OSError) as e:  # a NUL byte, a name too long, a symlink loop
        raise CaseError(f"{show(relative)} is not a usable path: {e}", field=fld) from None
    if not path.is_relative_to(base.resolve()):
        raise CaseError(f"{show(relative)} points outside the case file's folder {base}", field=fld)
    if path.suffix not in suffixes:
        raise CaseError(f"{show(relative)} must be a {' or '.join(suffixes)} file", field=fld)
    if not path.is_file():
        raise CaseError(f"file not found: {path}", field=fld)
    return path


def _check_keys(raw: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise CaseError(f"unknown key {show(key)}{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}",
                            field=f"{prefix}{key}")


def _choice(value: Any, allowed: tuple[str, ...], fld: str) -> str:
    if value not in allowed:
        raise CaseError(f"got {show(value)}; allowed: {', '.join(allowed)}", field=fld)
    return value


def _shape(value: Any, fld: str, min_rank: int = 2) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and len(value) >= min_rank and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value)
    if not ok:
        raise CaseError(f"got {show(value)}; allowed: a list of at least {min_rank} positive integers, channels-first "
                        "(N, C, ...)", field=fld)
    if math.prod(value) > MAX_ELEMENTS:
        raise CaseError(f"{list(value)} has {math.prod(value):,} elements; the limit is {MAX_ELEMENTS:,}", field=fld)
    return tuple(value)


def _count_numbers(value: Any, fld: str) -> int:
    """How many numbers a nested list holds, counting a list that YAML aliases share (`*name`) once per use,
    without expanding it: ten aliases of ten aliases of ... stand for a huge array in a few lines of YAML."""
    sizes: dict[int, int] = {}

    def count(v: Any, depth: int) -> int:
        if not isinstance(v, list):
            return 1
        if depth > 32:  # NumPy's own limit on dimensions
            raise CaseError("is nested more than 32 levels deep; allowed: a nested list of numbers", field=fld)
        if id(v) not in sizes:
            sizes[id(v)] = sum(count(x, depth + 1) for x in v)
        return sizes[id(v)]

    return count(value, 0)


class _FileBudget:
    """What the points of one case file may make the loader hold: sweep points, and the numbers of their inline
    and golden arrays. An array that several points share (every point of a sweep, a YAML alias, a .npy file
    named twice) is made once and counted once."""

    def __init__(self) -> None:
        self.points = 0
        self.numbers = 0
        self._made: dict[Any, tuple[Any, Any]] = {}

    def get(self, key: Any) -> Any:
        return self._made[key][1] if key in self._made else None

    def once(self, key: Any, keep: Any, numbers: int, make: Any, fld: str) -> Any:
        """make() the first time `key` is asked for (keeping `keep`, whose id may be in the key, alive)."""
        if key in self._made:
            return self._made[key][1]
        if self.numbers + numbers > MAX_HELD_NUMBERS:
            raise CaseError(f"its {numbers:,} numbers would bring the inline and golden values this file holds to "
                            f"{self.numbers + numbers:,}; the limit is {MAX_HELD_NUMBERS:,} per file (put large "
                            "arrays in .npy files: input fill: file)", field=fld)
        made = make()
        self.numbers += numbers
        self._made[key] = (keep, made)
        return made


_BUDGET: contextvars.ContextVar[_FileBudget | None] = contextvars.ContextVar("harness_file_budget", default=None)


def _file_budget() -> _FileBudget:
    """The budget of the file being loaded (load_file sets it), or a fresh one outside load_file."""
    return _BUDGET.get() or _FileBudget()


def _nested_array(value: Any, fld: str) -> np.ndarray:
    budget = _file_budget()
    key = ("nested", id(value))
    if (made := budget.get(key)) is not None:
        return made
    n = _count_numbers(value, fld)
    if n > MAX_ELEMENTS:
        raise CaseError(f"holds {n:,} numbers (YAML aliases included); the limit is {MAX_ELEMENTS:,}", field=fld)

    def make() -> np.ndarray:
        try:
            return np.asarray(value, dtype=np.float64)
        except OverflowError:
            raise CaseError("holds an integer too large for a float64", field=fld) from None
        except (ValueError, TypeError):
            raise CaseError("must be a nested list of numbers with a regular (rectangular) shape",
                            field=fld) from None

    return budget.once(key, value, n, make, fld)


def _npy_header(path: Path, fld: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of a .npy file, from its header only: nothing is allocated or unpickled."""
    try:
        with path.open("rb") as f:
            return _npy_header_of(f, path.name, fld)
    except OSError as e:
        raise CaseError(f"cannot read {path.name} as a .npy array: {e}", field=fld) from None


def _npy_header_of(f: Any, name: str, fld: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of the .npy array that open binary file `f` starts with, checked against the limits."""
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    except (ValueError, OSError) as e:
        raise CaseError(f"cannot read {name} as a .npy array: {e}", field=fld) from None
    if dtype.hasobject:
        raise CaseError(f"{name} holds Python objects (a pickled array); allowed: a plain numeric array "
                        "(pickles are never loaded)", field=fld)
    if dtype.kind not in "biuf":
        raise CaseError(f"{name} holds {dtype} values; allowed: a numeric (bool, integer or float) array",
                        field=fld)
    if math.prod(shape) > MAX_ELEMENTS:
        raise CaseError(f"{name} has shape {list(shape)}, {math.prod(shape):,} elements; the limit is "
                        f"{MAX_ELEMENTS:,}", field=fld)
    return tuple(shape), dtype


def _load_npy(path: Path, fld: str) -> np.ndarray:
    shape, _ = _npy_header(path, fld)

    def make() -> np.ndarray:
        try:
            return np.load(path, allow_pickle=False).astype(np.float64)
        except (ValueError, OSError) as e:
            raise CaseError(f"cannot read {path.name} as a .npy array without pickles: {e}", field=fld) from None

    return _file_budget().once(("npy", str(path)), None, math.prod(shape), make, fld)


def _seed(value: Any, fld: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise CaseError(f"got {show(value)}; allowed: an integer >= 0 and < 2**32", field=fld)
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
        values = _file_budget().once(("list", id(arr)), arr, 0, arr.tolist, "input.values")  # shared by the points
        data_shape = arr.shape
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
            raise CaseError(f"got {show(value)}; allowed: a number >= 0", field=f"tolerance.{key}")
    return Tolerance(atol=float(raw.get("atol", 0.0)), rtol=float(raw.get("rtol", 0.0)), source="set by the case")


def _expect(raw: Any, base: Path) -> tuple[tuple[int, ...] | None, np.ndarray | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise CaseError("must be a mapping with shape and/or output", field="expect")
    _check_keys(raw, ("shape", "output", "fails", "divergent", "reference", "refuses"), "expect")
    shape = _shape(raw["shape"], "expect.shape", min_rank=1) if "shape" in raw else None
    output = None
    if "output" in raw:
        value = raw["output"]
        if isinstance(value, str):
            output = _load_npy(_inside(base, value, "expect.output", (".npy",)), "expect.output")
        else:
            output = _nested_array(value, "expect.output")
    return shape, output


EXPECT_FAILS = ("shape", "nonfinite", "values")


def _expect_fails(raw: Any) -> str | None:
    """`expect.fails: CHECK`: a canary, which passes only when every comparison with the expectation fails CHECK."""
    if not isinstance(raw, dict) or "fails" not in raw:
        return None
    check = _choice(raw["fails"], EXPECT_FAILS, "expect.fails")
    if "shape" not in raw and "output" not in raw:
        raise CaseError("a canary needs expect.shape or expect.output: the expectation that must fail",
                        field="expect.fails")
    return check


def _expect_divergent(raw: Any) -> tuple[str | None, bool, str | None]:
    """`expect.divergent: WHY` (a known real difference: passes only while the frameworks differ),
    `expect.reference: true` (both frameworks are checked against the float64 reference too) and
    `expect.refuses: TEXT` (the difference is that Keras refuses to build the hand port, with a message saying TEXT:
    only that refusal stands for the difference, never another error of building the layer)."""
    if not isinstance(raw, dict):
        return None, False, None
    why = raw.get("divergent")
    if why is not None and (not isinstance(why, str) or not why.strip()):
        raise CaseError(f"got {show(why)}; allowed: a one-line text saying why the frameworks differ",
                        field="expect.divergent")
    if why is not None and "fails" in raw:
        raise CaseError("a case is either a canary (expect.fails) or a known difference (expect.divergent), "
                        "not both", field="expect.divergent")
    reference = raw.get("reference", False)
    if not isinstance(reference, bool):
        raise CaseError(f"got {show(reference)}; allowed: true or false", field="expect.reference")
    refuses = raw.get("refuses")
    if refuses is not None and (why is None or not isinstance(refuses, str) or not refuses.strip()):
        raise CaseError(f"got {show(refuses)}; allowed: with expect.divergent, a text that Keras's refusal of the "
                        "hand port contains", field="expect.refuses")
    return why, reference, refuses


def _checks(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ("forward",)
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or any(c not in CHECKS for c in items):
        raise CaseError(f"got {show(raw)}; allowed: one of {', '.join(CHECKS)} or a list of them", field="check")
    return tuple(dict.fromkeys(items))


def _steps(raw: Any) -> int:
    if raw is None:
        return 1
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= MAX_STEPS:
        raise CaseError(f"got {show(raw)}; allowed: an integer from 1 to {MAX_STEPS}", field="steps")
    return raw


# The optimisers of `check: train_step`, with their parameters in PyTorch's conventions (the harness maps them to
# Keras's: harness/gradients.py). Without `optimizer:`, a train_step check runs each of them with these defaults.
# A learning rate of 0 is refused: its step changes nothing, so a train_step check could not fail. Adam's betas must
# stay below 1 (bias correction divides by 1 - beta**t; PyTorch refuses 1).
_LEARNING_RATE = {"minimum": 0.0, "open_minimum": True, "doc": "step size"}
OPTIMIZERS: dict[str, tuple[Param, ...]] = {
    "sgd": (Param("learning_rate", "float", 0.01, **_LEARNING_RATE),
            Param("momentum", "float", 0.9, minimum=0.0, maximum=1.0, doc="PyTorch's momentum: buffer = m*buffer + g")),
    "adam": (Param("learning_rate", "float", 0.001, **_LEARNING_RATE),
             Param("beta_1", "float", 0.9, minimum=0.0, maximum=1.0, open_maximum=True,
                   doc="decay of the first moment"),
             Param("beta_2", "float", 0.999, minimum=0.0, maximum=1.0, open_maximum=True,
                   doc="decay of the second moment"),
             Param("epsilon", "float", 1e-8, minimum=0.0,
                   doc="PyTorch's epsilon, added to sqrt of the bias-corrected second moment")),
}


def _optimizers(raw: Any) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return tuple({"name": name, **normalise_params(params, {})} for name, params in OPTIMIZERS.items())
    items = raw if isinstance(raw, list) else [raw]
    if not items:  # an empty list would leave train_step with nothing to check, and the test passing
        raise CaseError(f"got []; allowed: a mapping with name: {' or '.join(OPTIMIZERS)} and its parameters, or a "
                        "non-empty list of them (left out: every optimiser with its defaults)", field="optimizer")
    out = []
    for i, item in enumerate(items):
        fld = f"optimizer[{i}]" if isinstance(raw, list) else "optimizer"
        if not isinstance(item, dict) or item.get("name") not in OPTIMIZERS:
            got = item.get("name") if isinstance(item, dict) else item
            raise CaseError(f"got {show(got)}; allowed: a mapping with name: {' or '.join(OPTIMIZERS)} and its "
                            "parameters", field=f"{fld}.name" if isinstance(item, dict) else fld)
        try:
            params = normalise_params(OPTIMIZERS[item["name"]], {k: v for k, v in item.items() if k != "name"})
        except CaseError as e:
            raise CaseError(e.message, field=f"{fld}.{e.field.removeprefix('params.')}") from None
        out.append({"name": item["name"], **params})
    return tuple(out)


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
        with zipfile.ZipFile(path) as archive:  # every array's header, before any data is read (a zip bomb)
            for member in archive.namelist():
                with archive.open(member) as f:
                    _npy_header_of(f, f"{path.name}:{member}", f"{fld}.path")
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise CaseError(f"cannot read {path.name}: {e}", field=f"{fld}.path") from None
    unknown = names - set(block.weight_names)
    if unknown:
        raise CaseError(f"{path.name} holds {', '.join(sorted(unknown))}; allowed names: "
                        f"{', '.join(block.weight_names)}", field=f"{fld}.path")
    return path


def _layer_list(items: list, base: Path, key: str, nested: bool = False) -> list[Layer]:
    """A network's `layers`, or a composite block's nested list (`nested`: a residual's `layers`, `shortcut`),
    each item {block, params, weights} (and a composite's own lists, read the same way, so that a mistake at any
    depth is located: layers[2].layers[1].params.filters)."""
    layers = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, dict) or "block" not in item:
            raise CaseError("must be a mapping with `block` (and optional params, weights)", field=where)
        try:
            block = get_block(item["block"])
            if block.holds_network:
                raise CaseError(f"{block.name} cannot be nested", field="block")
            lists = block.nested  # a composite block's keys that hold lists of layers (required?)
            _check_keys(item, LAYER_KEYS + tuple(lists), "")
            params = normalise_params(block.params, item.get("params"))
            for name, required in lists.items():
                value = item.get(name, None if required else [])
                if not isinstance(value, list) or (required and not value):
                    raise CaseError(f"{block.name} needs `{name}`: a {'non-empty ' if required else ''}list of "
                                    "{block, params}", field=name)
                params[name] = tuple(_layer_list(value, base, name, nested=True))
            if nested and "weights" in item:  # the runner loads weight files into its top-level modules only
                raise CaseError(f"a layer inside {key} cannot read a weights file yet; give the network's weights "
                                "by layer at the top level", field="weights")
            weights = _weights(item.get("weights"), base, block, "weights")
            written, ported = _ported(block, item, params)
        except CaseError as e:
            raise e.located(field_prefix=where) from None
        layers.append(Layer(block, params, weights, written, ported))
    return layers


def _ported(block: Block, item: dict, params: dict[str, Any]) -> tuple[frozenset[str], dict[str, Any]]:
    """The names of the params a case (or a layer) wrote, and each framework's own params where `torch_params` /
    `keras_params` give values a hand port wrote for that framework alone (see Layer.ported)."""
    raw = item.get("params")
    written = frozenset(raw) if isinstance(raw, dict) else frozenset()
    ported = {}
    for key in PORT_KEYS:
        if key not in item:
            continue
        extra = item[key]
        if not isinstance(extra, dict) or not extra:
            raise CaseError(f"got {show(extra)}; allowed: a mapping of parameter names to the values the hand port "
                            "wrote for that framework alone", field=key)
        try:
            own = normalise_params(block.params, {**(raw or {}), **extra})
        except CaseError as e:
            raise CaseError(e.message, field=f"{key}.{(e.field or '').removeprefix('params.')}") from None
        ported[key.removesuffix("_params")] = ({**params, **own}, written | frozenset(extra))
    return written, ported


def _case_block(raw: dict) -> Block | None:
    """The registered block a case names, or None (none named, or an unknown name: reported by _layers)."""
    name = raw.get("block")
    return all_blocks().get(name) if isinstance(name, str) else None


def _is_network(raw: dict) -> bool:
    """Whether a case is a whole network: its block `holds_network` (sequential)."""
    block = _case_block(raw)
    return block is not None and block.holds_network


def _network_key(raw: dict) -> str:
    """The key of a network case that holds its layers (`layers`)."""
    return next(iter(_case_block(raw).nested))


def _layers(raw: dict, base: Path) -> tuple[list[Layer], bool]:
    """The case's layers, from `block` + `params` or from a network's `layers`; and whether it is a network."""
    block = _case_block(raw)
    if block is not None and block.holds_network:
        key = _network_key(raw)
        if extra := next((k for k in ("params", "weights", *PORT_KEYS) if k in raw), None):
            raise CaseError(f"a {block.name} case has no `{extra}`; give them on each of its layers", field=extra)
        items = raw.get(key)
        if not isinstance(items, list) or not items:
            raise CaseError(f"a {block.name} case needs `{key}`: a non-empty list of {{block, params, weights}}",
                            field=key)
        return _layer_list(items, base, key), True
    network = network_block().name
    if block is not None and block.nested:
        raise CaseError(f"{block.name} is a layer of a {network}, not a case by itself: write block: {network}, "
                        f"layers: [{{block: {block.name}, layers: [...]}}, ...]", field="block")
    if "layers" in raw:
        raise CaseError(f"`layers` is only for block: {network}", field="layers")
    if "block" not in raw:
        raise CaseError(f"missing; allowed: a registered block name (see `python -m harness list`) or {network}",
                        field="block")
    block = get_block(raw["block"])
    params = normalise_params(block.params, raw.get("params"))
    return [Layer(block, params, _weights(raw.get("weights"), base, block, "weights"),
                  *_ported(block, raw, params))], False


def _sweep(raw: Any) -> dict[str, list[Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise CaseError("must be a mapping of keys to lists of values", field="sweep")
    for key, values in raw.items():
        if not isinstance(values, list) or not values:
            raise CaseError(f"must be a non-empty list of values, got {show(values)}", field=f"sweep.{key}")
    points = math.prod(len(values) for values in raw.values())
    if points > MAX_POINTS:
        raise CaseError(f"makes {points:,} points (the product of the lists' lengths); the limit is {MAX_POINTS:,} "
                        "per case: split it into several cases", field="sweep")
    return dict(raw)


def _apply_sweep(raw: dict, combo: dict[str, Any], sequential: bool) -> dict:
    """The case mapping with one sweep combination (whose keys _sweep_check accepted) written into it.

    A sweep never writes into something that is not a mapping (`params: true`): that stays as written, for its
    own check to report.
    """
    def merged(mapping: Any, key: str, value: Any) -> Any:
        if mapping is None:
            return {key: value}
        return {**mapping, key: value} if isinstance(mapping, dict) else mapping

    out = {k: v for k, v in raw.items() if k != "sweep"}
    for key, value in combo.items():
        if key in INPUT_SWEEP_KEYS:
            out["input"] = merged(out.get("input"), key.split(".", 1)[1], value)
        elif key == "mode":
            out["mode"] = value
        elif sequential:
            layers_key = _network_key(raw)
            m = re.fullmatch(rf"{layers_key}\.(\d+)\.(\w+)", key)  # a valid key: _sweep_check has seen it
            layers = [dict(item) if isinstance(item, dict) else item for item in out[layers_key]]
            idx, name = int(m.group(1)), m.group(2)
            if isinstance(layers[idx], dict):
                layers[idx]["params"] = merged(layers[idx].get("params"), name, value)
            out[layers_key] = layers
        else:
            out["params"] = merged(out.get("params"), key, value)
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
        layers_key = _network_key(raw)
        items = raw.get(layers_key) if isinstance(raw.get(layers_key), list) else []
        m = re.fullmatch(rf"{layers_key}\.(\d+)\.(\w+)", str(key))
        if not m or int(m.group(1)) >= len(items):
            raise CaseError(f"unknown sweep key {show(key)}; allowed for a {raw['block']}: {layers_key}.<index>.<param> "
                            f"with index < {len(items)}, {', '.join(INPUT_SWEEP_KEYS)}, mode", field=f"sweep.{key}")
        item = items[int(m.group(1))]
        try:
            block = get_block(item.get("block") if isinstance(item, dict) else None)
        except CaseError:
            return lambda v: v  # a bad layer: reported by _layers, at its own field
        name, prefix = m.group(2), f"{layers_key}.{m.group(1)}."
    else:
        try:
            block = get_block(raw.get("block"))
        except CaseError:
            return lambda v: v  # no or an unknown block: reported by _layers
        name, prefix = key, ""
    param = next((p for p in block.params if p.name == name), None)
    if param is None:
        allowed = [*(prefix + p.name for p in block.params), *INPUT_SWEEP_KEYS, "mode"]
        raise CaseError(f"unknown sweep key {show(key)}; allowed: {', '.join(allowed)}", field=f"sweep.{key}")
    return param.normalise


def _point(file: str, name: str, raw: dict, base: Path, sweep: dict[str, Any], source_yaml: str) -> Point:
    layers, sequential = _layers(raw, base)
    spec = _input_spec(raw.get("input"), base)
    mode = _choice(raw.get("mode", "eval"), MODES, "mode")
    devices = raw.get("devices")
    if devices is not None:
        if not isinstance(devices, list) or not devices or any(d not in DEVICES for d in devices):
            raise CaseError(f"got {show(devices)}; allowed: a list of {', '.join(DEVICES)}", field="devices")
        devices = tuple(dict.fromkeys(devices))
    tolerance = _tolerance(raw.get("tolerance"))
    expect_shape, expect_output = _expect(raw.get("expect"), base)
    expect_fails = _expect_fails(raw.get("expect"))
    expect_divergent, expect_reference, expect_refuses = _expect_divergent(raw.get("expect"))
    checks = _checks(raw.get("check"))
    if "optimizer" in raw and "train_step" not in checks:
        raise CaseError("is only read with check: train_step", field="optimizer")
    if "steps" in raw and "train_step" not in checks and mode == "eval" and "mode" not in sweep:
        raise CaseError("is only read with check: train_step (optimiser steps) or in mode: train (forward passes "
                        "updating running statistics); here it would change nothing", field="steps")
    optimizers = _optimizers(raw.get("optimizer"))
    if mode == "train" and {"backward", "train_step"} & set(checks) and any(x.block.stochastic for x in layers):
        raise Refusal("backward and train_step cannot be compared through dropout in train mode: the frameworks' "
                      "random masks differ, so the gradients differ wherever one framework dropped an element and "
                      "the other did not (use mode: eval, or check: forward)", field="check")
    compare_with = _choice(raw.get("compare", "frameworks"), COMPARES, "compare")
    if compare_with == "devices":  # one test per point, on the gpu device (harness.engine.devices)
        _devices_comparison(raw, devices, checks)
    defaults = _choice(raw.get("defaults", "harness"), DEFAULTS, "defaults")
    native = defaults == "native"
    sites, out_shape = plan(layers, spec.shape, spec.dtype, mode, spec.seed, sequential,
                            native="common" if native else None)
    framework_sites = {}
    if ported := [(i, layer) for i, layer in enumerate(layers) if layer.ported]:
        if not native:
            i, layer = ported[0]
            key = next(k for k in PORT_KEYS if k.removesuffix("_params") in layer.ported)
            raise CaseError("is only read with defaults: native (what a hand port wrote for one framework)",
                            field=f"layers[{i}].{key}" if sequential else key)
        framework_sites = {fw: plan(layers, spec.shape, spec.dtype, mode, spec.seed, sequential, native=fw)[0]
                           for fw in FRAMEWORKS}
    return Point(file=file, case=name, sweep=sweep, layers=layers, sequential=sequential, input=spec, mode=mode,
                 sites=sites, output_shape=out_shape, tolerance=tolerance, expect_shape=expect_shape,
                 expect_output=expect_output, devices=devices, raw=raw, source_yaml=source_yaml,
                 expect_fails=expect_fails, checks=checks, steps=_steps(raw.get("steps")), optimizers=optimizers,
                 compare_with=compare_with, defaults=defaults, expect_divergent=expect_divergent,
                 expect_reference=expect_reference,
                 expect_refuses=expect_refuses, framework_sites=framework_sites)


def _devices_comparison(raw: dict, devices: tuple[str, ...] | None, checks: tuple[str, ...]) -> None:
    """What `compare: devices` (each framework's CPU run against its own GPU run) can take."""
    if devices is not None and "gpu" not in devices:
        raise CaseError(f"compare: devices runs each framework on the CPU and on the GPU and compares the two: devices "
                        f"must be left out or include gpu, got {list(devices)}", field="devices")
    if checks != ("forward",):
        raise CaseError("compare: devices compares forward outputs only; check backward or train_step in a case with "
                        "compare: frameworks", field="check")
    if "expect" in raw:
        raise CaseError("compare: devices compares each framework with itself; put golden values, expected shapes "
                        "and known differences in a case with compare: frameworks", field="expect")


MAX_CASE_YAML = 4000  # characters of a case's YAML kept for the report (input values written inline can be long)


class _Capped(io.StringIO):
    """A stream that stops the YAML dumper once it holds more than MAX_CASE_YAML characters: a case that repeats
    an anchored long string through aliases would otherwise be dumped in full (gigabytes) before being cut."""

    def write(self, text: str) -> int:
        n = super().write(text)
        if self.tell() > MAX_CASE_YAML:
            raise _Enough
        return n


class _Enough(Exception):  # noqa: N818 - not an error: the dump is long enough
    pass


def case_yaml(raw: dict) -> str:
    """A case as YAML for the report (the mapping as loaded: comments are not kept)."""
    out = _Capped()
    with contextlib.suppress(_Enough):
        yaml.safe_dump(raw, out, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)
    text = out.getvalue()
    return text if len(text) <= MAX_CASE_YAML else text[:MAX_CASE_YAML] + "\n# ... (cut: the case is longer)\n"


def load_case(file: str, index: int, raw: Any, base: Path, seen: set[str]) -> CaseEntry:
    """One case of a file: its points (a refused sweep point stands in its place) or its error."""
    name = raw.get("name") if isinstance(raw, dict) else None
    label = name if isinstance(name, str) and name else f"#{index + 1}"
    block = raw.get("block") if isinstance(raw, dict) else "?"
    entry = CaseEntry(file=file, name=label, block=block if isinstance(block, str) else show(block))
    try:
        if not isinstance(raw, dict):
            raise CaseError(f"each case must be a mapping, got {type(raw).__name__}")
        _check_keys(raw, CASE_KEYS, "")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise CaseError(f"got {show(name)}; allowed: a non-empty name of letters, digits, '_', '.', '-'",
                            field="name")
        if name in seen:
            raise CaseError("duplicate name: case names must be unique in their file", field="name")
        seen.add(name)
        if not isinstance(raw.get("description", ""), str):
            raise CaseError(f"got {show(raw['description'])}; allowed: a text", field="description")
        sequential = _is_network(raw)
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
        budget = _file_budget()
        budget.points += math.prod(len(values) for values in sweep.values())
        if budget.points > MAX_FILE_POINTS:
            raise CaseError(f"the cases of this file up to this one make {budget.points:,} sweep points; the limit "
                            f"is {MAX_FILE_POINTS:,} per file: split the file", field="sweep")
        combos = [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())] or [{}]
        text = case_yaml(raw)
        for combo in combos:
            try:
                entry.points.append(_point(file, label, _apply_sweep(raw, combo, sequential), base, combo, text))
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
    """PyYAML's safe loader (no tag ever builds a Python object), except that
    - a key given twice in one mapping is an error, not a silent overwrite (merge keys `<<: *base` still work);
    - nesting deeper than MAX_YAML_DEPTH is an error (not a RecursionError somewhere later);
    - a scalar its tag cannot read (`!!int abc`, a date 2001-13-45) is an error at its line, not a ValueError.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as e:  # PyYAML's constructors raise ValueError, IndexError (`!!int ''`), ...
            raise yaml.constructor.ConstructorError(None, None, f"cannot read {show(node.value)} as {node.tag}: {e}",
                                                    node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base`: the base's keys, which the mapping's own keys may override
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # a list or mapping used as a key
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"the key {show(key)} is not a plain value",
                    key_node.start_mark) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"the key {show(key)} is given twice",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_file(path: str | Path) -> tuple[list[CaseEntry], CaseError | None]:
    """All cases of one YAML file, or the file-level error (unreadable, not YAML, not a list)."""
    path = Path(path)
    file = display_path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return [], CaseError(f"the file has {size:,} bytes; the limit is {MAX_FILE_BYTES:,} (put large arrays "
                                 "in .npy files next to it)", file=file)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return [], CaseError(f"cannot read the file: {e}", file=file)
    try:
        data = yaml.load(text, Loader=_CaseLoader)  # noqa: S506 - a SafeLoader: no Python objects are built
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        return [], CaseError(f"invalid YAML{where}: {problem}", file=file)
    except (Exception, RecursionError) as e:  # noqa: BLE001 - whatever else PyYAML raises on a hostile text
        return [], CaseError(f"invalid YAML: {type(e).__name__}: {show(str(e))}", file=file)
    if data is None:
        return [], None
    if not isinstance(data, list):
        return [], CaseError(f"a case file must be a YAML list of cases, got a {type(data).__name__}", file=file)
    seen: set[str] = set()
    token = _BUDGET.set(_FileBudget())
    try:
        return [load_case(file, i, raw, path.parent, seen) for i, raw in enumerate(data)], None
    finally:
        _BUDGET.reset(token)


def find_case_files(paths: list[str | Path]) -> list[Path]:
    """YAML files named, and those under folders named, in a stable order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file())
        else:
            found.append(p)
    return list(dict.fromkeys(found))
