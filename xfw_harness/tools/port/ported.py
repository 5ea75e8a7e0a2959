"""What `xfw-harness port` made and found (`Ported`): the case, its verdicts, and the Keras model where it passed.

Made by xfw_harness.tools.port.command, read by the report lines there and by the Keras model's load instructions and
output note (xfw_harness.tools.port.keras_model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xfw_harness.core.layout import Layout
from xfw_harness.core.verdicts import Verdict
from xfw_harness.tools.port.translate import Mapped


@dataclass
class Ported:
    """What `port` made and found: the case, its verdicts, and the Keras model where it passed."""

    case_path: Path
    name: str
    input_shape: tuple[int, ...]  # channels-first, batch included
    nodes: list[Mapped]  # the case's nodes, with the model's calls they come from
    blocks: list[str]
    result: Any = None  # the runner's Result of the case
    model_verdicts: list[Verdict] = field(default_factory=list)  # the model itself vs the case's PyTorch modules
    diverged: str | None = None  # where the model first differs from the case, when it does
    keras_path: Path | None = None
    keras_error: str | None = None  # why the verified model could not be saved as DIR/<name>.keras
    custom_objects: dict[str, type] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    output_shape: tuple[int, ...] = ()  # the model's, channels-first
    output_layout: Layout | None = None  # how the Keras model's output maps onto it
    model: Any = None  # the nn.Module ported: the user's, or its calibrated copy (xfw_harness.tools.port.calibrate)
    worst_headroom: float | None = None  # the largest error / tolerance of the case-vs-model checks (1: the edge)
    tflite_verdict: Verdict | None = None  # `--tflite`: the exported .tflite on LiteRT against the model
    # the saved .keras loaded and run on each other Keras backend, against the model (xfw_harness.tools.port.backends)
    backend_verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (self.result is not None and self.result.status == "passed"
                and all(v.passed for v in self.model_verdicts) and self.keras_error is None
                and (self.tflite_verdict is None or self.tflite_verdict.passed)
                and all(v.passed for v in self.backend_verdicts))
