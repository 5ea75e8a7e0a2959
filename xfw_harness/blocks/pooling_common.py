"""The pooling blocks' shared declarations, for any number of spatial axes (1-D, 2-D, 3-D): the parameter kind of a
size per axis with nulls (OutputSizeParam) and the size arithmetic and wording the blocks plan with. Framework-free:
the layers and modules that compute the pooling are in pooling_layers.py, which the blocks load lazily
(xfw_harness.core.lazy).
"""

from __future__ import annotations

from typing import Any

from xfw_harness.core.schema import Param
from xfw_harness.core.spatial import Pads, Sizes

AXES = {1: "length", 2: "height and width", 3: "depth, height and width"}


AXES_LIST = {1: "[l]", 2: "[h, w]", 3: "[d, h, w]"}


class OutputSizeParam(Param):
    """An adaptive pooling's output size: a `pair` (an int >= 1 for every axis, or a list of one per axis, `size`
    axes; the tools draw and write it as one) whose list entries may also be null (PyTorch's None: that axis keeps
    its size) -> a tuple (None kept)."""

    def allowed(self) -> str:
        return f"an integer >= 1 or a list {self.axes_text} of such integers or nulls (null keeps that axis's size)"

    def _normalise(self, v: Any) -> tuple[bool, Any]:
        def ok(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= 1

        if ok(v):
            return True, (v,) * self.size
        if isinstance(v, (list, tuple)) and len(v) == self.size and all(x is None or ok(x) for x in v):
            return True, tuple(None if x is None else int(x) for x in v)
        return False, None

    def _json_schema(self) -> dict[str, Any]:
        return {"anyOf": [self._json_integer(), self._json_list({"anyOf": [self._json_integer(), {"type": "null"}]})]}


def sizes_text(value: tuple[int | None, ...]) -> int | list[int | None]:
    """Sizes as a person writes them in YAML: 3 for (3, 3), [3, 2] otherwise (None as null)."""
    return value[0] if len(set(value)) == 1 and value[0] is not None else list(value)


def torch_sizes(value: Any, spatial: int) -> Sizes:
    """A PyTorch module's size attribute (an int or a tuple) as one int per spatial axis."""
    return (value,) * spatial if isinstance(value, int) else tuple(int(v) for v in value)


def adaptive_output_size(output_size: Any, sizes: Sizes) -> Sizes:
    """PyTorch's adaptive output_size (an int, or one entry per axis, None keeping that axis's size) resolved."""
    wanted = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * len(sizes)
    return tuple(n if k is None else int(k) for n, k in zip(sizes, wanted))


def pads_minus_nd(outer: Pads, inner: Pads) -> Pads:
    """The padding of `outer` that `inner` does not cover, side by side."""
    return tuple((a - c, b - d) for (a, b), (c, d) in zip(outer, inner))
