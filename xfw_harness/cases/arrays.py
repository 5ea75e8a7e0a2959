"""The data a case names or holds, read safely and within budget: paths that must stay inside the case file's
folder, nested lists of numbers (YAML aliases counted as what they stand for, without expanding them), .npy arrays
read from their header first (never unpickled), .npz weight files; and the budget of one file's points.
"""

from __future__ import annotations

import contextvars
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from xfw_harness.blocks import MAX_ELEMENTS, Block
from xfw_harness.core.errors import CaseError, show

MAX_HELD_NUMBERS = 1 << 23  # numbers of the inline and golden arrays that one file's points hold while loaded


def inside_folder(base: Path, relative: Any, fld: str, suffixes: tuple[str, ...]) -> Path:
    """A data path named in a case: relative to the case file's folder, never outside its tree."""
    if not isinstance(relative, str) or not relative:
        raise CaseError(f"must be a path (string) relative to the case file, got {show(relative)}", field=fld)
    if Path(relative).is_absolute():
        raise CaseError(f"absolute paths are not allowed ({show(relative)}); give it relative to the case file",
                        field=fld)
    try:
        path = (base / relative).resolve()  # symlinks resolved: a link that leads outside is outside
    except (ValueError, OSError) as e:  # a NUL byte, a name too long, a symlink loop
        raise CaseError(f"{show(relative)} is not a usable path: {e}", field=fld) from None
    if not path.is_relative_to(base.resolve()):
        raise CaseError(f"{show(relative)} points outside the case file's folder {base}", field=fld)
    if path.suffix not in suffixes:
        raise CaseError(f"{show(relative)} must be a {' or '.join(suffixes)} file", field=fld)
    if not path.is_file():
        raise CaseError(f"file not found: {path}", field=fld)
    return path


def count_numbers(value: Any, fld: str) -> int:
    """How many numbers a nested list holds, counting a list that YAML aliases share (`*name`) once per use,
    without expanding it: ten aliases of ten aliases of ... stand for a huge array in a few lines of YAML."""
    sizes: dict[int, int] = {}

    def count(v: Any, depth: int) -> int:
        if not isinstance(v, list):
            return 1
        if depth > 32:  # NumPy's own limit on dimensions
            raise CaseError("is nested more than 32 levels deep; allowed: a nested list of numbers", field=fld)
        if id(v) not in sizes:
            sizes[id(v)] = sum(count(x, depth + 1) for x in v)
        return sizes[id(v)]

    return count(value, 0)


class FileBudget:
    """What the points of one case file may make the loader hold: sweep points, and the numbers of their inline
    and golden arrays. An array that several points share (every point of a sweep, a YAML alias, a .npy file
    named twice) is made once and counted once."""

    def __init__(self) -> None:
        self.points = 0
        self.numbers = 0
        self._made: dict[Any, tuple[Any, Any]] = {}

    def get(self, key: Any) -> Any:
        return self._made[key][1] if key in self._made else None

    def once(self, key: Any, keep: Any, numbers: int, make: Any, fld: str) -> Any:
        """make() the first time `key` is asked for (keeping `keep`, whose id may be in the key, alive)."""
        if key in self._made:
            return self._made[key][1]
        if self.numbers + numbers > MAX_HELD_NUMBERS:
            raise CaseError(f"its {numbers:,} numbers would bring the inline and golden values this file holds to "
                            f"{self.numbers + numbers:,}; the limit is {MAX_HELD_NUMBERS:,} per file (put large "
                            "arrays in .npy files: input fill: file)", field=fld)
        made = make()
        self.numbers += numbers
        self._made[key] = (keep, made)
        return made


FILE_BUDGET: contextvars.ContextVar[FileBudget | None] = contextvars.ContextVar("harness_file_budget", default=None)


def file_budget() -> FileBudget:
    """The budget of the file being loaded (load_file sets it), or a fresh one outside load_file."""
    return FILE_BUDGET.get() or FileBudget()


def nested_array(value: Any, fld: str) -> np.ndarray:
    budget = file_budget()
    key = ("nested", id(value))
    if (made := budget.get(key)) is not None:
        return made
    n = count_numbers(value, fld)
    if n > MAX_ELEMENTS:
        raise CaseError(f"holds {n:,} numbers (YAML aliases included); the limit is {MAX_ELEMENTS:,}", field=fld)

    def make() -> np.ndarray:
        try:
            return np.asarray(value, dtype=np.float64)
        except OverflowError:
            raise CaseError("holds an integer too large for a float64", field=fld) from None
        except (ValueError, TypeError):
            raise CaseError("must be a nested list of numbers with a regular (rectangular) shape",
                            field=fld) from None

    return budget.once(key, value, n, make, fld)


def npy_header(path: Path, fld: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of a .npy file, from its header only: nothing is allocated or unpickled."""
    try:
        with path.open("rb") as f:
            return npy_header_of(f, path.name, fld)
    except OSError as e:
        raise CaseError(f"cannot read {path.name} as a .npy array: {e}", field=fld) from None


def npy_header_of(f: Any, name: str, fld: str, limit: int = MAX_ELEMENTS) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of the .npy array that open binary file `f` starts with, checked against the limits."""
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    except (ValueError, OSError) as e:
        raise CaseError(f"cannot read {name} as a .npy array: {e}", field=fld) from None
    if dtype.hasobject:
        raise CaseError(f"{name} holds Python objects (a pickled array); allowed: a plain numeric array "
                        "(pickles are never loaded)", field=fld)
    if dtype.kind not in "biuf":
        raise CaseError(f"{name} holds {dtype} values; allowed: a numeric (bool, integer or float) array",
                        field=fld)
    if math.prod(shape) > limit:
        raise CaseError(f"{name} has shape {list(shape)}, {math.prod(shape):,} elements; the limit is "
                        f"{limit:,}", field=fld)
    return tuple(shape), dtype


def load_npy(path: Path, fld: str) -> np.ndarray:
    shape, _ = npy_header(path, fld)

    def make() -> np.ndarray:
        try:
            return np.load(path, allow_pickle=False).astype(np.float64)
        except (ValueError, OSError) as e:
            raise CaseError(f"cannot read {path.name} as a .npy array without pickles: {e}", field=fld) from None

    return file_budget().once(("npy", str(path)), None, math.prod(shape), make, fld)


def read_weights(raw: Any, base: Path, block: Block, fld: str, limit: int = MAX_ELEMENTS) -> Path | None:
    if raw is None:
        return None
    if not block.weight_names:
        raise CaseError(f"block {block.name!r} has no weights", field=fld)
    if not isinstance(raw, dict) or set(raw) != {"path"}:
        raise CaseError("must be {path: FILE.npz}, a .npz of PyTorch-layout arrays named "
                        f"{', '.join(block.weight_names)}", field=fld)
    path = inside_folder(base, raw["path"], f"{fld}.path", (".npz",))
    if not zipfile.is_zipfile(path):
        raise CaseError(f"{path.name} is not a .npz archive (as numpy.savez writes)", field=f"{fld}.path")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
        with zipfile.ZipFile(path) as archive:  # every array's header, before any data is read (a zip bomb)
            for member in archive.namelist():
                with archive.open(member) as f:
                    npy_header_of(f, f"{path.name}:{member}", f"{fld}.path", limit)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise CaseError(f"cannot read {path.name}: {e}", field=f"{fld}.path") from None
    unknown = names - set(block.weight_names)
    if unknown:
        raise CaseError(f"{path.name} holds {', '.join(sorted(unknown))}; allowed names: "
                        f"{', '.join(block.weight_names)}", field=f"{fld}.path")
    return path
