"""Which Keras backends and devices a run covers, decided without importing any framework: the pytest plugin and
the CLI check a `--keras-backend` before anything heavy loads (xfw_harness.core.frameworks imports the frameworks
themselves, on this process's backend).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable

from xfw_harness.core.errors import did_you_mean

# The Keras backends the harness runs, in the order results show them.
BACKENDS = ("tensorflow", "jax", "torch")
DEVICES = ("cpu", "gpu")

# The library each backend needs installed (jaxlib: jax without it cannot run).
BACKEND_LIBRARIES = {"tensorflow": "tensorflow", "jax": "jaxlib", "torch": "torch"}

# The variable that sets the default backends of a run, a port and a fuzz: comma-separated names or `all`.
ENV_BACKENDS = "HARNESS_KERAS_BACKENDS"


# What to install for each backend (pyproject.toml's extras; README: install).
BACKEND_EXTRAS = {"tensorflow": "xfw-harness[tensorflow]", "jax": "xfw-harness[jax]", "torch": "xfw-harness"}


def _importable(backend: str) -> bool:
    return importlib.util.find_spec(BACKEND_LIBRARIES[backend]) is not None


def home_backend() -> str:
    """The backend this process runs Keras on: KERAS_BACKEND where set; else the first installed of TensorFlow,
    JAX and torch (torch, which the harness needs anyway, is always there: an install without TensorFlow runs Keras
    on torch rather than failing). RuntimeError for a KERAS_BACKEND that is not one of them."""
    backend = os.environ.get("KERAS_BACKEND", "")
    if not backend:
        return next((b for b in BACKENDS if _importable(b)), BACKENDS[0])
    if backend not in BACKENDS:
        raise RuntimeError(f"KERAS_BACKEND={backend!r}: the harness runs Keras on {', '.join(BACKENDS)}; set "
                           "KERAS_BACKEND to one of them or unset it (the first installed of them)")
    return backend


def installed_backends() -> tuple[str, ...]:
    """The Keras backends this Python can run: this process's, and each whose library is installed."""
    home = home_backend()
    return tuple(b for b in BACKENDS if b == home or _importable(b))


class BackendSelectionError(ValueError):
    """A --keras-backend (or $HARNESS_KERAS_BACKENDS) naming no backend, or one not installed here."""


def chosen_backends(names: Iterable[str] | None, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The Keras backends named (`all`: every installed one), in BACKENDS order; none named: `default`, else
    $HARNESS_KERAS_BACKENDS, else every installed backend. BackendSelectionError for a name that is not a backend or
    not installed (what is installed said)."""
    given = [n.strip() for n in (names or []) if n.strip()]
    if not given and default is not None:
        return default
    given = given or [n.strip() for n in os.environ.get(ENV_BACKENDS, "").split(",") if n.strip()]
    installed = installed_backends()
    if not given or "all" in given:
        return installed
    for name in given:
        if name not in BACKENDS:
            raise BackendSelectionError(f"--keras-backend {name!r}: not a Keras backend{did_you_mean(name, BACKENDS)}; "
                                        f"allowed: {', '.join(BACKENDS)} or all")
        if name not in installed:
            raise BackendSelectionError(f"--keras-backend {name}: {name} is not installed in this Python "
                                        f"({sys.executable}); installed: {', '.join(installed)} (README: set-up)")
    return tuple(b for b in BACKENDS if b in given)
