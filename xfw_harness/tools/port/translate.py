"""From the captured graph to blocks, for `xfw-harness port`: which block reads each node, and its case params.

Every node maps to a registered block or is named as what cannot be ported, all of them in one run:
- a module call: the blocks that declare its class (`torch_types`, then `torch_fallback_types`) translate it with
  `params_from_torch(module, in_shape)`, given its real input shape from the capture run;
- a function or method call that a block declares (`torch_functions`: `+`, `*`, `torch.cat`, `x.mean`): that block's
  `params_from_call`;
- a functional form of a module (`F.relu`, `torch.flatten`, `F.adaptive_avg_pool2d`, `x.view(n, -1)`): read as that
  module (FUNCTIONAL_MODULES: which call is which torch.nn module is PyTorch's fact, not a block's);
- an alias (nn.Identity, `x.contiguous()`, `F.dropout` in eval) passes its input on; shape arithmetic (`x.size(0)`)
  is metadata.
Anything else is a line naming the node's place in the model (module path and source line) and why.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xfw_harness.blocks import Block, all_blocks
from xfw_harness.blocks.torch_calls import (
    CHUNKS,
    FUNCTION_NAMES,
    FUNCTIONAL_MODULES,
    METHOD_NAMES,
    NARROW_CALL,
    RESHAPES,
    SHUFFLE_CALL,
    TRANSPOSES,
    eval_identity_position,
)
from xfw_harness.core.errors import CaseError, Refusal
from xfw_harness.core.frameworks import torch
from xfw_harness.tools.port.capture import Captured, CapturedNode, NodeRef
from xfw_harness.tools.port.model import PortError


@dataclass
class Mapped:
    """A node of the case: its name, its block and params, the names of its input nodes, and the captured node."""

    name: str
    block: Block
    params: dict[str, Any]
    inputs: list[str]
    node: CapturedNode
    arrays: dict[str, Any] = field(default_factory=dict)  # weights from the call's parameter operands (a scale)


def readers() -> dict[str, list[Block]]:
    """Each PyTorch class name that a block reads, and the blocks that read it in the order they are tried: those
    that read it as one of their `torch_types`, then those that read it only where none of those does
    (`torch_fallback_types`: an AdaptiveAvgPool2d that global pooling refuses may be window pooling)."""
    by_type: dict[str, list[Block]] = {}
    for attribute in ("torch_types", "torch_fallback_types"):
        for block in all_blocks().values():
            for name in getattr(block, attribute):
                by_type.setdefault(name, []).append(block)
    return by_type


def function_readers() -> dict[str, list[Block]]:
    """Each function name blocks read (`torch_functions`), and those blocks, tried in order (`mul`: multiply, for a
    product of tensors; scale, for a tensor times a parameter)."""
    readers: dict[str, list[Block]] = {}
    for block in all_blocks().values():
        for name in block.torch_functions:
            readers.setdefault(name, []).append(block)
    return readers


def _resolved(value: Any, constants: dict[str, Any]) -> Any:
    """A call's argument with each NodeRef replaced: a parameter's value where the node is one, else None."""
    if isinstance(value, NodeRef):
        return constants.get(value.name)
    if isinstance(value, (list, tuple)):
        return type(value)(_resolved(v, constants) for v in value)
    if isinstance(value, dict):
        return {k: _resolved(v, constants) for k, v in value.items()}
    return value


def block_for_module(module: Any, where: str, in_shape: tuple[int, ...], by_type: dict[str, list[Block]]
                     ) -> tuple[Block, dict]:
    """The block that reads the module, and its case params; PortError naming its place otherwise."""
    cls = type(module)
    if cls.__name__ not in by_type:
        base = next((c for c in cls.__mro__[1:] if c.__module__.startswith("torch.nn") and c.__name__ in by_type),
                    None)
        why = (f" (it subclasses torch.nn.{base.__name__}, but its forward may differ: only the class itself is "
               "read)" if base is not None else "")
        raise PortError(f"{where}: {_type_name(cls)} has no block{why}")
    refusals = []
    for block in by_type[cls.__name__]:
        try:
            return block, block.params_from_torch(module, in_shape)
        except (Refusal, CaseError) as e:
            refusals.append(f"{block.name}: {e.message}")
        except NotImplementedError as e:
            refusals.append(f"{block.name}: {e}")
    raise PortError(f"{where}: {_type_name(cls)} has no exact translation ({'; '.join(refusals)})")


def _type_name(cls: type) -> str:
    return f"torch.nn.{cls.__name__}" if getattr(torch.nn, cls.__name__, None) is cls else \
        f"{cls.__module__}.{cls.__qualname__}"


def translate(captured: Captured, by_type: dict[str, list[Block]]) -> list[Mapped]:
    """Each node's block, params and inputs, in the order the forward runs them. Else PortError naming, in the
    model's order and in one run, every node that cannot be ported."""
    functions = function_readers()
    nodes = captured.by_name()
    alias: dict[str, str] = {captured.input: captured.input}
    constants: dict[str, Any] = {}
    chunks: dict[str, tuple[str, int, int, tuple[int, ...]]] = {}  # a chunk: its input, pieces, dim, input shape
    shuffles: dict[str, tuple[str, int, bool]] = {}  # a channel shuffle begun: its input, groups, transposed yet
    problems: list[str] = []
    unported: set[str] = set()  # nodes named as problems, or read from one: what follows them is not named again
    mapped: list[Mapped] = []
    used_names: set[str] = set()

    def source_of(name: str) -> str:
        while name in alias and alias[name] != name:
            name = alias[name]
        return name

    for node in captured.nodes:
        if node.op == "placeholder":
            continue
        if _target_in(node, CHUNKS):  # its pieces (getitem) are read as narrows of its input
            dims = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
            source = source_of(node.inputs[0])
            chunks[node.name] = (source, int(node.args[1] if len(node.args) > 1 else node.kwargs["chunks"]),
                                 int(dims), tuple(_value(nodes, source).shape))
            continue
        if not node.is_tensor:
            if node.op == "call_module":  # a module that returns a tuple (an LSTM) is no layer of a block
                unported.add(node.name)
                try:
                    block_for_module(node.module, node.where, (), by_type)
                    problems.append(node.at(f"{node.where}: {node.type_name} returns a {type(node.value).__name__}, "
                                            "not a tensor"))
                except PortError as e:
                    problems.append(node.at(str(e)))
                continue
            # x.size(0), x.shape: shape arithmetic (a view's, an interpolation's size), fixed as the case's input
            # shape is: read as its value
            constants[node.name] = node.value
            continue
        if node.op == "get_attr":  # a parameter used directly in forward: an operand of the call that reads it
            constants[node.name] = node.value
            continue
        tensor_inputs = [n for n in node.inputs if n not in constants]
        node.args, node.kwargs = _resolved(node.args, constants), _resolved(node.kwargs, constants)
        special = _idioms(node, tensor_inputs, chunks, shuffles, source_of, nodes)
        if special == "skip":
            continue
        if special is not None:
            name, call_args, tensor_inputs = special
            node.target, node.op, node.args, node.kwargs = name, "call_method", call_args, {}
        if node.alias_of is not None:
            alias[node.name] = node.alias_of
            continue
        given = [nodes[n].value if n in nodes else None for n in tensor_inputs]
        if not all(isinstance(v, np.ndarray) for v in given):  # a piece of a tuple (attention's output, weights)
            unported.add(node.name)
            if not any(source_of(n) in unported for n in tensor_inputs):  # else its producer is named already
                problems.append(node.at(f"{node.where}: reads a {type(given[0]).__name__} that is not a tensor (from "
                                        f"{tensor_inputs[0]})"))
            continue
        in_shapes = [tuple(v.shape) for v in given]
        try:
            block, params, tensor_inputs = _read(node, tensor_inputs, in_shapes, by_type, functions)
        except _Alias:
            alias[node.name] = tensor_inputs[0]
            continue
        except PortError as e:
            problems.append(node.at(str(e)))
            unported.add(node.name)
            continue
        name = _case_name(node, used_names)
        arrays = block.weights_from_call(node.args) if node.op != "call_module" else {}
        mapped.append(Mapped(name, block, params, [source_of(n) for n in tensor_inputs], node, arrays))
    problems += [nodes[name].at(f"{nodes[name].where}: a view to (N, groups, C/groups, H, W) that no transpose(1, 2) "
                                "and view back complete (a channel shuffle) has no block") for name in shuffles]
    if len(captured.outputs) != 1:
        problems.append(f"the model returns {captured.output_structure} of {len(captured.outputs)} tensors; the "
                        "harness ports models with one tensor output")
    elif mapped and not problems and source_of(captured.outputs[0]) != mapped[-1].node.name:
        problems.append(f"the model's output is {captured.outputs[0]}, not the last node computed "
                        f"({mapped[-1].node.name}): a graph's output is its last node")
    if problems:
        raise PortError("\n".join(_counted(problems)))
    if not mapped:
        raise PortError("the model computes nothing: its output is its input")
    by_node = {m.node.name: m.name for m in mapped}
    for m in mapped:
        m.inputs = ["input" if n == captured.input else by_node[n] for n in m.inputs]
    return mapped


def _target_in(node: CapturedNode, targets: tuple) -> bool:
    """Whether the node calls one of `targets`: functions (by identity), or methods (by name)."""
    if node.op == "call_function":
        return any(node.target is t for t in targets if not isinstance(t, str))
    return node.op == "call_method" and node.target in [t for t in targets if isinstance(t, str)]


def _value(nodes: dict[str, CapturedNode], name: str) -> Any:
    return nodes[name].value if name in nodes else None


def _idioms(node: CapturedNode, inputs: list[str], chunks: dict, shuffles: dict, source_of: Any,
            nodes: dict[str, CapturedNode]) -> Any:
    """PyTorch idioms read as one call: a piece of a chunk (getitem) as `narrow`; torchvision's channel shuffle
    (view to (N, g, C/g, H, W), transpose(1, 2), view back) as `channel_shuffle`. Returns (call name, args, tensor
    inputs) to read the node as, "skip" for a step inside an idiom, or None."""
    if node.op == "call_function" and node.target is operator.getitem and node.inputs and node.inputs[0] in chunks:
        source, pieces, dim, shape = chunks[node.inputs[0]]
        size = shape[dim]
        step = -(-size // pieces)
        start = int(node.args[1]) * step
        return NARROW_CALL, (None, dim, start, min(step, size - start)), [source]
    if not inputs:
        return None
    source = source_of(inputs[0])
    if _target_in(node, RESHAPES):
        before, after = tuple(_value(nodes, source).shape), tuple(node.value.shape)
        if len(before) == 4 and len(after) == 5 and after[0] == before[0] and after[3:] == before[2:] \
                and after[1] * after[2] == before[1]:
            shuffles[node.name] = (source, after[1], False)
            return "skip"
        if source in shuffles and shuffles[source][2] and after == tuple(
                _value(nodes, shuffles[source][0]).shape):
            origin, groups, _ = shuffles.pop(source)
            return SHUFFLE_CALL, (None, groups), [origin]
    if _target_in(node, TRANSPOSES) and source in shuffles and not shuffles[source][2]:
        dims = sorted(int(d) % 5 for d in node.args[1:3])
        if dims == [1, 2]:
            origin, groups, _ = shuffles.pop(source)
            shuffles[node.name] = (origin, groups, True)
            return "skip"
    return None


def _counted(lines: list[str]) -> list[str]:
    """Each distinct line once, in order, with how many nodes it stands for (EfficientNet's 16 stochastic-depth
    calls at one source line are one line, `(16 nodes)`)."""
    counts = Counter(lines)
    return [f"{line} ({counts[line]} nodes)" if counts[line] > 1 else line for line in dict.fromkeys(lines)]


class _Alias(Exception):
    """The node passes its input on unchanged (a dropout call in eval mode)."""


def _read(node: CapturedNode, inputs: list[str], in_shapes: list[Any], by_type: dict[str, list[Block]],
          functions: dict[str, list[Block]]) -> tuple[Block, dict, list[str]]:
    """The block that reads the node, its params and its tensor inputs; PortError naming why none does, _Alias for a
    call that passes its input on."""
    where = node.where
    if node.op == "call_module":
        if len(inputs) != 1:
            raise PortError(f"{where}: {node.type_name} is called with {len(inputs)} tensors; a module of a block "
                            "takes one")
        block, params = block_for_module(node.module, where, in_shapes[0], by_type)
        return block, params, inputs
    target = node.target  # a function object for call_function, the method's name for call_method
    name = (FUNCTION_NAMES.get(target) if node.op == "call_function" else METHOD_NAMES.get(target))
    readers = functions.get(name, []) if name is not None else []
    if readers and len(inputs) == 1 and readers[0].arity is None and node.args \
            and isinstance(node.args[0], (list, tuple)):
        raise _Alias  # a join of one tensor (DenseNet's first torch.cat of a one-tensor list): that tensor
    refusals = []
    for block in readers:
        try:
            return block, block.params_from_call(name, node.args, node.kwargs, in_shapes), inputs
        except (Refusal, CaseError) as e:
            refusals.append(f"{block.name}: {e.message}")
    if refusals:
        raise PortError(f"{where}: no exact translation ({'; '.join(refusals)})")
    if (position := eval_identity_position(target)) is not None:
        training = node.kwargs.get("training", node.args[position] if len(node.args) > position else True)
        if not training:
            raise _Alias
        raise PortError(f"{where}: a call that is random in training mode, with training=True (the port runs the "
                        "model in eval mode)")
    if target in RESHAPES:
        out = tuple(node.value.shape)
        if len(in_shapes[0]) > 2 and out == (in_shapes[0][0], math.prod(in_shapes[0][1:])):
            module = torch.nn.Flatten()
        else:
            raise PortError(f"{where}: a reshape from {list(in_shapes[0])} to {list(out)} has no block (only "
                            "flattening each sample, x.view(x.size(0), -1), is read)")
    elif target in FUNCTIONAL_MODULES:
        try:
            module = FUNCTIONAL_MODULES[target](*node.args, **node.kwargs)
        except TypeError as e:
            raise PortError(f"{where}: its arguments cannot be read ({e})") from None
    else:
        shown = getattr(target, "__name__", target)
        raise PortError(f"{where}: {shown} has no block")
    if len(inputs) != 1:
        raise PortError(f"{where}: called with {len(inputs)} tensors where its module takes one")
    block, params = block_for_module(module, where, in_shapes[0], by_type)
    return block, params, inputs


def _case_name(node: CapturedNode, used: set[str]) -> str:
    """The node's name in the case: its module path (a shared module's later calls: `.call2`, ...) or fx's name."""
    base = node.target if node.op == "call_module" else node.name
    name = base if node.calls == 1 else f"{base}.call{node.calls}"
    k = 2
    while name in used or name == "input":
        name, k = f"{base}.{k}", k + 1
    used.add(name)
    return name
