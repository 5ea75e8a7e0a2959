"""`xfw-harness new BLOCK`: a commented YAML skeleton of a case, from the registry.

Every parameter of the block with its default (a required one with an example value, marked REQUIRED) and what
it allows, the input, the mode, and what the rest of a case may say (check, tolerance, expect, weights, devices,
sweep), commented out. As printed it loads and passes. A block whose own example serves better writes it
(Block.skeleton: `sequential` and `residual` write a small network).
"""

from __future__ import annotations

import contextlib
import textwrap
from typing import Any

import yaml

from xfw_harness.blocks import Block, Layer, get_block, plan
from xfw_harness.cases import DTYPES, FILLS
from xfw_harness.core.backend_choice import BACKENDS, DEVICES
from xfw_harness.core.errors import CaseError
from xfw_harness.core.schema import Param
from xfw_harness.core.tolerance import ULP_FACTOR
from xfw_harness.tools.show.source import WIDTH, comment_lines, yaml_flow

COLUMN = 34  # where a skeleton line's comment starts


def _example(p: Param) -> Any:
    """A valid value for a required parameter (any value does; this one gives a small, quick case)."""
    low = p.minimum if p.minimum is not None else 0
    if p.kind == "int":
        return max(int(low), 4)
    if p.kind == "pair":
        return max(int(low), 3)
    if p.kind == "float":
        return 0.5 if low <= 0.5 and (p.maximum is None or p.maximum >= 0.5) else float(low)
    if p.kind == "choice":
        return p.choices[0]
    if p.kind == "bool":
        return True
    if p.kind == "padding":
        return "valid"
    if p.kind == "axis":
        return 1
    raise AssertionError(p.kind)


def _alternative(p: Param) -> Any:
    """A second valid value of an optional parameter, for the sweep example."""
    d = p.default
    if p.kind == "bool":
        return not d
    if p.kind == "choice":
        return next(c for c in p.choices if c != d)
    if p.kind == "padding":
        return "same" if d != "same" else 1
    if p.kind == "pair":
        return 1 if d is None else d[0] + 1
    if p.kind == "pads":  # zero_padding2d's per-side padding
        return [[0, 1], [2, 0]]
    if p.kind == "int":
        return d + 1
    if p.kind == "float":
        return d * 2 if p.maximum is None or d * 2 <= p.maximum else (p.minimum or 0.0)
    if p.kind == "axis":
        return -1
    raise AssertionError(p.kind)


def _default_yaml(p: Param) -> str:
    """The default as YAML: the way `xfw-harness list` writes it where that means the same value (1 for [1, 1])."""
    text = p.describe_default()
    try:
        if p.normalise(yaml.safe_load(text)) == p.default:
            return text
    except (CaseError, yaml.YAMLError):
        pass
    return yaml_flow(p.default)


def _line(indent: int, text: str, comment: str = "") -> list[str]:
    """A YAML line with its comment at COLUMN (wrapped below it when long)."""
    head = " " * indent + text
    if not comment:
        return [head]
    pad = max(COLUMN, len(head) + 2)
    room = max(WIDTH - pad - 2, 40)
    parts = textwrap.wrap(comment, room, break_on_hyphens=False)
    return [f"{head:<{pad}}# {parts[0]}", *(f"{'':<{pad}}#   {part}" for part in parts[1:])]


def _input_shape(block: Block) -> list[int]:
    rank = block.ranks[0] if block.ranks else 4
    return [2, 3, *([8] * (rank - 2))]


def _block_skeleton(block: Block) -> list[str]:
    params = {p.name: _example(p) if p.required else p.default for p in block.params}
    shape = _input_shape(block)
    site_params = {p.name: p.normalise(v) for p, v in zip(block.params, params.values())}
    out = None
    with contextlib.suppress(CaseError):  # the example always plans; the expect.shape hint is only left out if not
        _, out = plan([Layer(block, site_params)], tuple(shape), "float32", "eval", 0, False)
    lines = _line(0, f"- name: {block.name}_case", "unique in its file; part of the test id")
    lines += _line(2, f"block: {block.name}", block.doc)
    if block.params:
        lines += _line(2, "params:", "one left out takes the default shown, passed explicitly to both frameworks")
        for p in block.params:
            if p.required:
                value, note = yaml_flow(_example(p)), f"REQUIRED (an example value); {p.doc}"
            else:
                value, note = _default_yaml(p), f"default; {p.doc}"
            lines += _line(4, f"{p.name}: {value}", f"{note}. Allowed: {p.allowed()}")
    else:
        lines += _line(2, "# params: none", f"{block.name} takes no parameters")
    lines += _input_skeleton(block, shape)
    lines += _line(2, "mode: eval", "eval | train: how stochastic blocks (dropout) run"
                   + ("; train compares each framework's sample statistically" if block.stochastic else ""))
    lines += _optional_skeleton(block, out)
    alt = next((p for p in block.params if not p.required), None)
    lines += _line(2, "# sweep:", "each combination of these lists is its own test")
    if alt is not None:
        values = [_default_yaml(alt), yaml_flow(_alternative(alt))]
        lines += _line(2, f"#   {alt.name}: [{', '.join(values)}]")
    lines += _line(2, "#   input.dtype: [float32, float64]")
    return lines


def _input_skeleton(block: Block, shape: list[int], who: str | None = None) -> list[str]:
    ranks = "rank " + " or ".join(str(r) for r in block.ranks) if block.ranks else "any rank >= 2"
    return [*_line(2, "input:"),
            *_line(4, f"shape: {yaml_flow(shape)}", f"channels-first (N, C, ...); {who or block.name} takes {ranks}"),
            *_line(4, "dtype: float32", " | ".join(DTYPES)),
            *_line(4, "fill: normal", f"{' | '.join(FILLS)} (uniform: [-1, 1); values: an inline list `values`; "
                   "file: a .npy `path`)"),
            *_line(4, "seed: 0", "the fill, PyTorch's initial weights and dropout's seed derive from it")]


def _optional_skeleton(block: Block, out: tuple[int, ...] | None) -> list[str]:
    lines = _line(2, "# check: [forward, backward, train_step]",
                  "default: [forward]; backward: gradients of sum(output * R); train_step: optimiser updates "
                  "(with steps: N, optimizer: [{name: sgd, ...}, {name: adam, ...}]; docs/writing-cases.md)")
    lines += _line(2, "# tolerance: {atol: 1.0e-5, rtol: 1.0e-5}",
                  f"default: rtol = {ULP_FACTOR:g} * eps * sqrt(K), K the terms one output sums; atol = rtol * "
                  "max(1, max |torch output|)")
    lines += _line(2, "# expect:", "optional checks beyond torch vs keras")
    if out is not None:
        lines += _line(2, f"#   shape: {yaml_flow(list(out))}", "channels-first; what the input above gives")
    lines += _line(2, "#   output: [[...]]", "golden values, channels-first, inline or a .npy path")
    if block.weight_names:
        lines += _line(2, "# weights: {path: weights.npz}",
                       f"PyTorch-layout arrays named {', '.join(block.weight_names)}; default: PyTorch's init")
    lines += _line(2, f"# devices: [{', '.join(DEVICES)}]", "default: every device present")
    lines += _line(2, f"# backends: [{', '.join(BACKENDS)}]",
                   "Keras's backends it runs on; default: every installed one (xfw-harness run --keras-backend)")
    return lines


class _Writer:
    """What a block's own skeleton (Block.skeleton) writes its lines with: xfw_harness.blocks.SkeletonWriter."""

    def line(self, indent: int, text: str, comment: str = "") -> list[str]:
        return _line(indent, text, comment)

    def input_lines(self, block: Block, shape: list[int], who: str | None = None) -> list[str]:
        return _input_skeleton(block, shape, who)

    def tolerance_line(self) -> list[str]:
        return _line(2, "# tolerance: {atol: 1.0e-5, rtol: 1.0e-5}",
                     f"default: rtol = {ULP_FACTOR:g} * eps * sqrt(K), K the most terms one output of any layer sums")


def case_skeleton(block_name: str) -> str:
    """A commented YAML case for `block_name` (`xfw-harness new`): every parameter with its default (a required one
    with an example value, marked REQUIRED), the input, mode, and the optional keys commented out. As printed it
    loads and passes; the format is docs/writing-cases.md.
    """
    block = get_block(block_name)  # a CaseError with close names for an unknown block
    lines = block.skeleton(_Writer()) or _block_skeleton(block)
    intro = comment_lines(f"A case skeleton from `xfw-harness new {block_name}`: save it as test_*.yaml beside your "
                          "tests (pytest collects those wherever it collects tests), change what you need, and run it "
                          "with pytest or `xfw-harness run FILE`. The format: docs/writing-cases.md; every block and "
                          "parameter: `xfw-harness list`.")
    return "\n".join(intro + lines) + "\n"
