"""What `xfw-harness fuzz` found: the minimal case, named and described, written as a case file under `--out`.

Ready to be copied into cases/: as a regression test of the adapter it shows wrong, or into
cases/known_differences.yaml when it is a real framework difference not catalogued yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from xfw_harness.core.frameworks import BACKEND, BACKENDS
from xfw_harness.tools.fuzz.run import Outcome


def reproduce_command(block: str, seed: int, backend: str = BACKEND) -> str:
    """The command that draws the same examples: `xfw-harness fuzz conv2d --seed 4`, with `--keras-backend jax` where
    Keras ran on another backend than the default."""
    return f"xfw-harness fuzz {block} --seed {seed}" + (f" --keras-backend {backend}" if backend != BACKENDS[0] else "")


def finding_file(block: str, seed: int, backend: str = BACKEND) -> str:
    """The finding's file name under --out: `conv2d-seed4.yaml`, `conv2d-seed4-jax.yaml` for another backend than
    the default (so that the searches of one block on several backends keep their findings apart)."""
    return f"{block}-seed{seed}" + (f"-{backend}" if backend != BACKENDS[0] else "") + ".yaml"


def named_case(case: dict[str, Any], block: str, seed: int, outcome: Outcome,
               partly_shrunk: bool = False) -> dict[str, Any]:
    """The minimal case with a name and a description saying where it came from and what it shows."""
    lines = [line for line in outcome.message.splitlines() if line.strip()]
    # The first failed verdict up to its tolerance ("[keras vs torch] values differ: 1 of 1 elements (100%)"),
    # or the error's first line; then which side the reference takes, when it was asked.
    verdict = next((line for line in lines if line.startswith("[")), lines[0] if lines else outcome.status)
    side = next((line for line in lines if line.startswith("the reference agrees")), "")
    shrunk = "partly shrunk (stopped by --time-budget)" if partly_shrunk else "shrunk"
    description = f"found by `{reproduce_command(block, seed)}`, {shrunk}: {verdict.split(' outside ')[0]}" + (
        f"; {side}" if side else "") + (f"; catalogued as {outcome.known}" if outcome.known else "")
    return {"name": f"fuzz_{block}_seed{seed}", "description": description,
            **{k: v for k, v in case.items() if k != "name"}}


def case_text(case: dict[str, Any]) -> str:
    """One case mapping as the text of a case file (a YAML list of one)."""
    return yaml.safe_dump([case], sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)


def write_case(case: dict[str, Any], path: Path) -> Path:
    """Write one case as a case file (a YAML list), with a comment saying what to do with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# Written by `xfw-harness fuzz`: the smallest case it found that PyTorch and Keras do not agree on (or\n"
              "# that a framework refused). If a harness adapter is wrong, copy it into cases/ as a regression test:\n"
              "# it fails until the adapter is fixed. If it is a real framework difference not catalogued yet, add it\n"
              "# to cases/known_differences.yaml with `expect: {divergent: WHY}` and its source, and have the\n"
              "# block's known_difference name it.\n")
    path.write_text(header + case_text(case), encoding="utf-8")
    return path
