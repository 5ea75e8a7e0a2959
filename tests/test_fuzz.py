"""`harness fuzz` (harness/fuzz.py): drawn from each block's schema, run by the runner, shrunk and written.

- A short deterministic run over every registered block (and random networks) finds nothing: the adapters agree on
  every drawn case. Blocks with a documented float64 difference (cases/known_differences.yaml) are drawn in float32.
- A deliberately broken adapter (Keras's `same` padding replaced by the symmetric k//2 of a hand port) is found,
  shrunk to a case that is minimal in the sense checked here (every one-step reduction of it, each integer one
  smaller, each optional parameter left out, the input's dimensions, seed, dtype and mode made simpler, passes or is
  refused), and written as a loadable case file that reproduces the failure, and passes once the adapter is fixed.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from harness.cases import load_file
from harness.cli import main
from harness.fuzz import fuzz, fuzzable_blocks, run_case
from harness.registry import get_block
from harness.runner import run_point

EXAMPLES = 15  # per block
# Blocks whose float64 results differ for a documented reason (cases/known_differences.yaml: TensorFlow's float64
# GELU and LeakyReLU compute with float32 constants); composites and networks may contain them.
FLOAT32_ONLY = {"gelu", "leaky_relu", "residual", "sequential"}


@pytest.mark.parametrize("block", fuzzable_blocks())
def test_a_short_fuzz_run_finds_nothing(block: str) -> None:
    dtypes = ("float32",) if block in FLOAT32_ONLY else ("float32", "float64")
    report = fuzz(block, examples=EXAMPLES, seed=0, out=None, dtypes=dtypes)
    assert report.finding is None, report.summary()
    assert report.stats.valid == EXAMPLES, report.summary()  # the strategy reaches valid cases
    assert report.stats.statuses["passed"] == EXAMPLES


def test_invalid_combinations_are_counted_apart_by_field() -> None:
    report = fuzz("conv2d", examples=10, seed=0, out=None, dtypes=("float32",))
    assert report.stats.invalid > 0 and report.finding is None
    assert set(report.stats.invalid_fields) <= {"params.groups", "params.kernel_size", "params.padding",
                                                 "params.padding_mode"}, report.stats.invalid_fields
    assert "invalid" in report.summary() and "refused by the loader" in report.summary()


def test_the_same_seed_draws_the_same_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # and nothing is written where it runs (no example database)
    first, again = (fuzz("sequential", examples=8, seed=3, out=None) for _ in range(2))
    other = fuzz("sequential", examples=8, seed=4, out=None)
    assert first.stats.digest == again.stats.digest != other.stats.digest
    assert list(tmp_path.iterdir()) == []


def test_the_time_budget_stops_the_search() -> None:
    report = fuzz("relu", examples=10_000, seed=0, time_budget=0.5, out=None)
    assert report.out_of_time and 0 < report.stats.examples < 10_000
    assert "stopped by --time-budget" in report.summary()


def _same_as_symmetric(monkeypatch: pytest.MonkeyPatch) -> None:
    """The classic hand-port mistake, planted in the harness's Keras conv2d: `same` given as k//2 on both sides."""
    block = get_block("conv2d")
    original = block.keras_layer

    def symmetric(site: Any) -> Any:
        if site.params["padding"] == "same":
            kh, kw = site.params["kernel_size"]
            site = dataclasses.replace(site, params={**site.params, "padding": (kh // 2, kw // 2)})
        return original(site)

    monkeypatch.setattr(block, "keras_layer", symmetric)


def _one_step_simpler(case: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every case one step simpler than `case`: one integer one smaller (not below its minimum), one optional
    parameter left out, one input dimension one smaller, seed 0, float32, eval mode."""
    block = get_block(case["block"])
    out = []

    def variant(what: str, change: Any) -> None:
        new = copy.deepcopy(case)
        change(new)
        out.append((what, new))

    for p in block.params:
        value = case.get("params", {}).get(p.name)
        if value is None:
            continue
        low = p.minimum if p.minimum is not None else 0
        if not p.required:
            variant(f"without {p.name}", lambda c, n=p.name: c["params"].pop(n))
        if isinstance(value, int) and not isinstance(value, bool) and value - 1 >= low:
            variant(f"{p.name} {value - 1}", lambda c, n=p.name, v=value: c["params"].__setitem__(n, v - 1))
        if isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, int) and v - 1 >= low:
                    variant(f"{p.name}[{i}] {v - 1}", lambda c, n=p.name, i=i: c["params"][n].__setitem__(
                        i, c["params"][n][i] - 1))
    for i, d in enumerate(case["input"]["shape"]):
        if d > 1:
            variant(f"input.shape[{i}] {d - 1}", lambda c, i=i, d=d: c["input"]["shape"].__setitem__(i, d - 1))
    if case["input"].get("seed", 0):
        variant("seed 0", lambda c: c["input"].__setitem__("seed", 0))
    if case["input"].get("dtype", "float32") != "float32":
        variant("float32", lambda c: c["input"].__setitem__("dtype", "float32"))
    if case.get("mode", "eval") != "eval":
        variant("eval", lambda c: c.pop("mode"))
    return out


def test_a_broken_adapter_is_found_shrunk_and_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_as_symmetric(monkeypatch)
    report = fuzz("conv2d", examples=200, seed=4, out=tmp_path, dtypes=("float32",))
    assert report.finding is not None, report.summary()
    assert report.written == tmp_path / "conv2d-seed4.yaml" and report.written.is_file()
    assert report.finding["params"]["padding"] == "same", report.finding  # the planted mistake's trigger

    # Minimal: every one-step-simpler case no longer shows the problem (it passes, or the loader refuses it).
    simpler = _one_step_simpler(report.finding)
    assert simpler, "nothing to simplify: the check below would be empty"
    still = [what for what, case in simpler if run_case(case).status in ("failed", "error")]
    assert not still, f"not minimal: still failing {still}\n{report.summary()}"

    # The written file is a case file: it loads, names and describes the case, and reproduces the failure.
    entries, error = load_file(report.written)
    assert error is None and len(entries) == 1 and entries[0].error is None
    (point,) = entries[0].points
    assert point.case == "fuzz_conv2d_seed4"
    assert point.raw["description"].startswith("found by `harness fuzz conv2d --seed 4`, shrunk:")
    assert run_point(point, "cpu").status == report.finding_outcome.status
    monkeypatch.undo()  # the adapter fixed: the regression case passes
    assert run_point(load_file(report.written)[0][0].points[0], "cpu").status == "passed"


def test_the_cli_prints_the_summary_and_says_what_it_found(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["fuzz", "relu", "--examples", "3", "--seed", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for line in ("examples run  3", "valid         3", "passed        3", "divergent     0", "errors        0",
                 "time"):
        assert line in out, out
    assert list(tmp_path.iterdir()) == []  # nothing found, nothing written
    assert main(["fuzz", "relu_x", "--examples", "3"]) == 2
    assert "did you mean 'relu'" in capsys.readouterr().err
    assert main(["fuzz", "relu", "--dtypes", "float128"]) == 2
