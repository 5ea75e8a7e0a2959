"""The frameworks, imported at their first use: `keras` and `torch` here, and `lazy_module(NAME)` for any module that
imports them (xfw_harness.core.frameworks, a block family's framework layers such as xfw_harness.blocks.axes_layers).

Why: importing PyTorch and Keras (TensorFlow) takes about 5 s, and a process that only reads the blocks'
declarations (schemas, docs, shape arithmetic, refusals) never needs them: `xfw-harness check` validating case files
for a pre-commit hook or an editor, the JSON Schema. The block modules name the frameworks through these proxies, so
importing them costs nothing; building a module or a layer, transferring weights or running a point reads an
attribute and loads the frameworks then. One place says how the frameworks are reached, rather than an import inside
each builder, and tests/project/test_lazy_frameworks.py holds it. Every load goes through xfw_harness.core.frameworks
first, which keeps the import order (torch and triton before TensorFlow) and the settings (Keras's backend, JAX's
x64, TF32 off) that a bare `import keras` would skip.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

FRAMEWORKS = "xfw_harness.core.frameworks"


class LazyModule:
    """A module imported at the first read of one of its attributes (after xfw_harness.core.frameworks), then
    read through. A stand-in for `import NAME` at the top of a module that must not load the frameworks."""

    # The proxy's own names are private and unusual, so that none hides one of the module's (torch.load).
    def __init__(self, name: str) -> None:
        self._lazy_name = name
        self._lazy_module: ModuleType | None = None

    def _lazy_load(self) -> ModuleType:
        if self._lazy_module is None:
            importlib.import_module(FRAMEWORKS)  # first, whatever NAME is: it fixes Keras's backend and the settings
            self._lazy_module = importlib.import_module(self._lazy_name)
        return self._lazy_module

    def __getattr__(self, attribute: str) -> Any:  # only for what the proxy itself lacks: the module's attributes
        return getattr(self._lazy_load(), attribute)

    def __repr__(self) -> str:
        return f"<lazily imported module {self._lazy_name!r}{' (loaded)' if self._lazy_module is not None else ''}>"


def lazy_module(name: str) -> Any:
    """The module called `name`, imported (after the frameworks' set-up) when an attribute is first read."""
    return LazyModule(name)


keras = lazy_module("keras")
torch = lazy_module("torch")
frameworks = lazy_module(FRAMEWORKS)
