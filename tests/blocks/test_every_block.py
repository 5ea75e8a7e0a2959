"""What every registered block must have, checked for each block, as PyTorch's test_modules.py checks each entry of
module_db: a new block is taken up here with no test of its own (xfw_harness/blocks/base.py is the contract).

For each block: a float64 reference that both frameworks agree with, shipped cases, `xfw-harness show` programs that
reproduce the runner, a `xfw-harness new` skeleton that passes, a benchmark case, a section in the generated block
reference, a short fuzz run that finds nothing, declared known differences that are divergent catalogue entries,
a `xfw-harness port` round trip where the block reads a PyTorch module, and a weight transfer whose omission the shipped
cases catch.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings

from tests.helpers import (
    CATALOGUE,
    divergent_entries,
    run_skeleton,
    runner_outputs,
    same,
    shipped_points,
    shown_outputs,
    switch_on,
)
from xfw_harness.blocks import Block, Layer, all_blocks, get_block, plan
from xfw_harness.cases import Point, load_case, load_file
from xfw_harness.core.errors import Refusal
from xfw_harness.core.frameworks import torch
from xfw_harness.engine import run_point
from xfw_harness.tools.fuzz import FUZZ_FILE, case_strategy, fuzz
from xfw_harness.tools.manual import block_reference, family_doc
from xfw_harness.tools.new import case_skeleton
from xfw_harness.tools.port import port_model
from xfw_harness.tools.show import point_code

BLOCKS = sorted(all_blocks())
SHIPPED = shipped_points()
FUZZ_EXAMPLES = 15


def _blocks_in(layers: Any) -> set[str]:
    """The blocks of a list of layers, nested ones (a residual's branches) included."""
    names = set()
    for layer in layers:
        names.add(layer.block.name)
        for value in layer.params.values():
            if isinstance(value, tuple) and value and isinstance(value[0], Layer):
                names |= _blocks_in(value)
    return names


def _points_using(name: str) -> list[Point]:
    """The shipped points that use the block: as a layer (at any depth), or as the network that holds them."""
    block = get_block(name)
    return [p for p in SHIPPED if (p.sequential if block.holds_network else name in _blocks_in(p.layers))]


@pytest.mark.parametrize("name", BLOCKS)
def test_has_shipped_cases(name: str) -> None:
    assert _points_using(name), f"{name} has no shipped case in cases/"


@pytest.mark.parametrize("name", BLOCKS)
def test_has_a_reference_that_both_frameworks_agree_with(name: str) -> None:
    """A new block without a reference would give every disagreement `no third opinion`: each registered block
    overrides Block.reference, and on cases drawn from its schema (as xfw-harness fuzz draws them; eval mode, whose
    semantics are deterministic) both frameworks agree with it under `expect: {reference: true}`. float64 where no
    documented framework difference applies (the reference's own precision is what float64 tests), else float32."""
    block = get_block(name)
    assert type(block).reference is not Block.reference, f"{name} has no float64 reference (Block.reference)"
    statuses = []

    @settings(max_examples=4, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case_strategy(name, ("float64", "float32")))
    def check(case: dict[str, Any]) -> None:
        case = {**case, "mode": "eval", "expect": {"reference": True}}
        entry = load_case(FUZZ_FILE, 0, case, Path.cwd(), set())
        point = entry.points[0] if entry.error is None and entry.points else None
        assume(isinstance(point, Point) and not any(
            layer.block.known_difference(site) for layer, site in zip(point.layers, point.sites)))
        result = run_point(point, "cpu")
        statuses.append(result.status)
        assert result.status == "passed", f"{case}\n{result.message}"

    check()
    assert statuses, f"no case of {name} could be drawn"


@pytest.mark.parametrize("name", BLOCKS)
def test_show_prints_programs_that_compute_what_the_runner_computes(name: str) -> None:
    """One shipped point per block (tests/tools/test_show.py runs them all): bit for bit on the CPU."""
    point = next((p for p in _points_using(name) if p.defaults == "harness" and p.compare_with == "frameworks"), None)
    assert point is not None, f"{name} has no shipped point to show"
    code = point_code(point, "cpu")
    ran_torch, ran_keras = runner_outputs(point)
    shown_torch, shown_keras = shown_outputs(point, code)
    assert same(shown_torch, ran_torch), f"the printed PyTorch code differs from the runner's:\n{code['torch']}"
    assert same(shown_keras, ran_keras), f"the printed Keras code differs from the runner's:\n{code['keras']}"


@pytest.mark.parametrize("name", BLOCKS)
def test_new_prints_a_skeleton_that_passes(name: str, tmp_path: Path) -> None:
    text = case_skeleton(name)
    results = run_skeleton(text, tmp_path)
    assert [r.status for r in results] == ["passed"], [r.message for r in results]
    for p in get_block(name).params:
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{p.name}:"))
        assert ("REQUIRED" in line) == p.required, line
    # The commented examples are valid too: the sweep (every point runs, none refused), expect and tolerance.
    results = run_skeleton(switch_on(switch_on(text, "sweep"), "tolerance"), tmp_path)
    assert len(results) >= 2 and {r.status for r in results} == {"passed"}, [r.message for r in results]
    results = run_skeleton(switch_on(text, "expect", skip=("output",)), tmp_path)  # a wrong shape would fail
    assert [r.status for r in results] == ["passed"], [r.message for r in results]


@pytest.mark.parametrize("name", BLOCKS)
def test_has_a_benchmark_case_that_loads(name: str) -> None:
    case = get_block(name).benchmark_case()
    entry = load_case("<benchmark>", 0, case, Path.cwd(), set())
    assert entry.error is None, str(entry.error)
    (point,) = entry.points
    assert isinstance(point, Point), str(point.error)
    assert name in _blocks_in(point.layers) or (point.sequential and get_block(name).holds_network)


REFERENCE_PAGE = block_reference(all_blocks())


def _plain(markdown: str) -> str:
    """Markdown with the escapes xfw_harness.tools.manual adds undone, to find a source text in it."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("&lt;", "<").replace("&amp;", "&")


@pytest.mark.parametrize("name", BLOCKS)
def test_has_a_section_in_the_generated_block_reference(name: str) -> None:
    block = get_block(name)
    section = REFERENCE_PAGE.split(f"### `{name}` {{#{name}}}", 1)
    assert len(section) == 2, f"no section for block {name}"
    section = _plain(section[1].split("\n### ", 1)[0].split("\n## ", 1)[0])
    assert block.doc.replace("\n", " ") in section
    for p in block.params:
        assert f"| `{p.name}` |" in section, f"{name}: parameter {p.name} missing"
        assert p.doc in section and p.allowed() in section, f"{name}: parameter {p.name}'s doc or allowed"
    for text in (*block.torch_types, *block.torch_fallback_types, *block.weight_names,
                 *(d.entry for d in block.known_differences)):
        assert f"`{text}`" in section, f"{name}: {text} missing from its section"
    assert f"{{#family-{block.family}}}" in REFERENCE_PAGE
    assert family_doc(block) and family_doc(block) in REFERENCE_PAGE, f"{name}: its family module's docstring"


@pytest.mark.parametrize("name", BLOCKS)
def test_a_short_fuzz_run_finds_nothing(name: str) -> None:
    report = fuzz(name, examples=FUZZ_EXAMPLES, seed=0, out=None)  # the default dtypes, float32 and float64
    assert report.finding is None, report.summary()
    assert report.stats.valid == FUZZ_EXAMPLES, report.summary()  # the strategy reaches valid cases
    assert report.stats.statuses["passed"] == FUZZ_EXAMPLES
    assert set(report.stats.known) <= divergent_entries(), report.summary()


CATALOGUE_CASES = {c["name"]: c for c in yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("name", BLOCKS)
def test_declared_known_differences_are_divergent_catalogue_entries_of_the_block(name: str) -> None:
    for difference in get_block(name).known_differences:
        assert difference.entry in divergent_entries(), f"{name}: {difference.entry} is no divergent catalogue entry"
        assert CATALOGUE_CASES[difference.entry]["block"] == name, f"{difference.entry} is not a case of {name}"
        assert difference.summary, f"{name}: {difference.entry} has no summary"


PORTED = [name for name in BLOCKS if get_block(name).torch_types]


@pytest.mark.parametrize("name", PORTED)
def test_port_reads_the_blocks_pytorch_module_back_into_a_verified_case(name: str, tmp_path: Path) -> None:
    """The block's PyTorch layer (the harness's own, or the hand port's with every parameter of the `xfw-harness new`
    skeleton written or only the required ones: the first that is a class the block reads), ported as a one-layer
    model: `xfw-harness port` reads it as this block, writes a case that passes and saves the Keras model."""
    path = tmp_path / "skeleton.yaml"
    path.write_text(case_skeleton(name), encoding="utf-8")
    (entry,), error = load_file(path)
    assert error is None and entry.error is None, (error, entry.error)
    block, params = get_block(name), entry.points[0].layers[0].params
    # nn.Linear reads a rank-2 input; the others the skeleton's own (a channel shuffle's channels split in groups)
    shape = (2, 3) if block.ranks is None or 2 in block.ranks else entry.points[0].input.shape
    (site,), _ = plan([Layer(block, params)], shape, "float32", "eval", 0, False)
    required = dataclasses.replace(site, written=frozenset(p.name for p in block.params if p.required))
    builders = (lambda: block.torch_module(site), lambda: block.native_torch_module(site),
                lambda: block.native_torch_module(required))
    module = next((m for build in builders if type(m := _built(build)).__name__ in block.torch_types), None)
    assert module is not None, f"none of {name}'s PyTorch builders makes a {' or '.join(block.torch_types)}"
    ported = port_model(torch.nn.Sequential(module), input_shape=shape, out=tmp_path / "ported", name=name)
    assert ported.blocks == [name]
    assert ported.passed, (ported.result.message if ported.result else "", ported.model_verdicts, ported.keras_error)
    assert ported.keras_path is not None and ported.keras_path.is_file()


def _built(build: Any) -> Any:
    try:
        return build()
    except Refusal:  # a hand port that cannot be written with these parameters
        return None


WEIGHTED = [name for name in BLOCKS if get_block(name).weight_names]


@pytest.mark.parametrize("name", WEIGHTED)
def test_a_weight_transfer_that_copies_nothing_is_caught_by_the_shipped_cases(name: str,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: the block's weights never reach Keras (each framework keeps its own initial values). Its first shipped
    forward point must fail: a block whose every case passes without its weights is not tested by them."""
    point = next(p for p in _points_using(name) if p.defaults == "harness" and p.compare_with == "frameworks")
    assert run_point(point, "cpu").status in ("passed", "divergent")
    monkeypatch.setattr(type(get_block(name)), "transfer_weights", lambda self, site, module, layer: None)
    assert run_point(point, "cpu").status == "failed"
