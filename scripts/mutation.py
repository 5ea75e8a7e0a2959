"""Mutation check: can the shipped cases catch realistic bugs in the harness and its adapters?

Each mutant of scripts/mutants.py is applied, alone, to a copy of the harness package in a temporary folder; a
child Python process, whose `import xfw_harness` picks that copy (it checks xfw_harness.__file__), runs the shipped
cases on the CPU, in order, and stops at the first test that fails or errors. A mutant is

- caught: a shipped test failed or errored (the first one is named);
- survived: every shipped test passed, a gap in the shipped cases;
- invalid: it does not apply (its text is not found exactly once), or the mutated harness cannot even be
  imported or crashes outside a test; reported apart, never counted as caught.

The identity mutant (no change) runs first as a control: it must survive. Prints one line per mutant, then
`mutation score: CAUGHT/TOTAL`; exit status 1 if a mutant survived or is invalid.

    python scripts/mutation.py                         # every mutant, every shipped case (make mutation)
    python scripts/mutation.py -m conv_kernel_3210 -j 1   # one mutant
    python scripts/mutation.py --cases cases/pooling.yaml --list
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutants import IDENTITY, MUTANTS, Mutant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xfw_harness"
TAG = "MUTATION-CHILD "

# Runs in the child, in the temporary folder that holds the mutated package (first on sys.path).
CHILD = r"""
import json, os, sys
def say(**kw):
    print("MUTATION-CHILD " + json.dumps(kw), flush=True)
import xfw_harness
say(event="imported", file=xfw_harness.__file__)
# every layer a mutant may touch, imported before the first case
import xfw_harness.blocks, xfw_harness.cases, xfw_harness.engine
say(event="ready")
from xfw_harness.suite.collect import plan_tests
from xfw_harness.cases import load_paths
entries, file_errors = load_paths(sys.argv[1:])
for error in file_errors:
    say(event="caught", test=f"{error.file}::<file>", status="error", message=str(error), ran=0, of=0)
    sys.exit(0)
tests = plan_tests(entries, device="cpu")
# The tests of the blocks the mutated module defines first (a mutant of blocks/pooling.py meets a pooling case at
# once, not after every case before it: the verdict is the same, the run minutes shorter); the canaries last: a
# broken block also breaks a canary's torch-vs-keras check, but the block's own test says more.
mutated = os.environ.get("MUTATED_MODULE", "")
def blocks_of(layers):
    for layer in layers:
        yield layer.block
        for value in layer.params.values():
            if isinstance(value, tuple) and value and hasattr(value[0], "block"):
                yield from blocks_of(value)
def uses_mutated(test):
    point = test.point
    return point is not None and any(type(b).__module__ == mutated for b in blocks_of(point.layers))
tests.sort(key=lambda t: (getattr(t.point, "expect_fails", None) is not None, not uses_mutated(t)))
for n, test in enumerate(tests, 1):
    result = test.run("none")
    if result.status in ("failed", "error"):
        say(event="caught", test=result.id, status=result.status, message=result.message, ran=n, of=len(tests))
        sys.exit(0)
say(event="survived", ran=len(tests), of=len(tests))
"""


class MutantError(Exception):
    """A mutant that does not apply to the current sources."""


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # caught | survived | invalid
    test: str = ""  # the first test that caught it
    status: str = ""  # that test's status: failed or error
    message: str = ""  # its message's first line, or why the mutant is invalid
    seconds: float = 0.0
    ran: int = 0  # tests run until it was caught


def mutate(text: str, mutant: Mutant) -> str:
    """`text` with the mutant's replacement applied; its `old` must occur exactly once."""
    if not mutant.old:
        return text
    count = text.count(mutant.old)
    if count != 1:
        raise MutantError(f"{mutant.name}: its text occurs {count} times in xfw_harness/{mutant.file} (must be once): "
                          "update scripts/mutants.py to the current source")
    return text.replace(mutant.old, mutant.new)


def check_applies(mutant: Mutant) -> None:
    """Raise MutantError unless the mutant applies to xfw_harness/ as it is now and the result still compiles."""
    path = PACKAGE / mutant.file
    if not path.is_file():
        raise MutantError(f"{mutant.name}: xfw_harness/{mutant.file} does not exist")
    text = mutate(path.read_text(encoding="utf-8"), mutant)
    try:
        compile(text, str(path), "exec")
    except SyntaxError as e:
        raise MutantError(f"{mutant.name}: the mutated xfw_harness/{mutant.file} does not compile: {e}") from None


def _child_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    # The copy first; entries the user had stay after it (a machine may find its frameworks through them).
    env.update(PYTHONPATH=os.pathsep.join([str(folder), *filter(None, os.environ.get("PYTHONPATH", "").split(
        os.pathsep))]), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    # The mutants are the harness's own mistakes, the same on every Keras backend: the shipped cases run on this
    # process's backend ($HARNESS_KERAS_BACKENDS overrides). Mistakes on one backend only are planted into Keras by
    # tests/suite/test_backend_planted.py.
    env.setdefault("HARNESS_KERAS_BACKENDS", os.environ.get("KERAS_BACKEND", "tensorflow"))
    return env


def run_mutant(mutant: Mutant, cases: list[str], timeout_s: float = 3600.0) -> Outcome:
    """Apply `mutant` to a copy of xfw_harness/, run `cases` against it in a child process, and say what happened."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        folder = Path(tmp)
        try:
            check_applies(mutant)
            shutil.copytree(PACKAGE, folder / "xfw_harness", ignore=shutil.ignore_patterns("__pycache__"))
            target = folder / "xfw_harness" / mutant.file
            target.write_text(mutate(target.read_text(encoding="utf-8"), mutant), encoding="utf-8")
        except MutantError as e:
            return Outcome(mutant, "invalid", message=str(e), seconds=time.perf_counter() - start)
        # The cases, copied beside the package, keep their relative paths (their data files, the test ids).
        args = []
        for case in cases:
            path = Path(case).resolve()
            if not path.is_relative_to(ROOT):
                args.append(str(path))
                continue
            rel = path.relative_to(ROOT)
            top = ROOT / rel.parts[0]
            if not (folder / rel.parts[0]).exists():
                if top.is_dir():
                    shutil.copytree(top, folder / rel.parts[0], ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(top, folder / rel.parts[0])
            args.append(str(rel))
        try:
            module = "xfw_harness." + mutant.file.removesuffix(".py").replace("/", ".")
            env = {**_child_env(folder), "MUTATED_MODULE": module}
            proc = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=folder, env=env,
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return Outcome(mutant, "invalid", message=f"the child ran past {timeout_s:g} s",
                           seconds=time.perf_counter() - start)
        events = [json.loads(line[len(TAG):]) for line in proc.stdout.splitlines() if line.startswith(TAG)]
        seconds = time.perf_counter() - start
        by = {e["event"]: e for e in events}
        imported = by.get("imported")
        if imported is not None and not Path(imported["file"]).resolve().is_relative_to(folder.resolve()):
            return Outcome(mutant, "invalid", message=f"the child imported {imported['file']}, not the mutated copy "
                           "(an installed package shadows it)", seconds=seconds)
        if "ready" not in by:
            return Outcome(mutant, "invalid", message="the mutated harness does not import: "
                           + _last_line(proc.stderr), seconds=seconds)
        if "caught" in by:
            e = by["caught"]
            return Outcome(mutant, "caught", test=e["test"], status=e["status"],
                           message=(e["message"].strip().splitlines() or [""])[0], seconds=seconds, ran=e["ran"])
        if "survived" in by:
            return Outcome(mutant, "survived", seconds=seconds, ran=by["survived"]["ran"])
        return Outcome(mutant, "invalid", message=f"the child crashed outside a test (exit {proc.returncode}): "
                       + _last_line(proc.stderr), seconds=seconds)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def run_all(mutants: list[Mutant], cases: list[str], jobs: int, report=print) -> list[Outcome]:  # noqa: ANN001
    """Run every mutant (in parallel, `jobs` at a time), reporting each outcome as it comes; in list order."""
    outcomes: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(run_mutant, m, cases): m for m in mutants}
        for future in futures:  # in submission order: the table reads in the list's order
            outcome = future.result()
            outcomes[outcome.mutant.name] = outcome
            report(_row(outcome))
    return [outcomes[m.name] for m in mutants]


def _row(o: Outcome) -> str:
    verdict = {"caught": "CAUGHT", "survived": "SURVIVED", "invalid": "INVALID"}[o.verdict]
    where = f"{o.test} ({o.status}, test {o.ran})" if o.verdict == "caught" else o.message or f"{o.ran} tests passed"
    return f"{verdict:8}  {o.mutant.name:38}  {o.mutant.file:22}  {o.seconds:5.1f}s  {where}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["cases"], help="case files or folders (default: cases)")
    parser.add_argument("-m", "--mutant", action="append", help="run only this mutant (repeatable)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                        help="mutants run at a time (default: the number of CPUs)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    mutants = list(MUTANTS)
    if args.mutant:
        unknown = sorted(set(args.mutant) - {m.name for m in mutants})
        if unknown:
            print(f"unknown mutant(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.name in args.mutant]
    if args.list:
        for m in mutants:
            print(f"{m.name:38}  {m.file:22}  {m.why}")
        return 0
    start = time.perf_counter()
    print(f"{len(mutants)} mutants (and the identity control) against {' '.join(args.cases)}, {args.jobs} at a time")
    print(f"{'verdict':8}  {'mutant':38}  {'file':22}  {'time':>6}  caught by (the first failing test)")
    outcomes = run_all([IDENTITY, *mutants], args.cases, args.jobs)
    control, outcomes = outcomes[0], outcomes[1:]
    caught = [o for o in outcomes if o.verdict == "caught"]
    survived = [o for o in outcomes if o.verdict == "survived"]
    invalid = [o for o in outcomes if o.verdict == "invalid"]
    print(f"\nmutation score: {len(caught)}/{len(outcomes)} ({100 * len(caught) / max(len(outcomes), 1):.0f}%) "
          f"in {time.perf_counter() - start:.0f} s")
    ok = control.verdict == "survived" and not survived and not invalid
    if control.verdict != "survived":
        print(f"the identity control did not survive ({control.verdict}: {control.test or control.message}): the "
              "shipped cases fail without any mutation, so no score means anything")
    for o in survived:
        print(f"survivor: {o.mutant.name} ({o.mutant.file}): {o.mutant.why}")
    for o in invalid:
        print(f"invalid: {o.mutant.name}: {o.message}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
