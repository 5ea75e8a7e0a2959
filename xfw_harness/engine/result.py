"""A test's `Result`: what the engine found for one point on one device, as data (for results files, the report and
the pytest plugin) and as the plain text lines the command line and `xfw-harness port` print."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from xfw_harness.cases import Point
from xfw_harness.core.frameworks import BACKEND
from xfw_harness.core.verdicts import Status, Verdict, headline

# How each status opens a result's line of text.
TAGS = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.ERROR: "ERROR", Status.SKIPPED: "SKIP",
        Status.DIVERGENT: "DIVERGENT"}


@dataclass
class Result:
    id: str
    file: str
    case: str
    blocks: list[str]
    sweep: dict[str, Any]
    device: str
    status: Status
    backend: str = BACKEND  # Keras's backend ("backends" for a compare: backends test; "-" for an invalid case)
    message: str = ""
    verdicts: list[Verdict] = field(default_factory=list)
    shapes: dict[str, list[int]] = field(default_factory=dict)
    placement: dict[str, str] = field(default_factory=dict)  # where each framework ran
    duration_s: float = 0.0
    case_yaml: str = ""  # the case as written (sweep included), for the report
    params: str = ""  # the block's parameters at this point as written, e.g. "filters=4, kernel_size=3"
    details: dict[str, Any] | None = None  # pictures and generated code (xfw_harness.suite.details)
    # a failed network's per-layer error curves (xfw_harness.engine.localize)
    localization: dict[str, Any] | None = None
    # What the harness computed itself where Keras offers no layer (Block.notes): a pass that relied on it says so.
    notes: list[str] = field(default_factory=list)
    # Every layer's channels-first output in each framework, (torch, keras), kept only when the caller asks
    # (run_point's keep_outputs: the suite draws the report's pictures from them); never written out.
    outputs: tuple[list[Any], list[Any]] | None = field(default=None, repr=False)
    # The arrays of each failed comparison, by its `what`: (actual, expected) as compared, kept with `outputs`
    # (xfw_harness.engine.comparing); never written out.
    compared: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    @property
    def headline(self) -> Verdict | None:
        """The verdict the headline shows: the first for a pass, the first that failed otherwise
        (xfw_harness.core.verdicts.headline)."""
        i = headline(self.status, self.verdicts)
        return None if i is None else self.verdicts[i]

    @property
    def metrics(self) -> dict[str, Any]:
        """The headline verdict's metrics (the headline numbers of a test)."""
        return self.headline.metrics if self.headline is not None else {}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.file, "case": self.case, "blocks": self.blocks,
                "sweep": self.sweep, "device": self.device, "backend": self.backend,
                "status": str(self.status), "message": self.message, "shapes": self.shapes,
                "placement": self.placement, "verdicts": [v.to_dict() for v in self.verdicts],
                "duration_s": round(self.duration_s, 6), "params": self.params, "case_yaml": self.case_yaml,
                **({"details": self.details} if self.details is not None else {}),
                **({"localization": self.localization} if self.localization is not None else {}),
                **({"notes": self.notes} if self.notes else {})}


def point_result(point: Point, device: str, backend: str = BACKEND, **fields: Any) -> Result:
    """A point's result on a device and Keras backend, an `error` until the run says otherwise."""
    return Result(id=point.test_id(device, backend), file=point.file, case=point.case, blocks=point.blocks,
                  sweep=point.sweep, device=device, backend=backend, status=Status.ERROR, case_yaml=point.source_yaml,
                  params=params_text(point), notes=point_notes(point), **fields)


def point_notes(point: Point) -> list[str]:
    """Each layer's Block.notes at its site, a network's named by layer. None with `defaults: native`: the layers
    are then each framework's own, emulating nothing."""
    if point.defaults == "native":
        return []
    return [f"{point.network_key}[{i}] ({layer.block.name}): {note}" if point.sequential else note
            for i, (layer, site) in enumerate(zip(point.layers, point.sites)) for note in layer.block.notes(site)]


def params_text(point: Point) -> str:
    """The parameters a point's case gives (sweep applied), short: `a=1, b=2`; a network as `block(a=1) > ...`."""
    def one(params: Any) -> str:
        if not isinstance(params, dict):
            return ""
        return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}"
                         for k, v in params.items())

    if not point.sequential:
        return one(point.raw.get("params"))
    layers = [(layer.get("block"), one(layer.get("params"))) for layer in point.raw.get("layers", [])
              if isinstance(layer, dict)]
    return " > ".join(f"{block}({params})" if params else str(block) for block, params in layers)


def metrics_text(result: Result) -> str:
    """The headline numbers of a result: max abs and max rel, or a dropout sample's zero fraction, of its headline
    verdict; named unless it is the first (PyTorch against Keras), and the check that failed where it has no
    figures (an expected shape)."""
    v = result.headline
    if v is None:
        return ""
    m = v.metrics
    name = "" if v is result.verdicts[0] else f"[{v.what}] "
    if "max_abs" in m:
        return f"{name}max abs {m['max_abs']:.2e}  max rel {m['max_rel']:.2e}"
    if "zero_fraction" in m:
        return f"{name}zero fraction {m['zero_fraction']:.4f}"
    return "" if v.passed else f"[{v.what}] {v.check} check failed"


def result_lines(result: Result, quiet: bool = False) -> list[str]:
    """The plain lines of one result: a status line, then the message if it matters; when quiet, nothing but for a
    failure or an error (a known difference, a skip and a pass are the summary's counts)."""
    if quiet and result.status not in (Status.FAILED, Status.ERROR):
        return []
    lines = [f"{TAGS[result.status]:5}  {result.id}  {metrics_text(result)}".rstrip()]
    if result.status in (Status.PASSED, Status.FAILED, Status.DIVERGENT):
        lines += [f"       note: {note}" for note in result.notes]
    if result.status in (Status.FAILED, Status.ERROR, Status.SKIPPED) and result.message:
        lines.append("       " + result.message.replace("\n", "\n       "))
    elif result.status == Status.DIVERGENT:  # why it is known, and which side the reference takes (judge's first lines)
        lines += ["       " + line for line in result.message.splitlines()[:2] if not line.startswith("[")]
    return lines
