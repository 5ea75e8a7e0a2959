"""Systematic mutation testing with mutmut (issue 18): its score per module, every survivor named, the reviewed list.

mutmut (pinned in requirements.lock; configured in pyproject.toml's [tool.mutmut]: which modules, which tests) writes
every mutant of the listed modules into mutants/, runs the selected tests once to learn which test calls which
function, then runs each mutant against only the tests that call the mutated function, in forked workers of one
interpreter that has imported TensorFlow and torch once (a fresh interpreter per mutant would pay their 5 s import
each time). Its results are cached in mutants/: a rerun retests the mutants of functions whose code changed, and
(this driver resets them first) every mutant not caught, since mutmut 3.8 keeps a cached survivor even when the tests
changed. A caught mutant stays caught until mutants/ is removed (`rm -rf mutants` for a clean run).

This driver runs it, then reads its results (mutants/**/*.py.meta), prints the score per module and every mutant not
caught with its location (file:line, function, and the change) and applies the reviewed list of equivalent mutants
(mutation/equivalent.yaml): a listed mutant counts as equivalent, not surviving. Exit status 1 when a mutant
survived that the list does not name, or the list names a mutant that no longer survives (a stale entry), or a mutant
was not checked.

A timeout is rechecked before it counts: mutmut's forked workers can hang on a framework's lock (or be slowed past
their wall-clock limit by a busy machine) without the mutant looping. Each mutant that timed out is rerun against
the same tests in a fresh interpreter (no fork) with a generous limit (`--recheck-limit`), and its result written
back into mutmut's results, where its cache keeps it: killed, survived, or still a timeout (then it really loops).

Scopes: the default one is pyproject.toml's [tool.mutmut] (the modules that decide verdicts, against their unit tests),
run in the repository (results in mutants/). Each further scope, [tool.xfw_harness_mutation.NAME] (only_mutate,
tests, pytest_args), mutates other modules against other tests, e.g. the blocks' emulation geometry against the
shipped cases that pin it; mutmut reads one configuration per folder, so such a scope runs in .mutation/NAME/ (links
to the package, tests and cases, and the repository's pyproject.toml with [tool.mutmut] replaced by the scope's),
with its own results and cache there.

    python scripts/mutation_tool.py              # run (cached), recheck timeouts, then report (make mutation)
    python scripts/mutation_tool.py --report     # report the last run's results only
    python scripts/mutation_tool.py --scope emulations
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "mutation" / "equivalent.yaml"
PYPROJECT = ROOT / "pyproject.toml"
DEFAULT_SCOPE = "verdicts"  # pyproject.toml's own [tool.mutmut]
SCOPES = "xfw_harness_mutation"  # [tool.xfw_harness_mutation.NAME]: the further scopes
LINKED = ("xfw_harness", "tests", "cases")  # what a scope's folder links to
MARK = "__mutmut_"
SEPARATOR = "ǁ"  # mutmut's name for a method's mutants: xǁClassǁmethod__mutmut_N

# mutmut's exit codes (mutmut.stats.status_by_exit_code), as this report counts them. A timeout or a crash of the
# worker is the mutant's doing (the clean run passed): caught. "no tests": no selected test calls the function.
# pytest's 2 and 4 after a clean run that passed: the mutant broke the collection of the tests (a case file's loading
# computes shapes with the mutated code: "found no collectors"), which a user's run reports as an error.
CAUGHT = {1: "killed", 3: "killed", 37: "caught by type check", -24: "timeout", 24: "timeout", 152: "timeout",
          36: "timeout", 255: "timeout", -11: "segfault", -9: "segfault", 2: "collection error", 4: "collection error"}
NOT_CAUGHT = {0: "survived", 5: "no tests", 33: "no tests", 35: "suspicious"}

# Forked workers inherit the thread pools of the process that ran the clean tests; a forked TensorFlow or torch with
# more than one thread can wait forever on a lock held by a thread that was not copied (measured: every mutant whose
# tests ran a case timed out). One thread each: the workers run side by side anyway.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
                   "TF_NUM_INTEROP_THREADS": "1"}


@dataclass(frozen=True)
class Mutant:
    """One mutant as the report names it: mutmut's id, where it is in the source, and what it changes."""

    id: str
    file: str  # relative to the repository: xfw_harness/core/compare.py
    line: int  # in the unmutated file
    function: str  # compare, or Class.method
    before: str  # the changed source lines, stripped and joined by " / "
    after: str
    status: str

    @property
    def caught(self) -> bool:
        return self.status in CAUGHT.values()

    def describe(self) -> str:
        return f"{self.file}:{self.line} in {self.function}: {self.before!r} -> {self.after!r} [{self.id}]"


def _functions(tree: ast.AST) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function of a module by its qualified name (Class.method for a method, nested ones skipped)."""
    found = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{item.name}"] = item
    return found


def _source_lines(source: str, node: ast.AST) -> list[str]:
    return source.splitlines()[node.lineno - 1:node.end_lineno]


def _mangled(mutant_id: str) -> tuple[str, str]:
    """(the function's qualified name, the name of the mutant's function in mutmut's file) from a mutant id."""
    name = mutant_id.rpartition(".")[2] if SEPARATOR not in mutant_id else mutant_id[mutant_id.index("x" + SEPARATOR):]
    base = name.partition(MARK)[0]
    if base.startswith("x" + SEPARATOR):
        _, cls, method = base.split(SEPARATOR)
        return f"{cls}.{method}", name
    return base[2:], name


class SourcePair:
    """A module's unmutated source and mutmut's copy of it, each parsed once (the copy holds every mutant)."""

    def __init__(self, mutated_source: str, original_source: str) -> None:
        self.mutated_source = mutated_source
        self.mutated = {n.name: n for n in ast.walk(ast.parse(mutated_source)) if isinstance(n, ast.FunctionDef)}
        self.originals = _functions(ast.parse(original_source))


def locate(mutant_id: str, status: str, file: str, sources: SourcePair) -> Mutant:
    """A mutant's location and change: its function in mutmut's file diffed with the original's copy there
    (`x_f__mutmut_orig`), the first changed line mapped to the unmutated file through the function's `def` line."""
    function, name = _mangled(mutant_id)
    mutated, mutated_source, originals = sources.mutated, sources.mutated_source, sources.originals
    orig_name = name.partition(MARK)[0] + MARK + "orig"
    if name not in mutated or orig_name not in mutated:
        raise ValueError(f"{file}: mutant {mutant_id} is not in mutmut's copy of the file (rerun mutmut)")
    old = [line.replace(orig_name, "") for line in _source_lines(mutated_source, mutated[orig_name])]
    new = [line.replace(name, "") for line in _source_lines(mutated_source, mutated[name])]
    if function not in originals:
        raise ValueError(f"{file}: function {function} of mutant {mutant_id} is not in the source (rerun mutmut)")
    removed, added, first = [], [], None
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            first = i1 if first is None else first
            removed += [s.strip() for s in old[i1:i2]]
            added += [s.strip() for s in new[j1:j2]]
    line = originals[function].lineno + (first or 0)
    return Mutant(mutant_id, file, line, function, " / ".join(removed), " / ".join(added), status)


def read_results(mutants_dir: Path, root: Path) -> list[Mutant]:
    """Every mutant mutmut generated under `mutants_dir`, with its last status ("not checked" before its run)."""
    found = []
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        relative = meta.relative_to(mutants_dir).with_suffix("")  # xfw_harness/core/compare.py
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        sources = SourcePair((mutants_dir / relative).read_text(encoding="utf-8"),
                             (root / relative).read_text(encoding="utf-8"))
        for mutant_id, code in sorted(codes.items()):
            status = CAUGHT.get(code) or NOT_CAUGHT.get(code) or ("not checked" if code is None else f"exit {code}")
            found.append(locate(mutant_id, status, relative.as_posix(), sources))
    return found


@dataclass(frozen=True)
class Equivalent:
    """A reviewed entry of mutation/equivalent.yaml: a mutant that no test can catch, and why."""

    file: str
    function: str
    before: str
    after: str
    why: str

    def matches(self, mutant: Mutant) -> bool:
        # Not by mutmut's id: its numbering shifts whenever the function changes; the change itself does not.
        return (self.file, self.function, self.before, self.after) == (mutant.file, mutant.function, mutant.before,
                                                                       mutant.after)


def load_equivalents(path: Path) -> list[Equivalent]:
    """The reviewed list; an entry without one of the fields, or without a reason, is refused with its number."""
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or []) if path.exists() else []
    entries = []
    fields = ("file", "function", "before", "after", "why")
    for n, item in enumerate(data, 1):
        missing = [f for f in fields if not isinstance(item, dict) or not str(item.get(f, "")).strip()]
        if missing:
            raise ValueError(f"{path}: entry {n} lacks {', '.join(missing)} (each entry needs {', '.join(fields)})")
        entries.append(Equivalent(*(str(item[f]) for f in fields)))
    return entries


@dataclass(frozen=True)
class Report:
    rows: dict[str, tuple[int, int, int]]  # file -> (caught, equivalent, total)
    caught: list[Mutant]
    survivors: list[Mutant]  # not caught, not listed
    equivalent: list[Mutant]
    stale: list[Equivalent]  # listed, but no surviving mutant of a mutated file matches
    unchecked: list[Mutant]

    @property
    def ok(self) -> bool:
        return not (self.survivors or self.stale or self.unchecked)


def judge(mutants: Iterable[Mutant], equivalents: list[Equivalent]) -> Report:
    """Per-module counts, with the reviewed list applied. The score of a module is caught / (total - equivalent)."""
    rows: dict[str, list[int]] = {}
    caught, survivors, equivalent, unchecked, used = [], [], [], [], set()
    for m in mutants:
        row = rows.setdefault(m.file, [0, 0, 0])
        row[2] += 1
        if m.status == "not checked":
            unchecked.append(m)
        elif m.caught:
            row[0] += 1
            caught.append(m)
        elif listed := [e for e in equivalents if e.matches(m)]:
            row[1] += 1
            equivalent.append(m)
            used.update(listed)
        else:
            survivors.append(m)
    stale = [e for e in equivalents if e not in used and e.file in rows]  # another scope's entries are not judged
    return Report({f: tuple(r) for f, r in sorted(rows.items())}, caught, survivors, equivalent, stale, unchecked)


def render(report: Report) -> str:
    lines = [f"{'module':48} {'caught':>7} {'equiv.':>7} {'total':>6} {'score':>7}"]
    for file, (caught, equivalent, total) in report.rows.items():
        score = caught / (total - equivalent) if total > equivalent else 1.0
        lines.append(f"{file:48} {caught:7} {equivalent:7} {total:6} {score:7.1%}")
    caught, equivalent, total = (sum(r[i] for r in report.rows.values()) for i in range(3))
    score = caught / (total - equivalent) if total > equivalent else 1.0
    lines.append(f"{'all':48} {caught:7} {equivalent:7} {total:6} {score:7.1%}")
    timeouts = [m for m in report.caught if m.status == "timeout"]
    for title, items in (("timeout, counted as caught (rechecked unforked after the run: it loops)", timeouts),
                         ("equivalent (mutation/equivalent.yaml)", report.equivalent),
                         ("SURVIVED (kill it with a test, or list it as equivalent with the reason)", report.survivors),
                         ("NOT CHECKED (the run did not finish)", report.unchecked)):
        if items:
            lines.append(f"{title}: {len(items)}")
            lines += [f"  {m.status}: {m.describe()}" for m in items]
    if report.stale:
        lines.append(f"STALE entries of mutation/equivalent.yaml (no such surviving mutant now): {len(report.stale)}")
        lines += [f"  {e.file} in {e.function}: {e.before!r} -> {e.after!r}" for e in report.stale]
    return "\n".join(lines)


def scope_folder(name: str, root: Path = ROOT) -> Path:
    """Where mutmut runs scope `name`: the repository for the default scope; else .mutation/NAME/, made (again) here
    from [tool.xfw_harness_mutation.NAME]. Raises KeyError naming the scopes there are."""
    if name == DEFAULT_SCOPE:
        return root
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    scopes = tomllib.loads(text).get("tool", {}).get(SCOPES, {})
    if name not in scopes:
        raise KeyError(f"no mutation scope {name!r} (scopes: {', '.join([DEFAULT_SCOPE, *scopes])})")
    scope = scopes[name]
    folder = root / ".mutation" / name
    folder.mkdir(parents=True, exist_ok=True)
    for item in LINKED:
        if not (folder / item).is_symlink():
            (folder / item).symlink_to(root / item)
    pytest_args = ["-p", "no:cacheprovider", "-q", *scope.get("pytest_args", [])]
    # JSON's lists of strings are TOML's too.
    table = "\n".join(["[tool.mutmut]", 'source_paths = ["xfw_harness"]',
                       f"only_mutate = {json.dumps(scope['only_mutate'])}",
                       f"pytest_add_cli_args_test_selection = {json.dumps(scope['tests'])}",
                       f"pytest_add_cli_args = {json.dumps(pytest_args)}",
                       'also_copy = ["cases"]', 'process_isolation = "forkserver"', ""])
    text = re.sub(r"^\[tool\.mutmut\]\n(?:(?!\[).*\n)*", lambda _: table + "\n", text, count=1, flags=re.M)
    (folder / "pyproject.toml").write_text(text, encoding="utf-8")
    return folder


def run_mutmut(max_children: int, folder: Path = ROOT) -> int:
    """mutmut's own run in `folder` (its config: the pyproject.toml there), in single-threaded workers
    (SINGLE_THREADED)."""
    env = {**os.environ, **SINGLE_THREADED, "PYTHONPATH": ""}  # mutmut puts its mutants/ copy first itself
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    return subprocess.run(command, cwd=folder, env=env, stdout=subprocess.DEVNULL).returncode


def reset_not_caught(mutants_dir: Path) -> int:
    """Mark every mutant that was not caught as not checked in mutmut's results, so that its run retests it against
    the tests as they are now (mutmut's cache follows the mutated functions' code, not the tests). Returns how many."""
    count = 0
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        codes = data["exit_code_by_key"]
        stale = [m for m, code in codes.items() if code in NOT_CAUGHT]
        for mutant_id in stale:
            codes[mutant_id] = None
        if stale:
            meta.write_text(json.dumps(data, indent=4), encoding="utf-8")
            count += len(stale)
    return count


def recheck_timeouts(mutants_dir: Path, limit_s: float, workers: int = 1) -> list[tuple[str, str]]:
    """Rerun each mutant whose status is a timeout in a fresh interpreter, in `mutants_dir` (where mutmut's copy of the
    package is first on the path), against the tests mutmut selected for its function, at most `limit_s` seconds,
    `workers` at a time; write the exit code into mutmut's .meta. Returns (mutant id, new status) for each one
    rechecked, in the order of the .meta files."""
    tests_by_function = json.loads((mutants_dir / "mutmut-stats.json").read_text(encoding="utf-8"))[
        "tests_by_mangled_function_name"]
    timeout_codes = {code for code, status in CAUGHT.items() if status == "timeout"}

    def rerun(mutant_id: str) -> int:
        tests = sorted(tests_by_function.get(mutant_id.partition(MARK)[0], []))
        env = {**os.environ, **SINGLE_THREADED, "MUTANT_UNDER_TEST": mutant_id, "PYTHONPATH": str(mutants_dir)}
        command = [sys.executable, "-m", "pytest", "--rootdir=.", "-x", "-q", "-p", "no:randomly",
                   "-p", "no:cacheprovider", *tests]
        try:
            return subprocess.run(command, cwd=mutants_dir, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=limit_s).returncode
        except subprocess.TimeoutExpired:
            return 36  # mutmut's code for a timeout: it really loops (or is that slow)

    rechecked = []
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        for meta in sorted(mutants_dir.rglob("*.py.meta")):
            data = json.loads(meta.read_text(encoding="utf-8"))
            codes = data["exit_code_by_key"]
            timed_out = [m for m, code in codes.items() if code in timeout_codes]
            for mutant_id, code in zip(timed_out, pool.map(rerun, timed_out)):
                codes[mutant_id] = code
                rechecked.append((mutant_id, CAUGHT.get(code) or NOT_CAUGHT.get(code) or f"exit {code}"))
            if timed_out:  # after each file: an interrupted recheck keeps what it found
                meta.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return rechecked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="report the last run's results; run nothing")
    parser.add_argument("-j", "--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--recheck-limit", type=float, default=600.0, metavar="S",
                        help="seconds a timed-out mutant's tests may take when rerun in a fresh interpreter")
    parser.add_argument("--scope", default=DEFAULT_SCOPE,
                        help=f"which modules against which tests (default {DEFAULT_SCOPE}: [tool.mutmut]; others: "
                             f"[tool.{SCOPES}.NAME] in pyproject.toml)")
    args = parser.parse_args(argv)
    try:
        folder = scope_folder(args.scope)
    except KeyError as e:
        print(f"mutation_tool: {e.args[0]}", file=sys.stderr)
        return 2
    if not args.report:
        reset_not_caught(folder / "mutants")
        if (code := run_mutmut(args.max_children, folder)) != 0:
            print(f"mutmut run failed (exit status {code}); rerun `python -m mutmut run` in {folder} to see why",
                  file=sys.stderr)
            return 2
        for mutant_id, status in recheck_timeouts(folder / "mutants", args.recheck_limit, args.max_children):
            print(f"timeout rechecked in a fresh interpreter: {status}: {mutant_id}")
    mutants = read_results(folder / "mutants", ROOT)
    if not mutants:
        print(f"no mutmut results in {folder / 'mutants'}: run without --report first", file=sys.stderr)
        return 2
    report = judge(mutants, load_equivalents(EQUIVALENT))
    print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
