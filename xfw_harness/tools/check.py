"""`xfw-harness check FILE...`: load and validate case files with the real loader, running nothing (for pre-commit
hooks and editors' tasks). Every problem is printed with its file, case and field and what is allowed (a bad case
never hides the others); exit status 1 on any, 0 with a one-line summary otherwise.

The loader plans every sweep point (shapes, memory budgets, what has no exact translation), so a case that passes
the check is one `xfw-harness run` will run: the JSON Schema (xfw_harness.cases.json_schema) checks a case's form as it
is typed; this checks everything the loader does.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CheckReport:
    """What checking some files found."""

    files: int = 0
    cases: int = 0
    points: int = 0  # valid sweep points (one test each, per device and backend)
    errors: list[Any] = field(default_factory=list)  # CaseError, each naming its file, case and field

    def summary(self) -> str:
        where = f"{self.files} file{'s' * (self.files != 1)}, {self.cases} case{'s' * (self.cases != 1)}"
        if self.errors:
            return f"{len(self.errors)} error{'s' * (len(self.errors) != 1)} in {where}"
        return f"{where}, {self.points} sweep point{'s' * (self.points != 1)}: all valid"


def check_paths(paths: list[str | Path]) -> CheckReport:
    """Load every case file named, or under a folder named, with the loader; collect every error."""
    from xfw_harness.cases import RefusedPoint, find_case_files, load_file

    report = CheckReport()
    for path in find_case_files(paths):
        report.files += 1
        entries, file_error = load_file(path)
        if file_error is not None:
            report.errors.append(file_error)
        for entry in entries:
            report.cases += 1
            if entry.error is not None:
                report.errors.append(entry.error)
            for point in entry.points:
                if isinstance(point, RefusedPoint):
                    report.errors.append(point.error)
                else:
                    report.points += 1
    return report


def command(paths: list[str]) -> int:
    report = check_paths(paths)
    if report.files == 0:
        print(f"xfw-harness check: no YAML case files in {' '.join(paths)}")
        return 2
    for error in report.errors:
        print(f"INVALID  {error}")
    print(report.summary())
    return 1 if report.errors else 0


def add_parser(sub: Any) -> None:
    """The `check` subcommand (xfw_harness.cli's subparsers `sub`)."""
    check = sub.add_parser(
        "check", help="validate case files without running them (for pre-commit)",
        description="Load YAML case files with the harness's loader and validate every case and sweep point, "
                    "running nothing. Prints each error with its file, case and field and what is allowed. Exit "
                    "status 0 when every case is valid, 1 on any error, 2 when no case file was found.")
    check.add_argument("paths", nargs="+", help="YAML case files or folders (searched recursively)")
    check.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return command(args.paths)
