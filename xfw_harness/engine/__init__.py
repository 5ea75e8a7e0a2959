"""The engine: one point on one device in, a `Result` out. It builds the point's layers in both frameworks, runs
them, compares what the case asks (forward outputs, gradients, optimiser steps, running statistics, devices, the
float64 reference), localises a network's first divergence and judges the test's status.
"""

from xfw_harness.engine.build import StageError, build_keras, build_torch, forward_keras, forward_torch
from xfw_harness.engine.judge import judge
from xfw_harness.engine.result import Result, point_result, result_lines
from xfw_harness.engine.run import run_point
from xfw_harness.engine.tolerances import point_tolerance

__all__ = ["Result", "StageError", "build_keras", "build_torch", "forward_keras", "forward_torch", "judge",
           "point_result", "point_tolerance", "result_lines", "run_point"]
