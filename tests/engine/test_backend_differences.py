"""The per-backend catalogue (cases/backend_differences.yaml): every entry names its Keras source, a correct case that
exists, the verdict that shows it and the figures measured, says on which backends it holds (expect.backends), and
still holds there: DIVERGENT with that verdict failing on each backend it names, an ordinary pass on each other
backend it runs on (a test per entry and backend, run in that backend's worker where it is not this process's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xfw_harness.cases import Point, load_file
from xfw_harness.core.frameworks import installed_backends
from xfw_harness.suite.backends import run_on_backend

PROJECT = Path(__file__).resolve().parents[2]
CATALOGUE = PROJECT / "cases" / "backend_differences.yaml"
TEXT = CATALOGUE.read_text(encoding="utf-8")
ENTRIES = [(m.group(2), m.group(1)) for m in re.finditer(r"((?:^#.*\n)*)^- name: (\S+)", TEXT, flags=re.M)]


def _points() -> dict[str, Point]:
    entries, error = load_file(CATALOGUE)
    assert error is None and all(e.error is None for e in entries), [str(e.error) for e in entries if e.error]
    return {e.name: e.points[0] for e in entries}


POINTS = _points()


def test_the_catalogue_holds_the_differences_found() -> None:
    assert len(ENTRIES) >= 6
    held = {b for point in POINTS.values() for b in point.expect_backends or ()}
    assert {"jax", "torch"} <= held


@pytest.mark.parametrize(("name", "comments"), ENTRIES, ids=[name for name, _ in ENTRIES])
def test_each_entry_names_source_correct_case_verdict_and_figures(name: str, comments: str) -> None:
    assert re.search(r"^# source: keras/src/\S+", comments, flags=re.M), f"{name}: no `# source: keras/src/...`"
    correct = re.search(r"# correct: (cases/\S+\.yaml)::(\S+)", comments)
    assert correct, f"{name}: no `# correct: cases/FILE.yaml::CASE` line above it"
    entries, error = load_file(PROJECT / correct.group(1))
    assert error is None and correct.group(2) in {e.name for e in entries}, f"{name}: {correct.group(0)} missing"
    assert re.search(r"^# differs: .+ \(\w+\)$", comments, flags=re.M), f"{name}: no `# differs: WHAT (CHECK)`"
    assert re.search(r"^# measured: .*\d", comments, flags=re.M), f"{name}: no `# measured:` figures"
    point = POINTS[name]
    assert point.expect_divergent and point.expect_backends, f"{name}: needs expect.divergent and expect.backends"
    assert point.raw.get("description") and "\n" not in point.raw["description"].strip()


def _runs() -> list[tuple[str, str]]:
    return [(name, backend) for name, _ in ENTRIES for backend in installed_backends()
            if POINTS[name].backends is None or backend in POINTS[name].backends]


@pytest.mark.parametrize(("name", "backend"), _runs(), ids=[f"{n}-{b}" for n, b in _runs()])
def test_each_entry_still_holds_where_it_says_and_passes_elsewhere(name: str, backend: str) -> None:
    point = POINTS[name]
    result = run_on_backend(point, "cpu", backend, details="none")
    if backend not in point.expect_backends:
        assert result.status == "passed", f"{name} on {backend}: {result.message}"
        return
    assert result.status == "divergent", f"{name} on {backend}: {result.message}"
    # The first `WHAT (CHECK)` of `# differs:` (more may follow, comma-separated).
    what, check = re.search(r"^# differs: (.+?) \((\w+)\)", dict(ENTRIES)[name], flags=re.M).groups()
    failing = {(v.what, v.check) for v in result.verdicts if not v.passed}
    assert (what, check) in failing, f"{name} on {backend}: {(what, check)} is not among {failing}"
