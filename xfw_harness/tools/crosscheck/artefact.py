"""What `xfw-harness verify` needs of a converted model, whatever its file: run it, differentiate it, say its input.

An `Artefact` is a model someone converted by other means (nobuco, onnx2tf, by hand), opened from its file by one of
the readers (xfw_harness.tools.crosscheck.keras_files for .keras files and SavedModel folders,
xfw_harness.tools.crosscheck.litert for .tflite files). It declares its one input's shape as the file states it (None
where a dimension is dynamic), runs on a NumPy array in its own layout and gives its outputs as named arrays, and,
where its runtime can, the gradient of sum(output_i * r_i) with respect to its input.

A file whose batch dimension is fixed at 1 (onnx2tf writes such models) is run one sample at a time and the results
stacked, so that several samples can be compared. Any failure of the artefact's own runtime becomes an
`ArtefactError`: one line naming the file, which `xfw-harness verify` prints with exit status 2.

This module imports neither framework nor xfw_harness.tools.port: `xfw-harness port --tflite` imports
xfw_harness.tools.crosscheck.litert, which builds on it, and importing xfw_harness.tools.port from here would run port's
package (which imports its command, which imports litert) while litert is still half loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Shape = tuple  # of int | None: a declared shape, None where dynamic


class ArtefactError(Exception):
    """The artefact cannot be read or run as given (a missing or unreadable file, an input it refuses)."""


def one_line(e: BaseException) -> str:
    """An exception from a framework's runtime in one line: its type and message."""
    message = " / ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return f"{type(e).__name__}: {message}" if message else type(e).__name__


def natural_key(name: str) -> list:
    """Sort key that puts output_2 before output_10 (signature outputs are keyed by such names)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def named_leaves(value: Any, prefix: str = "output", is_leaf: Any = None) -> list[tuple[str, Any]]:
    """The tensors of a (nested) output structure in order, named as a reader writes them: a lone tensor is
    `output`, the items of a tuple or list `output[0]`, `output[1]`, of a mapping `output['key']` (in its order).
    `is_leaf(v)` says what counts as a tensor; anything else that is no container (None, an int) is left out."""
    if is_leaf is not None and is_leaf(value):
        return [(prefix, value)]
    if isinstance(value, Mapping):
        return [pair for key, item in value.items() for pair in named_leaves(item, f"{prefix}[{key!r}]", is_leaf)]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [pair for i, item in enumerate(value) for pair in named_leaves(item, f"{prefix}[{i}]", is_leaf)]
    return [(prefix, value)] if is_leaf is None else []


def format_declared(shape: Shape | None) -> str:
    if shape is None:
        return "[unknown]"
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"


class Artefact:
    """A converted model, opened. Subclasses set the attributes and implement `_forward` (and `_gradient`)."""

    kind: str = "artefact"  # for people: "Keras 3 model (.keras)"
    differentiable: bool = False
    why_not_differentiable: str = ""

    def __init__(self, path: Path, input_shape: Shape | None, input_dtype: Any = np.float32) -> None:
        self.path = Path(path)
        self.input_shape = input_shape  # as declared; None when the file does not say
        self.input_dtype = np.dtype(input_dtype)
        self.notes: list[str] = []  # what a reader did that a person should know (an output order it chose)
        self.keras_model: Any = None  # a functional Keras model, when the artefact is one: its layers can be aligned

    def describe(self) -> str:
        return f"{self.path} ({self.kind}), input {format_declared(self.input_shape)}"

    def _split(self, x: np.ndarray) -> bool:
        """Whether the file fixes the batch at 1 while x holds several samples: then it runs them one by one."""
        return bool(self.input_shape) and self.input_shape[0] == 1 and x.shape[0] > 1

    def run(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """The outputs on x (in the artefact's layout), named, in the artefact's order."""
        x = np.ascontiguousarray(x.astype(self.input_dtype, copy=False))
        try:
            if not self._split(x):
                return self._forward(x)
            parts = [self._forward(x[i:i + 1]) for i in range(x.shape[0])]
        except ArtefactError:
            raise
        except Exception as e:  # noqa: BLE001 - the artefact's runtime refused the input
            raise ArtefactError(f"{self.path}: running it on an input of shape {list(x.shape)} raised "
                                f"{one_line(e)}") from None
        return [(name, np.concatenate([p[i][1] for p in parts])) for i, (name, _) in enumerate(parts[0])]

    def input_gradient(self, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
        """d/dx of sum_i sum(output_i * weights_i), each weight in its output's layout (artefact order)."""
        x = np.ascontiguousarray(x.astype(self.input_dtype, copy=False))
        if not self._split(x):
            return self._gradient(x, weights)
        return np.concatenate([self._gradient(x[i:i + 1], [w[i:i + 1] for w in weights])
                               for i in range(x.shape[0])])

    def _forward(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        raise NotImplementedError

    def _gradient(self, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError(self.why_not_differentiable)


def open_error(path: Path, what: str, e: BaseException) -> ArtefactError:
    return ArtefactError(f"{path}: cannot be read as {what}: {one_line(e)}")
