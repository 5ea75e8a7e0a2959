"""The counts and the summary of a `xfw-harness fuzz` run: drawn, valid, invalid by field, known by catalogue entry,
passed, divergent, errors, skipped; the finding, shrunk, and where it was written.

A run that compared nothing (every draw refused, catalogued or skipped) says so (`FuzzReport.nothing_run`): it must
not read as one that found nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xfw_harness.core.frameworks import BACKEND
from xfw_harness.tools.fuzz.finding import case_text
from xfw_harness.tools.fuzz.run import Outcome


@dataclass
class FuzzStats:
    examples: int = 0  # drawn while searching (not counting shrinking): valid, invalid or known
    invalid: int = 0
    statuses: Counter = field(default_factory=Counter)  # passed, failed, error, skipped
    invalid_fields: Counter = field(default_factory=Counter)  # what the loader refused, by field
    known: Counter = field(default_factory=Counter)  # drawn cases not run for a catalogued difference, by entry
    skip_reasons: Counter = field(default_factory=Counter)  # why the runner skipped (no GPU)
    shrink_steps: int = 0  # cases run while shrinking a finding
    digest: str = ""  # a hash of every case drawn while searching, in order: the same seed gives the same digest

    def saw(self, case: dict[str, Any]) -> None:
        self.digest = hashlib.sha256((self.digest + json.dumps(case, sort_keys=True)).encode()).hexdigest()

    @property
    def valid(self) -> int:
        return self.examples - self.invalid - sum(self.known.values())


@dataclass
class FuzzReport:
    block: str
    seed: int
    examples_asked: int
    stats: FuzzStats
    seconds: float
    out_of_time: bool = False  # --time-budget stopped the search, or (with a finding) its shrinking
    finding: dict[str, Any] | None = None  # the minimal case found (a case mapping, named and described)
    finding_outcome: Outcome | None = None
    written: Path | None = None
    write_error: str | None = None  # why the finding could not be written (it is still printed)

    @property
    def partly_shrunk(self) -> bool:
        return self.finding is not None and self.out_of_time

    def nothing_run(self) -> str | None:
        """Why no drawn case was compared (every one refused, catalogued or skipped), or None: a run that compared
        nothing must not read as one that found nothing."""
        s = self.stats
        if s.valid and s.statuses["skipped"] == s.valid:
            return "every example was skipped: " + "; ".join(s.skip_reasons)
        if s.examples and not s.valid and not self.out_of_time:
            why = "catalogued differences (--include-known runs them)" if s.known else "refused by the loader"
            return f"no drawn case could be run: all {s.examples} were {why}"
        return None

    def summary(self) -> str:
        s = self.stats
        fields = ", ".join(f"{f} {n}" for f, n in s.invalid_fields.most_common(4))
        known = ", ".join(f"{name} {n}" for name, n in s.known.most_common())
        stopped = self.out_of_time and self.finding is None
        lines = [f"xfw-harness fuzz {self.block}: seed {self.seed}, {self.examples_asked} valid examples asked, "
                 f"Keras on {BACKEND}",
                 f"  drawn         {s.examples}" + ("  (stopped by --time-budget)" if stopped else ""),
                 f"  valid         {s.valid}",
                 f"  invalid       {s.invalid}" + (f"  (refused by the loader, not divergences: {fields})"
                                                  if s.invalid else "")]
        if s.known:
            lines.append(f"  known         {s.known.total()}  (catalogued differences, not searched: {known})")
        lines += [f"  passed        {s.statuses['passed']}",
                  f"  divergent     {s.statuses['failed']}",
                  f"  errors        {s.statuses['error']}"]
        if s.statuses["skipped"]:
            lines.append(f"  skipped       {s.statuses['skipped']}")
        lines.append(f"  time          {self.seconds:.1f} s")
        if self.finding is not None and self.finding_outcome is not None:
            kind = "divergence" if self.finding_outcome.status == "failed" else "error"
            how = "partly shrunk (stopped by --time-budget) after" if self.partly_shrunk else "shrunk in"
            lines += ["", f"found a{'n' if kind == 'error' else ''} {kind}; {how} {s.shrink_steps} steps to:", "",
                      case_text(self.finding).rstrip(), "",
                      self.finding_outcome.message]
            catalogued = self.finding_outcome.known
            if catalogued is not None:  # found with --include-known
                lines += ["", f"a catalogued difference: {catalogued} (cases/known_differences.yaml), nothing new"]
            if self.written is not None:
                where = "" if catalogued else (" (copy it into cases/ as a regression case, or into "
                                               "cases/known_differences.yaml if it is a real framework difference)")
                lines += ["", f"written to {self.written}{where}"]
            if self.write_error is not None:
                lines += ["", f"not written: {self.write_error}"]
        return "\n".join(lines)
