"""Capturing a PyTorch model's forward as a graph, for `xfw-harness port`: `capture` traces it with torch.fx and runs
the traced graph once on the case's input, recording every node's value.

Why torch.fx (symbolic tracing) and not torch.export: fx keeps a module call as one node named by its module path
(`layer1.0.conv1`), which is what a block reads (`Block.params_from_torch`), and keeps the model's own functions
(`torch.cat`, `x.mean`, `+`) as they were written; torch.export lowers everything to ATen operators (a BatchNorm2d
becomes `_native_batch_norm_legit_no_training`), which would have to be regrouped into modules again. Modules that a
block reads, and any other module of torch.nn, are leaves of the trace (their insides are not traced).

A module called several times (a shared ReLU) is several nodes. Nodes that compute nothing are aliases of their
input (nn.Identity is never a node; `x.contiguous()`, `F.dropout(training=False)`); nodes that are shape arithmetic
(`x.size(0)`, used by `x.view(x.size(0), -1)`) are metadata: what consumes them is read with its real shapes.

`CapturedNode` is one node as the translation (xfw_harness.tools.port.translate) reads it: what it calls, its tensor
inputs (other nodes), its other arguments, its value on the case's input and where it is in the model (module path,
source line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xfw_harness.blocks.torch_calls import IDENTITY_METHODS
from xfw_harness.core.frameworks import to_numpy, torch
from xfw_harness.tools.port.model import PortError, exception_text

fx = torch.fx
HARNESS_DIR = str(Path(__file__).resolve().parents[2])  # the harness package's folder

@dataclass
class CapturedNode:
    """One node of the traced forward: a module call, a function or method call, the input or the output."""

    name: str  # fx's unique name: "layer1_0_conv1", "add_1"
    op: str  # fx's opcode: placeholder, call_module, call_function, call_method, get_attr, output
    target: Any  # the module path, the function, or the method name
    inputs: list[str]  # the names of the tensor nodes it reads, in order
    args: tuple  # its positional arguments with a NodeRef where a node stands (a list for cat's list of tensors)
    kwargs: dict[str, Any]
    module: Any = None  # call_module: the module
    value: Any = None  # its value on the case's input: a NumPy array for a tensor, else the Python value
    source: str = ""  # "models.py:42" where the call is written, when fx recorded it
    alias_of: str | None = None  # a node that computes nothing: the node it passes on
    calls: int = 1  # call_module: which call of this module it is (a shared module: 1, 2, ...)

    @property
    def is_tensor(self) -> bool:
        return isinstance(self.value, np.ndarray)

    @property
    def where(self) -> str:
        """Its place in the model: the module path, or the function (`cat()`) or method (`.view()`) called."""
        if self.op == "call_module":
            return str(self.target)
        return f".{self.target}()" if self.op == "call_method" else f"{getattr(self.target, '__name__', self.target)}()"

    def at(self, line: str) -> str:
        """A message line about the node, its source line appended: `... (models.py:42)`."""
        return f"{line} ({self.source})" if self.source else line

    @property
    def type_name(self) -> str:
        return self.where if self.module is None else _class_name(self.module)


def _class_name(module: Any) -> str:
    """`torch.nn.Conv2d` for PyTorch's own classes, `package.module.Class` for others."""
    cls = type(module)
    return f"torch.nn.{cls.__name__}" if getattr(torch.nn, cls.__name__, None) is cls else \
        f"{cls.__module__}.{cls.__qualname__}"


@dataclass
class Captured:
    """The traced model: its nodes in the order they run, the name of its input node and its output nodes."""

    nodes: list[CapturedNode]
    input: str
    outputs: list[str] = field(default_factory=list)
    output_structure: str = "tensor"  # "tensor", or what else the forward returned ("a dict", "a tuple")

    def by_name(self) -> dict[str, CapturedNode]:
        return {node.name: node for node in self.nodes}


class _Tracer(fx.Tracer):
    """fx's tracer with the modules blocks read, and every module of torch.nn, kept whole (leaves)."""

    def __init__(self, read_types: set[str]) -> None:
        super().__init__()
        self.read_types = read_types
        self.record_stack_traces = True

    def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
        if type(m).__name__ in self.read_types:  # a class a block reads (by name, as the blocks match it)
            return True
        # A subclass of one of torch.nn's classes that a block reads: kept whole and named as such (its forward may
        # differ), not traced into.
        if any(c.__name__ in self.read_types and c.__module__.startswith("torch.nn") for c in type(m).__mro__[1:]):
            return True
        return super().is_leaf_module(m, qualname)


def trace(model: torch.nn.Module, read_types: set[str]) -> fx.GraphModule:
    """The model's forward as an fx graph; PortError saying why when it cannot be traced."""
    tracer = _Tracer(read_types)
    try:
        graph = tracer.trace(model)
    except Exception as e:  # noqa: BLE001 - data-dependent control flow and the like, in the user's code
        raise PortError(f"the model's forward cannot be traced by torch.fx: {exception_text(e)} (control flow that "
                        "depends on tensor values, or a call fx cannot follow)") from None
    return fx.GraphModule(tracer.root, graph)


def _source(node: fx.Node) -> str:
    """`file.py:line` of the innermost frame fx recorded for the node (where the call is written)."""
    # fx's own frames (proxy.py) are innermost, the harness's outermost: the user's call is between them.
    frames = [f for f in re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or "")
              if "/torch/" not in f[0] and not f[0].startswith(HARNESS_DIR)]
    if not frames:
        return ""
    path, line = frames[-1]
    return f"{path.rsplit('/', 1)[-1]}:{line}"


def _tensor_nodes(value: Any) -> list[fx.Node]:
    if isinstance(value, fx.Node):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _tensor_nodes(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _tensor_nodes(v)]
    return []


@dataclass(frozen=True)
class NodeRef:
    """Where another node stands among a call's arguments (the translation puts None or a parameter's value there)."""

    name: str


def _blank(value: Any) -> Any:
    """An argument with a NodeRef where a node stands (lists kept as lists: cat's tensors)."""
    if isinstance(value, fx.Node):
        return NodeRef(value.name)
    if isinstance(value, (list, tuple)):
        return type(value)(_blank(v) for v in value)
    return value


def _recorded(value: Any) -> Any:
    """What is kept of a node's value: a copy of a tensor (an in-place module later overwrites the tensor itself)."""
    if isinstance(value, torch.Tensor):
        return to_numpy(value.detach()).copy()
    return value


def capture(model: torch.nn.Module, x: np.ndarray, read_types: set[str]) -> Captured:
    """Trace the model (kept in the mode it is in) and run the trace once on `x`, recording each node's value."""
    graph_module = trace(model, read_types)
    modules = dict(graph_module.named_modules())
    values: dict[fx.Node, Any] = {}
    nodes: list[CapturedNode] = []
    calls: dict[str, int] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            values[n] = _recorded(out)
            return out

    try:
        with torch.no_grad():
            result = Recorder(graph_module).run(torch.from_numpy(x.copy()))
    except Exception as e:  # noqa: BLE001 - the user's forward refused the input
        failed = next((n for n in graph_module.graph.nodes if n not in values and n.op != "placeholder"), None)
        at = f" in {failed.target if failed is not None and failed.op == 'call_module' else failed}" if failed else ""
        src = f" ({_source(failed)})" if failed is not None and _source(failed) else ""
        # Modules no block reads are named too: one of them most likely made the forward fail (an LSTM's tuple).
        unread = [f"{n.target}: {_class_name(modules[n.target])} has no block" for n in graph_module.graph.nodes
                  if n.op == "call_module" and type(modules[n.target]).__name__ not in read_types]
        raise PortError("\n".join([*unread, f"the model refused an input of shape {list(x.shape)}{at}{src}: "
                                   f"{exception_text(e)} (give --input-shape N,C,H,W as the model expects)"])) from None
    placeholder = ""
    captured_outputs: list[str] = []
    structure = "tensor"
    for n in graph_module.graph.nodes:
        if n.op == "placeholder":
            if placeholder:
                raise PortError(f"the model's forward takes several inputs ({placeholder}, {n.name}, ...); the "
                                "harness ports models of one input")
            placeholder = n.name
        if n.op == "output":
            out = n.args[0]
            if isinstance(result, dict):
                structure = f"a dict (keys {', '.join(map(str, result))})"
            elif not isinstance(result, torch.Tensor):
                structure = f"a {type(result).__name__}"
            captured_outputs = [m.name for m in _tensor_nodes(out)]
            continue
        node = CapturedNode(n.name, n.op, n.target, [m.name for m in _tensor_nodes((n.args, n.kwargs))],
                            _blank(n.args), {k: _blank(v) for k, v in n.kwargs.items()}, value=values.get(n),
                            source=_source(n))
        if n.op == "call_module":
            node.module = modules[n.target]
            calls[n.target] = calls.get(n.target, 0) + 1
            node.calls = calls[n.target]
            if isinstance(node.module, torch.nn.Identity):
                node.alias_of = node.inputs[0]
        elif n.op == "call_method" and n.target in IDENTITY_METHODS:
            node.alias_of = node.inputs[0]
        nodes.append(node)
    return Captured(nodes, placeholder, captured_outputs, structure)
