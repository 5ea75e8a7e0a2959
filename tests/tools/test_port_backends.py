"""`xfw-harness port` checks its saved .keras on every installed Keras backend.

A small model ports, and its .keras file, loaded in a process of each other backend, gives the PyTorch model's
output there (each backend a PASS line in port's output). The check catches a backend-only mistake: a layer that
computes otherwise on one backend makes that backend's verdict fail and is named, and a layer that cannot run on
one backend makes a failed verdict that names the layer; port's exit status is then 1.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from tests.tools.planted_layers import FailsOnOneBackend, ShiftOnOneBackend
from xfw_harness.cli import main
from xfw_harness.core.frameworks import BACKEND, installed_backends, keras
from xfw_harness.core.layout import CHANNELS_LAST
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.tools.port import port_model, report_lines
from xfw_harness.tools.port.backends import backend_verdicts, verdict_name

OTHERS = tuple(b for b in installed_backends() if b != BACKEND)
pytestmark = pytest.mark.skipif(not OTHERS, reason="only one Keras backend is installed")

SMALL = textwrap.dedent('''
    import torch
    from torch import nn


    def small():
        torch.manual_seed(3)
        return nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.Flatten(),
                             nn.Linear(4 * 4 * 4, 5))
''')


def test_a_ported_model_loads_and_matches_on_every_installed_backend(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "small_models.py").write_text(SMALL, encoding="utf-8")
    out = tmp_path / "out"
    code = main(["port", f"{tmp_path / 'small_models.py'}:small", "--input-shape", "2,2,8,8", "--out", str(out),
                 "--keras-backend", "all"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"PASS   the .keras on {BACKEND} (this process)" in text
    for backend in OTHERS:
        assert f"PASS   {verdict_name(backend)}  max abs" in text, text
    assert "PORTED: the Keras model is" in text


def test_only_the_backends_asked_for_are_checked(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    ported = port_model(model, out=tmp_path / "one", name="one", backends=(OTHERS[0],))
    assert ported.passed and [v.metrics["backend"] for v in ported.backend_verdicts] == [OTHERS[0]]
    assert port_model(model, out=tmp_path / "here", name="here").backend_verdicts == []  # the API's default
    # A backend whose verdict failed: named, the port not passed (exit 1), the file's load lines still given
    ported.backend_verdicts[0] = Verdict(verdict_name(OTHERS[0]), False, "values", "planted",
                                         {"backend": OTHERS[0]}, kind=VerdictKind.BACKEND)
    lines = report_lines(ported)
    assert not ported.passed
    assert f"FAIL   {verdict_name(OTHERS[0])}" in lines and "       planted" in lines
    assert any(line.startswith(f"PORTED for {BACKEND} only: the Keras model ") and f"on {OTHERS[0]} (above)" in line
               for line in lines), lines
    assert "    import keras" in lines


def _saved(tmp_path: Path, layer: keras.layers.Layer) -> tuple[Path, np.ndarray, np.ndarray]:
    """A Dense followed by `layer`, saved; its input and its output on this backend."""
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layer(keras.layers.Dense(2)(inputs)))
    path = tmp_path / "planted.keras"
    model.save(path)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    return path, x, np.asarray(keras.ops.convert_to_numpy(model(x)))


@pytest.mark.parametrize("backend", OTHERS)
def test_a_backend_only_difference_is_caught_and_named(backend: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_PLANTED_BACKEND", backend)
    path, x, expected = _saved(tmp_path, ShiftOnOneBackend())
    verdicts = backend_verdicts(path, {"ShiftOnOneBackend": ShiftOnOneBackend}, x, expected, CHANNELS_LAST, 3,
                                installed_backends())
    by_backend = {v.metrics.get("backend"): v for v in verdicts}
    assert set(by_backend) == set(OTHERS)
    assert not by_backend[backend].passed and by_backend[backend].check == "values", by_backend[backend]
    assert f"keras[{backend}]" in by_backend[backend].message
    assert all(v.passed for b, v in by_backend.items() if b != backend), verdicts  # the control


@pytest.mark.parametrize("backend", OTHERS)
def test_a_layer_that_cannot_run_on_a_backend_is_named(backend: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_PLANTED_BACKEND", backend)
    path, x, expected = _saved(tmp_path, FailsOnOneBackend())
    (verdict,) = backend_verdicts(path, {"FailsOnOneBackend": FailsOnOneBackend}, x, expected, CHANNELS_LAST, 3,
                                  (backend,))
    assert not verdict.passed and verdict.check == "error"
    # Keras builds a functional model's layers symbolically when it loads it: the layer fails there already
    assert re.search(rf"Keras on {backend} cannot (load|run) {re.escape(str(path))}: ", verdict.message), verdict
    assert f"FailsOnOneBackend has no {backend} implementation" in verdict.message
    assert "the model holds the harness's own Keras layer(s) tests.tools.planted_layers.FailsOnOneBackend" \
           in verdict.message


def test_an_unknown_backend_is_refused_before_the_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "small_models.py").write_text(SMALL, encoding="utf-8")
    assert main(["port", f"{tmp_path / 'small_models.py'}:small", "--input-shape", "2,2,8,8", "--out",
                 str(tmp_path / "out"), "--keras-backend", "jaxx"]) == 2
    assert "--keras-backend 'jaxx': not a Keras backend (did you mean 'jax'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
