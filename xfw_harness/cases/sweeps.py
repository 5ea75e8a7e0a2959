"""Sweeps: a case's `sweep` lists, checked key by key before anything is written into the case, and one combination
written into the case mapping (each combination is its own test)."""

from __future__ import annotations

import math
import re
from typing import Any

from xfw_harness.blocks import get_block
from xfw_harness.cases.fields import read_choice, read_seed, read_shape
from xfw_harness.cases.layers import network_key
from xfw_harness.cases.model import CASE_SWEEP_KEYS, DTYPES, INPUT_SWEEP_KEYS, MODES
from xfw_harness.core.errors import CaseError, show

MAX_POINTS = 10_000  # sweep points of one case (the product of its sweep lists' lengths)


def read_sweep(raw: Any) -> dict[str, list[Any]]:
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


def apply_sweep(raw: dict, combo: dict[str, Any], sequential: bool) -> dict:
    """The case mapping with one sweep combination (whose keys sweep_check accepted) written into it.

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
            layers_key = network_key(raw)
            m = re.fullmatch(rf"{layers_key}\.(\d+)\.(\w+)", key)  # a valid key: sweep_check has seen it
            layers = [dict(item) if isinstance(item, dict) else item for item in out[layers_key]]
            idx, name = int(m.group(1)), m.group(2)
            if isinstance(layers[idx], dict):
                layers[idx]["params"] = merged(layers[idx].get("params"), name, value)
            out[layers_key] = layers
        else:
            out["params"] = merged(out.get("params"), key, value)
    return out


def sweep_check(raw: dict, key: Any, sequential: bool) -> Any:
    """What checks one value of sweep key `key` (raising CaseError), or a CaseError if the key is unknown.

    Runs before any sweep value is written into the case, so an unknown key is reported as itself (sweep.KEY),
    not as the unknown parameter it would become.
    """
    if key == "input.shape":
        return lambda v: read_shape(v, key)
    if key == "input.dtype":
        return lambda v: read_choice(v, DTYPES, key)
    if key == "input.seed":
        return lambda v: read_seed(v, key)
    if key == "mode":
        return lambda v: read_choice(v, MODES, key)
    if sequential:
        layers_key = network_key(raw)
        items = raw.get(layers_key) if isinstance(raw.get(layers_key), list) else []
        m = re.fullmatch(rf"{layers_key}\.(\d+)\.(\w+)", str(key))
        if not m or int(m.group(1)) >= len(items):
            raise CaseError(f"unknown sweep key {show(key)}; allowed for a {raw['block']}: "
                            f"{layers_key}.<index>.<param> with index < {len(items)}, "
                            f"{', '.join(INPUT_SWEEP_KEYS + CASE_SWEEP_KEYS)}", field=f"sweep.{key}")
        item = items[int(m.group(1))]
        try:
            block = get_block(item.get("block") if isinstance(item, dict) else None)
        except CaseError:
            return lambda v: v  # a bad layer: reported by case_layers, at its own field
        name, prefix = m.group(2), f"{layers_key}.{m.group(1)}."
    else:
        try:
            block = get_block(raw.get("block"))
        except CaseError:
            return lambda v: v  # no or an unknown block: reported by case_layers
        name, prefix = key, ""
    param = next((p for p in block.params if p.name == name), None)
    if param is None:
        allowed = [*(prefix + p.name for p in block.params), *INPUT_SWEEP_KEYS, *CASE_SWEEP_KEYS]
        raise CaseError(f"unknown sweep key {show(key)}; allowed: {', '.join(allowed)}", field=f"sweep.{key}")
    return param.normalise
