"""From the captured graph to blocks, for `harness port`: which block reads each node, and its case params.

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
from dataclasses import dataclass
from typing import Any

from harness.blocks import Block, all_blocks
from harness.blocks.torch_calls import (
    FUNCTION_NAMES,
    FUNCTIONAL_MODULES,
    METHOD_NAMES,
    RESHAPES,
    eval_identity_position,
)
from harness.core.errors import CaseError, Refusal
from harness.core.frameworks import torch
from harness.tools.port.capture import Captured, CapturedNode
from harness.tools.port.model import PortError


@dataclass
class Mapped:
    """A node of the case: its name, its block and params, the names of its input nodes, and the captured node."""

    name: str
    block: Block
    params: dict[str, Any]
    inputs: list[str]
    node: CapturedNode


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


def function_readers() -> dict[str, Block]:
    """Each function name a block reads (`torch_functions`), and that block."""
    return {name: block for block in all_blocks().values() for name in block.torch_functions}


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


def _call_target(node: CapturedNode) -> Any:
    return node.target  # a function object for call_function, the method's name for call_method


def translate(captured: Captured, by_type: dict[str, list[Block]]) -> list[Mapped]:
    """Each node's block, params and inputs, in the order the forward runs them. Else PortError naming, in the
    model's order and in one run, every node that cannot be ported."""
    functions = function_readers()
    nodes = captured.by_name()
    alias: dict[str, str] = {captured.input: captured.input}
    meta: set[str] = set()
    problems: list[str] = []
    mapped: list[Mapped] = []
    used_names: set[str] = set()

    def source_of(name: str) -> str:
        while name in alias and alias[name] != name:
            name = alias[name]
        return name

    for node in captured.nodes:
        if node.op == "placeholder":
            continue
        if not node.is_tensor:
            if node.op == "call_module":  # a module that returns a tuple (an LSTM) is no layer of a block
                try:
                    block_for_module(node.module, node.where, (), by_type)
                    problems.append(node.at(f"{node.where}: {node.type_name} returns a {type(node.value).__name__}, "
                                            "not a tensor"))
                except PortError as e:
                    problems.append(node.at(str(e)))
                continue
            meta.add(node.name)  # x.size(0), x.shape: shape arithmetic for a view
            continue
        tensor_inputs = [n for n in node.inputs if n not in meta]
        if node.alias_of is not None:
            alias[node.name] = node.alias_of
            continue
        in_shapes = [tuple(nodes[n].value.shape) if n in nodes else None for n in tensor_inputs]
        try:
            block, params, tensor_inputs = _read(node, tensor_inputs, in_shapes, by_type, functions, nodes)
        except _Alias:
            alias[node.name] = tensor_inputs[0]
            continue
        except PortError as e:
            problems.append(node.at(str(e)))
            continue
        name = _case_name(node, used_names)
        mapped.append(Mapped(name, block, params, [source_of(n) for n in tensor_inputs], node))
    if captured.output_structure != "tensor" or len(captured.outputs) != 1:
        problems.append(f"the model returns {captured.output_structure} of {len(captured.outputs)} tensors; the "
                        "harness ports models with one tensor output")
    elif mapped and source_of(captured.outputs[0]) != mapped[-1].node.name:
        problems.append(f"the model's output is {captured.outputs[0]}, not the last node computed "
                        f"({mapped[-1].node.name}): a graph's output is its last node")
    if problems:
        raise PortError("\n".join(problems))
    if not mapped:
        raise PortError("the model computes nothing: its output is its input")
    by_node = {m.node.name: m.name for m in mapped}
    for m in mapped:
        m.inputs = ["input" if n == captured.input else by_node[n] for n in m.inputs]
    return mapped


class _Alias(Exception):
    """The node passes its input on unchanged (a dropout call in eval mode)."""


def _read(node: CapturedNode, inputs: list[str], in_shapes: list[Any], by_type: dict[str, list[Block]],
          functions: dict[str, Block], nodes: dict[str, CapturedNode]) -> tuple[Block, dict, list[str]]:
    where = node.where
    if node.op == "call_module":
        if len(inputs) != 1:
            raise PortError(f"{where}: {node.type_name} is called with {len(inputs)} tensors; a module of a block "
                            "takes one")
        block, params = block_for_module(node.module, where, in_shapes[0], by_type)
        return block, params, inputs
    if node.op == "get_attr":
        raise PortError(f"{where}: a parameter or buffer used directly in forward ({node.target}) has no block")
    target = _call_target(node)
    name = (FUNCTION_NAMES.get(target) if node.op == "call_function" else METHOD_NAMES.get(target))
    if name is not None and name in functions and len(inputs) == 1 and functions[name].arity is None:
        raise _Alias  # a join of one tensor (DenseNet's first torch.cat of a one-tensor list): that tensor
    if name is not None and name in functions:
        block = functions[name]
        try:
            return block, block.params_from_call(name, node.args, node.kwargs, in_shapes), inputs
        except (Refusal, CaseError) as e:
            raise PortError(f"{where}: {block.name} has no exact translation ({e.message})") from None
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
