"""`xfw-harness verify MODULE:FACTORY ARTEFACT`: the command, what it prints, and its exit status.

Opens the artefact by what it is (a folder: a SavedModel; .keras; .tflite), loads the PyTorch model as `xfw-harness
port` does (xfw_harness.tools.port.model: load_model, load_weights with --weights, strict), puts it in eval mode, runs
xfw_harness.tools.crosscheck.verify and prints one line per check (seed, output or input gradient, the largest errors;
a failure's full message and any finding below it), then the layer alignment or a hint, then a summary.

Exit status: 0 when every check is within tolerance, 1 when one is not, 2 when the inputs are bad (a bad
MODULE:FACTORY or --input-shape, an artefact that is missing, unreadable or of an unknown kind, an input shape the
artefact does not declare): then one line on stderr naming the file and what is wrong, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from xfw_harness.core.verdicts import VerdictKind
from xfw_harness.tools.crosscheck.artefact import Artefact, ArtefactError, one_line
from xfw_harness.tools.crosscheck.judge import DEFAULT_K
from xfw_harness.tools.crosscheck.keras_files import KerasFile, SavedModelDir
from xfw_harness.tools.crosscheck.litert import TFLiteFile
from xfw_harness.tools.crosscheck.verify import Check, Outcome, verify
from xfw_harness.tools.port.model import PortError, load_model, load_weights

KINDS = "a Keras 3 .keras file, a TensorFlow SavedModel folder or a .tflite file"


class UsageError(Exception):
    """A bad option value."""


def parse_input_shape(text: str) -> tuple[int, ...]:
    """"2,3,28,28" -> (2, 3, 28, 28): positive sizes, the batch first."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected sizes separated by commas, e.g. 2,3,28,28") from None
    if len(shape) < 2 or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape {text!r}: expected the batch and at least one more size, all positive, "
                         "e.g. 2,3,28,28 (N,C,H,W)")
    return shape


def open_artefact(path: str | Path) -> Artefact:
    """The artefact at `path`, read by its kind (ArtefactError when it is none of them or cannot be read)."""
    path = Path(path)
    if not path.exists():
        raise ArtefactError(f"{path}: no such file or folder")
    if path.is_dir():
        return SavedModelDir(path)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return KerasFile(path)
    if suffix == ".tflite":
        return TFLiteFile(path)
    raise ArtefactError(f"{path}: not {KINDS} (a {suffix or 'suffix-less'} file)")


def _metrics(check: Check) -> str:
    m = check.verdict.metrics
    if "max_abs" not in m:
        return check.verdict.message.splitlines()[0]
    return f"max abs {m['max_abs']:.2e}  max rel {m['max_rel']:.2e}"


def report_lines(outcome: Outcome) -> list[str]:
    """What `xfw-harness verify` prints: the header, one line per check (a failure's message and finding below it),
    the layer alignment or hint, and the summary."""
    lines = list(outcome.header)
    width = max((len(c.target) for c in outcome.checks), default=0)
    seen_findings: set[str] = set()
    for check in outcome.checks:
        head = f"seed {check.seed}  {check.target:<{width}}"
        if check.verdict is None:
            lines.append(f"SKIP   {head}  {check.note}")
            continue
        note = f"  ({check.note})" if check.note else ""
        if not check.failed:
            lines.append(f"PASS   {head}  {_metrics(check)}{note}")
            continue
        message = check.verdict.message.splitlines()
        lines.append(f"FAIL   {head}  {message[0]}{note}")
        lines += [f"       {line}" for line in message[1:]]
        if check.finding:
            lines.append(f"       finding: {check.finding}" if check.finding not in seen_findings
                         else "       finding: the same flatten order as above")
            seen_findings.add(check.finding)
    lines += outcome.location
    lines.append(summary(outcome))
    return lines


def summary(outcome: Outcome) -> str:
    compared = [c for c in outcome.checks if c.verdict is not None]
    gradient = [c for c in compared if c.verdict.kind == VerdictKind.GRADIENT]
    forward = [c for c in compared if c.verdict.kind != VerdictKind.GRADIENT]
    skipped = len(outcome.checks) - len(compared)
    seeds = len({c.seed for c in outcome.checks})
    tail = f" over {seeds} seed(s)" + (f"; {skipped} not compared (SKIP above)" if skipped else "")
    if not outcome.failed:
        return (f"verify: PASS: {len(forward)} output and {len(gradient)} input-gradient comparison(s) within "
                f"tolerance{tail}")
    return (f"verify: FAIL: {sum(c.failed for c in forward)} of {len(forward)} output and "
            f"{sum(c.failed for c in gradient)} of {len(gradient)} input-gradient comparison(s) outside "
            f"tolerance{tail}")


def _one_line_text(text: str) -> str:
    """A message that may span lines (torch.load's errors do) as one line."""
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def command(spec: str, artefact_path: str, input_shape: str, weights: str | None = None, seeds: int = 3,
            layout: str = "auto", tolerance_k: int = DEFAULT_K) -> int:
    """Run `xfw-harness verify` and print its report; the exit status (module doc)."""
    try:
        shape = parse_input_shape(input_shape)
        if seeds < 1 or tolerance_k < 1:
            raise UsageError(f"--seeds {seeds}, --tolerance-k {tolerance_k}: both must be at least 1")
        model = load_model(spec)
        if weights:
            load_weights(model, weights)
        model.eval()
        artefact = open_artefact(artefact_path)
        outcome = verify(model, artefact, shape, seeds, layout, tolerance_k)
    except (UsageError, PortError, ArtefactError) as e:
        print(f"xfw-harness verify: {_one_line_text(str(e))}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - whatever else a foreign file provokes: one line, not a traceback
        print(f"xfw-harness verify: {artefact_path}: verifying against {spec} failed: {one_line(e)}", file=sys.stderr)
        return 2
    print(f"xfw-harness verify {spec} {artefact_path}")
    for line in report_lines(outcome):
        print(line)
    return 1 if outcome.failed else 0
