"""Reading the fields of a case, each to its one normalised form or a CaseError naming the field and what is
allowed: keys, choices, shapes, seeds, `input`, `tolerance`, `expect` (golden values, canaries, known differences),
`check`, `steps` and `optimizer`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from xfw_harness.blocks import MAX_ELEMENTS
from xfw_harness.cases.arrays import file_budget, inside_folder, load_npy, nested_array, npy_header
from xfw_harness.cases.model import (
    CHECKS,
    DTYPES,
    EXPECT_KEYS,
    FILL_KEYS,
    FILLS,
    INPUT_KEYS,
    MAX_STEPS,
    PLANT_CHANGES,
    PLANT_KEYS,
    TOLERANCE_KEYS,
    InputSpec,
    Plant,
)
from xfw_harness.core.backend_choice import BACKENDS
from xfw_harness.core.errors import CaseError, did_you_mean, show
from xfw_harness.core.schema import Param, normalise_params, number_text_hint
from xfw_harness.core.tolerance import Tolerance


def check_keys(raw: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise CaseError(f"unknown key {show(key)}{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}",
                            field=f"{prefix}{key}")


def read_choice(value: Any, allowed: tuple[str, ...], fld: str) -> str:
    if value not in allowed:
        raise CaseError(f"got {show(value)}; allowed: {', '.join(allowed)}", field=fld)
    return value


def read_shape(value: Any, fld: str, min_rank: int = 2) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and len(value) >= min_rank and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value)
    if not ok:
        raise CaseError(f"got {show(value)}; allowed: a list of at least {min_rank} positive integers, channels-first "
                        "(N, C, ...)", field=fld)
    if math.prod(value) > MAX_ELEMENTS:
        raise CaseError(f"{list(value)} has {math.prod(value):,} elements; the limit is {MAX_ELEMENTS:,}", field=fld)
    return tuple(value)


def read_seed(value: Any, fld: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise CaseError(f"got {show(value)}; allowed: an integer >= 0 and < 2**32", field=fld)
    return value


def read_input(raw: Any, base: Path) -> InputSpec:
    if not isinstance(raw, dict):
        raise CaseError("must be a mapping with at least `shape` (or fill: values / file)", field="input")
    check_keys(raw, INPUT_KEYS, "input")
    fill = read_choice(raw.get("fill", "normal"), FILLS, "input.fill")
    dtype = read_choice(raw.get("dtype", "float32"), DTYPES, "input.dtype")
    seed = read_seed(raw.get("seed", 0), "input.seed")
    for needs, key in FILL_KEYS.items():
        if key in raw and fill != needs:
            raise CaseError(f"`{key}` is only read with fill: {needs} (fill is {fill})", field=f"input.{key}")
    values, path, data_shape = None, None, None
    if fill == "values":
        if "values" not in raw:
            raise CaseError("fill: values needs `values`: a nested list, channels-first", field="input.values")
        arr = nested_array(raw["values"], "input.values")
        values = file_budget().once(("list", id(arr)), arr, 0, arr.tolist, "input.values")  # shared by the points
        data_shape = arr.shape
    elif fill == "file":
        path = inside_folder(base, raw.get("path"), "input.path", (".npy",))
        data_shape = npy_header(path, "input.path")[0]
    if "shape" in raw:
        shape = read_shape(raw["shape"], "input.shape")
        if data_shape is not None and tuple(data_shape) != shape:
            raise CaseError(f"the {fill} data has shape {list(data_shape)} but input.shape is {list(shape)}",
                            field="input.shape")
    elif data_shape is not None:
        where = "input.values" if fill == "values" else "input.path"
        if len(data_shape) < 2 or 0 in data_shape:
            raise CaseError(f"the {fill} data has shape {list(data_shape)}; allowed: at least 2 dimensions, none "
                            "empty, channels-first (N, C, ...)", field=where)
        shape = read_shape(list(data_shape), where)
    else:
        raise CaseError("missing; allowed: a list of at least 2 positive integers, channels-first (N, C, ...)",
                        field="input.shape")
    return InputSpec(shape=shape, dtype=dtype, fill=fill, seed=seed, values=values, path=path)


def read_tolerance(raw: Any) -> Tolerance | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise CaseError("must be a mapping with atol and/or rtol", field="tolerance")
    check_keys(raw, TOLERANCE_KEYS, "tolerance")
    for key, value in raw.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
            raise CaseError(f"got {show(value)}; allowed: a number >= 0{number_text_hint(value)}",
                            field=f"tolerance.{key}")
    return Tolerance(atol=float(raw.get("atol", 0.0)), rtol=float(raw.get("rtol", 0.0)), source="set by the case")


def read_expect(raw: Any, base: Path) -> tuple[tuple[int, ...] | None, np.ndarray | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise CaseError("must be a mapping with shape and/or output", field="expect")
    check_keys(raw, EXPECT_KEYS, "expect")
    shape = read_shape(raw["shape"], "expect.shape", min_rank=1) if "shape" in raw else None
    output = None
    if "output" in raw:
        value = raw["output"]
        if isinstance(value, str):
            output = load_npy(inside_folder(base, value, "expect.output", (".npy",)), "expect.output")
        else:
            output = nested_array(value, "expect.output")
    return shape, output


# The checks a canary may name: the comparator's (shape, NaN/Inf in the same places, values) and a dropout sample's.
EXPECT_FAILS = ("shape", "nonfinite", "values", "sample")


def read_expect_fails(raw: Any) -> str | None:
    """`expect.fails: CHECK`: a canary, which passes only when every comparison with the expectation (or the one
    comparison `expect.plant` plants into) fails CHECK and every other verdict passes."""
    if not isinstance(raw, dict) or "fails" not in raw:
        return None
    check = read_choice(raw["fails"], EXPECT_FAILS, "expect.fails")
    if "shape" not in raw and "output" not in raw and "plant" not in raw:
        raise CaseError("a canary needs expect.shape, expect.output or expect.plant: the expectation that must fail, "
                        "or the difference planted into a comparison", field="expect.fails")
    if check == "sample" and "plant" not in raw:
        raise CaseError("fails: sample is the check of a dropout sample: plant a difference into one with "
                        "expect.plant: {in: torch dropout sample, side: output, ...}", field="expect.fails")
    return check


_PLANT_HELP = ("a mapping: `in` (the comparison: its name as results show it, e.g. 'keras vs torch', 'grad input', "
               "'torch dropout sample'), `side` (which of its two arrays: 'keras', 'torch', 'reference', 'output', "
               "...), optional `at` (a channels-first index: an element's, or its leading part for a sub-array; "
               "left out: every element) and one of `value`, `plus`, `times`")


def read_expect_plant(raw: Any) -> Plant | None:
    """`expect.plant`: a difference planted into one comparison of a canary's run (model.Plant). Only a canary
    (expect.fails) may plant one: the planted comparison must fail, so a plant can never make a real run pass."""
    if not isinstance(raw, dict) or "plant" not in raw:
        return None
    plant = raw["plant"]
    if "fails" not in raw:
        raise CaseError("a plant is only read in a canary: add expect.fails, the check that must report the planted "
                        "difference", field="expect.plant")
    if not isinstance(plant, dict):
        raise CaseError(f"got {show(plant)}; allowed: {_PLANT_HELP}", field="expect.plant")
    check_keys(plant, PLANT_KEYS, "expect.plant")
    what = plant.get("in")
    if not isinstance(what, str) or not what.strip():
        raise CaseError(f"got {show(what)}; allowed: the name of one comparison of the run, as results show it "
                        "('keras vs torch', 'grad input', 'reference', 'torch dropout sample', ...)",
                        field="expect.plant.in")
    side = plant.get("side")
    if not isinstance(side, str) or not side.strip():
        raise CaseError(f"got {show(side)}; allowed: the name of one of the comparison's two arrays, as its message "
                        "names them ('keras', 'torch', 'reference', 'gpu', 'keras[jax]'; a sample's check: 'input', "
                        "'output')",
                        field="expect.plant.side")
    at = plant.get("at")
    if at is not None and not (isinstance(at, list) and at and all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in at)):
        raise CaseError(f"got {show(at)}; allowed: an element's channels-first index, a list of integers >= 0, or its "
                        "leading part (a sub-array: [0] is the first sample); left out: every element",
                        field="expect.plant.at")
    changes = [k for k in PLANT_CHANGES if k in plant]
    if len(changes) != 1:
        raise CaseError(f"has {', '.join(changes) or 'none'}; allowed: exactly one of value (the elements set to it), "
                        "plus (added to them), times (they are multiplied by it)", field="expect.plant")
    change = changes[0]
    amount = plant[change]
    finite_only = change != "value"  # value may plant .nan, .inf or -.inf; plus and times a number
    if not isinstance(amount, (int, float)) or isinstance(amount, bool) or (finite_only and not math.isfinite(amount)):
        raise CaseError(f"got {show(amount)}; allowed: a {'finite ' if finite_only else ''}number"
                        f"{'' if finite_only else ' (.nan, .inf and -.inf too)'}{number_text_hint(amount)}",
                        field=f"expect.plant.{change}")
    return Plant(what=what, side=side, at=None if at is None else tuple(at), change=change, amount=float(amount))


def read_expect_divergent(raw: Any) -> tuple[str | None, bool | None, str | None]:
    """`expect.divergent: WHY` (a known real difference: passes only while the frameworks differ),
    `expect.reference` (unset: the float64 reference at every point; true: required; false: only on a
    disagreement) and
    `expect.refuses: TEXT` (the difference is that Keras refuses to build the hand port, with a message saying TEXT:
    only that refusal stands for the difference, never another error of building the layer)."""
    if not isinstance(raw, dict):
        return None, None, None
    why = raw.get("divergent")
    if why is not None and (not isinstance(why, str) or not why.strip()):
        raise CaseError(f"got {show(why)}; allowed: a one-line text saying why the frameworks differ",
                        field="expect.divergent")
    if why is not None and "fails" in raw:
        raise CaseError("a case is either a canary (expect.fails) or a known difference (expect.divergent), "
                        "not both", field="expect.divergent")
    reference = raw.get("reference")
    if reference is not None and not isinstance(reference, bool):
        raise CaseError(f"got {show(reference)}; allowed: true or false", field="expect.reference")
    refuses = raw.get("refuses")
    if refuses is not None and (why is None or not isinstance(refuses, str) or not refuses.strip()):
        raise CaseError(f"got {show(refuses)}; allowed: with expect.divergent, a text that Keras's refusal of the "
                        "hand port contains", field="expect.refuses")
    return why, reference, refuses


def read_expect_backends(raw: Any) -> tuple[str, ...] | None:
    """`expect.backends: [jax]`: the Keras backends on which expect.divergent holds (a backend's own Keras bug); on
    the others the case must pass like any other."""
    if not isinstance(raw, dict) or "backends" not in raw:
        return None
    if raw.get("divergent") is None:
        raise CaseError("is only read with expect.divergent (the backends on which that difference holds)",
                        field="expect.backends")
    return read_backends(raw["backends"], "expect.backends")


def read_backends(raw: Any, field: str = "backends") -> tuple[str, ...] | None:
    """A list of Keras backends (`backends:`, `expect.backends:`), in BACKENDS."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or any(b not in BACKENDS for b in raw):
        wrong = next((b for b in raw if b not in BACKENDS), None) if isinstance(raw, list) else raw
        hint = (f" (a list: [{raw}])" if raw in BACKENDS else did_you_mean(wrong, BACKENDS)) if isinstance(
            wrong, str) else ""
        raise CaseError(f"got {show(raw)}{hint}; allowed: a list of {', '.join(BACKENDS)}", field=field)
    return tuple(dict.fromkeys(raw))


def read_checks(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ("forward",)
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or any(c not in CHECKS for c in items):
        raise CaseError(f"got {show(raw)}; allowed: one of {', '.join(CHECKS)} or a list of them", field="check")
    return tuple(dict.fromkeys(items))


def read_steps(raw: Any) -> int:
    if raw is None:
        return 1
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= MAX_STEPS:
        raise CaseError(f"got {show(raw)}; allowed: an integer from 1 to {MAX_STEPS}", field="steps")
    return raw


# The optimisers of `check: train_step`, with their parameters in PyTorch's conventions (the harness maps them to
# Keras's: xfw_harness/engine/optimizers.py). Without `optimizer:`, a train_step check runs each of them with these
# defaults.
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


def read_optimizers(raw: Any) -> tuple[dict[str, Any], ...]:
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
