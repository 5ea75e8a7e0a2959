"""What several test modules share: the shipped cases' points, the catalogue, and running the programs
`xfw-harness show` prints and the skeletons `xfw-harness new` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.cases import Point, load_file, load_paths
from xfw_harness.engine import Result, build_keras, build_torch, forward_keras, forward_torch, run_point

PROJECT = Path(__file__).resolve().parents[1]
CASES = PROJECT / "cases"
CATALOGUE = CASES / "known_differences.yaml"


def shipped_points() -> list[Point]:
    """Every runnable point of the shipped cases (cases/), in order."""
    return [p for entry in load_paths([CASES])[0] for p in entry.points if isinstance(p, Point)]


def divergent_entries() -> set[str]:
    """The names of the catalogue's entries marked expect.divergent."""
    entries = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    return {e["name"] for e in entries if isinstance(e.get("expect"), dict) and e["expect"].get("divergent")}


# --- xfw-harness show: the printed programs, run --------------------------------------------------------------------

def exec_program(source: str, name: str) -> dict[str, Any]:
    """Run a printed program top to bottom in a fresh namespace, as `python FILE` would."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, f"<xfw-harness show: {name}>", "exec"), namespace)  # noqa: S102 - the code under test
    return namespace


def runner_outputs(point: Point) -> tuple[np.ndarray, np.ndarray]:
    """The runner's channels-first torch and keras outputs of a point on the CPU."""
    x = point.input.make()
    modules = build_torch(point, "cpu")
    layers = build_keras(point, modules, "cpu")
    return forward_torch(point, modules, x, "cpu")[-1], forward_keras(point, layers, x, "cpu")[-1]


def shown_outputs(point: Point, code: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The outputs of the printed PyTorch and Keras programs of a point (`xfw-harness show`'s point_code)."""
    name = point.test_id("cpu")
    return (exec_program(code["torch"], f"{name} torch")["torch_out"],
            exec_program(code["keras"], f"{name} keras")["keras_out"])


def same(shown: np.ndarray, ran: np.ndarray) -> bool:
    """Bit for bit: the same dtype and the same values (NaN where NaN)."""
    return shown.dtype == ran.dtype and np.array_equal(shown, ran, equal_nan=True)


# --- xfw-harness new: the skeletons, run ------------------------------------------------------------------------------

def switch_on(text: str, key: str, skip: tuple[str, ...] = ()) -> str:
    """A skeleton with a commented-out key (and its commented children, but `skip`) written in."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith(f"  # {key}:"):
            inside = True
            out.append("  " + line[4:])
        elif inside and line.startswith("  #   "):
            if not line[6:].startswith(skip):
                out.append("  " + line[4:])
        else:
            inside = False
            out.append(line)
    assert any(line.startswith(f"  {key}:") for line in out), f"no commented {key} in the skeleton"
    return "\n".join(out) + "\n"


def run_skeleton(text: str, directory: Path) -> list[Result]:
    """Every point of the one case in `text`, written to a file and run on the CPU."""
    path = directory / "skeleton.yaml"
    path.write_text(text, encoding="utf-8")
    entries, error = load_file(path)
    assert error is None and len(entries) == 1, error
    entry = entries[0]
    assert entry.error is None, str(entry.error)
    assert all(isinstance(p, Point) for p in entry.points), [str(p.error) for p in entry.points]
    return [run_point(p, "cpu") for p in entry.points]
