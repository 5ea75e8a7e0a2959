"""`harness port MODULE:FACTORY`: a user's PyTorch model in, a verified case and the equivalent Keras model out.

1. The model. MODULE is a dotted module name (found from the current directory too, as `python -m` finds it) or a
   path to a .py file; FACTORY a callable taking no arguments that returns an nn.Module, or an attribute that is
   one (dotted: `zoo.lenet`). An error of the user's code (an import or a factory that raises) is one line naming
   MODULE:FACTORY and the exception, exit status 2. `--weights` loads a state_dict (torch.load with
   weights_only=True: no pickled code runs) with strict key checking.
2. Its layers. The model is walked down to its leaf modules: nn.Sequential containers are flattened, and any other
   container is taken as a chain of its leaves *in the order its forward calls them*, which the probe run (below)
   records with forward pre-hooks (a copy of each input, taken before an in-place module overwrites it). Each leaf
   must be read by a registered block: the blocks declare the PyTorch classes they read (`torch_types`, matched by
   class name as the blocks themselves check) and translate a module into case params
   (`params_from_torch(module, in_shape)`, given the leaf's real input shape from the probe run); adaptive pooling
   to a divisor of its input is the window pooling it equals (`adaptive_as_window`). Every leaf that cannot be
   ported is named with its place in the model, all of them at once: without a block (`features.3: torch.nn.LSTM
   has no block`) or refused by its block (`has no exact translation`). nn.Identity computes nothing and is left
   out.
3. The case. DIR/<name>.yaml: a sequential of those layers with their params, each layer's weights in
   DIR/weights/ as .npz in PyTorch's layout under the block's `weight_names`, the input shape, and
   `check: [forward, backward]`. It is an ordinary case: `harness run DIR` and `harness show` work on it.
4. Two verdicts, both needed:
   - the case through the same loader and runner as every case (harness.cases.loader.load_file, harness.engine.run.run_point):
     PyTorch against Keras, forward and gradients; a failed network says where it first diverges
     (harness.engine.localize);
   - the case describes the model: the model itself, run on the case's input (the probe run), against the
     runner's PyTorch modules built from the case (harness.engine.run.build_torch / forward_torch), leaf by leaf. A
     leaf whose input differs from the case's input to that layer means the model does something between its
     modules that the case does not (a functional call in forward, a skip connection); a leaf whose output
     differs means the module computes something its class's block does not (a subclass with its own forward).
     The first such place is named. Without this check a model that is not what its modules say would pass.
   The case is written in every outcome, so that it can be read, fixed and rerun; an earlier run's <name>.keras
   and weights/NN_*.npz are removed first.
5. On success: the Keras model, keras.Sequential of the runner's own Keras layers (the transferred weights) behind
   a channels-last keras.Input, saved as DIR/<name>.keras (under a temporary name, moved into place once reloaded:
   a failed save leaves no partial file and is exit status 1); it must give the same output.
   Harness layers in it that Keras cannot find by itself are listed with the load instructions
   (`keras_custom_objects`), and a NOTE says where its output is not laid out as PyTorch's (`output_note`: a
   flatten's (H, W, C) feature order, a channels-last tensor).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness.blocks import Block, all_blocks
from harness.cases import InputSpec, Point, RefusedPoint, load_file
from harness.core.compare import compare
from harness.core.errors import CaseError, Refusal
from harness.core.frameworks import TORCH_DTYPE_NAMES, keras, to_numpy, torch
from harness.core.layout import Layout, flatten_permutation, shape_to_channels_last
from harness.core.tolerance import tolerance_for
from harness.core.verdicts import Verdict, VerdictKind
from harness.engine import StageError, build_keras, build_torch, forward_keras, forward_torch, result_lines, run_point

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


@dataclass
class Ported:
    """What `port` made and found: the case, its verdicts, and the Keras model where it passed."""

    case_path: Path
    name: str
    input_shape: tuple[int, ...]  # channels-first, batch included
    leaves: list[Leaf]
    blocks: list[str]
    result: Any = None  # the runner's Result of the case
    model_verdicts: list[Verdict] = field(default_factory=list)  # the model itself vs the case's PyTorch modules
    diverged: str | None = None  # where the model first differs from the case, when it does
    keras_path: Path | None = None
    keras_error: str | None = None  # why the verified model could not be saved as DIR/<name>.keras
    custom_objects: dict[str, type] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    output_shape: tuple[int, ...] = ()  # the model's, channels-first
    output_layout: Layout | None = None  # how the Keras model's output maps onto it

    @property
    def passed(self) -> bool:
        return (self.result is not None and self.result.status == "passed"
                and all(v.passed for v in self.model_verdicts) and self.keras_error is None)


# --- the model -------------------------------------------------------------------------------------------------

def load_model(spec: str) -> Any:
    """The nn.Module that `MODULE:FACTORY` names (see the module doc)."""
    if ":" not in spec:
        raise PortError(f"{spec!r}: expected MODULE:FACTORY, e.g. my_models.py:make_lenet or zoo.models:lenet")
    module_name, factory_name = spec.rsplit(":", 1)
    if not module_name or not factory_name:
        raise PortError(f"{spec!r}: expected MODULE:FACTORY, e.g. my_models.py:make_lenet or zoo.models:lenet")
    module = _import(module_name, spec)
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


def _import(name: str, spec: str) -> Any:
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


def no_block(leaf: Leaf, by_type: dict[str, list[Block]]) -> str | None:
    """A line naming the leaf and its place in the model when no block reads its class; None when one does."""
    cls = type(leaf.module)
    if cls.__name__ in by_type:
        return None
    base = next((c for c in cls.__mro__[1:] if c.__module__.startswith("torch.nn") and c.__name__ in by_type), None)
    why = (f" (it subclasses torch.nn.{base.__name__}, but its forward may differ: only the class itself is read)"
           if base is not None else "")
    return f"{leaf.where}: {leaf.type_name} has no block{why}"


# --- from modules to blocks ---------------------------------------------------------------------------------------

def readers() -> dict[str, list[Block]]:
    """Each PyTorch class name that a block reads (`torch_types`), and the blocks that read it."""
    by_type: dict[str, list[Block]] = {}
    for block in all_blocks().values():
        for name in block.torch_types:
            by_type.setdefault(name, []).append(block)
    return by_type


def _supported_text(by_type: dict[str, list[Block]]) -> str:
    return ", ".join(sorted(by_type))


def block_for(leaf: Leaf, in_shape: tuple[int, ...], by_type: dict[str, list[Block]]) -> tuple[Block, dict]:
    """The block that reads the leaf, and its case params; PortError naming the leaf's place otherwise."""
    refusals = []
    for block in by_type[type(leaf.module).__name__]:  # `unsupported` has named the leaves no block reads
        try:
            params = block.params_from_torch(leaf.module, in_shape)
        except (Refusal, CaseError) as e:
            refusals.append(f"{block.name}: {e.message}")
            continue
        except NotImplementedError as e:
            refusals.append(f"{block.name}: {e}")
            continue
        return block, params
    window = WINDOW_POOLING_OF_ADAPTIVE.get(type(leaf.module).__name__)
    if window is not None:
        try:
            return all_blocks()[window], adaptive_as_window(leaf.module, in_shape)
        except Refusal as e:
            refusals.append(f"{window}: {e.message}")
    raise PortError(f"{leaf.where}: {leaf.type_name} has no exact translation ({'; '.join(refusals)})")


# Adaptive pooling whose output size divides its input's is window pooling: PyTorch's adaptive window i spans
# [floor(i*H/k), ceil((i+1)*H/k)), which is [i*H/k, (i+1)*H/k) when k divides H: window = stride = H/k, no padding.
WINDOW_POOLING_OF_ADAPTIVE = {"AdaptiveAvgPool2d": "avg_pool2d", "AdaptiveMaxPool2d": "max_pool2d"}


def adaptive_as_window(module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
    """The window pooling params equal to an adaptive pooling on an input of `in_shape`; Refusal where none is."""
    name = type(module).__name__
    if getattr(module, "return_indices", False):
        raise Refusal(f"{name}.return_indices=True: Keras pooling returns no indices", field="return_indices")
    if len(in_shape) != 4:
        raise Refusal(f"{name} on a rank-{len(in_shape)} input {list(in_shape)}: the window pooling blocks take "
                      "[N, C, H, W]")
    size = module.output_size
    wanted = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    spatial = in_shape[2:]
    out = tuple(n if k is None else k for n, k in zip(spatial, wanted))  # None: that side keeps its size
    if any(n % k for n, k in zip(spatial, out)):
        raise Refusal(f"the input's {spatial[0]}x{spatial[1]} is not a multiple of output_size {out[0]}x{out[1]}: "
                      "the adaptive windows differ in size or overlap", field="output_size")
    window = tuple(n // k for n, k in zip(spatial, out))
    return {"pool_size": window[0] if window[0] == window[1] else list(window)}


def _plain(value: Any) -> Any:
    """A params value as YAML writes it (tuples as lists, NumPy scalars as numbers)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 30, sort_keys=False).strip()


def case_name(spec: str) -> str:
    name = re.sub(r"[^\w.\-]", "_", spec.rsplit(":", 1)[-1].split(".")[-1]) or "ported"
    return name


EARLIER_WEIGHTS = re.compile(r"\d+_\w+\.npz")  # weights/NN_block.npz, the files write_case writes


def clear_earlier_run(out: Path, name: str) -> None:
    """Remove what an earlier port into DIR left that this run would not overwrite: DIR/<name>.keras, which a
    failed port must not leave for a script to pick up, and every weights/NN_block.npz (a model with fewer layers
    writes fewer). Other files are the user's and stay."""
    for path in (out / f"{name}.keras", _partial_keras(out, name)):
        path.unlink(missing_ok=True)
    if (out / "weights").is_dir():
        for path in (out / "weights").iterdir():
            if path.is_file() and EARLIER_WEIGHTS.fullmatch(path.name):
                path.unlink()


def write_case(out: Path, name: str, spec: str, leaves: list[Leaf], mapped: list[tuple[Block, dict]],
               shape: tuple[int, ...], dtype: str) -> Path:
    """DIR/<name>.yaml and DIR/weights/*.npz (PyTorch layout, the block's weight_names); the case's path."""
    (out / "weights").mkdir(parents=True, exist_ok=True)
    lines = [f"# Written by `harness port {spec}`: each layer is the module named in its comment, its weights",
             "# PyTorch-layout arrays in weights/. Run it again with `harness run` on this file.",
             f"- name: {name}",
             f"  description: {json.dumps(f'{spec}, ported by harness port')}",  # a JSON string is YAML too
             "  block: sequential",
             "  layers:"]
    for i, (leaf, (block, params)) in enumerate(zip(leaves, mapped)):
        item: dict[str, Any] = {"block": block.name}
        if params:
            item["params"] = _plain(params)
        arrays = {n: to_numpy(getattr(leaf.module, n)) for n in block.weight_names
                  if isinstance(getattr(leaf.module, n, None), torch.Tensor)}
        if arrays:
            file = f"weights/{i:02d}_{block.name}.npz"
            np.savez(out / file, **arrays)
            item["weights"] = {"path": file}
        lines.append(f"    - {_flow(item)}  # {leaf.where}: {leaf.type_name}")
    lines += [f"  input: {_flow({'shape': list(shape), 'dtype': dtype, 'seed': 0})}",
              "  check: [forward, backward]", ""]
    path = out / f"{name}.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --- the model itself against the case ---------------------------------------------------------------------------

def model_verdicts(point: Point, leaves: list[Leaf], model_out: np.ndarray, x: np.ndarray
                   ) -> tuple[list[Verdict], str | None]:
    """The model's own outputs (the probe run) against the runner's PyTorch modules built from the case, layer by
    layer and at the end; and the first place where they differ, in words (None where they agree)."""
    for i, (leaf, layer, site) in enumerate(zip(leaves, point.layers, point.sites)):
        given = tuple(leaf.inputs[0].shape)
        if given != site.in_shape:
            where = "the input" if i == 0 else f"the output of layers[{i - 1}] ({point.layers[i - 1].block.name})"
            message = (f"layers[{i}] ({layer.block.name}, the model's {leaf.where}): the model feeds it shape "
                       f"{list(given)}, but the case gives it {where}, shape {list(site.in_shape)}: the model's "
                       "forward does something between its modules (a functional call such as torch.flatten or "
                       "x.view, a skip connection); make it a module (nn.Flatten, ...) to port it")
            return [Verdict(f"model input of layers[{i}]", False, "chain", message, {},
                            kind=VerdictKind.MODEL)], message
    try:
        modules = build_torch(point, "cpu")
        outs = forward_torch(point, modules, x, "cpu")
    except (StageError, CaseError) as e:
        message = f"the case's PyTorch modules cannot run: {e}"
        return [Verdict("model vs case output", False, "error", message, {}, kind=VerdictKind.MODEL)], message
    inputs = [x, *outs[:-1]]
    verdicts, first = [], None
    chain_k = 1  # the longest reduction up to a layer: the differences the chain carries to its input
    for i, (leaf, layer, site) in enumerate(zip(leaves, point.layers, point.sites)):
        label = f"layers[{i}] ({layer.block.name}, the model's {leaf.where})"
        k = layer.block.reduction_length(site)
        fed = compare(leaf.inputs[0], inputs[i], _tolerance(point, inputs[i], chain_k), f"model input of {label}",
                      ("model", "case"), kind=VerdictKind.MODEL)
        chain_k = max(chain_k, k)
        if not fed.passed:  # the same shape, other values: something between the modules changed them
            verdicts.append(fed)
            first = first or (f"{label}: the model feeds this module other values than the case's layers before it "
                              "give: its forward does more than call its modules in a chain (a functional call, a "
                              f"skip connection): {fed.message}")
            break
        # The module itself on the case's input to the layer: its own difference, none carried from before. On a
        # copy: an in-place module would overwrite the case's arrays (x is the Keras model's check input too).
        with torch.no_grad():
            own = to_numpy(leaf.module(torch.from_numpy(inputs[i].copy())))
        verdict = compare(own, outs[i], _tolerance(point, outs[i], k), f"model vs case at {label}", ("model", "case"),
                          kind=VerdictKind.MODEL)
        verdicts.append(verdict)
        if not verdict.passed:
            first = first or (f"{label}: the module computes something else than its block {layer.block.name} with "
                              f"the params written: {verdict.message}")
            break
    k = max(layer.block.reduction_length(site) for layer, site in zip(point.layers, point.sites))
    end = compare(model_out, outs[-1], _tolerance(point, outs[-1], k), "model vs case output", ("model", "case"),
                  kind=VerdictKind.MODEL)
    verdicts.append(end)
    if not end.passed and first is None:
        first = f"the model's output: {end.message}"
    return verdicts, first


def _tolerance(point: Point, expected: np.ndarray, k: int) -> Any:
    return tolerance_for(point.input.dtype, k, expected, point.tolerance)


# --- the Keras model -----------------------------------------------------------------------------------------------

def keras_custom_objects(model: Any) -> dict[str, type]:
    """The harness's own Keras layer classes inside `model`, by class name: load_model's `custom_objects`. All of
    them, registered ones too: registration (keras.saving.register_keras_serializable) only happens when their
    module is imported, which a fresh Python that loads the file has not done; naming them imports them."""
    found: dict[str, type] = {}

    def walk(layer: Any) -> None:
        cls = type(layer)
        if cls.__module__.startswith("harness."):
            found[cls.__name__] = cls
        for sub in getattr(layer, "layers", None) or []:
            walk(sub)
        for name in getattr(cls, "layer_lists", ()):  # a harness composite (harness/blocks/composite.py)
            for sub in getattr(layer, name):
                walk(sub)

    for layer in model.layers:
        walk(layer)
    return found


def save_keras(point: Point, out: Path, name: str, x: np.ndarray) -> tuple[Path, dict[str, type]]:
    """The runner's Keras layers of the point (PyTorch's weights transferred) as one keras.Sequential behind a
    channels-last input, saved as DIR/<name>.keras; reloaded at once, it must give the same output."""
    modules = build_torch(point, "cpu")
    layers = build_keras(point, modules, "cpu")
    expected = forward_keras(point, layers, x, "cpu")[-1]
    model = keras.Sequential([keras.Input(shape=shape_to_channels_last(point.input.shape)[1:],
                                          dtype=point.input.dtype), *layers], name=name)
    custom = keras_custom_objects(model)
    path, partial = out / f"{name}.keras", _partial_keras(out, name)
    # Saved under another name in the same folder and moved into place (os.replace: atomic) once it has reloaded
    # and given the same output: a failed or interrupted save never leaves a partial DIR/<name>.keras.
    try:
        model.save(partial)
        reloaded = keras.models.load_model(partial, custom_objects=custom)
        got = reloaded(point.sites[0].layout.to_keras(x), training=False)
        got = point.layers[-1].block.output_layout(point.sites[-1]).to_channels_first(to_numpy(got))
        if not np.array_equal(got, expected):
            raise PortError(f"reloaded, it gives another output than the Keras layers it was saved from (max abs "
                            f"difference {float(np.max(np.abs(got - expected))):.3g})")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path, custom


def _partial_keras(out: Path, name: str) -> Path:
    return out / f".{name}.partial.keras"  # Keras saves only to a name ending in .keras


def load_instructions(ported: Ported) -> list[str]:
    """How to load the saved model, as Python lines."""
    lines = ["import keras"]
    if ported.custom_objects:
        modules = sorted({cls.__module__ for cls in ported.custom_objects.values()})
        lines += [f"import {m}" for m in modules]
        objects = ", ".join(f'"{n}": {c.__module__}.{c.__name__}' for n, c in ported.custom_objects.items())
        lines.append(f'model = keras.models.load_model("{ported.keras_path}", custom_objects={{{objects}}})')
    else:
        lines.append(f'model = keras.models.load_model("{ported.keras_path}")')
    lines.append(f"y = model(x)  # x channels-last: {_shape_text(ported)}")
    return lines


def _shape_text(ported: Ported) -> str:
    return f"shape {[None, *shape_to_channels_last(ported.input_shape)[1:]]}"


# --- the command -----------------------------------------------------------------------------------------------

def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise PortError(f"--input-shape {text!r}: expected N,C,H,W (channels-first, batch included), e.g. 2,3,32,32"
                        ) from None
    if len(shape) < 2 or min(shape) < 1:
        raise PortError(f"--input-shape {text!r}: expected at least N,C of positive integers, e.g. 2,3,32,32")
    return shape


def default_shape(leaves: list[Leaf]) -> tuple[int, ...]:
    """The input shape when --input-shape is not given: only a model that starts with nn.Linear fixes it."""
    first = leaves[0].module if leaves else None
    if isinstance(first, torch.nn.Linear):
        return 2, first.in_features
    kind = type(first).__name__ if first is not None else "nothing"
    raise PortError(f"give --input-shape N,C,H,W: the model's first layer ({kind}) does not fix its input's size")


def port(spec: str, weights: str | Path | None = None, input_shape: tuple[int, ...] | None = None,
         out: str | Path | None = None) -> Ported:
    """Port the model `spec` names (see the module doc). Raises PortError when it cannot be ported as asked."""
    model = load_model(spec)
    if weights is not None:
        load_weights(model, weights)
    model.eval()
    params = list(model.parameters()) + list(model.buffers())
    float_dtypes = {p.dtype for p in params if p.is_floating_point()} or {torch.float32}
    dtype = TORCH_DTYPE_NAMES.get(next(iter(float_dtypes)))
    if len(float_dtypes) > 1 or dtype not in PORTED_DTYPES:
        raise PortError(f"the model's weights are {', '.join(sorted(map(str, float_dtypes)))}; the harness ports "
                        "float32 or float64 models")
    leaves, notes = leaves_of(model)
    if not leaves:
        raise PortError(f"{spec}: the model has no layers")
    by_type = readers()
    leaves, mapped, shape, x, model_out = _translate(leaves, by_type, input_shape, model, dtype)
    name = case_name(spec)
    out = Path(out) if out is not None else Path("ported") / name
    clear_earlier_run(out, name)
    case_path = write_case(out, name, spec, leaves, mapped, shape, dtype)
    ported = Ported(case_path, name, shape, leaves, [block.name for block, _ in mapped], notes=notes,
                    output_shape=tuple(model_out.shape))
    entries, error = load_file(case_path)
    if error is not None or not entries or entries[0].error is not None:
        raise PortError(f"the written case does not load: {error or entries[0].error}")
    point = entries[0].points[0]
    if isinstance(point, RefusedPoint):
        raise PortError(f"the written case is refused: {point.error}")
    ported.output_layout = point.layers[-1].block.output_layout(point.sites[-1])
    ported.result = run_point(point, "cpu")
    ported.model_verdicts, ported.diverged = model_verdicts(point, leaves, model_out, x)
    if ported.passed:
        try:
            ported.keras_path, ported.custom_objects = save_keras(point, out, name, x)
        except Exception as e:  # noqa: BLE001 - Keras's serialisation or the disk: said in one line, exit 1
            why = str(e) if isinstance(e, PortError) else exception_text(e)
            ported.keras_error = f"cannot save the Keras model as {out / f'{name}.keras'}: {why}"
    return ported


def _translate(leaves: list[Leaf], by_type: dict[str, list[Block]], input_shape: tuple[int, ...] | None,
               model: Any, dtype: str
               ) -> tuple[list[Leaf], list[tuple[Block, dict]], tuple[int, ...], np.ndarray, np.ndarray]:
    """Each leaf's block and params, the leaves in the order the forward calls them; the input shape, the case's
    input and the model's output on it. Else PortError naming, in the model's order and in one run, every leaf that
    cannot be ported: those no block reads and those whose block refuses them."""
    problems = {i: line for i, leaf in enumerate(leaves) if (line := no_block(leaf, by_type)) is not None}
    # The supported classes follow the lines when a leaf has no block.
    supported = [f"supported: {_supported_text(by_type)}"] if problems else []
    try:
        shape = input_shape or default_shape(leaves)
    except PortError:
        if problems:
            raise PortError("\n".join([*problems.values(), *supported])) from None
        raise
    x = InputSpec(shape=shape, dtype=dtype, seed=0).make()  # the case's own input: `input: {shape, dtype, seed: 0}`
    # The model runs with its unsupported layers too: the others need their real input shapes to be translated.
    stopped: PortError | None = None
    try:
        model_out = probe(model, leaves, x)
    except PortError as e:
        if not problems:
            raise
        stopped = e  # most likely an unsupported layer's doing (an LSTM's tuple): said after those
    unchecked = []
    mapped: dict[int, tuple[Block, dict]] = {}
    for i, leaf in enumerate(leaves):
        if i in problems:
            continue
        if isinstance(stopped, ForwardError) and (not leaf.inputs or leaf is stopped.leaf):
            unchecked.append(leaf.where)  # not reached, or the forward failed in it
        elif len(leaf.inputs) != 1:
            problems[i] = (f"{leaf.where}: {leaf.type_name} is called {len(leaf.inputs)} times by the model's "
                           "forward; a layer of a chain is called once")
        elif leaf.inputs[0] is None:
            problems[i] = f"{leaf.where}: {leaf.type_name} is not called with a tensor as its first argument"
        else:
            try:
                mapped[i] = block_for(leaf, tuple(leaf.inputs[0].shape), by_type)
            except PortError as e:
                problems[i] = str(e)
    if unchecked:
        at = f"in {stopped.leaf.where} ({stopped.leaf.type_name})" if stopped.leaf else "between its layers"
        problems[len(leaves)] = (f"{', '.join(unchecked)}: not checked (the model's forward failed {at}: "
                                 f"{stopped.error})")
    if problems:
        raise PortError("\n".join([*(problems[i] for i in sorted(problems)), *supported]))
    order = sorted(range(len(leaves)), key=lambda i: leaves[i].order)
    return [leaves[i] for i in order], [mapped[i] for i in order], shape, x, model_out


def report_lines(ported: Ported) -> list[str]:
    """What `harness port` prints after the run: the verdicts, where it diverged, or how to load the model."""
    lines = [f"case: {ported.case_path} ({len(ported.leaves)} layers: {' > '.join(ported.blocks)})"]
    lines += [f"note: {note}" for note in ported.notes]
    lines += result_lines(ported.result, quiet=False)
    grads = [v for v in ported.result.verdicts if v.what.startswith("grad ")]
    if grads:
        lines.append(f"       compared: the output, and the gradients of the input and of {len(grads) - 1} weights "
                     f"({sum(v.passed for v in grads)} of {len(grads)} gradients within tolerance)")
    for verdict in ported.model_verdicts:
        if not verdict.passed or verdict.what == "model vs case output":
            m = verdict.metrics
            numbers = f"  max abs {m['max_abs']:.2e}" if "max_abs" in m else ""
            lines.append(f"{'PASS' if verdict.passed else 'FAIL':5}  {verdict.what}{numbers}")
    if ported.diverged:
        lines.append(f"the model first differs from the case at {ported.diverged}")
    if ported.keras_error:
        lines.append(f"NOT PORTED: {ported.keras_error}; the case is written ({ported.case_path}) and passes")
        return lines
    if not ported.passed:
        lines.append(f"NOT PORTED: the case is written ({ported.case_path}); fix it or the model and run "
                     f"`harness run {ported.case_path}`")
        return lines
    lines.append(f"PORTED: the Keras model is {ported.keras_path} (input channels-last, {_shape_text(ported)}); "
                 "load it with:")
    lines += [f"    {line}" for line in load_instructions(ported)]
    if (note := output_note(ported)) is not None:
        lines.append(note)
    return lines


def output_note(ported: Ported) -> str | None:
    """A NOTE where the Keras model's output is not laid out as PyTorch's: features flattened in Keras's (H, W, C)
    order (a model that ends in a flatten, no dense after it), or a channels-last tensor."""
    flat = ported.output_layout.flattened_from if ported.output_layout is not None else None
    if flat is not None:
        order = flatten_permutation(flat)
        if np.array_equal(order, np.arange(order.size)):  # (C, 1, 1): both orders are the same
            return None
        return (f"NOTE: the output's features are in Keras's flatten order (H, W, C), not PyTorch's (C, H, W), of the "
                f"{list(flat)} (C, H, W) tensor they flatten; PyTorch's order is "
                f"y[:, numpy.argsort(harness.core.layout.flatten_permutation({tuple(flat)}))]")
    if len(ported.output_shape) > 2:
        keras_shape = [None, *shape_to_channels_last(ported.output_shape)[1:]]
        return (f"NOTE: the output is channels-last like the input (shape {keras_shape}); PyTorch's layout is "
                "numpy.moveaxis(y, -1, 1)")
    return None


def command(spec: str, weights: str | None, input_shape: str | None, out: str | None) -> int:
    """`harness port`: 0 when ported and verified, 1 when the verification or the save of the Keras model failed
    (the case is written), 2 when the model cannot be ported as asked (its module or factory fails too)."""
    try:
        shape = parse_shape(input_shape) if input_shape else None
        ported = port(spec, weights, shape, out)
    except (PortError, CaseError) as e:
        print(f"harness port: {e}", file=sys.stderr)
        return 2
    for line in report_lines(ported):
        print(line)
    return 0 if ported.passed else 1

