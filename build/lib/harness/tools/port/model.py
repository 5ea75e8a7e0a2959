"""The user's PyTorch model for `harness port`: loading it, its leaf modules, and the probe run.

- Loading. MODULE is a dotted module name (found from the current directory too, as `python -m` finds it) or a
  path to a .py file; FACTORY a callable taking no arguments that returns an nn.Module, or an attribute that is one
  (dotted: `zoo.lenet`). An error of the user's code (an import or a factory that raises) is one line naming
  MODULE:FACTORY and the exception (`exception_text`). `--weights` loads a state_dict (torch.load with
  weights_only=True: no pickled code runs) with strict key checking. The model's weights must be float32 or
  float64 (`model_dtype`).
- Its leaves. The model is walked down to its leaf modules (`leaves_of`): nn.Sequential containers are flattened,
  and any other container is taken as a chain of its leaves *in the order its forward calls them*, which the probe
  run records. nn.Identity computes nothing and is left out.
- The probe run (`probe`): the model itself on the case's input, with forward pre-hooks that record a copy of each
  leaf's input (taken before an in-place module overwrites it) and the order of the calls. Its output, and each
  leaf's real input, are what the translation and the verification read.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.frameworks import TORCH_DTYPE_NAMES, to_numpy, torch

PORTED_DTYPES = ("float32", "float64")  # the models `port` takes: their weights' dtype (TORCH_DTYPE_NAMES)


class PortError(Exception):
    """The model cannot be ported as asked (not found, unsupported layers, a bad state_dict); says where."""


class ForwardError(PortError):
    """The model's forward raised on the probe input: in `leaf` (None: between its leaves), with `error`."""

    def __init__(self, message: str, leaf: Leaf | None, error: str) -> None:
        super().__init__(message)
        self.leaf, self.error = leaf, error


@dataclass
class Leaf:
    """One leaf module of the model, as the probe run saw it."""

    path: str  # "features.3"; "" for a model that is itself one layer
    module: Any
    inputs: list[np.ndarray] = field(default_factory=list)  # one per call (a leaf must be called exactly once)
    order: int = -1  # its place among the calls of the probe run

    @property
    def where(self) -> str:
        return self.path or "(the model itself)"

    @property
    def type_name(self) -> str:
        cls = type(self.module)
        if getattr(torch.nn, cls.__name__, None) is cls:
            return f"torch.nn.{cls.__name__}"
        return f"{cls.__module__}.{cls.__qualname__}"


def load_model(spec: str) -> Any:
    """The nn.Module that `MODULE:FACTORY` names (see the module doc)."""
    if ":" not in spec:
        raise PortError(f"{spec!r}: expected MODULE:FACTORY, e.g. my_models.py:make_lenet or zoo.models:lenet")
    module_name, factory_name = spec.rsplit(":", 1)
    if not module_name or not factory_name:
        raise PortError(f"{spec!r}: expected MODULE:FACTORY, e.g. my_models.py:make_lenet or zoo.models:lenet")
    module = _import_module(module_name, spec)
    obj: Any = module
    for part in factory_name.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise PortError(f"{module_name} has no {factory_name!r} ({part!r} not found; it has: "
                            f"{', '.join(names[:20])}{' ...' if len(names) > 20 else ''})")
        obj = getattr(obj, part)
    if isinstance(obj, torch.nn.Module):
        return obj
    if not callable(obj):
        raise PortError(f"{spec}: {factory_name} is a {type(obj).__name__}, neither an nn.Module nor a callable "
                        "that returns one")
    try:
        inspect.signature(obj).bind()
    except TypeError as e:
        raise PortError(f"{spec}: {factory_name}() cannot be called without arguments ({e}); harness port calls "
                        f"FACTORY with none: give one that takes none (def make(): return {factory_name}(...))"
                        ) from None
    except ValueError:  # no signature to read (a builtin): calling it tells
        pass
    try:
        model = obj()
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's own code: its error in one line
        raise PortError(f"{spec}: calling {factory_name}() raised {exception_text(e)}") from None
    if not isinstance(model, torch.nn.Module):
        raise PortError(f"{spec}: {factory_name}() returned a {type(model).__name__}, not an nn.Module")
    return model


def _import_module(name: str, spec: str) -> Any:
    path = Path(name)
    if name.endswith(".py") or path.is_file():
        if not path.is_file():
            raise PortError(f"no such file: {name}")
        # Its folder goes on sys.path so that the file's own imports of its neighbours work.
        sys.path.insert(0, str(path.resolve().parent))
        # Named by its stem (the name its classes show in messages) unless another module holds that name.
        loaded = sys.modules.get(path.stem)
        ours = loaded is None or Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve()
        unique = path.stem if path.stem.isidentifier() and ours else (
            "harness_port_" + re.sub(r"\W", "_", str(path.resolve())))
        file_spec = importlib.util.spec_from_file_location(unique, path)
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[unique] = module
        try:
            file_spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's own code: its error in one line
            sys.modules.pop(unique, None)
            raise PortError(f"{spec}: importing {name} raised {exception_text(e)}") from None
        return module
    # Found as `python -m` and pytest find a module: from the current directory too. The `harness` script's own
    # folder, not the current directory, is first on sys.path.
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):  # MODULE itself, not its import
            raise PortError(f"cannot import {name!r}: {e}: a dotted MODULE must be importable from the current "
                            f"directory ({cwd}) or PYTHONPATH (searched: the current directory, then sys.path); or "
                            "give the path to its .py file") from None
        raise PortError(f"{spec}: importing {name} raised {exception_text(e)}") from None
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's own code: its error in one line
        raise PortError(f"{spec}: importing {name} raised {exception_text(e)}") from None


def exception_text(e: BaseException) -> str:
    """An exception of the user's code in one line: its type and message (a SyntaxError's file and line too)."""
    if isinstance(e, SyntaxError):
        return f"{type(e).__name__}: {e.msg} ({e.filename}, line {e.lineno})"
    if isinstance(e, SystemExit):
        return f"SystemExit: sys.exit({e.code!r}) (code that runs on import without `if __name__ == '__main__':`?)"
    message = " / ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return f"{type(e).__name__}: {message}" if message else type(e).__name__


def load_weights(model: Any, path: str | Path) -> None:
    """Load a saved state_dict into the model (strict: every key of both must match)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unreadable, not a state_dict, pickled code refused
        raise PortError(f"cannot read {path} as a state_dict (torch.load, weights_only=True): {e}") from None
    if not isinstance(state, dict):
        raise PortError(f"{path} holds a {type(state).__name__}, not a state_dict (a mapping of names to tensors)")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise PortError(f"{path} does not fit the model: {e}") from None


def model_dtype(model: Any) -> str:
    """The dtype name of the model's floating-point weights and buffers (float32 where it has none): PortError
    unless they are all float32 or all float64."""
    params = list(model.parameters()) + list(model.buffers())
    float_dtypes = {p.dtype for p in params if p.is_floating_point()} or {torch.float32}
    dtype = TORCH_DTYPE_NAMES.get(next(iter(float_dtypes)))
    if len(float_dtypes) > 1 or dtype not in PORTED_DTYPES:
        raise PortError(f"the model's weights are {', '.join(sorted(map(str, float_dtypes)))}; the harness ports "
                        "float32 or float64 models")
    return dtype


def leaves_of(model: Any) -> tuple[list[Leaf], list[str]]:
    """The model's leaf modules with their paths (nn.Identity left out), and notes on containers whose forward is not
    nn.Sequential's (their leaves are taken in the order the forward calls them)."""
    leaves, notes = [], []

    def walk(module: Any, path: str) -> None:
        children = list(module.named_children())
        if not children:
            if not isinstance(module, torch.nn.Identity):
                leaves.append(Leaf(path, module))
            return
        forward = type(module).forward
        # A subclass of nn.Sequential that keeps its forward is one; a ModuleList or ModuleDict has no forward (that
        # of the module holding it calls its layers, and has its note).
        if forward is not torch.nn.Sequential.forward and forward is not torch.nn.Module.forward:
            kind = ("an nn.Sequential with its own forward" if isinstance(module, torch.nn.Sequential)
                    else "not an nn.Sequential")
            notes.append(f"{path or '(the model)'} is a {type(module).__name__}, {kind}: its layers are taken in the "
                         "order its forward calls them, and the comparison with the model itself checks that they "
                         "form a chain")
        for name, child in children:
            walk(child, f"{path}.{name}" if path else name)

    walk(model, "")
    return leaves, notes


def probe(model: Any, leaves: list[Leaf], x: np.ndarray) -> np.ndarray:
    """Run the model on `x` (in the mode it is in), recording a copy of each leaf's input as the leaf is called;
    the output. Recorded before the call and copied: an in-place module (ReLU(inplace=True)) overwrites its input,
    so an input read after it, or an array sharing the tensor's memory, would hold the module's output."""
    calls: list[Leaf] = []
    running: list[Leaf] = []  # the leaf being called, if any: where a failing forward stopped

    def before(leaf: Leaf) -> Any:
        def record(module: Any, args: tuple) -> None:
            if leaf.order < 0:
                leaf.order = len(calls)
            calls.append(leaf)
            running.append(leaf)
            leaf.inputs.append(to_numpy(args[0]).copy() if args and isinstance(args[0], torch.Tensor) else None)
        return record

    def after(module: Any, args: tuple, output: Any) -> None:
        running.pop()

    handles = [hook for leaf in leaves for hook in (leaf.module.register_forward_pre_hook(before(leaf)),
                                                    leaf.module.register_forward_hook(after))]
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(x.copy()))  # a copy: the model may write into its input
    except Exception as e:  # noqa: BLE001 - the user's forward refused the input
        leaf = running[-1] if running else None
        error = exception_text(e)
        at = f"in {leaf.where} ({leaf.type_name}): " if leaf is not None else ""
        raise ForwardError(f"the model refused an input of shape {list(x.shape)}: {at}{error} (give --input-shape "
                           "N,C,H,W as the model expects)", leaf, error) from None
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(out, torch.Tensor):
        raise PortError(f"the model returned a {type(out).__name__}; the harness ports models with one tensor output")
    return to_numpy(out).copy()
