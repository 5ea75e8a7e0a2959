"""The runner: a `Point` on a device in, a `Result` out. The pytest plugin, the CLI and the report all call
this; none of them builds layers or compares arrays itself.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import harness.engine.devices as cross_device
from harness.cases.loader import CaseEntry, InputSpec, Point, RefusedPoint, find_case_files, load_file, sweep_id
from harness.core.compare import Verdict, compare, tolerance_for
from harness.core.errors import CaseError
from harness.core.frameworks import (
    TORCH_DTYPES,
    available_devices,
    gpu_unavailable_reason,
    keras,
    keras_device,
    placement,
    tf,
    to_numpy,
    to_torch,
    torch,
    torch_device,
)
from harness.core.layout import shape_to_channels_last
from harness.core.timeout import Deadline, TimedOut, default_timeout
from harness.engine import localize, third_opinion

STATUSES = ("passed", "failed", "error", "skipped")  # what the runner gives (results.STATUS_ORDER adds divergent)


@dataclass
class Result:
    id: str
    file: str
    case: str
    blocks: list[str]
    sweep: dict[str, Any]
    device: str
    status: str  # one of STATUSES
    message: str = ""
    verdicts: list[Verdict] = field(default_factory=list)
    shapes: dict[str, list[int]] = field(default_factory=dict)
    placement: dict[str, str] = field(default_factory=dict)  # where each framework ran
    duration_s: float = 0.0
    case_yaml: str = ""  # the case as written (sweep included), for the report
    params: str = ""  # the block's parameters at this point as written, e.g. "filters=4, kernel_size=3"
    details: dict[str, Any] | None = None  # pictures and generated code (harness.suite.figures, harness.tools.show)
    localization: dict[str, Any] | None = None  # a failed network's per-layer error curves (harness.engine.localize)

    @property
    def metrics(self) -> dict[str, Any]:
        """The torch-vs-keras metrics (the headline numbers of a test)."""
        return self.verdicts[0].metrics if self.verdicts else {}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.file, "case": self.case, "blocks": self.blocks,
                "sweep": self.sweep, "device": self.device,
                "status": self.status, "message": self.message, "shapes": self.shapes, "placement": self.placement,
                "verdicts": [v.to_dict() for v in self.verdicts], "duration_s": round(self.duration_s, 6),
                "params": self.params, "case_yaml": self.case_yaml,
                **({"details": self.details} if self.details is not None else {}),
                **({"localization": self.localization} if self.localization is not None else {})}


def _load_weights(point: Point, modules: list[Any]) -> None:
    for i, (layer, module) in enumerate(zip(point.layers, modules)):
        if layer.weights is None:
            continue
        fld = f"layers[{i}].weights.path" if point.sequential else "weights.path"
        params = layer.block.torch_parameters(module)
        with np.load(layer.weights, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        missing = set(params) - set(arrays)
        if missing:
            raise CaseError(f"{layer.weights.name} lacks {', '.join(sorted(missing))}; the layer has "
                            f"{', '.join(f'{k} {list(v.shape)}' for k, v in params.items())}", field=fld)
        for name, tensor in params.items():
            if tuple(arrays[name].shape) != tuple(tensor.shape):
                raise CaseError(f"{layer.weights.name}: {name} has shape {list(arrays[name].shape)}, the layer needs "
                                f"{list(tensor.shape)} (PyTorch layout)", field=fld)
            with torch.no_grad():
                tensor.copy_(torch.from_numpy(np.asarray(arrays[name])))


class StageError(Exception):
    """A framework raised while the harness built, filled or ran one layer; the message says which and where."""


@contextlib.contextmanager
def _stage(point: Point, index: int, what: str) -> Iterator[None]:
    try:
        yield
    except CaseError:
        raise
    except Exception as e:
        where = point.layer_label(index)
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
            # Keras's wrapper line says nothing; the cause follows, in terminal colours, after TF's op name
            lines = [re.sub(r"\x1b\[[0-9;]*m|\{\{.*?\}\}\s*", "", lines[1])]
        text = lines[0] if lines else ""
        text = text if len(text) <= 300 else text[:300] + " ..."  # Keras appends whole variable values
        if point.input.dtype in ("float16", "bfloat16"):  # some CPU kernels have no half form (README: float16)
            where += f" in {point.input.dtype}"
        raise StageError(f"{type(e).__name__} while {what} {where}: {text}") from e


def build_torch(point: Point, device: str) -> list[Any]:
    """The PyTorch modules of a point, initialised by PyTorch from the case's seed (or loaded from files)."""
    # Modules are built on the CPU: seeding its generator gives every device the same initial weights.
    # (torch.manual_seed would also queue a lazy CUDA seeding, with a traceback captured on every call: slow.)
    torch.random.default_generator.manual_seed(point.input.seed)
    if device == "gpu":  # dropout on CUDA draws from the CUDA generator: seeded too, for repeatable samples
        torch.cuda.manual_seed(point.input.seed)
    modules = []
    native = point.defaults == "native"  # each framework's own layer, given only what the case wrote
    for i, (layer, site) in enumerate(zip(point.layers, point.sites_for("torch"))):
        with _stage(point, i, "building the PyTorch module of"):
            modules.append((layer.block.native_torch_module if native else layer.block.torch_module)(site))
    _load_weights(point, modules)
    for m in modules:
        m.to(device=torch_device(device), dtype=TORCH_DTYPES[point.input.dtype])
        m.train(point.training("torch"))
    return modules


def build_keras(point: Point, modules: list[Any], device: str) -> list[Any]:
    """The Keras layers of a point, built for their input shapes and given the PyTorch modules' weights."""
    layers = []
    with keras_device(device):
        for i, (layer, site, module) in enumerate(zip(point.layers, point.sites_for("keras"), modules)):
            with _stage(point, i, "building the Keras layer of"):
                k = (layer.block.native_keras_layer if point.defaults == "native" else layer.block.keras_layer)(site)
                k.build(shape_to_channels_last(site.in_shape))
            with _stage(point, i, "transferring the weights into Keras for"):
                layer.block.transfer_weights(site, module, k)
            layers.append(k)
    return layers


def torch_chain(point: Point, modules: list[Any], t: Any) -> list[Any]:
    """Each PyTorch module in turn on the tensor `t`: every layer's output tensor. Autograd is the caller's: the
    forward comparison runs it under torch.no_grad, harness.engine.training differentiates through it."""
    outs = []
    for i, m in enumerate(modules):
        with _stage(point, i, "running PyTorch's"):
            t = m(t)
        outs.append(t)
    return outs


def keras_chain(point: Point, layers: list[Any], t: Any) -> list[Any]:
    """Each Keras layer in turn on the tensor `t` (Keras's layout), with the point's training flag: every layer's
    output tensor. The device and any GradientTape are the caller's."""
    training = point.training("keras")  # the runner's flag (a native-defaults case may leave Keras's own)
    outs = []
    for i, k in enumerate(layers):
        with _stage(point, i, "running Keras's"):
            t = k(t, training=training)
        outs.append(t)
    return outs


def forward_torch(point: Point, modules: list[Any], x: np.ndarray, device: str) -> list[np.ndarray]:
    """Every layer's channels-first output."""
    with torch.no_grad():
        return [to_numpy(t) for t in torch_chain(point, modules, to_torch(x).to(torch_device(device)))]


def forward_keras(point: Point, layers: list[Any], x: np.ndarray, device: str) -> list[np.ndarray]:
    """Every layer's output, converted back to channels-first through its layout."""
    with keras_device(device):
        outs = keras_chain(point, layers, tf.constant(point.sites[0].layout.to_keras(x)))
    return [layer.block.output_layout(site).to_channels_first(to_numpy(t))
            for layer, site, t in zip(point.layers, point.sites_for("keras"), outs)]


def forward_reduction_length(point: Point) -> int:
    """The most terms one output element of any layer sums: K of the point's default tolerance."""
    return max(layer.block.reduction_length(site) for layer, site in zip(point.layers, point.sites))


def _tolerance_for(point: Point, expected: np.ndarray):
    """The point's tolerance for a comparison against `expected` (compare.tolerance_for at the point's K)."""
    return tolerance_for(point.input.dtype, forward_reduction_length(point), expected, point.tolerance)


def compare_outputs(point: Point, x: np.ndarray, torch_outs: list[np.ndarray],
                    keras_outs: list[np.ndarray]) -> list[Verdict]:
    """The verdicts of a point: torch vs keras first, then each against the expected shape and golden values."""
    t, k = torch_outs[-1], keras_outs[-1]
    verdicts: list[Verdict] = []
    if point.sampled:
        sampled, site = point.layers[-1].block, point.sites[-1]  # the block says what of a sample can be checked
        if len(point.layers) > 1:
            tin, kin = torch_outs[-2], keras_outs[-2]
            verdicts.append(compare(kin, tin, _tolerance_for(point, tin), "keras vs torch before dropout",
                                    ("keras", "torch")))
        else:
            tin = kin = x
        verdicts.append(sampled.check_sample(site, tin, t, "torch dropout sample"))
        verdicts.append(sampled.check_sample(site, kin, k, "keras dropout sample"))
    else:
        verdicts.append(compare(k, t, _tolerance_for(point, t), "keras vs torch", ("keras", "torch")))
    for name, out in (("torch", t), ("keras", k)) if point.defaults != "native" else ():  # native layers may differ
        if tuple(out.shape) != point.output_shape:
            verdicts.append(Verdict(f"{name} vs harness shape", False, "shape",
                                    f"{name} output shape {list(out.shape)} differs from the shape the block's "
                                    f"semantics give, {list(point.output_shape)}: the adapter is wrong",
                                    {"shape_" + name: list(out.shape), "shape_expected": list(point.output_shape)}))
    if point.expect_shape is not None and point.expect_shape != point.output_shape:
        verdicts.append(Verdict("expected shape", False, "shape",
                                f"expect.shape is {list(point.expect_shape)} but the output is "
                                f"{list(point.output_shape)}", {"shape_expected": list(point.expect_shape)}))
    if point.expect_output is not None:
        for name, out in (("torch", t), ("keras", k)):
            verdicts.append(compare(out, point.expect_output, _tolerance_for(point, point.expect_output),
                                    f"{name} vs expected", (name, "expected")))
    return verdicts


EXPECTATIONS = ("expected shape", "torch vs expected", "keras vs expected")  # the verdicts on `expect`


def judge(point: Point, verdicts: list[Verdict]) -> tuple[str, str]:
    """A test's status and message from its verdicts: failed when one failed.

    A canary (`expect.fails: CHECK`) turns that around for its planted expectation: it passes only when every
    verdict on the expectation failed with CHECK and every other verdict (torch vs keras) passed.
    A known difference (`expect.divergent: WHY`) is "divergent" only while PyTorch and Keras do differ (and nothing
    else failed), and failed once they agree, so that someone updates the catalogue.
    The third opinion's verdicts (harness.engine.third_opinion), present when the frameworks disagree or the case sets
    expect.reference, count like any other; its one-line summary (which side the reference agrees with) leads.
    """
    failed = [v for v in verdicts if not v.passed]
    side = [line] if (line := third_opinion.agreement(verdicts)) else []
    if point.expect_divergent is not None:
        frameworks = [v for v in verdicts if third_opinion.compares_frameworks(v)]
        differ = [v for v in frameworks if not v.passed]
        others = [v for v in failed if v not in frameworks and v.what not in third_opinion.REFERENCE_VERDICTS]
        sides = [v for v in verdicts if v.what in (third_opinion.TORCH_VS_REFERENCE, third_opinion.KERAS_VS_REFERENCE)]
        if differ and not others and point.expect_reference and not any(v.passed for v in sides):
            return "failed", "\n".join([
                "expect.reference: in a known difference one framework must compute the stated semantics, but the "
                "float64 reference agrees with neither (or could not be computed): the reference or an adapter is "
                f"wrong: {point.expect_divergent}", *side, *(f"[{v.what}] {v.message}" for v in [*differ, *sides])])
        if differ and not others:
            return "divergent", "\n".join([f"known difference (expect.divergent): {point.expect_divergent}", *side,
                                           *(f"[{v.what}] {v.message}" for v in differ)])
        why = (["the frameworks agree, but expect.divergent says they differ: a framework release may have removed "
                "the difference; update the catalogue (drop expect.divergent, or the case, and its row in the "
                f"README): {point.expect_divergent}"] if not differ else [])
        return "failed", "\n".join([*why, *side, *(f"[{v.what}] {v.message}" for v in (others or frameworks))])
    if point.expect_fails is None:
        return ("failed" if failed else "passed"), "\n".join(
            [*(side if failed else []), *(f"[{v.what}] {v.message}" for v in (failed or verdicts))])
    planted = [v for v in verdicts if v.what in EXPECTATIONS]
    wrong = [v for v in verdicts if (v.passed or v.check != point.expect_fails if v.what in EXPECTATIONS
                                     else not v.passed)]
    if wrong or not planted:
        lines = [f"canary: expect.fails is {point.expect_fails}: every comparison with the expectation must fail "
                 "that check, and the others pass; the harness said otherwise"]
        lines += [f"[{v.what}] {v.message}" for v in wrong] or ["(no comparison with the expectation was made)"]
        return "failed", "\n".join(lines)
    return "passed", "\n".join([f"canary: the planted difference was reported ({point.expect_fails}), as expected",
                                *(f"[{v.what}] {v.message}" for v in planted)])


def params_text(point: Point) -> str:
    """The parameters a point's case gives (sweep applied), short: `a=1, b=2`; a network as `block(a=1) > ...`."""
    def one(params: Any) -> str:
        if not isinstance(params, dict):
            return ""
        return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}"
                         for k, v in params.items())

    if not point.sequential:
        return one(point.raw.get("params"))
    layers = [(layer.get("block"), one(layer.get("params"))) for layer in point.raw.get("layers", [])
              if isinstance(layer, dict)]
    return " > ".join(f"{block}({params})" if params else str(block) for block, params in layers)


def point_details(point: Point, device: str, torch_outs: list[np.ndarray], keras_outs: list[np.ndarray],
                  verdicts: list[Verdict]) -> dict[str, Any]:
    """What the report shows beyond the numbers: pictures of the torch-vs-keras difference and the code."""
    from harness.suite.figures import comparison_pictures

    # Pictures and code are aids: if one cannot be made, the report says why, and the verdict stands.
    details: dict[str, Any] = {}
    if not point.sampled:  # two dropout samples differ by design: their difference is no picture of a mistake
        try:
            details["pictures"] = comparison_pictures(torch_outs[-1], keras_outs[-1],
                                                      verdicts[0].metrics.get("atol"))
        except Exception as e:  # noqa: BLE001
            details["pictures_error"] = f"{type(e).__name__}: {e}"
    try:
        from harness.tools.show import point_code

        details["code"] = point_code(point, device)
    except Exception as e:  # noqa: BLE001
        details["code_error"] = f"{type(e).__name__}: {e}"
    return details


def run_point(point: Point, device: str, details: str = "failed", timeout_s: float | None = None) -> Result:
    """Run one point on one device. Never raises: a framework error becomes an `error` result.

    `details` ("failed", "all" or "none", see DETAILS): which results keep pictures and code for the report.
    `timeout_s`: the test's time limit (None: harness.core.timeout.default_timeout(), $HARNESS_TIMEOUT or 120 s; 0: none).
    Past it the test is an `error` ("timed out after N s while running PyTorch's conv2d"); see harness.core.timeout
    for what cannot be interrupted.
    """
    try:
        limit = default_timeout() if timeout_s is None else timeout_s
    except ValueError as e:  # a malformed $HARNESS_TIMEOUT: every test says so
        return _point_result(point, device, message=str(e))
    try:
        with Deadline(limit, _doing):
            return _run_point(point, device, details)
    except TimedOut as e:  # landed outside _run_point's own handlers (in one of them): still this test's error
        return _point_result(point, device, message=f"{e} (in {point.test_id(device)})", duration_s=limit)


def _point_result(point: Point, device: str, **fields: Any) -> Result:
    """A point's result on a device, an `error` until the run says otherwise."""
    return Result(id=point.test_id(device), file=point.file, case=point.case, blocks=point.blocks,
                  sweep=point.sweep, device=device, status="error", case_yaml=point.source_yaml,
                  params=params_text(point), **fields)


def _doing(frame: Any) -> str:
    """What the test was doing in `frame` (where a timeout interrupted it), from the runner's innermost step."""
    steps = {build_torch.__code__: "building the PyTorch module of",
             build_keras.__code__: "building the Keras layer of", torch_chain.__code__: "running PyTorch's",
             keras_chain.__code__: "running Keras's", _load_weights.__code__: "loading the weights of"}
    others = {compare_outputs.__code__: "comparing the outputs", point_details.__code__: "making the report's details",
              InputSpec.make.__code__: "making the input"}
    while frame is not None:
        if frame.f_code in steps:
            point, i = frame.f_locals.get("point"), frame.f_locals.get("i")
            if isinstance(point, Point) and isinstance(i, int) and i < len(point.layers):
                return f"{steps[frame.f_code]} {point.layer_label(i)}"
            return steps[frame.f_code].rsplit(" ", 1)[0]
        if frame.f_code in others:
            return others[frame.f_code]
        frame = frame.f_back
    return "running the test"


def _run_point(point: Point, device: str, details: str = "failed") -> Result:
    result = _point_result(point, device)
    start = time.perf_counter()
    try:
        if point.compare_with == "devices":  # each framework's CPU run against its own GPU run
            return cross_device.run(result, point, judge)
        if device == "gpu" and (reason := gpu_unavailable_reason()):
            result.status, result.message = "skipped", f"gpu: {reason}"
            return result
        result.placement = placement(device)
        x = point.input.make()
        modules = build_torch(point, device)
        try:
            layers = build_keras(point, modules, device)
        except StageError as e:  # a hand port Keras will not build: the documented difference of such a case
            # Only the refusal the case names (expect.refuses) is that difference: another error while building
            # (a misspelt keyword is a ValueError too) or a failed weight transfer stays this test's error.
            refused = ("building the Keras layer" in str(e) and point.expect_refuses is not None
                       and point.expect_refuses in str(e))
            if point.defaults != "native" or point.expect_divergent is None or not refused:
                raise
            result.verdicts = [Verdict("keras vs torch", False, "refused", f"Keras refuses the hand port: {e}")]
            result.status, result.message = judge(point, result.verdicts)
            return result
        copied = third_opinion.copied_weights(point, modules)  # before a train-mode forward moves running statistics
        torch_outs = forward_torch(point, modules, x, device)
        keras_outs = forward_keras(point, layers, x, device)
        result.shapes = {"input": list(x.shape), "torch": list(torch_outs[-1].shape),
                         "keras": list(keras_outs[-1].shape)}
        result.verdicts = compare_outputs(point, x, torch_outs, keras_outs)
        curves = localize.network_curves(point, device, layers, x, torch_outs, keras_outs)
        if curves is not None:  # a network: each layer, fed the same input, within its own tolerance
            result.verdicts.append(localize.layer_by_layer_verdict(curves))
        located = localize.locate(point, curves, result.verdicts)
        if third_opinion.wanted(point, result.verdicts):  # which side is right: the float64 reference's opinion
            result.verdicts += third_opinion.opinion(point, x, copied, torch_outs[-1], keras_outs[-1],
                                                     _tolerance_for)
        if point.mode == "train" or point.checks != ("forward",):  # gradients, optimiser steps, running statistics
            from harness.engine.training import training_verdicts  # it imports this module: loaded on first use

            result.verdicts += training_verdicts(point, device, x, modules, layers)
        result.status, result.message = judge(point, result.verdicts)
        localize.attach(result, located)  # a failed network: which layer first differs (harness.engine.localize)
        failed = result.status == "failed"
        if details == "all" or (details == "failed" and failed):
            result.details = point_details(point, device, torch_outs, keras_outs, result.verdicts)
    except (TimedOut, StageError) as e:  # their messages name the stage and the layer: add the test
        result.message = f"{e} (in {point.test_id(device)})"
    except CaseError as e:
        result.message = str(e.located(file=point.file, case=point.case))
    except Exception as e:  # a framework raised: report it as this test's error, carry on with the others
        result.message = (f"{type(e).__name__} while running {point.test_id(device)}: {e}\n"
                          + "".join(traceback.format_exception(e)[-3:]))
    finally:
        result.duration_s = time.perf_counter() - start
        # Keras keeps global state for every layer built (name counters, ...): without this a long run's memory
        # grows by about 0.14 MB per six-layer network (measured; benchmarks/test_memory.py). 5 us a call.
        keras.backend.clear_session(free_memory=False)
    return result


def devices_for(point: Point) -> tuple[str, ...]:
    """The devices a point runs on: those the case names, else every device present. A `compare: devices` point is
    one test on the gpu device (it runs each framework on both: harness.engine.devices), skipped where there is none."""
    if point.compare_with == "devices":
        return ("gpu",)
    return point.devices or available_devices()


def error_result(entry_file: str, case: str, block: str, error: CaseError, sweep: dict | None = None) -> Result:
    sweep = sweep or {}
    point_id = sweep_id(sweep)
    rid = f"{entry_file}::{case}" + (f"[{point_id}]" if point_id else "")
    return Result(id=rid, file=entry_file, case=case, blocks=[block], sweep=sweep, device="-", status="error",
                  message=str(error))


@dataclass(frozen=True)
class PlannedTest:
    """One test a run will make: a point on a device, or a case that cannot run (its error result)."""

    id: str
    point: Point | None = None
    device: str = "-"
    invalid: Result | None = None

    def run(self, details: str = "failed", timeout_s: float | None = None) -> Result:
        return self.invalid if self.invalid is not None else run_point(self.point, self.device, details, timeout_s)


def plan_tests(entries: Iterable[CaseEntry], device: str | None = None, match: str | None = None
               ) -> list[PlannedTest]:
    """Every test of `entries` (only on `device`, only ids containing `match`, when given), in order, not run."""
    planned: list[PlannedTest] = []
    for entry in entries:
        if entry.error is not None:
            result = error_result(entry.file, entry.name, entry.block, entry.error)
            if match is None or match in result.id:
                planned.append(PlannedTest(result.id, invalid=result))
            continue
        for point in entry.points:
            if isinstance(point, RefusedPoint):
                result = error_result(entry.file, entry.name, entry.block, point.error, point.sweep)
                if match is None or match in result.id:
                    planned.append(PlannedTest(result.id, invalid=result))
                continue
            for dev in devices_for(point):
                test_id = point.test_id(dev)
                if (device is None or dev == device) and (match is None or match in test_id):
                    planned.append(PlannedTest(test_id, point, dev))
    return planned


def load_paths(paths: list[str | Path]) -> tuple[list[CaseEntry], list[CaseError]]:
    entries, file_errors = [], []
    for path in find_case_files(paths):
        file_entries, error = load_file(path)
        entries += file_entries
        if error is not None:
            file_errors.append(error)
    return entries, file_errors
