"""The case loader: YAML case files in, validated `Point`s (one case at one sweep combination) out.

Every problem becomes a `CaseError` that names the file, the case and the field; a bad case never hides
the others in its file. The format: docs/writing-cases.md.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import yaml

from xfw_harness.blocks import plan
from xfw_harness.cases.arrays import FILE_BUDGET, FileBudget, file_budget
from xfw_harness.cases.fields import (
    check_keys,
    read_backends,
    read_checks,
    read_choice,
    read_expect,
    read_expect_backends,
    read_expect_divergent,
    read_expect_fails,
    read_expect_plant,
    read_input,
    read_optimizers,
    read_steps,
    read_tolerance,
)
from xfw_harness.cases.hints import warn_if_channels_last
from xfw_harness.cases.layers import case_block, case_layers, is_network, network_key, read_max_elements
from xfw_harness.cases.model import (
    CASE_KEYS,
    COMPARES,
    DEFAULTS,
    FRAMEWORKS,
    MODES,
    NAME_RE,
    PORT_KEYS,
    CaseEntry,
    Point,
    RefusedPoint,
    display_path,
    format_value,
)
from xfw_harness.cases.safe_yaml import CaseLoader, case_yaml
from xfw_harness.cases.sweeps import apply_sweep, read_sweep, sweep_check
from xfw_harness.core.backend_choice import DEVICES
from xfw_harness.core.errors import CaseError, Refusal, show

MAX_FILE_POINTS = 50_000  # sweep points of all the cases of one file
MAX_FILE_BYTES = 16 << 20  # a case file's size; large arrays belong in .npy files


def read_point(file: str, name: str, raw: dict, base: Path, sweep: dict[str, Any], source_yaml: str) -> Point:
    layers, sequential = case_layers(raw, base)
    graph = sequential and case_block(raw).graph
    spec = read_input(raw.get("input"), base)
    mode = read_choice(raw.get("mode", "eval"), MODES, "mode")
    devices = raw.get("devices")
    if devices is not None:
        if not isinstance(devices, list) or not devices or any(d not in DEVICES for d in devices):
            raise CaseError(f"got {show(devices)}; allowed: a list of {', '.join(DEVICES)}", field="devices")
        devices = tuple(dict.fromkeys(devices))
    tolerance = read_tolerance(raw.get("tolerance"))
    expect_shape, expect_output = read_expect(raw.get("expect"), base)
    expect_fails = read_expect_fails(raw.get("expect"))
    expect_plant = read_expect_plant(raw.get("expect"))
    expect_divergent, expect_reference, expect_refuses = read_expect_divergent(raw.get("expect"))
    expect_backends = read_expect_backends(raw.get("expect"))
    backends = read_backends(raw.get("backends"))
    if backends is not None and expect_backends is not None and set(expect_backends) - set(backends):
        raise CaseError(f"names {', '.join(b for b in expect_backends if b not in backends)}, where the case does not "
                        f"run (backends: {list(backends)}): the known difference would hold nowhere it runs",
                        field="expect.backends")
    checks = read_checks(raw.get("check"))
    if "optimizer" in raw and "train_step" not in checks:
        raise CaseError("is only read with check: train_step", field="optimizer")
    if "steps" in raw and "train_step" not in checks and mode == "eval" and "mode" not in sweep:
        raise CaseError("is only read with check: train_step (optimiser steps) or in mode: train (forward passes "
                        "updating running statistics); here it would change nothing", field="steps")
    optimizers = read_optimizers(raw.get("optimizer"))
    if mode == "train" and {"backward", "train_step"} & set(checks) and any(x.block.stochastic for x in layers):
        raise Refusal("backward and train_step cannot be compared through dropout in train mode: the frameworks' "
                      "random masks differ, so the gradients differ wherever one framework dropped an element and "
                      "the other did not (use mode: eval, or check: forward)", field="check")
    compare_with = read_choice(raw.get("compare", "frameworks"), COMPARES, "compare")
    if compare_with == "devices":  # one test per point, on the gpu device (xfw_harness.engine.devices)
        check_devices_comparison(raw, devices, checks)
    if compare_with == "backends":  # one test per point and device, Keras on each backend (xfw_harness.suite.backends)
        check_backends_comparison(raw, backends, checks)
    defaults = read_choice(raw.get("defaults", "harness"), DEFAULTS, "defaults")
    native = defaults == "native"
    max_elements = read_max_elements(raw.get("max_elements"))
    # before planning: a channels-last input may also be what the block then refuses (a pool window wider than 1)
    warn_if_channels_last(file, name, ", ".join(f"{k}={format_value(v)}" for k, v in sweep.items()), spec.shape,
                          layers)
    sites, out_shape = plan(layers, spec.shape, spec.dtype, mode, spec.seed, sequential,
                            native="common" if native else None, key=network_key(raw) if sequential else "layers",
                            max_elements=max_elements)
    framework_sites = {}
    if ported := [(i, layer) for i, layer in enumerate(layers) if layer.ported]:
        if not native:
            i, layer = ported[0]
            key = next(k for k in PORT_KEYS if k.removesuffix("_params") in layer.ported)
            raise CaseError("is only read with defaults: native (what a hand port wrote for one framework)",
                            field=f"layers[{i}].{key}" if sequential else key)
        framework_sites = {fw: plan(layers, spec.shape, spec.dtype, mode, spec.seed, sequential, native=fw,
                                    max_elements=max_elements)[0]
                           for fw in FRAMEWORKS}
    return Point(file=file, case=name, sweep=sweep, layers=layers, sequential=sequential, input=spec, mode=mode,
                 sites=sites, output_shape=out_shape, tolerance=tolerance, expect_shape=expect_shape,
                 expect_output=expect_output, devices=devices, raw=raw, source_yaml=source_yaml,
                 expect_fails=expect_fails, expect_plant=expect_plant, checks=checks,
                 steps=read_steps(raw.get("steps")), optimizers=optimizers,
                 compare_with=compare_with, defaults=defaults, expect_divergent=expect_divergent,
                 expect_reference=expect_reference,
                 expect_refuses=expect_refuses, framework_sites=framework_sites, graph=graph,
                 max_elements=max_elements, backends=backends, expect_backends=expect_backends)


def check_backends_comparison(raw: dict, backends: tuple[str, ...] | None, checks: tuple[str, ...]) -> None:
    """What `compare: backends` (Keras on each backend against the others, from the same weights) can take."""
    if backends is not None and len(backends) < 2:
        raise CaseError(f"compare: backends compares Keras on two backends or more: got {list(backends)}; leave it "
                        "out for every installed backend", field="backends")
    if checks != ("forward",):
        raise CaseError("compare: backends compares forward outputs; check backward or train_step on each backend "
                        "in a case with compare: frameworks", field="check")
    expect = raw.get("expect")
    if isinstance(expect, dict) and set(expect) - {"divergent", "plant", "fails"}:
        raise CaseError(f"compare: backends takes expect.divergent, or a canary's expect.plant and expect.fails, only "
                        f"(a Keras difference on some backend, known); put "
                        f"{', '.join(sorted(set(expect) - {'divergent', 'plant', 'fails'}))} in a case with compare: "
                        "frameworks", field="expect")


def check_devices_comparison(raw: dict, devices: tuple[str, ...] | None, checks: tuple[str, ...]) -> None:
    """What `compare: devices` (each framework's CPU run against its own GPU run) can take."""
    if devices is not None and "gpu" not in devices:
        raise CaseError(f"compare: devices runs each framework on the CPU and on the GPU and compares the two: devices "
                        f"must be left out or include gpu, got {list(devices)}", field="devices")
    if checks != ("forward",):
        raise CaseError("compare: devices compares forward outputs only; check backward or train_step in a case with "
                        "compare: frameworks", field="check")
    expect = raw.get("expect")
    if expect is not None and not (isinstance(expect, dict) and set(expect) <= {"plant", "fails"}):
        raise CaseError("compare: devices compares each framework with itself; it takes a canary's expect.plant and "
                        "expect.fails only: put golden values, expected shapes and known differences in a case with "
                        "compare: frameworks", field="expect")


def load_case(file: str, index: int, raw: Any, base: Path, seen: set[str]) -> CaseEntry:
    """One case of a file: its points (a refused sweep point stands in its place) or its error."""
    name = raw.get("name") if isinstance(raw, dict) else None
    label = name if isinstance(name, str) and name else f"#{index + 1}"
    block = raw.get("block") if isinstance(raw, dict) else "?"
    entry = CaseEntry(file=file, name=label, block=block if isinstance(block, str) else show(block))
    try:
        if not isinstance(raw, dict):
            raise CaseError(f"each case must be a mapping, got {type(raw).__name__}")
        check_keys(raw, CASE_KEYS, "")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise CaseError(f"got {show(name)}; allowed: a non-empty name of letters, digits, '_', '.', '-'",
                            field="name")
        if name in seen:
            raise CaseError("duplicate name: case names must be unique in their file", field="name")
        seen.add(name)
        if not isinstance(raw.get("description", ""), str):
            raise CaseError(f"got {show(raw['description'])}; allowed: a text", field="description")
        sequential = is_network(raw)
        sweep = read_sweep(raw.get("sweep"))
        for key, values in sweep.items():
            check = sweep_check(raw, key, sequential)
            for i, value in enumerate(values):
                try:
                    check(value)
                except CaseError as e:
                    raise CaseError(e.message, field=f"sweep.{key}[{i}]") from None
        # An error in the layers (unknown block, bad parameter) is the case's, not each point's: check them once,
        # at the first point, since a required parameter may be given by the sweep alone.
        case_layers(apply_sweep(raw, {key: values[0] for key, values in sweep.items()}, sequential), base)
        budget = file_budget()
        budget.points += math.prod(len(values) for values in sweep.values())
        if budget.points > MAX_FILE_POINTS:
            raise CaseError(f"the cases of this file up to this one make {budget.points:,} sweep points; the limit "
                            f"is {MAX_FILE_POINTS:,} per file: split the file", field="sweep")
        combos = [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())] or [{}]
        text = case_yaml(raw)
        for combo in combos:
            try:
                entry.points.append(read_point(file, label, apply_sweep(raw, combo, sequential), base, combo, text))
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
        data = yaml.load(text, Loader=CaseLoader)  # noqa: S506 - a SafeLoader: no Python objects are built
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
    token = FILE_BUDGET.set(FileBudget())
    try:
        return [load_case(file, i, raw, path.parent, seen) for i, raw in enumerate(data)], None
    finally:
        FILE_BUDGET.reset(token)


def find_case_files(paths: list[str | Path]) -> list[Path]:
    """YAML files named, and those under folders named, in a stable order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file())
        else:
            found.append(p)
    return list(dict.fromkeys(found))


def load_paths(paths: list[str | Path]) -> tuple[list[CaseEntry], list[CaseError]]:
    """Every case of the case files named, or under the folders named (find_case_files), and the errors of the files
    that could not be read at all; a bad file never hides the others."""
    entries, file_errors = [], []
    for path in find_case_files(paths):
        file_entries, error = load_file(path)
        entries += file_entries
        if error is not None:
            file_errors.append(error)
    return entries, file_errors
