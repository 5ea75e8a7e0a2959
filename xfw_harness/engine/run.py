"""Running one point on one device: `run_point`, a `Point` in, a `Result` out, never an exception. The suite (CLI,
pytest plugin, report) and the tools (port, fuzz) all call this; none of them builds layers or compares arrays.

The steps: build both frameworks' layers (xfw_harness.engine.build), run them, compare the outputs
(xfw_harness.engine.forward), judge each layer of a network (xfw_harness.engine.localize), hold both to the float64
reference (xfw_harness.engine.third_opinion: at every point unless the case opts out), compare gradients, optimiser
steps and running statistics where the case asks (xfw_harness.engine.training), then judge
(xfw_harness.engine.judge). A `compare: devices` point runs each framework against itself instead
(xfw_harness.engine.devices).
"""

from __future__ import annotations

import time
import traceback
from contextlib import nullcontext
from typing import Any

from xfw_harness.cases import InputSpec, Point
from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import after_test, gpu_unavailable_reason, keras, placement
from xfw_harness.core.timeout import Deadline, TimedOut, default_timeout
from xfw_harness.core.verdicts import Status, Verdict, VerdictKind
from xfw_harness.engine import devices, localize, plants, third_opinion
from xfw_harness.engine.build import (
    StageError,
    build_keras,
    build_torch,
    forward_keras,
    forward_torch,
    keras_chain,
    load_weights,
    torch_chain,
)
from xfw_harness.engine.comparing import keeping_failed_arrays
from xfw_harness.engine.forward import compare_outputs
from xfw_harness.engine.judge import judge
from xfw_harness.engine.result import Result, point_result
from xfw_harness.engine.training import training_verdicts


def run_point(point: Point, device: str, timeout_s: float | None = None, *, keep_outputs: bool = False) -> Result:
    """Run one point on one device. Never raises: a framework error becomes an `error` result.

    `timeout_s`: the test's time limit (None: xfw_harness.core.timeout.default_timeout(), $HARNESS_TIMEOUT or 120 s;
    0: none). Past it the test is an `error` ("timed out after N s while running PyTorch's conv2d"); see
    xfw_harness.core.timeout for what cannot be interrupted.
    `keep_outputs`: keep every layer's outputs in `result.outputs`, and the arrays of each failed comparison in
    `result.compared` (the suite draws the report's pictures from them).
    """
    try:
        limit = default_timeout() if timeout_s is None else timeout_s
    except ValueError as e:  # a malformed $HARNESS_TIMEOUT: every test says so
        return point_result(point, device, message=str(e))
    try:
        with (Deadline(limit, _doing), plants.planting(point),
              (keeping_failed_arrays() if keep_outputs else nullcontext({})) as kept):
            result = _run_point(point, device, keep_outputs)
            result.compared = kept
            return result
    except TimedOut as e:  # landed outside _run_point's own handlers (in one of them): still this test's error
        return point_result(point, device, message=f"{e} (in {point.test_id(device)})", duration_s=limit)


def _doing(frame: Any) -> str:
    """What the test was doing in `frame` (where a timeout interrupted it), from the runner's innermost step."""
    # By qualified name: the chains run each layer in a function of their own (`torch_chain.<locals>.call`).
    steps = {f.__qualname__: what for f, what in (
        (build_torch, "building the PyTorch module of"), (build_keras, "building the Keras layer of"),
        (torch_chain, "running PyTorch's"), (keras_chain, "running Keras's"), (load_weights, "loading the weights of"))}
    steps.update({f"{name}.<locals>.call": what for name, what in steps.items() if name.endswith("_chain")})
    others = {compare_outputs.__qualname__: "comparing the outputs", InputSpec.make.__qualname__: "making the input"}
    while frame is not None:
        name = frame.f_code.co_qualname
        if name in steps:
            point = frame.f_locals.get("point") or frame.f_back and frame.f_back.f_locals.get("point")
            i = frame.f_locals.get("i")
            if isinstance(point, Point) and isinstance(i, int) and i < len(point.layers):
                return f"{steps[name]} {point.layer_label(i)}"
            if name.endswith(".<locals>.call"):  # not yet in a layer: the chain's own frame says it
                frame = frame.f_back
                continue
            return steps[name].rsplit(" ", 1)[0]
        if name in others:
            return others[name]
        frame = frame.f_back
    return "running the test"


def _run_point(point: Point, device: str, keep_outputs: bool) -> Result:
    result = point_result(point, device)
    start = time.perf_counter()
    try:
        if point.compare_with == "devices":  # each framework's CPU run against its own GPU run
            return devices.run(result, point)
        if device == "gpu" and (reason := gpu_unavailable_reason()):
            result.status, result.message = Status.SKIPPED, f"gpu: {reason}"
            return result
        result.placement = placement(device)
        x = point.input.make()
        modules = build_torch(point, device)
        try:
            layers = build_keras(point, modules, device)
        except StageError as e:  # a hand port Keras will not build: the documented difference of such a case
            if not _refusal_expected(point, e):
                raise
            result.verdicts = [Verdict("keras vs torch", False, "refused", f"Keras refuses the hand port: {e}",
                                       kind=VerdictKind.FORWARD)]
            result.status, result.message = judge(point, result.verdicts)
            return result
        # The weights the reference gets, taken before a training forward moves running statistics (train mode, or
        # a hand port's PyTorch module left in its default training mode); otherwise nothing moves them, so they
        # are copied (in float64: twice a float32 model's size) only when the reference is computed.
        copied = third_opinion.copied_weights(point, modules) if point.training("torch") else None
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
            weights = copied if copied is not None else third_opinion.copied_weights(point, modules)
            result.verdicts += third_opinion.opinion(point, x, weights, torch_outs[-1], keras_outs[-1])
        if point.mode == "train" or point.checks != ("forward",):  # gradients, optimiser steps, running statistics
            result.verdicts += training_verdicts(point, device, x, modules, layers)
        result.status, result.message = judge(point, result.verdicts)
        localize.attach(result, located)  # a failed network: which layer first differs (xfw_harness.engine.localize)
        if keep_outputs:
            result.outputs = (torch_outs, keras_outs)
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
        after_test()  # JAX's compiled operations (xfw_harness.core.frameworks.after_test)
    return result


def _refusal_expected(point: Point, error: StageError) -> bool:
    """Whether Keras's refusal to build a hand port is the documented difference the case names (expect.refuses).
    Only that refusal is: another error while building (a misspelt keyword is a ValueError too) or a failed weight
    transfer stays this test's error."""
    return (point.defaults == "native" and point.divergent_here() and point.expect_refuses is not None
            and "building the Keras layer" in str(error) and point.expect_refuses in str(error))
