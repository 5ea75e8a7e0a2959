"""The search of `xfw-harness fuzz BLOCK`: hypothesis runs drawn cases until one fails, then shrinks it.

- Up to `--examples` valid cases are run (invalid and catalogued draws are hypothesis's unsatisfied assumptions:
  not counted, never a finding, never what a finding is shrunk into).
- A case that fails (torch vs keras differ, or an output shape differs from the block's stated semantics) or errors
  (a framework raised on a case the loader accepted) is a finding: the search stops, hypothesis shrinks it, and the
  minimal case is written under `--out` (xfw_harness.tools.fuzz.finding).
- Deterministic: the same block, seed and options draw the same examples (hypothesis is seeded with `--seed`, its
  example database is off and its storage directory is a temporary one, so nothing is written where it runs and
  earlier runs do not steer later ones).
- `--time-budget` stops the search (or the shrinking, keeping the smallest case found so far: "partly shrunk")
  after that many seconds.
- The options are checked before anything is drawn (`check_options`): a bad one is a CaseError, one line.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, assume, configuration, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable

from xfw_harness.blocks import get_block
from xfw_harness.cases import DTYPES
from xfw_harness.core import frameworks
from xfw_harness.core.errors import CaseError, did_you_mean
from xfw_harness.tools.fuzz.finding import finding_file, named_case, write_case
from xfw_harness.tools.fuzz.report import FuzzReport, FuzzStats
from xfw_harness.tools.fuzz.run import Outcome, run_case
from xfw_harness.tools.fuzz.strategies import DEFAULT_DTYPES, case_strategy

FINDINGS = ("failed", "error")  # the statuses that stop the search and are shrunk
NOT_RUN = ("invalid", "known")  # drawn, not run, not counted towards --examples: hypothesis's unsatisfied assumption


class _Finding(Exception):  # noqa: N818 - the signal hypothesis shrinks on
    pass


class _OutOfTime(BaseException):  # noqa: N818 - a BaseException: hypothesis lets it through instead of shrinking it
    pass


_clock = time.monotonic  # the time --time-budget is measured in (a test moves it on to stop a shrinking)


def parse_dtypes(text: str) -> tuple[str, ...]:
    """--dtypes: a comma-separated list of input dtypes. Raises CaseError naming what is wrong."""
    dtypes = tuple(d.strip() for d in text.split(",") if d.strip())
    if not dtypes:
        raise CaseError(f"--dtypes {text!r}: no dtype given; allowed: {', '.join(DTYPES)} (comma-separated)")
    for d in dtypes:
        if d not in DTYPES:
            raise CaseError(f"--dtypes: unknown dtype {d!r}{did_you_mean(d, DTYPES)}; allowed: {', '.join(DTYPES)}")
    return dtypes


def check_options(block: str, examples: int, time_budget: float | None, dtypes: tuple[str, ...], out: Path | None,
                  device: str) -> None:
    """Refuse, before anything is drawn, what would crash or silently do nothing: an unknown block, no examples, a
    negative or NaN budget, an unknown dtype, a device that is not there, an --out that cannot hold the finding
    (created here, last: a finding must not be lost after a long search). Raises CaseError, one line, in the CLI's
    terms."""
    get_block(block)
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        raise CaseError(f"--examples {examples}: must be a whole number >= 1 (valid examples to run)")
    if time_budget is not None and not time_budget > 0:  # NaN too: it would never stop anything
        raise CaseError(f"--time-budget {time_budget}: must be a number of seconds > 0")
    parse_dtypes(",".join(dtypes))
    if device == "gpu" and (reason := frameworks.gpu_unavailable_reason()):
        raise CaseError(f"--device gpu: {reason}; every example would be skipped")
    if out is not None:
        try:
            Path(out).mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=out):
                pass  # writable: the finding can be written there
        except OSError as e:
            raise CaseError(f"--out {out}: cannot write a case there: {e.strerror or e}") from None


@contextlib.contextmanager
def _scratch_hypothesis_storage() -> Iterator[None]:
    """Hypothesis writes a cache of the constants it reads from local modules (.hypothesis/constants/, by
    hypothesis.internal.constants_ast) into its storage directory even with the example database off; by default
    that is .hypothesis/ in the directory Python started in. Point it at a temporary directory for the run."""
    previous = getattr(configuration, "__hypothesis_home_directory", None)  # what set_hypothesis_home_dir set, if any
    with tempfile.TemporaryDirectory(prefix="harness-fuzz-hypothesis-") as home:
        configuration.set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            configuration.set_hypothesis_home_dir(previous)


def fuzz(block: str, examples: int = 100, seed: int = 0, time_budget: float | None = None,
         out: Path | None = Path("reports/fuzz"), device: str = "cpu",
         dtypes: tuple[str, ...] = DEFAULT_DTYPES, include_known: bool = False) -> FuzzReport:
    """Run up to `examples` valid cases drawn for `block` (invalid draws, and those with a catalogued difference
    unless `include_known`, do not count; hypothesis gives up when hardly any draw is valid); shrink the first
    finding and write it under `out` (None: write nothing). Raises CaseError for an unknown block or a bad option,
    before anything is drawn."""
    check_options(block, examples, time_budget, dtypes, out, device)
    strategy = case_strategy(block, dtypes)
    stats = FuzzStats()
    start = _clock()
    found: list[tuple[dict[str, Any], Outcome]] = []  # the last failing case: after shrinking, the minimal one

    @settings(max_examples=examples, database=None, deadline=None, derandomize=False, report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink),
              verbosity=Verbosity.quiet, print_blob=False)
    @hypothesis_seed(seed)
    @given(strategy)
    def search(case: dict[str, Any]) -> None:
        if time_budget is not None and _clock() - start > time_budget:
            raise _OutOfTime
        outcome = run_case(case, device, include_known)
        if found:
            stats.shrink_steps += 1
        else:
            stats.examples += 1
            stats.saw(case)
            if outcome.status == "invalid":
                stats.invalid += 1
                stats.invalid_fields[outcome.field or "-"] += 1
            elif outcome.status == "known":
                stats.known[outcome.known] += 1
            else:
                stats.statuses[outcome.status] += 1
                if outcome.status == "skipped":
                    stats.skip_reasons[outcome.message] += 1
        # An invalid or catalogued case is hypothesis's "unsatisfied assumption": not counted towards `examples`,
        # never a finding, and never what a finding is shrunk into.
        assume(outcome.status not in NOT_RUN)
        if outcome.status in FINDINGS:
            found.append((case, outcome))
            raise _Finding(outcome.message)

    out_of_time = False
    with _scratch_hypothesis_storage():
        try:
            search()
        except _Finding:
            pass
        except _OutOfTime:
            out_of_time = True
        except Unsatisfiable:  # not one drawn case could be run: FuzzReport.nothing_run says why
            pass
    report = FuzzReport(block, seed, examples, stats, _clock() - start, out_of_time)
    if found:
        case, outcome = found[-1]
        report.finding_outcome = outcome
        report.finding = named_case(case, block, seed, outcome, partly_shrunk=out_of_time)
        if out is not None:
            try:
                report.written = write_case(report.finding, Path(out) / finding_file(block, seed))
            except OSError as e:  # checked before the search, but it may have gone since: still print the finding
                report.write_error = f"{Path(out) / finding_file(block, seed)}: {e.strerror or e}"
    return report
