"""Keras layers that compute differently on one Keras backend: planted backend-only mistakes for the check of a
ported .keras file on each backend (tests/tools/test_port_backends.py). The backend is read from the environment
variable HARNESS_PLANTED_BACKEND in the process that runs the layer."""

from __future__ import annotations

import os
from typing import Any

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.core.frameworks import keras


def _planted_here() -> bool:
    return keras.backend.backend() == os.environ.get("HARNESS_PLANTED_BACKEND")


class ShiftOnOneBackend(keras.layers.Layer):
    """The identity, but adds 1e-3 on the planted backend (a backend-only bug in a harness-style layer)."""

    def call(self, x: Any) -> Any:
        return x + 1e-3 if _planted_here() else x


class FailsOnOneBackend(keras.layers.Layer):
    """The identity, but raises on the planted backend (a layer written for some backends only)."""

    def call(self, x: Any) -> Any:
        if _planted_here():
            raise NotImplementedError(f"FailsOnOneBackend has no {keras.backend.backend()} implementation")
        return x
