"""Padding: `zero_padding2d` (Keras's ZeroPadding2D), and `pad1d`, `pad2d`, `pad3d` (PyTorch's padding layers and
F.pad in each of their modes) for sequences (N, C, L), images (N, C, H, W) and volumes (N, C, D, H, W).

- `padding` is written per spatial axis, in the axes' order (Keras's ZeroPadding1D/2D/3D order): an int (every
  side), a list of one int per axis (that many before and after each axis: [h, w], [d, h, w]), or a list of one
  [before, after] pair per axis ([[top, bottom], [left, right]]; for 1-D, [left, right]). PyTorch's layers and
  F.pad want the pairs the other way round, the last axis first: (left, right, top, bottom, front, back)
  (xfw_harness.core.spatial.torch_pad_arg for 2-D); ZeroPad2d((1, 2)) pads only the width. Keras's ZeroPadding layers
  default to 1 on every side; PyTorch's padding layers have no default.
- `zero_padding2d` adds zeros around H and W (PyTorch's ZeroPad2d, ConstantPad2d(p, 0); Keras's ZeroPadding2D).
- `pad1d`/`pad2d`/`pad3d` take `padding_mode` (F.pad's `mode`; named as conv2d's, and apart from a case's
  `mode`): `constant` puts `value` (default 0) on every padded cell
  (ZeroPad*d, ConstantPad*d(value)); `reflect` mirrors the input about its edge cell, the edge not repeated
  (ReflectionPad*d: [0 1 2 3] padded by 2 is [2 1 0 1 2 3 2 1]); `replicate` repeats the edge cell
  (ReplicationPad*d: [0 0 0 1 2 3 3 3]); `circular` wraps around (CircularPad*d: [2 3 0 1 2 3 0 1]). These are
  numpy.pad's `reflect`, `edge` and `wrap` and ONNX Pad's `reflect`, `edge` and `wrap` (the float64 reference is
  ONNX Pad in its reference runtime). PyTorch refuses, and so does the harness (measured, torch 2.13): reflect
  padding >= the axis length ("Padding size should be less than the corresponding input dimension": (4, 0) on a
  length of 4; numpy and ONNX would reflect again), circular padding > the axis length ("Padding value causes
  wrapping around more than once": 5 on a length of 4; 4 is allowed), and a value other than 0 with a mode that
  is not constant ('Padding mode "replicate" doesn't take in value argument'; value=0.0 is accepted).
- Keras: ZeroPadding1D/2D/3D for zeros. Keras has no layer for the other modes or for a constant other than zero
  (keras.ops.pad has `reflect` and `symmetric` on TensorFlow, but no `edge` or `wrap`: "Value of argument `mode`
  expected to be one of ..."): the harness builds its own keras_layers.SpatialPadding, which puts the value with
  keras.ops.pad's constant_values and copies the reflected, replicated or wrapped cells by index (keras.ops.take
  with numpy.pad's index pattern of an arange): exact, in any dtype.
- `xfw-harness port` reads PyTorch's padding modules (ZeroPad2d as `zero_padding2d`, as before; the others,
  ConstantPad2d included, as `pad1d`/`pad2d`/`pad3d` by their dimension) and F.pad calls (x, pad, mode, value) by the
  input's rank; a constant F.pad may pad fewer axes than the input has (the leading ones get 0). Negative padding
  (cropping) has no translation.

`defaults: native` builds what a person porting by hand writes, with only the parameters the case wrote: PyTorch
ZeroPad*d(padding) (ConstantPad*d(padding, value) where a value is written; Reflection-, Replication-,
CircularPad*d by mode) / Keras ZeroPadding*D(padding), refused for the modes and values Keras has no layer for.
PyTorch has no default padding (refused when the case writes none).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block, Corner, Emulation
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param
from xfw_harness.core.spatial import Pads, torch_pad_arg

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
keras_layers = lazy_module("xfw_harness.blocks.keras_layers")

MODES = ("constant", "reflect", "replicate", "circular")
# PyTorch's padding module of each mode, without its dimension ("ReflectionPad" + "2d").
TORCH_PAD_CLASSES = {"constant": "ConstantPad", "reflect": "ReflectionPad", "replicate": "ReplicationPad",
                     "circular": "CircularPad"}
# ONNX Pad's name for each mode (the reference's; kept apart from Keras's table so that one cannot hide the other).
ONNX_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class PadsParam(Param):
    """Padding per side (kind `pads`), one (before, after) pair per spatial axis (`size` axes): an int >= 0 for every
    side; one int per axis ([h, w]: before = after); or one [before, after] pair per axis ([[top, bottom], [left,
    right]]). For one axis, [before, after] (or [[before, after]], the normalised form) -> ((before, after),)."""

    def allowed(self) -> str:
        if self.size == 1:
            return "an integer >= 0, a list [left, right] of two such integers, or [[left, right]]"
        pairs = {2: "[[top, bottom], [left, right]]", 3: "[[front, back], [top, bottom], [left, right]]"}
        return (f"an integer >= 0, a list {self.axes_text} of {self.size} such integers, or "
                f"{pairs.get(self.size, 'one [before, after] pair per axis')}")

    def _normalise(self, v: Any) -> tuple[bool, Any]:
        def amount(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= 0

        if amount(v):
            return True, ((v, v),) * self.size
        if not isinstance(v, (list, tuple)):
            return False, None
        if self.size == 1 and len(v) == 2 and all(amount(x) for x in v):
            return True, ((int(v[0]), int(v[1])),)
        if len(v) == self.size and all(amount(x) for x in v):
            return True, tuple((int(x), int(x)) for x in v)
        if len(v) == self.size and all(isinstance(pair, (list, tuple)) and len(pair) == 2
                                       and all(amount(x) for x in pair) for pair in v):
            return True, tuple((int(a), int(b)) for a, b in v)
        return False, None

    def _json_schema(self) -> dict[str, Any]:
        amount = self._json_integer(0)
        forms = [amount, self._json_list(amount), self._json_list(self._json_list(amount, 2))]
        if self.size == 1:
            forms.insert(1, self._json_list(amount, 2))
        return {"anyOf": forms}


def pads_text(pads: tuple[tuple[int, int], ...]) -> Any:
    """Padding as a person writes it in YAML: 1, [1, 2] or [[0, 1], [2, 3]] (for one axis: 1 or [left, right])."""
    flat = [a for pair in pads for a in pair]
    if len(set(flat)) == 1:
        return flat[0]
    if len(pads) == 1:
        return list(pads[0])
    if all(before == after for before, after in pads):
        return [before for before, _ in pads]
    return [list(pair) for pair in pads]


def torch_pad_order(pads: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """Pairs in the axes' order -> F.pad's flat tuple, the last axis first: (left, right, top, bottom, ...)."""
    return tuple(a for pair in reversed(pads) for a in pair)


def pads_from_torch(amounts: Any, spatial: int, who: str, field: str) -> tuple[tuple[int, int], ...]:
    """F.pad's flat (last axis first) amounts for up to `spatial` axes -> pairs in the axes' order, axes it leaves
    out unpadded; Refusal for negative amounts (cropping) or more axes than the input's."""
    flat = [int(a) for a in amounts]
    if len(flat) % 2 or not 0 < len(flat) <= 2 * spatial:
        raise Refusal(f"{who}: {list(amounts)} is not one (before, after) pair for each of up to {spatial} axes",
                      field=field)
    if any(a < 0 for a in flat):
        raise Refusal(f"{who}: negative padding {list(amounts)} crops; only amounts >= 0 have a translation",
                      field=field)
    pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]  # last axis first
    return tuple([(0, 0)] * (spatial - len(pairs)) + pairs[::-1])


@register
class ZeroPadding2D(Block):
    name = "zero_padding2d"
    benchmark = {"params": {"padding": [[1, 2], [0, 3]]}, "input": BENCHMARK_INPUT}
    family = "padding"
    doc = "Zeros added around H and W: [[top, bottom], [left, right]] (PyTorch's ZeroPad2d takes left, right first)."
    ranks = (4,)
    params = (PadsParam("padding", "pads", ((1, 1), (1, 1)), default_text="1",
                        doc="zeros per side: int (all four), [h, w] (each on both sides) or [[top, bottom], "
                            "[left, right]]; default 1, Keras's (PyTorch's ZeroPad2d has none)"),)
    torch_types = ("ZeroPad2d", "ConstantPad2d")

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, c, h, w = site.in_shape
        (top, bottom), (left, right) = site.params["padding"]
        return n, c, h + top + bottom, w + left + right

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.ZeroPad2d(torch_pad_arg(site.params["padding"]))

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.ZeroPadding2D(site.params["padding"], dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        (top, bottom), (left, right) = site.params["padding"]
        return onnx_op("Pad", x, np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64), mode="constant")

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        if "padding" not in site.written_names:
            raise Refusal("PyTorch's ZeroPad2d has no default padding (Keras's ZeroPadding2D pads 1 on every side)",
                          field="params.padding")
        (top, bottom), (left, right) = site.params["padding"]
        return torch.nn.ZeroPad2d((left, right, top, bottom))

    def native_keras_layer(self, site: Site) -> keras.Layer:
        kwargs = site.written_args(padding="padding")
        return keras.layers.ZeroPadding2D(dtype=site.dtype, **kwargs)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        kind = type(module).__name__
        if kind not in self.torch_types:
            raise Refusal(f"{self.name} reads {', '.join(self.torch_types)}, not {kind}")
        if float(module.value) != 0.0:
            raise Refusal(f"{kind}.value={module.value}: only zeros have a Keras layer (ZeroPadding2D)", field="value")
        amounts = tuple(module.padding)
        if len(amounts) == 2:  # F.pad's pairs start from the last axis: (left, right) pads the width only
            amounts = (*amounts, 0, 0)
        if len(amounts) != 4 or any(a < 0 for a in amounts):
            raise Refusal(f"{kind}.padding={module.padding}: only (left, right, top, bottom) amounts >= 0 have a "
                          "translation (a negative one crops)", field="padding")
        left, right, top, bottom = (int(a) for a in amounts)
        pads: Pads = ((top, bottom), (left, right))
        return {"padding": pads_text(pads)}


def keras_pads_itself(site: Site) -> bool:
    """Whether Keras pads with the harness's SpatialPadding (a mode other than constant, or a constant other than
    zero): Keras's ZeroPadding layers pad zeros only."""
    return not (site.params["padding_mode"] == "constant" and site.params["value"] == 0.0)


def _largest_padding_the_mode_allows(site: Site) -> bool:
    """reflect padding of the length - 1, or circular padding of the whole length (PyTorch refuses more)."""
    limit = {"reflect": -1, "circular": 0}.get(site.params["padding_mode"])
    return limit is not None and any(max(pair) == n + limit for n, pair in zip(site.in_shape[2:],
                                                                                 site.params["padding"]))


def _mode(name: str) -> Corner:
    return Corner(name, lambda s: s.params["padding_mode"] == name)


PAD_EMULATIONS = (
    Emulation("keras_spatial_padding",
              "Keras has no layer for reflect, replicate, circular or a constant other than zero: the harness's "
              "SpatialPadding gathers the cells by index (numpy.pad's pattern of an arange) or pads the value; the "
              "reference is ONNX's Pad",
              keras_pads_itself, "reference",
              (_mode("reflect"), _mode("replicate"), _mode("circular"),
               Corner("a constant other than zero", lambda s: s.params["value"] != 0.0),
               Corner("the largest padding the mode allows", _largest_padding_the_mode_allows),
               Corner("padded size-1 axis", lambda s: any(n == 1 and any(pair) for n, pair in zip(
                   s.in_shape[2:], s.params["padding"]))),
               Corner("uneven (before != after)", lambda s: any(b != a for b, a in s.params["padding"])))),
)


class _Pad(Block):
    """pad1d/pad2d/pad3d: one class, `spatial` axes."""

    spatial: ClassVar[int]
    family = "padding"
    emulations = PAD_EMULATIONS

    @classmethod
    def _schema(cls, spatial: int) -> tuple[Param, ...]:
        forms = {1: "[left, right]", 2: "[h, w] (each on both sides) or [[top, bottom], [left, right]]",
                 3: "[d, h, w] (each on both sides) or [[front, back], [top, bottom], [left, right]]"}[spatial]
        return (
            Param("padding_mode", "choice", "constant", choices=MODES,
                  doc="F.pad's mode: constant (the value), reflect (mirrored, the edge not repeated), replicate (the "
                      "edge repeated), circular (wrapped around); PyTorch's default constant"),
            PadsParam("padding", "pads", ((1, 1),) * spatial, size=spatial, default_text="1",
                      doc=f"cells per side: int (every side) or {forms}, axes in order; default 1, Keras's "
                          "ZeroPadding's (PyTorch's padding layers have none)"),
            Param("value", "float", 0.0,
                  doc="constant mode: the padded cells' value (ConstantPad's value; F.pad's default 0)"),
        )

    def output_shape(self, site: Site) -> tuple[int, ...]:
        p = site.params
        mode, pads, sizes = p["padding_mode"], p["padding"], site.in_shape[2:]
        if mode != "constant" and p["value"] != 0.0:
            raise Refusal(f"value={p['value']:g} with mode {mode!r}: PyTorch's F.pad takes a value in constant mode "
                          "only", field="params.value")
        for axis, ((before, after), size) in enumerate(zip(pads, sizes)):
            if mode == "reflect" and max(before, after) >= size:
                raise Refusal(f"reflect padding {before, after} on an axis of length {size} (axis {axis + 2}): "
                              "PyTorch refuses reflect padding >= the input's length", field="params.padding")
            if mode == "circular" and max(before, after) > size:
                raise Refusal(f"circular padding {before, after} on an axis of length {size} (axis {axis + 2}): "
                              "PyTorch refuses circular padding > the input's length (it would wrap more than once)",
                              field="params.padding")
        return (*site.in_shape[:2], *(size + before + after for size, (before, after) in zip(sizes, pads)))

    def _torch_class(self, mode: str) -> Any:
        return getattr(torch.nn, f"{TORCH_PAD_CLASSES[mode]}{self.spatial}d")

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        amounts = torch_pad_order(p["padding"])
        if p["padding_mode"] == "constant":
            return self._torch_class("constant")(amounts, p["value"])
        return self._torch_class(p["padding_mode"])(amounts)

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        if not keras_pads_itself(site):
            return self._keras_zero_padding(p["padding"], site.dtype)
        return keras_layers.SpatialPadding(p["padding"], p["padding_mode"], p["value"], dtype=site.dtype)

    def _keras_zero_padding(self, pads: Any, dtype: str) -> keras.Layer:
        layer = getattr(keras.layers, f"ZeroPadding{self.spatial}D")
        return layer(pads[0] if self.spatial == 1 else pads, dtype=dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        p = site.params
        amounts = np.array([0, 0, *(b for b, _ in p["padding"]), 0, 0, *(a for _, a in p["padding"])], dtype=np.int64)
        if p["padding_mode"] == "constant":
            return onnx_op("Pad", x, amounts, np.array(p["value"], dtype=np.float64), mode="constant")
        return onnx_op("Pad", x, amounts, mode=ONNX_PAD_MODES[p["padding_mode"]])

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        p, written = site.params, site.written_names
        if "padding" not in written:
            raise Refusal(f"PyTorch's padding layers have no default padding (Keras's ZeroPadding{self.spatial}D "
                          "pads 1 on every side)", field="params.padding")
        amounts = torch_pad_order(p["padding"])
        if p["padding_mode"] != "constant":
            return self._torch_class(p["padding_mode"])(amounts)
        if "value" in written:
            return self._torch_class("constant")(amounts, p["value"])
        return getattr(torch.nn, f"ZeroPad{self.spatial}d")(amounts)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        if p["padding_mode"] != "constant" or p["value"] != 0.0:
            what = f"{p['padding_mode']} padding" if p["padding_mode"] != "constant" else f"padding with {p['value']:g}"
            raise Refusal(f"Keras has no layer for {what} (only ZeroPadding{self.spatial}D: zeros)",
                          field="params.padding_mode" if p["padding_mode"] != "constant" else "params.value")
        layer = getattr(keras.layers, f"ZeroPadding{self.spatial}D")
        if "padding" not in site.written_names:
            return layer(dtype=site.dtype)
        return self._keras_zero_padding(p["padding"], site.dtype)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        kind = type(module).__name__
        readable = (*self.torch_types, *self.torch_fallback_types)
        if kind not in readable:
            raise Refusal(f"{self.name} reads {', '.join(readable)}, not {kind}")
        mode = next(m for m, prefix in TORCH_PAD_CLASSES.items() if kind.startswith(prefix) or (
            m == "constant" and kind.startswith("ZeroPad")))
        pads = pads_from_torch(module.padding, self.spatial, f"{kind}.padding={tuple(module.padding)}", "padding")
        return self._params(mode, pads, float(getattr(module, "value", 0.0)))

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        if len(in_shapes[0]) != self.spatial + 2:
            raise Refusal(f"{self.name} pads an input of rank {self.spatial + 2}, got {list(in_shapes[0])}")
        names = ("input", "pad", "mode", "value")
        given = {**dict(zip(names, args)), **kwargs}
        mode = given.get("mode", "constant")
        if mode not in MODES:
            raise Refusal(f"F.pad mode={mode!r}: one of {', '.join(MODES)} has a translation", field="mode")
        pads = pads_from_torch(given["pad"], self.spatial, f"F.pad pad={list(given['pad'])}", "pad")
        value = given.get("value")
        return self._params(mode, pads, 0.0 if value is None else float(value))

    def _params(self, mode: str, pads: tuple[tuple[int, int], ...], value: float) -> dict[str, Any]:
        params: dict[str, Any] = {"padding": pads_text(pads)}
        if mode != "constant":
            params["padding_mode"] = mode
        if value != 0.0:
            params["value"] = value
        return params


@register
class Pad1D(_Pad):
    name = "pad1d"
    spatial = 1
    doc = "Pad the length of (N, C, L) by a constant, reflection, replication or wrapping (PyTorch's F.pad modes)."
    ranks = (3,)
    params = _Pad._schema(1)
    benchmark = {"params": {"padding_mode": "reflect", "padding": [2, 3]}, "input": {"shape": [8, 32, 1024]}}
    torch_types = tuple(f"{prefix}1d" for prefix in ("ZeroPad", *TORCH_PAD_CLASSES.values()))
    torch_functions = ("pad",)


@register
class Pad2D(_Pad):
    name = "pad2d"
    spatial = 2
    doc = "Pad H and W by a constant, reflection, replication or wrapping (PyTorch's F.pad modes; ReflectionPad2d...)."
    ranks = (4,)
    params = _Pad._schema(2)
    benchmark = {"params": {"padding_mode": "reflect", "padding": [[1, 2], [0, 3]]}, "input": BENCHMARK_INPUT}
    # ZeroPad2d stays zero_padding2d's (Keras's ZeroPadding2D), as before; ConstantPad2d, whatever its value, is read
    # here (blocks are asked in their names' order: pad2d before zero_padding2d, which reads it too).
    torch_types = ("ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "CircularPad2d")
    torch_fallback_types = ("ZeroPad2d",)
    torch_functions = ("pad",)


@register
class Pad3D(_Pad):
    name = "pad3d"
    spatial = 3
    doc = "Pad D, H and W by a constant, reflection, replication or wrapping (PyTorch's F.pad modes)."
    ranks = (5,)
    params = _Pad._schema(3)
    benchmark = {"params": {"padding_mode": "replicate", "padding": 1}, "input": {"shape": [2, 16, 16, 32, 32]}}
    torch_types = tuple(f"{prefix}3d" for prefix in ("ZeroPad", *TORCH_PAD_CLASSES.values()))
    torch_functions = ("pad",)
