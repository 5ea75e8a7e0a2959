"""The user's PyTorch model for `xfw-harness port`: loading it and its weights.

- Loading. MODULE is a dotted module name (found from the current directory too, as `python -m` finds it) or a
  path to a .py file; FACTORY a callable taking no arguments that returns an nn.Module, or an attribute that is one
  (dotted: `zoo.lenet`). An error of the user's code (an import or a factory that raises) is one line naming
  MODULE:FACTORY and the exception (`exception_text`). `--weights` loads a state_dict (torch.load with
  weights_only=True: no pickled code runs) with strict key checking. The model's weights must be float32 or
  float64 (`model_dtype`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from xfw_harness.core.frameworks import TORCH_DTYPE_NAMES, torch

PORTED_DTYPES = ("float32", "float64")  # the models `port` takes: their weights' dtype (TORCH_DTYPE_NAMES)


class PortError(Exception):
    """The model cannot be ported as asked (not found, unsupported layers, a bad state_dict); says where."""


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
        raise PortError(f"{spec}: {factory_name}() cannot be called without arguments ({e}); xfw-harness port calls "
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
    # Found as `python -m` and pytest find a module: from the current directory too. The `xfw-harness` script's own
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
