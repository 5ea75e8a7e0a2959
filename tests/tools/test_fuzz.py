"""`xfw-harness fuzz` (xfw_harness/fuzz.py): drawn from each block's schema, run by the runner, shrunk and written.

- A short deterministic run over every registered block (and random networks), with the default dtypes, finds
  nothing: the adapters agree on every drawn case, and the cases with a catalogued framework difference
  (Block.known_difference: TensorFlow's float64 GELU and LeakyReLU) are counted as known and not run. Every name a
  block declares is an `expect.divergent` entry of cases/known_differences.yaml, and a case it flags really
  diverges when run (--include-known), so a declaration cannot go stale silently.
- A deliberately broken adapter (Keras's `same` padding replaced by the symmetric k//2 of a hand port) is found,
  shrunk to a case that is minimal in the sense checked here (every one-step reduction of it, each integer one
  smaller, each optional parameter left out, the input's dimensions, seed, dtype and mode made simpler, passes or is
  refused), and written as a loadable case file that reproduces the failure, and passes once the adapter is fixed;
  a shrinking stopped by --time-budget says "partly shrunk".
- A block defined in a test, with a parameter kind xfw_harness.tools.fuzz does not know, is fuzzable with no fuzz
  code, and its planted Keras mistake is found, shrunk and written.
- Bad options are one-line errors with exit status 2 before the search; so is --device gpu without a GPU; a run
  writes nothing where it runs (not even hypothesis's constants cache).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import keras
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings

import xfw_harness.engine.run as runner
import xfw_harness.tools.fuzz.search as fuzz_search  # where fuzz() looks up run_case and _clock
from xfw_harness.blocks import REGISTRY, Block, Site, all_blocks, get_block
from xfw_harness.cases import DTYPES, Point, load_case, load_file
from xfw_harness.cli import main
from xfw_harness.core import frameworks
from xfw_harness.core.schema import Param
from xfw_harness.engine import run_point
from xfw_harness.tools.fuzz import case_strategy, fuzz, fuzzable_blocks, known_difference, run_case

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = 15  # per block


def _divergent_entries() -> set[str]:
    """The names of cases/known_differences.yaml's entries marked expect.divergent."""
    entries = yaml.safe_load((PROJECT / "cases" / "known_differences.yaml").read_text(encoding="utf-8"))
    return {e["name"] for e in entries if isinstance(e.get("expect"), dict) and e["expect"].get("divergent")}


DIVERGENT = _divergent_entries()


# --- catalogued differences: not searched, declared by the blocks, still real -------------------------------------

def test_every_declared_difference_is_a_divergent_catalogue_entry() -> None:
    """Cases drawn for every block, in every dtype and in float64 (where the declared differences are), loaded (not
    run): whatever name a block's known_difference gives is an expect.divergent entry of the catalogue. Each block is
    probed on its own, so that every block is reached whatever the others draw."""
    seen: dict[str, set[str]] = {}

    def probe(block: str, dtypes: tuple[str, ...], examples: int) -> None:
        @settings(max_examples=examples, database=None, derandomize=True, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(case_strategy(block, dtypes))
        def draw(case: dict[str, Any]) -> None:
            entry = load_case("<probe>", 0, case, PROJECT, set())
            point = entry.points[0] if entry.error is None else None
            if isinstance(point, Point) and (name := known_difference(point)) is not None:
                seen.setdefault(name, set()).add(case["block"])

        draw()

    for block in fuzzable_blocks():
        probe(block, DTYPES, 20)
        probe(block, ("float64",), 10)
    assert set(seen) <= DIVERGENT, seen
    assert {"tf_float64_gelu", "tf_float64_leaky_relu_slope"} <= set(seen), seen  # the probe reached them


def _point(case: dict[str, Any]) -> Point:
    entry = load_case("<test>", 0, {"name": "t", **case}, PROJECT, set())
    assert entry.error is None and isinstance(entry.points[0], Point), entry.error
    return entry.points[0]


F64 = {"shape": [2, 3, 4], "dtype": "float64"}


@pytest.mark.parametrize("case, name", [
    ({"block": "gelu", "input": F64}, "tf_float64_gelu"),
    ({"block": "gelu", "params": {"approximate": "tanh"}, "input": F64}, "tf_float64_gelu"),
    ({"block": "gelu", "input": {**F64, "dtype": "float32"}}, None),
    ({"block": "leaky_relu", "params": {"negative_slope": 0.1}, "input": F64}, "tf_float64_leaky_relu_slope"),
    ({"block": "leaky_relu", "params": {"negative_slope": 0.5}, "input": F64}, None),  # a float32 number
    ({"block": "sequential", "layers": [{"block": "relu"}, {"block": "residual", "layers": [{"block": "tanh"}],
                                                             "shortcut": [{"block": "gelu"}]}], "input": F64},
     "tf_float64_gelu"),  # a nested layer's, in the shortcut
    ({"block": "sequential", "layers": [{"block": "residual", "layers": [
        {"block": "leaky_relu", "params": {"negative_slope": 0.25}}]}], "input": F64}, None),
])
def test_a_declared_difference_really_diverges_and_only_there(case: dict[str, Any], name: str | None) -> None:
    """Each declaration, run: a flagged case fails torch vs keras, one not flagged passes (0.5 and 0.25 are float32
    numbers, so TensorFlow's float32 slope is exact)."""
    assert known_difference(_point(case)) == name
    outcome = run_case({"name": "t", **case}, include_known=True)
    assert outcome.status == ("failed" if name else "passed"), outcome.message
    assert outcome.known == name


@pytest.mark.parametrize("block, name", [("gelu", "tf_float64_gelu"), ("leaky_relu", "tf_float64_leaky_relu_slope")])
def test_catalogued_cases_are_not_searched_unless_asked(block: str, name: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    report = fuzz(block, examples=10, seed=0, out=None)
    assert report.finding is None and report.stats.known[name] > 0, report.summary()
    assert f"(catalogued differences, not searched: {name} {report.stats.known[name]})" in report.summary()

    # --include-known runs them: the fuzzer finds the catalogued difference itself, and says it is catalogued.
    report = fuzz(block, examples=10, seed=0, out=None, dtypes=("float64",), include_known=True)
    assert report.finding is not None and report.finding_outcome.status == "failed", report.summary()
    assert report.finding_outcome.known == name and report.finding["input"]["dtype"] == "float64"
    assert f"catalogued as {name}" in report.finding["description"]

    assert main(["fuzz", block, "--dtypes", "float64", "--examples", "3", "--out", str(tmp_path),
                 "--include-known"]) == 1
    assert f"a catalogued difference: {name}" in capsys.readouterr().out


def test_a_run_that_could_only_draw_catalogued_cases_is_not_a_clean_run(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    # Every float64 GELU is catalogued: nothing could be compared, which must not read as "found nothing".
    assert main(["fuzz", "gelu", "--dtypes", "float64", "--examples", "3", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "valid         0" in captured.out and "known         " in captured.out
    assert captured.err.strip().endswith("were catalogued differences (--include-known runs them)"), captured.err


def test_invalid_combinations_are_counted_apart_by_field() -> None:
    report = fuzz("conv2d", examples=10, seed=0, out=None, dtypes=("float32",))
    assert report.stats.invalid > 0 and report.finding is None
    assert set(report.stats.invalid_fields) <= {"params.groups", "params.kernel_size", "params.padding",
                                                 "params.padding_mode"}, report.stats.invalid_fields
    assert "invalid" in report.summary() and "refused by the loader" in report.summary()


def test_the_same_seed_draws_the_same_examples() -> None:
    first, again = (fuzz("sequential", examples=8, seed=3, out=None) for _ in range(2))
    other = fuzz("sequential", examples=8, seed=4, out=None)
    assert first.stats.digest == again.stats.digest != other.stats.digest


def test_nothing_is_written_where_it_runs(tmp_path: Path) -> None:
    """Not even hypothesis's cache of the constants it reads from local modules (.hypothesis/constants/). In a fresh
    process: hypothesis fixes its default storage directory (the working directory at its import) when first
    imported and reads each module's constants once per process, so a chdir inside this one would see nothing."""
    where, out = tmp_path / "cwd", tmp_path / "out"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_STORAGE_DIRECTORY"}
    done = subprocess.run([sys.executable, "-m", "xfw_harness", "fuzz", "relu", "--examples", "30", "--out", str(out)],
                          cwd=where, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in where.rglob("*")) == [], "written where it ran"


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
    assert point.raw["description"].startswith("found by `xfw-harness fuzz conv2d --seed 4`, shrunk:")
    assert run_point(point, "cpu").status == report.finding_outcome.status
    # Its header says where it goes either way: an adapter's regression test, or a new catalogue entry.
    header = report.written.read_text(encoding="utf-8").split("\n- name:")[0]
    assert "fails until the adapter is fixed" in header and "cases/known_differences.yaml" in header, header
    monkeypatch.undo()  # the adapter fixed: the regression case passes
    assert run_point(load_file(report.written)[0][0].points[0], "cpu").status == "passed"


def test_the_cli_prints_the_summary_and_says_what_it_found(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["fuzz", "relu", "--examples", "3", "--seed", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for line in ("drawn         3", "valid         3", "passed        3", "divergent     0", "errors        0",
                 "time"):
        assert line in out, out
    assert list(tmp_path.iterdir()) == []  # nothing found, nothing written
    assert main(["fuzz", "relu_x", "--examples", "3"]) == 2
    assert "did you mean 'relu'" in capsys.readouterr().err
    assert main(["fuzz", "relu", "--dtypes", "float128"]) == 2


# --- usage: one-line errors, before the search ------------------------------------------------------------------

@pytest.mark.parametrize("argv, says", [
    (["--examples", "0"], "--examples 0: must be a whole number >= 1"),
    (["--examples", "-3"], "--examples -3: must be a whole number >= 1"),
    (["--time-budget", "-1"], "--time-budget -1.0: must be a number of seconds > 0"),
    (["--time-budget", "nan"], "--time-budget nan: must be a number of seconds > 0"),
    (["--dtypes", ","], "--dtypes ',': no dtype given; allowed: float32, float64"),
    (["--dtypes", ""], "--dtypes '': no dtype given"),
    (["--dtypes", "float32,flaot64"], "unknown dtype 'flaot64' (did you mean 'float64'"),
    (["--out", "{file}/x"], "--out {file}/x: cannot write a case there: Not a directory"),
])
def test_a_bad_option_is_a_one_line_error_before_the_search(argv: list[str], says: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file").write_text("")  # a file where --out wants a folder: a finding could never be written
    argv, says = [a.format(file=tmp_path / "file") for a in argv], says.format(file=tmp_path / "file")
    monkeypatch.setattr(fuzz_search, "run_case", lambda *a, **k: pytest.fail("the search started"))
    assert main(["fuzz", "relu", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err, err


def test_gpu_without_a_gpu_is_an_error_not_a_clean_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    reason = "PyTorch sees no CUDA device (planted)"
    monkeypatch.setattr(frameworks, "gpu_unavailable_reason", lambda: reason)
    monkeypatch.setattr(runner, "gpu_unavailable_reason", lambda: reason)
    argv = ["fuzz", "relu", "--device", "gpu", "--examples", "3", "--out", str(tmp_path)]
    assert main(argv) == 2
    expected = f"xfw-harness fuzz: --device gpu: {reason}; every example would be skipped"
    assert capsys.readouterr().err.strip() == expected
    # Should the check before the search miss a reason the runner skips for, every example skipped is still exit 2.
    monkeypatch.setattr(frameworks, "gpu_unavailable_reason", lambda: None)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "skipped       3" in captured.out and f"every example was skipped: gpu: {reason}" in captured.err


# --- the time budget stops a shrinking ---------------------------------------------------------------------------

def test_a_shrinking_stopped_by_the_time_budget_says_partly_shrunk(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _same_as_symmetric(monkeypatch)
    now = [0.0]  # the budget's clock, spent the moment a failure is found: the shrinking stops at its first step
    monkeypatch.setattr(fuzz_search, "_clock", lambda: now[0])
    original = fuzz_search.run_case

    def run(case: dict[str, Any], *args: Any) -> Any:
        outcome = original(case, *args)
        if outcome.status == "failed":
            now[0] = 100.0
        return outcome

    monkeypatch.setattr(fuzz_search, "run_case", run)
    report = fuzz("conv2d", examples=200, seed=4, out=tmp_path, dtypes=("float32",), time_budget=10)
    assert report.finding is not None and report.out_of_time and report.stats.shrink_steps == 0, report.summary()
    assert "found a divergence; partly shrunk (stopped by --time-budget) after 0 steps to:" in report.summary()
    assert "drawn" in report.summary() and "  (stopped by --time-budget)" not in report.summary()
    assert report.finding["description"].startswith(
        "found by `xfw-harness fuzz conv2d --seed 4`, partly shrunk (stopped by --time-budget): ")
    assert "partly shrunk (stopped by --time-budget)" in report.written.read_text(encoding="utf-8")


# --- a new block: fuzzable with no fuzz code ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class OddParam(Param):
    """A parameter kind xfw_harness.tools.fuzz does not know (it probes it through `normalise`): an odd integer."""

    def allowed(self) -> str:
        return "an odd integer"

    def _normalise(self, v: Any) -> tuple[bool, Any]:
        return isinstance(v, int) and not isinstance(v, bool) and v % 2 == 1, v


class _TorchScaleShift(torch.nn.Module):
    def __init__(self, factor: float, shift: float) -> None:
        super().__init__()
        self.factor, self.shift = factor, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor + self.shift


class ScaleShift(Block):
    """x * factor + shift * odd: a block only this test registers."""

    name = "test_fuzz_scale_shift"
    family = "activations"
    doc = "x * factor + shift * odd."
    params = (Param("factor", "float", 1.0, minimum=0.0, maximum=4.0), Param("shift", "int", 0, minimum=0),
              OddParam("odd", "odd", 1))
    broken: ClassVar[bool] = False  # the planted Keras mistake: a shift of 2 or more is one too large

    @staticmethod
    def _shift(site: Site) -> float:
        return float(site.params["shift"] * site.params["odd"])

    def torch_module(self, site: Site) -> torch.nn.Module:
        return _TorchScaleShift(site.params["factor"], self._shift(site))

    def keras_layer(self, site: Site) -> Any:
        factor, shift = site.params["factor"], self._shift(site)
        if ScaleShift.broken and site.params["shift"] >= 2:
            shift += 1.0
        return keras.layers.Lambda(lambda x: x * factor + shift, dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        return x * site.params["factor"] + self._shift(site)


def test_a_new_block_is_fuzzable_with_no_fuzz_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    all_blocks()  # the shipped families first; then the test's block, as @register adds one, undone after the test
    monkeypatch.setitem(REGISTRY, ScaleShift.name, ScaleShift())
    assert ScaleShift.name in fuzzable_blocks()
    drawn: list[dict[str, Any]] = []
    original = fuzz_search.run_case

    def run(case: dict[str, Any], *args: Any) -> Any:
        drawn.append(case)
        return original(case, *args)

    monkeypatch.setattr(fuzz_search, "run_case", run)
    report = fuzz(ScaleShift.name, examples=10, seed=0, out=None)
    assert report.finding is None and report.stats.statuses["passed"] == 10, report.summary()
    odd = {c.get("params", {}).get("odd") for c in drawn} - {None}
    assert odd and all(v % 2 == 1 for v in odd), odd  # the unknown kind was drawn, through its own normalise

    monkeypatch.setattr(ScaleShift, "broken", True)
    report = fuzz(ScaleShift.name, examples=100, seed=0, out=tmp_path)
    assert report.finding is not None and report.finding_outcome.status == "failed", report.summary()
    assert report.finding["params"] == {"shift": 2}, report.finding  # shrunk to the mistake's threshold
    assert report.finding["input"]["shape"] == [1, 1] and report.finding["input"]["dtype"] == "float32"
    (entry,), error = load_file(report.written)
    assert error is None and entry.error is None and run_point(entry.points[0], "cpu").status == "failed"
    monkeypatch.undo()
    assert ScaleShift.name not in all_blocks()


# --- Keras's backends ----------------------------------------------------------------------------------------------

OTHER_BACKENDS = [b for b in frameworks.installed_backends() if b != frameworks.BACKEND]


@pytest.mark.skipif(not OTHER_BACKENDS, reason="only one Keras backend is installed")
def test_fuzz_searches_on_each_backend_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """This process's backend in place, another in a process of its own (its summary says which Keras ran)."""
    other = OTHER_BACKENDS[0]
    assert main(["fuzz", "relu", "--examples", "3", "--seed", "1", "--out", str(tmp_path), "--keras-backend", other,
                 "--keras-backend", frameworks.BACKEND]) == 0
    out = capsys.readouterr().out
    here = out.index(f"xfw-harness fuzz relu: seed 1, 3 valid examples asked, Keras on {frameworks.BACKEND}\n")
    there = out.index(f"xfw-harness fuzz relu: seed 1, 3 valid examples asked, Keras on {other}\n")
    assert (here < there) == (frameworks.BACKENDS.index(frameworks.BACKEND) < frameworks.BACKENDS.index(other))
    assert out.count("passed        3") == 2, out
    assert list(tmp_path.iterdir()) == []


def test_fuzz_refuses_an_unknown_backend(capsys: pytest.CaptureFixture) -> None:
    assert main(["fuzz", "relu", "--examples", "3", "--keras-backend", "pytorch"]) == 2
    assert "--keras-backend 'pytorch': not a Keras backend" in capsys.readouterr().err


def test_a_finding_on_another_backend_says_how_to_reproduce_it_and_has_its_own_file() -> None:
    from xfw_harness.tools.fuzz.finding import finding_file, reproduce_command

    assert finding_file("conv2d", 4, "tensorflow") == "conv2d-seed4.yaml"  # the default backend: as before
    assert finding_file("conv2d", 4, "jax") == "conv2d-seed4-jax.yaml"
    assert reproduce_command("conv2d", 4, "tensorflow") == "xfw-harness fuzz conv2d --seed 4"
    assert reproduce_command("conv2d", 4, "torch") == "xfw-harness fuzz conv2d --seed 4 --keras-backend torch"
    assert finding_file("conv2d", 4) == finding_file("conv2d", 4, frameworks.BACKEND)
