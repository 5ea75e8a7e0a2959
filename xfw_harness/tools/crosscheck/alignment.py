"""How an artefact's arrays line up with PyTorch's: the input layout, and the ways to read an output channels-first.

Every transpose is xfw_harness.core.layout's.

- Input. PyTorch takes N, C, *spatial. A converted model may take the same (channels-first) or N, *spatial, C
  (channels-last, what nobuco and onnx2tf make by default). `choose_input_layout` compares the artefact's declared
  input shape (None matching any size; a batch fixed at 1 matching any batch, run one sample at a time) with both
  readings of the PyTorch input shape: the one that fits is taken; when both fit (a fully dynamic shape, or C equal
  to every spatial size) channels-last is taken and the reason says so; when neither fits, or `--layout` forces one
  that does not, the input is refused (exit status 2). A rank-2 input has no channel axis and is taken as it is.
- Outputs. Each output is read `as is` (its shape is PyTorch's) or `channels-last` (its shape is PyTorch's with the
  channels moved last, rank 3 or more); a shape that fits both is read first in the input's layout, then the other.
  A rank-2 output that matches in neither may be a flatten in Keras's order: `flatten_view` reads it as Keras's
  Flatten orders a channels-last tensor of a given channels-first shape (xfw_harness.core.layout.flatten_permutation),
  which xfw_harness.tools.crosscheck.verify tries as a finding, never as a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xfw_harness.core.layout import CHANNELS_LAST, Layout, shape_to_channels_last, to_channels_first, to_channels_last
from xfw_harness.tools.crosscheck.artefact import ArtefactError, Shape, format_declared

NCHW, NHWC, AUTO = "nchw", "nhwc", "auto"
LAYOUTS = (AUTO, NCHW, NHWC)
NAMES = {NCHW: "channels-first (NCHW)", NHWC: "channels-last (NHWC)"}


def fits(declared: Shape | None, shape: tuple[int, ...]) -> bool:
    """Whether an input of `shape` fits the declared shape (None: any size; a batch of 1: run sample by sample)."""
    if declared is None:
        return True
    if len(declared) != len(shape):
        return False
    return declared[0] in (None, 1, shape[0]) and all(d is None or d == s for d, s in zip(declared[1:], shape[1:]))


@dataclass(frozen=True)
class InputLayout:
    layout: str  # NCHW or NHWC
    reason: str  # for people: how it was decided

    def to_artefact(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(to_channels_last(x)) if self.layout == NHWC else x

    def to_channels_first(self, y: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(to_channels_first(y)) if self.layout == NHWC else y


def choose_input_layout(declared: Shape | None, torch_shape: tuple[int, ...], forced: str, path: object
                        ) -> InputLayout:
    """The artefact's input layout (see the module doc); ArtefactError when the shapes cannot fit."""
    shape = tuple(torch_shape)
    readings = {NCHW: shape, NHWC: shape_to_channels_last(shape)}
    said = f"the artefact declares its input {format_declared(declared)}"
    split = (" (its batch is fixed at 1: the samples run one at a time)"
             if declared and declared[0] == 1 and shape[0] > 1 else "")
    if len(shape) <= 2:
        if not fits(declared, shape):
            raise ArtefactError(f"{path}: {said}, which an input of shape {list(shape)} (--input-shape) does not fit")
        return InputLayout(NCHW, f"{said}; rank {len(shape)}: no channel axis to place{split}")
    fitting = [name for name, s in readings.items() if fits(declared, s)]
    if forced in readings:
        if forced not in fitting:
            raise ArtefactError(f"{path}: --layout {forced}: {said}, which does not fit {NAMES[forced]} "
                                f"{list(readings[forced])} (--input-shape {list(shape)})")
        return InputLayout(forced, f"{NAMES[forced]}, forced by --layout; {said}{split}")
    if not fitting:
        raise ArtefactError(f"{path}: {said}, which fits neither NCHW {list(readings[NCHW])} nor NHWC "
                            f"{list(readings[NHWC])} of --input-shape {list(shape)}")
    if len(fitting) == 1:
        return InputLayout(fitting[0], f"{NAMES[fitting[0]]}: {said} for PyTorch's {list(shape)}{split}")
    return InputLayout(NHWC, f"{NAMES[NHWC]}: {said}, which fits both layouts of {list(shape)}; taken as "
                             f"channels-last, the default of nobuco and onnx2tf (--layout nchw to change){split}")


@dataclass(frozen=True)
class View:
    """One way to read an artefact's array as PyTorch's channels-first one."""

    label: str
    layout: Layout | None  # None: channels-first as it is

    def to_channels_first(self, a: np.ndarray) -> np.ndarray:
        return a if self.layout is None else self.layout.to_channels_first(a)

    def to_artefact(self, r: np.ndarray) -> np.ndarray:
        return r if self.layout is None else self.layout.to_keras(r)

    @property
    def flattened_from(self) -> tuple[int, ...] | None:
        return None if self.layout is None else self.layout.flattened_from


AS_IS = View("as is (channels-first)", None)
CHANNELS_LAST_VIEW = View("channels-last", CHANNELS_LAST)


def output_views(artefact_shape: tuple[int, ...], torch_shape: tuple[int, ...], input_layout: str) -> list[View]:
    """The readings of an artefact output of `artefact_shape` that give PyTorch's `torch_shape`, the likelier
    first (for a shape that reads both ways: the input's layout)."""
    artefact_shape, torch_shape = tuple(artefact_shape), tuple(torch_shape)
    views = [AS_IS] if artefact_shape == torch_shape else []
    if len(torch_shape) > 2 and artefact_shape == shape_to_channels_last(torch_shape):
        views.append(CHANNELS_LAST_VIEW)
    if len(views) == 2 and input_layout == NHWC:
        views.reverse()
    return views


def flatten_view(unflattened: tuple[int, ...]) -> View:
    """Read a rank-2 array as Keras's Flatten orders a channels-last tensor of channels-first shape `unflattened`."""
    dims = ", ".join(str(d) for d in unflattened)
    return View(f"in Keras's channels-last flatten order of a [{dims}] tensor (PyTorch flattens it as C, H, W; "
                "Keras as H, W, C)", Layout(flattened_from=tuple(unflattened)))


def layer_views(shape: tuple[int, ...], unflattened: list[tuple[int, ...]]) -> list[View]:
    """Every reading of an intermediate array of `shape`: as is, channels-last (rank 3 or more), and for rank 2 the
    Keras flatten orders of the given channels-first shapes that hold as many features."""
    views = [AS_IS] + ([CHANNELS_LAST_VIEW] if len(shape) > 2 else [])
    if len(shape) == 2:
        views += [flatten_view(s) for s in unflattened if int(np.prod(s)) == shape[1]]
    return views
