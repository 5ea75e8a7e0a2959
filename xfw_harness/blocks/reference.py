"""The third opinion: each block's stated semantics in float64, computed by neither framework.

Blocks implement `Block.reference` with ONNX's reference runtime (`onnx.reference`, the ONNX project's own
NumPy implementation of its operator specifications, used by its backend test suite) through `onnx_op`, or with
plain NumPy where an operator is a line of arithmetic. Inputs are channels-first (ONNX's layout too).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

OPSET = 21  # Gelu (20), Pad's wrap mode (19), Resize's antialias (18) are all in it


@functools.lru_cache(maxsize=512)
def _evaluator(op_type: str, n_inputs: int, attrs: tuple[tuple[str, Any], ...], opset: int) -> Any:
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" for i in range(n_inputs)]
    node = helper.make_node(op_type, names, ["out"], **dict(attrs))
    graph = helper.make_graph(
        [node], op_type,
        [helper.make_tensor_value_info(n, TensorProto.DOUBLE, None) for n in names],
        [helper.make_tensor_value_info("out", TensorProto.DOUBLE, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model), names


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def onnx_op(op_type: str, *inputs: np.ndarray | None, opset: int = OPSET, **attrs: Any) -> np.ndarray:
    """Run one ONNX operator on float64 arrays with ONNX's reference runtime: `onnx_op("Conv", x, w, b,
    pads=[1, 1, 1, 1], strides=[2, 2])`. A trailing None input (an absent optional input) is dropped;
    integer-valued inputs (Pad's pads, Resize's sizes) are passed as int64."""
    arrays = list(inputs)
    while arrays and arrays[-1] is None:
        arrays.pop()
    evaluator, names = _evaluator(op_type, len(arrays), tuple(sorted((k, _hashable(v)) for k, v in attrs.items())),
                                  opset)
    feeds = {name: (a if a is None or a.dtype.kind == "i" else np.asarray(a, dtype=np.float64))
             for name, a in zip(names, arrays)}
    return np.asarray(evaluator.run(None, feeds)[0])
