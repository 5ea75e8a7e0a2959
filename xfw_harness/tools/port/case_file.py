"""The case file `xfw-harness port` writes: DIR/<name>.yaml and its weights in DIR/weights/.

A graph of the model's nodes with their params and inputs, each node's weights in DIR/weights/ as .npz in PyTorch's
layout under the block's `weight_names`, the input shape, and `check: [forward, backward]`. It is an ordinary
case: `xfw-harness run DIR` and `xfw-harness show` work on it. It is written in every outcome, so that it can be read,
fixed and rerun; what an earlier run left (its <name>.keras and weights/NN_*.npz) is removed first
(`clear_earlier_run`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from xfw_harness.core.frameworks import to_numpy, torch
from xfw_harness.tools.port.keras_model import partial_keras_path
from xfw_harness.tools.port.translate import Mapped


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
    """The case's name (and its files'): FACTORY's last part, as a file name (`zoo.models:lenet` -> `lenet`)."""
    name = re.sub(r"[^\w.\-]", "_", spec.rsplit(":", 1)[-1].split(".")[-1]) or "ported"
    return name


EARLIER_WEIGHTS = re.compile(r"\d+_\w+\.npz")  # weights/NN_block.npz, the files write_case writes


def clear_earlier_run(out: Path, name: str) -> None:
    """Remove what an earlier port into DIR left that this run would not overwrite: DIR/<name>.keras, which a
    failed port must not leave for a script to pick up, and every weights/NN_block.npz (a model with fewer layers
    writes fewer). Other files are the user's and stay."""
    for path in (out / f"{name}.keras", partial_keras_path(out, name)):
        path.unlink(missing_ok=True)
    if (out / "weights").is_dir():
        for path in (out / "weights").iterdir():
            if path.is_file() and EARLIER_WEIGHTS.fullmatch(path.name):
                path.unlink()


def write_case(out: Path, name: str, spec: str | None, mapped: list[Mapped], shape: tuple[int, ...],
               dtype: str, max_elements: int | None = None) -> Path:
    """DIR/<name>.yaml and DIR/weights/*.npz (PyTorch layout, the block's weight_names); the case's path. `spec` is
    the MODULE:FACTORY the model came from, None for a model ported from Python (port_model); `max_elements` the
    budget the case needs where the model's arrays exceed the default (xfw_harness.blocks.MAX_ELEMENTS)."""
    (out / "weights").mkdir(parents=True, exist_ok=True)
    written_by = f"`xfw-harness port {spec}`" if spec is not None else "xfw_harness.tools.port.port_model"
    lines = [f"# Written by {written_by}: each node is the call named in its comment (module path or",
             "# function, and source line), its weights PyTorch-layout arrays in weights/. Run it again with",
             "# `xfw-harness run` on this file.",
             f"- name: {name}",
             f"  description: {json.dumps(f'{spec or name}, ported by xfw-harness port')}",  # a JSON string is YAML too
             "  block: graph",
             "  nodes:"]
    for i, node in enumerate(mapped):
        item: dict[str, Any] = {"name": node.name, "block": node.block.name}
        if node.params:
            item["params"] = _plain(node.params)
        item["inputs"] = node.inputs
        module = node.node.module
        arrays = {n: to_numpy(getattr(module, n)) for n in node.block.weight_names
                  if isinstance(getattr(module, n, None), torch.Tensor)} if module is not None else node.arrays
        if arrays:
            file = f"weights/{i:02d}_{node.block.name}.npz"
            np.savez(out / file, **arrays)
            item["weights"] = {"path": file}
        what = f": {node.node.type_name}" if module is not None else ""
        lines.append(f"    - {_flow(item)}  # {node.node.at(node.node.where + what)}")
    lines += [f"  input: {_flow({'shape': list(shape), 'dtype': dtype, 'seed': 0})}",
              "  check: [forward, backward]"]
    if max_elements is not None:  # the model's own weights or activations are larger than the default budget
        lines.append(f"  max_elements: {max_elements}  # the model's largest array, with room for padding")
    lines.append("")
    path = out / f"{name}.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
