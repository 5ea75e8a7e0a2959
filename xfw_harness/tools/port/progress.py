"""What `xfw-harness port` shows while it works: the stage, and a bar over the nodes where it goes node by node.

A large model takes tens of seconds (resnet50: 12 s, densenet121's 427 nodes: 28 s, on this project's 2-core
machine), most of them in the case's run and the node-by-node checks. `StageBar` is a rich progress display on
standard error, shown only when that is a terminal and gone when the port is done, so that the printed report and
any redirected output stay as they are. `port_model` takes any callable `progress(stage, done, total)`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

ProgressFn = Callable[[str, int, int], None]  # (stage, nodes done, nodes in all; 0 of 0: a stage without a bar)


def silent(stage: str, done: int = 0, total: int = 0) -> None:
    """The default: says nothing."""


class StageBar:
    """A transient rich progress line on standard error: `with StageBar() as progress: port_model(..., progress)`."""

    def __init__(self) -> None:
        console = Console(stderr=True)
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=console, transient=True,
                                  disable=not sys.stderr.isatty())
        self._task = self._progress.add_task("xfw-harness port", total=None)

    def __call__(self, stage: str, done: int = 0, total: int = 0) -> None:
        self._progress.update(self._task, description=stage, completed=done, total=total or None)

    def __enter__(self) -> StageBar:
        self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._progress.stop()
