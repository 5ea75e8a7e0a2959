"""The mutation tool's driver (scripts/mutation_tool.py, `make mutation`) on a small fixture: mutmut's own mutation of
a tiny module (its real file format), results planted per mutant, without running the tool's tests. The driver must
locate each mutant in the unmutated file, count per module, apply the reviewed list of equivalent mutants, and fail on
an unlisted survivor, a stale entry or an entry without a reason."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "scripts" / "mutation_tool.py")
tool = importlib.util.module_from_spec(spec)
sys.modules["mutation_tool"] = tool
spec.loader.exec_module(tool)

SOURCE = textwrap.dedent('''\
    """A module for the fixture."""


    def within(diff: float, allowed: float) -> bool:
        """True where the error fits the tolerance."""
        return diff <= allowed


    class Counter:
        def count(self, flags: list[bool]) -> int:
            total = 0
            for flag in flags:
                total += int(flag)
            return total
    ''')


def _mutmut_run(tmp_path: Path, status_of) -> tuple[Path, list[str]]:  # noqa: ANN001 - mutant id -> exit code
    """mutants/pkg/mod.py as mutmut writes it, and its .meta with the exit code `status_of` gives each mutant."""
    from mutmut.mutation.file_mutation import mutate_file_contents

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(SOURCE, encoding="utf-8")
    mutated = mutate_file_contents("pkg/mod.py", SOURCE)
    out = tmp_path / "mutants" / "pkg"
    out.mkdir(parents=True)
    (out / "mod.py").write_text(mutated.code, encoding="utf-8")
    ids = [f"pkg.mod.{name}" for name in mutated.mutant_names]
    codes = {i: status_of(i) for i in ids}
    (out / "mod.py.meta").write_text(json.dumps({"exit_code_by_key": codes}), encoding="utf-8")
    return tmp_path / "mutants", ids


def _line_of(text: str) -> int:
    return next(n for n, line in enumerate(SOURCE.splitlines(), 1) if text in line)


def test_every_mutant_is_located_in_the_unmutated_file_with_its_change(tmp_path: Path) -> None:
    mutants_dir, ids = _mutmut_run(tmp_path, lambda i: 1)
    found = tool.read_results(mutants_dir, tmp_path)
    assert len(found) == len(ids) >= 4 and {m.function for m in found} == {"within", "Counter.count"}
    assert all(m.file == "pkg/mod.py" and m.status == "killed" for m in found)
    by_change = {(m.before, m.after): m for m in found}
    # the comparison mutated: on the `return` line of `within`, not on its def line
    flipped = by_change[("return diff <= allowed", "return diff < allowed")]
    assert flipped.line == _line_of("return diff <= allowed") and flipped.function == "within"
    method = [m for m in found if m.function == "Counter.count"]
    assert {m.line for m in method} <= {_line_of("total = 0"), _line_of("total += int(flag)"), _line_of("return total")}
    assert any(m.line == _line_of("total += int(flag)") for m in method)
    assert all(m.before and m.after and m.before != m.after for m in found)


def test_scores_per_module_equivalents_survivors_and_stale_entries(tmp_path: Path) -> None:
    mutants_dir, ids = _mutmut_run(tmp_path, lambda i: 0 if "x_within" in i else 1)
    found = tool.read_results(mutants_dir, tmp_path)
    survivors = [m for m in found if m.function == "within"]
    assert survivors and all(m.status == "survived" for m in survivors)

    report = tool.judge(found, [])
    assert not report.ok and report.survivors == survivors
    assert report.rows == {"pkg/mod.py": (len(found) - len(survivors), 0, len(found))}
    text = tool.render(report)
    assert "SURVIVED" in text and f"pkg/mod.py:{survivors[0].line} in within" in text

    reviewed = [tool.Equivalent(m.file, m.function, m.before, m.after, "fixture: reviewed") for m in survivors]
    report = tool.judge(found, reviewed)
    assert report.ok and report.rows["pkg/mod.py"] == (len(found) - len(survivors), len(survivors), len(found))
    assert "100.0%" in tool.render(report).splitlines()[1]

    # an entry whose mutant is gone (or now caught) is stale: the list must shrink with the code
    gone = tool.Equivalent("pkg/mod.py", "within", "return diff <= allowed", "return True", "no such mutant")
    report = tool.judge(found, [*reviewed, gone])
    assert not report.ok and report.stale == [gone] and "STALE" in tool.render(report)
    caught_now = tool.judge(tool.read_results(*_rerun_all_killed(mutants_dir), tmp_path), reviewed)
    assert not caught_now.ok and caught_now.stale == reviewed


def _rerun_all_killed(mutants_dir: Path) -> tuple[Path]:
    meta = mutants_dir / "pkg" / "mod.py.meta"
    data = json.loads(meta.read_text(encoding="utf-8"))
    data["exit_code_by_key"] = dict.fromkeys(data["exit_code_by_key"], 1)
    meta.write_text(json.dumps(data), encoding="utf-8")
    return (mutants_dir,)


def test_unchecked_mutants_fail_the_report(tmp_path: Path) -> None:
    mutants_dir, _ = _mutmut_run(tmp_path, lambda i: None)
    report = tool.judge(tool.read_results(mutants_dir, tmp_path), [])
    assert not report.ok and report.unchecked and "NOT CHECKED" in tool.render(report)


def test_the_reviewed_list_refuses_an_entry_without_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "equivalent.yaml"
    path.write_text("- {file: a.py, function: f, before: 'x = 1', after: 'x = 2', why: ''}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="entry 1 lacks why"):
        tool.load_equivalents(path)
    path.write_text("- {file: a.py, function: f, before: 'x = 1', after: 'x = 2', why: 'never read'}\n",
                    encoding="utf-8")
    assert tool.load_equivalents(path) == [tool.Equivalent("a.py", "f", "x = 1", "x = 2", "never read")]


def test_the_shipped_list_is_well_formed_and_names_mutated_modules() -> None:
    """Each entry of mutation/equivalent.yaml has a reason and points at a module that a scope of pyproject.toml has
    mutmut mutate."""
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    mutated = {*tools["mutmut"]["only_mutate"],
               *(f for scope in tools[tool.SCOPES].values() for f in scope["only_mutate"])}
    for entry in tool.load_equivalents(tool.EQUIVALENT):
        assert entry.file in mutated, entry
        assert entry.function in tool._functions(__import__("ast").parse((ROOT / entry.file).read_text())), entry


def test_a_timeout_is_rechecked_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """Every mutant mutmut reported as a timeout is rerun, not forked, against its function's tests: a mutant those
    tests catch becomes killed, one they do not catch survived, one that really loops stays a timeout; the results are
    written back where mutmut keeps them, and the other mutants' are left alone."""
    mutants_dir, ids = _mutmut_run(tmp_path, lambda i: 1)
    by_change = {(m.before, m.after): m.id for m in tool.read_results(mutants_dir, tmp_path)}
    caught = by_change[("return diff <= allowed", "return diff < allowed")]  # within(1, 1) is False
    loops = by_change[("total = 0", "total = 1")]  # count([True]) is 2: test_counts waits for ever
    missed = by_change[("total += int(flag)", "total = int(flag)")]  # count([True]) is still 1
    crashes = by_change[("total += int(flag)", "total += int(None)")]  # TypeError: the test fails
    (mutants_dir / "tests").mkdir()
    (mutants_dir / "tests" / "test_mod.py").write_text(textwrap.dedent('''\
        from pkg.mod import Counter, within


        def test_equal_fits():
            assert within(1.0, 1.0)


        def test_counts():
            while Counter().count([True]) != 1:
                pass
        '''), encoding="utf-8")
    stats = {"tests_by_mangled_function_name": {caught.partition(tool.MARK)[0]: ["tests/test_mod.py::test_equal_fits"],
                                                loops.partition(tool.MARK)[0]: ["tests/test_mod.py::test_counts"]}}
    (mutants_dir / "mutmut-stats.json").write_text(json.dumps(stats), encoding="utf-8")
    meta = mutants_dir / "pkg" / "mod.py.meta"

    def recheck(timed_out: set[str], limit_s: float, workers: int = 1) -> dict[str, str]:
        meta.write_text(json.dumps({"exit_code_by_key": {i: -24 if i in timed_out else 1 for i in ids}}),
                        encoding="utf-8")
        return dict(tool.recheck_timeouts(mutants_dir, limit_s=limit_s, workers=workers))

    # a generous limit where the tests end (a loaded machine starts pytest slowly); a short one where they cannot;
    # several at a time, each result written to its own mutant
    assert recheck({caught, missed, crashes}, limit_s=300, workers=3) == {caught: "killed", missed: "survived",
                                                                          crashes: "killed"}
    written = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    assert (written[caught], written[missed], written[crashes]) == (1, 0, 1)
    assert all(written[i] == 1 for i in ids if i not in {caught, missed, crashes})
    assert recheck({loops}, limit_s=5) == {loops: "timeout"}
    assert tool.CAUGHT[json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"][loops]] == "timeout"


def test_a_rerun_retests_every_mutant_not_caught(tmp_path: Path) -> None:
    """mutmut keeps a cached survivor while its function's code is unchanged, even after a test was added to kill
    it: the driver marks survivors (and mutants no test reached) unchecked before each run; caught ones stay."""
    codes = {}
    mutants_dir, ids = _mutmut_run(tmp_path, lambda i: codes.setdefault(i, [0, 33, 1, -24, 5][len(codes) % 5]))
    assert tool.reset_not_caught(mutants_dir) == sum(code in (0, 33, 5) for code in codes.values())
    written = json.loads((mutants_dir / "pkg" / "mod.py.meta").read_text(encoding="utf-8"))["exit_code_by_key"]
    assert written == {i: None if code in (0, 33, 5) else code for i, code in codes.items()}
    assert tool.reset_not_caught(mutants_dir) == 0


def test_a_further_scope_runs_in_its_own_folder_with_its_own_configuration(tmp_path: Path) -> None:
    """`--scope NAME`: mutmut reads one [tool.mutmut] per folder, so a scope gets .mutation/NAME/ with links to the
    package, tests and cases, and the project's pyproject.toml whose [tool.mutmut] is the scope's (the rest kept)."""
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent('''\
        [tool.pytest.ini_options]
        testpaths = ["tests"]

        [tool.mutmut]
        source_paths = ["xfw_harness"]
        only_mutate = ["xfw_harness/core/compare.py"]

        [tool.xfw_harness_mutation.geometry]
        only_mutate = ["xfw_harness/blocks/g.py"]
        tests = ["cases/g.yaml"]
        pytest_args = ["--keras-backend", "tensorflow"]
        '''), encoding="utf-8")
    for item in tool.LINKED:
        (tmp_path / item).mkdir()
    assert tool.scope_folder("verdicts", tmp_path) == tmp_path
    folder = tool.scope_folder("geometry", tmp_path)
    assert folder == tmp_path / ".mutation" / "geometry"
    assert all((folder / item).resolve() == (tmp_path / item).resolve() for item in tool.LINKED)
    config = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["pytest"]["ini_options"] == {"testpaths": ["tests"]}
    assert config["tool"]["mutmut"] == {
        "source_paths": ["xfw_harness"], "only_mutate": ["xfw_harness/blocks/g.py"],
        "pytest_add_cli_args_test_selection": ["cases/g.yaml"],
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q", "--keras-backend", "tensorflow"],
        "also_copy": ["cases"], "process_isolation": "forkserver"}
    assert tool.scope_folder("geometry", tmp_path) == folder  # made again over the old one
    with pytest.raises(KeyError, match="no mutation scope 'nope' \\(scopes: verdicts, geometry\\)"):
        tool.scope_folder("nope", tmp_path)


def test_the_reviewed_entries_of_another_scope_are_not_stale(tmp_path: Path) -> None:
    mutants_dir, _ = _mutmut_run(tmp_path, lambda i: 1)
    elsewhere = tool.Equivalent("xfw_harness/blocks/g.py", "f", "x = 1", "x = 2", "another scope's")
    report = tool.judge(tool.read_results(mutants_dir, tmp_path), [elsewhere])
    assert report.ok and report.stale == []


def test_a_mutant_that_breaks_the_tests_collection_is_caught(tmp_path: Path) -> None:
    """A case file's loading runs block code: a mutant there makes pytest stop at collection (exit 2, or 4 "found no
    collectors"), which a user's run shows as an error, so the mutant is caught."""
    codes = iter([2, 4, 0, 1, 5])
    mutants_dir, _ = _mutmut_run(tmp_path, lambda i: next(codes, 1))
    statuses = [m.status for m in tool.read_results(mutants_dir, tmp_path)]
    assert statuses[:5] == ["collection error", "collection error", "survived", "killed", "no tests"]
    assert [m.caught for m in tool.read_results(mutants_dir, tmp_path)][:5] == [True, True, False, True, False]
