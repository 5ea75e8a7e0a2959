"""The shape of the package, kept true: layers that import only the layers below them (import-linter's contract in
pyproject.toml), no import cycle among the modules (imports inside functions included), modules small enough to read
in one sitting, and no module outside xfw_harness/blocks/ that names a particular block."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from xfw_harness.blocks import all_blocks

PACKAGE = Path(__file__).resolve().parents[2] / "xfw_harness"
MAX_LINES = 450
# The modules of xfw_harness/blocks/ that are the blocks' shared machinery, not a family: others may import them.
BLOCK_MACHINERY = {"xfw_harness.blocks", "xfw_harness.blocks.base", "xfw_harness.blocks.site",
                   "xfw_harness.blocks.registry", "xfw_harness.blocks.planning", "xfw_harness.blocks.reference",
                   "xfw_harness.blocks.keras_layers",
                   "xfw_harness.blocks.torch_calls"}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("xfw_harness", include_external_packages=False)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself): Tarjan's."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_a_module_that_imports_it_back(graph: grimp.ImportGraph) -> None:
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert cycles(edges) == [], "import cycles (an import inside a function counts too)"


def test_each_layer_imports_only_the_layers_below_it() -> None:
    run = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], capture_output=True,
                         text=True, cwd=PACKAGE.parent)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_no_module_is_longer_than_one_sitting() -> None:
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _string_constants(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_module_outside_blocks_names_a_block(graph: grimp.ImportGraph) -> None:
    """Generic code asks the block (xfw_harness/blocks/base.py) and never names one: no string that is a block's name,
    no import of a family module."""
    names = set(all_blocks())
    named = {}
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "blocks"):
            continue
        if found := names & _string_constants(path):
            named[str(path.relative_to(PACKAGE.parent))] = sorted(found)
    assert not named, f"modules outside xfw_harness/blocks/ that name a block: {named}"
    families = {m for m in graph.find_children("xfw_harness.blocks")} - BLOCK_MACHINERY
    importers = {(m, f) for f in families for m in graph.find_modules_that_directly_import(f)
                 if not m.startswith("xfw_harness.blocks")}
    assert not importers, f"modules outside xfw_harness/blocks/ that import a block family: {sorted(importers)}"


def test_the_name_check_would_see_a_named_block(tmp_path: Path) -> None:
    planted = tmp_path / "m.py"
    planted.write_text('if layer.block.name == "conv2d":\n    pass\n', encoding="utf-8")
    assert "conv2d" in _string_constants(planted) & set(all_blocks())
