"""`harness fuzz BLOCK`: property-based search for divergences nobody wrote a case for.

Hypothesis draws cases from a block's declared parameter schema (harness.core.schema.Param: int, pair, padding, float,
bool, choice, axis; a kind of a block's own is probed through its `normalise`) and its accepted input ranks
(Block.ranks), or random small networks of registered blocks for `sequential`. Each drawn case is a plain case
mapping, loaded by the loader (harness.cases.loader.load_case) and run by the runner (harness.engine.run.run_point) exactly
like a case file's: there is no second runner. So a new block is fuzzable with no extra code, and what the fuzzer
reports is what `harness run` would report for the written case.

- A case the loader refuses (a Refusal or CaseError: groups that do not divide the channels, a kernel larger than
  the padded input, ...) is counted as invalid, by field, never as a divergence.
- A case in which a layer's frameworks differ for a documented framework reason (Block.known_difference names its
  entry of cases/known_differences.yaml: TensorFlow's float64 GELU, ...) is counted as known, by entry, and not run,
  like an invalid one: otherwise every search of such a block would stop at that one difference. `--include-known`
  runs them too.
- A case that fails (torch vs keras differ, or an output shape differs from the block's stated semantics) or errors
  (a framework raised on a case the loader accepted) is a finding: the search stops, hypothesis shrinks it (to
  fewer layers, smaller dimensions and parameters, optional parameters left out, simpler choices), and the minimal
  case is written as a YAML case file under `--out`, named and described, ready to be copied into cases/: as a
  regression test of the adapter it shows wrong, or into cases/known_differences.yaml when it is a real framework
  difference not catalogued yet.
- Deterministic: the same block, seed and options draw the same examples (hypothesis is seeded with `--seed`, its
  example database is off and its storage directory is a temporary one, so nothing is written where it runs and
  earlier runs do not steer later ones).
- `--time-budget` stops the search (or the shrinking, keeping the smallest case found so far: "partly shrunk")
  after that many seconds.

Bounds keep every drawn case small (channels and integers a few above their minimum, spatial sizes up to 8), so an
example runs in milliseconds and shrinking stays cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, Verbosity, assume, configuration, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from harness.blocks import Block, all_blocks, get_block
from harness.cases import DTYPES, MODES, Point, load_case
from harness.core import frameworks
from harness.core.errors import CaseError, did_you_mean
from harness.core.schema import Param
from harness.engine import run_point

INT_SPAN = 3  # integers are drawn from [minimum, minimum + INT_SPAN]: small weights, small shapes
FLOAT_SPAN = 2.0  # a float with no maximum is drawn from [minimum, minimum + FLOAT_SPAN]
MAX_BATCH, MAX_CHANNELS, MAX_SIZE = 2, 4, 8  # input dimensions: batch, channels, each further axis
MAX_LAYERS = 4  # layers of a drawn `sequential`
MAX_NESTED = 2  # layers of a composite block's drawn nested list (a residual's body)
DEFAULT_DTYPES = ("float32", "float64")
FINDINGS = ("failed", "error")  # the statuses that stop the search and are shrunk
NOT_RUN = ("invalid", "known")  # drawn, not run, not counted towards --examples: hypothesis's unsatisfied assumption
FUZZ_FILE = "<fuzz>"  # the file name drawn cases are loaded under (messages name it)
_OMIT = object()  # an optional parameter left out (its default applies)


# --- strategies: from the schema --------------------------------------------------------------------------------

def param_strategy(param: Param, rank: int) -> st.SearchStrategy[Any]:
    """Values of one parameter as a case writes them, small, simplest first (hypothesis shrinks towards the first
    alternative and towards the lower bound)."""
    low = int(param.minimum) if param.minimum is not None else 0
    ints = st.integers(low, low + INT_SPAN)
    kind = param.kind
    if kind == "int":
        return ints
    if kind == "pair":
        return st.one_of(ints, st.lists(ints, min_size=2, max_size=2))
    if kind == "padding":
        small = st.integers(0, 2)
        return st.one_of(st.sampled_from(["valid", "same"]), small, st.lists(small, min_size=2, max_size=2))
    if kind == "float":
        lo = float(param.minimum) if param.minimum is not None else -FLOAT_SPAN / 2
        hi = float(param.maximum) if param.maximum is not None else lo + FLOAT_SPAN
        # No subnormals: a rate of 5e-324 is no value a port carries.
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                         exclude_min=param.open_minimum and param.minimum is not None,
                         exclude_max=param.open_maximum and param.maximum is not None)
    if kind == "bool":
        return st.booleans()
    if kind == "choice":
        return st.sampled_from(list(param.choices))
    if kind == "axis":
        return st.integers(-rank, rank - 1)
    return _probed(param)


def _probed(param: Param) -> st.SearchStrategy[Any]:
    """A kind this module does not know (a block's own Param subclass, e.g. zero_padding2d's `pads`): the YAML shapes
    a parameter is written in (small integers, pairs, pairs of pairs, the padding words, booleans, numbers), kept
    where the parameter's own `normalise` accepts them. So a new kind is fuzzable without code here."""
    small = st.integers(0, INT_SPAN)
    pair = st.lists(small, min_size=2, max_size=2)
    written = st.one_of(small, pair, st.lists(pair, min_size=2, max_size=2), st.sampled_from(["valid", "same"]),
                        st.booleans(), st.floats(0.0, FLOAT_SPAN, allow_nan=False, allow_subnormal=False))

    def accepted(value: Any) -> bool:
        try:
            param.normalise(value)
        except CaseError:
            return False
        return True

    return written.filter(accepted)


@st.composite
def params_strategy(draw: Callable[..., Any], block: Block, rank: int) -> dict[str, Any]:
    """A block's `params` mapping: every required parameter, each optional one drawn or left out."""
    params = {}
    for param in block.params:
        value = draw(param_strategy(param, rank)) if param.required else draw(
            st.one_of(st.just(_OMIT), param_strategy(param, rank)))
        if value is not _OMIT:
            params[param.name] = value
    return params


def _ranks(block: Block) -> list[int]:
    return sorted(block.ranks) if block.ranks else [2, 3, 4]


@st.composite
def shape_strategy(draw: Callable[..., Any], rank: int) -> list[int]:
    return [draw(st.integers(1, MAX_BATCH)), draw(st.integers(1, MAX_CHANNELS)),
            *(draw(st.integers(1, MAX_SIZE)) for _ in range(rank - 2))]


def _composites() -> dict[str, Block]:
    return {name: b for name, b in all_blocks().items() if getattr(b, "nested", None)}


@st.composite
def layer_strategy(draw: Callable[..., Any], block: Block, rank: int, depth: int = 0) -> dict[str, Any]:
    """One layer mapping {block, params} (and a composite block's nested lists, of plain blocks)."""
    layer: dict[str, Any] = {"block": block.name}
    params = draw(params_strategy(block, rank))
    if params:
        layer["params"] = params
    for key, required in getattr(block, "nested", {}).items():
        plain = [b for name, b in all_blocks().items() if name not in _composites() and rank in _ranks(b)]
        items = draw(st.lists(st.sampled_from(plain), min_size=1 if required else 0, max_size=MAX_NESTED))
        if items or required:
            layer[key] = [draw(layer_strategy(b, rank, depth + 1)) for b in items]
    return layer


def _common(dtypes: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"dtype": st.sampled_from(list(dtypes)), "seed": st.integers(0, 2**16),
                                  "mode": st.sampled_from(list(MODES))})


def _case(body: dict[str, Any], shape: list[int], common: dict[str, Any]) -> dict[str, Any]:
    case = {"name": "fuzz", **body, "input": {"shape": shape, "dtype": common["dtype"], "seed": common["seed"]}}
    if common["mode"] != "eval":
        case["mode"] = common["mode"]
    return case


@st.composite
def block_case_strategy(draw: Callable[..., Any], block: Block, dtypes: tuple[str, ...]) -> dict[str, Any]:
    """A case for one block: a plain `block:` case, or a one-layer sequential for a composite block (which the
    loader only reads as a layer)."""
    rank = draw(st.sampled_from(_ranks(block)))
    shape = draw(shape_strategy(rank))
    layer = draw(layer_strategy(block, rank))
    body = {"block": "sequential", "layers": [layer]} if getattr(block, "nested", None) else layer
    return _case(body, shape, draw(_common(dtypes)))


def _output_rank(case: dict[str, Any]) -> int | None:
    """The rank of a drawn network's output by the loader's own shape semantics; None when the loader refuses it."""
    entry = load_case(FUZZ_FILE, 0, case, Path.cwd(), set())
    if entry.error is not None or not entry.points or not isinstance(entry.points[0], Point):
        return None
    return len(entry.points[0].output_shape)


@st.composite
def network_case_strategy(draw: Callable[..., Any], dtypes: tuple[str, ...]) -> dict[str, Any]:
    """A random small `sequential` of registered blocks: each next block is one that accepts the rank the network
    has so far (by the loader's shape semantics); a network the loader refuses stops growing (and counts as
    invalid)."""
    common = draw(_common(dtypes))
    shape = draw(shape_strategy(4))
    layers: list[dict[str, Any]] = []
    rank: int | None = 4
    for _ in range(draw(st.integers(1, MAX_LAYERS))):
        candidates = [b for b in all_blocks().values() if rank in _ranks(b)]
        if rank is None or not candidates:
            break
        layers.append(draw(layer_strategy(draw(st.sampled_from(candidates)), rank)))
        rank = _output_rank(_case({"block": "sequential", "layers": layers}, shape, common))
    return _case({"block": "sequential", "layers": layers}, shape, common)


def case_strategy(block: str, dtypes: tuple[str, ...] = DEFAULT_DTYPES) -> st.SearchStrategy[dict[str, Any]]:
    """Case mappings for `block` (a registered block, or "sequential" for random networks)."""
    if block == "sequential":
        return network_case_strategy(dtypes)
    return block_case_strategy(get_block(block), dtypes)


# --- running: the loader and the runner, as for any case file -----------------------------------------------------

@dataclass
class Outcome:
    """One drawn case: its status ("invalid" when the loader refused it, "known" when it was not run for a
    catalogued difference, else the runner's), message, and the refused field or the catalogue entry."""

    status: str
    message: str = ""
    field: str | None = None
    known: str | None = None  # the catalogue entry a layer's known_difference names (run or not)


def known_difference(point: Point) -> str | None:
    """The first cases/known_differences.yaml entry that a layer of the loaded point declares for its site
    (Block.known_difference; a composite block answers for its nested layers), or None."""
    for layer, site in zip(point.layers, point.sites):
        if (name := layer.block.known_difference(site)) is not None:
            return name
    return None


def run_case(case: dict[str, Any], device: str = "cpu", include_known: bool = False) -> Outcome:
    """Load a case mapping as a case file's and run its one point (a drawn case has no sweep); a point with a
    catalogued difference is not run unless `include_known`."""
    entry = load_case(FUZZ_FILE, 0, case, Path.cwd(), set())
    if entry.error is not None:
        return Outcome("invalid", entry.error.message, entry.error.field)
    point = entry.points[0]
    if not isinstance(point, Point):
        return Outcome("invalid", point.error.message, point.error.field)
    known = known_difference(point)
    if known is not None and not include_known:
        return Outcome("known", f"a catalogued difference: {known} (cases/known_differences.yaml)", known=known)
    result = run_point(point, device)
    return Outcome(result.status, result.message, known=known)


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
        lines = [f"harness fuzz {self.block}: seed {self.seed}, {self.examples_asked} valid examples asked",
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
    if block != "sequential":
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
                report.written = write_case(report.finding, Path(out) / f"{block}-seed{seed}.yaml")
            except OSError as e:  # checked before the search, but it may have gone since: still print the finding
                report.write_error = f"{Path(out) / f'{block}-seed{seed}.yaml'}: {e.strerror or e}"
    return report


# --- the written case ---------------------------------------------------------------------------------------------

def named_case(case: dict[str, Any], block: str, seed: int, outcome: Outcome,
               partly_shrunk: bool = False) -> dict[str, Any]:
    """The minimal case with a name and a description saying where it came from and what it shows."""
    lines = [line for line in outcome.message.splitlines() if line.strip()]
    # The first failed verdict up to its tolerance ("[keras vs torch] values differ: 1 of 1 elements (100%)"),
    # or the error's first line; then which side the reference takes, when it was asked.
    verdict = next((line for line in lines if line.startswith("[")), lines[0] if lines else outcome.status)
    side = next((line for line in lines if line.startswith("the reference agrees")), "")
    shrunk = "partly shrunk (stopped by --time-budget)" if partly_shrunk else "shrunk"
    description = f"found by `harness fuzz {block} --seed {seed}`, {shrunk}: {verdict.split(' outside ')[0]}" + (
        f"; {side}" if side else "") + (f"; catalogued as {outcome.known}" if outcome.known else "")
    return {"name": f"fuzz_{block}_seed{seed}", "description": description,
            **{k: v for k, v in case.items() if k != "name"}}


def case_text(case: dict[str, Any]) -> str:
    return yaml.safe_dump([case], sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)


def write_case(case: dict[str, Any], path: Path) -> Path:
    """Write one case as a case file (a YAML list), with a comment saying what to do with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# Written by `harness fuzz`: the smallest case it found that PyTorch and Keras do not agree on (or\n"
              "# that a framework refused). If a harness adapter is wrong, copy it into cases/ as a regression test:\n"
              "# it fails until the adapter is fixed. If it is a real framework difference not catalogued yet, add it\n"
              "# to cases/known_differences.yaml with `expect: {divergent: WHY}` and its source, and have the\n"
              "# block's known_difference name it.\n")
    path.write_text(header + case_text(case), encoding="utf-8")
    return path


def fuzzable_blocks() -> list[str]:
    """Every name `harness fuzz` takes: each registered block, and sequential."""
    return [*all_blocks(), "sequential"]

