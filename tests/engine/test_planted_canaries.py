"""The shipped planted canaries (cases/canaries.yaml, `expect.plant`) bite: each passes as shipped, and FAILS once
the check it guards goes soft: the comparator blind to a NaN or an infinity of one sign in one array, or to the sign
of an infinity; a gradient, update, running-statistic, reference, backend or device comparison twice as lenient or
skipped; the dropout sample's interval twice as wide. So a check that goes soft fails the shipped suite, not only
a unit test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.cases import Point, load_file
from xfw_harness.core import samples
from xfw_harness.core.frameworks import BACKEND, installed_backends
from xfw_harness.core.tolerance import Tolerance
from xfw_harness.core.verdicts import VerdictKind
from xfw_harness.engine import comparing, devices, judge, run_point, third_opinion, training
from xfw_harness.engine.plants import planting
from xfw_harness.suite import backends as suite_backends

CANARIES = Path(__file__).resolve().parents[2] / "cases" / "canaries.yaml"


def _points() -> dict[str, Point]:
    entries, error = load_file(CANARIES)
    assert error is None and all(e.error is None for e in entries)
    return {e.name: e.points[0] for e in entries}


POINTS = _points()


# --- ways a check goes soft ------------------------------------------------------------------------------------

def _comparator_seeing(hide: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> Callable:
    """A comparator that no longer sees what `hide` takes out of (actual, expected) before comparing."""
    real = comparing.compare_arrays

    def soft(actual: Any, expected: Any, *args: Any, **kwargs: Any) -> Any:
        a, b = np.array(actual, np.float64), np.array(expected, np.float64)
        return real(*hide(a, b), *args, **kwargs)

    return soft


def blind(hide: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> Callable:
    return lambda mp: mp.setattr(comparing, "compare_arrays", _comparator_seeing(hide))


def twice_as_lenient(what: str) -> Callable:
    """The comparison named `what` (only it) under a tolerance twice as loose."""
    def soften(mp: pytest.MonkeyPatch) -> None:
        real = comparing.compare_arrays

        def soft(actual: Any, expected: Any, tolerance: Tolerance, name: str, *args: Any, **kwargs: Any) -> Any:
            if name == what:
                tolerance = Tolerance(2 * tolerance.atol, 2 * tolerance.rtol, tolerance.source)
            return real(actual, expected, tolerance, name, *args, **kwargs)

        mp.setattr(comparing, "compare_arrays", soft)
    return soften


def skipping(kind: VerdictKind) -> Callable:
    """The training checks' verdicts of `kind` left out (a check skipped)."""
    def soften(mp: pytest.MonkeyPatch) -> None:
        real = training.training_verdicts
        mp.setattr("xfw_harness.engine.run.training_verdicts",
                   lambda *a, **k: [v for v in real(*a, **k) if v.kind != kind])
    return soften


def wider_sample_interval(mp: pytest.MonkeyPatch) -> None:
    real = samples.binomial_interval
    mp.setattr(samples, "binomial_interval", lambda n, p, sigmas=5.0: real(n, p, 2 * sigmas))


def reference_skipped(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(third_opinion, "opinion", lambda *a, **k: [])


SOFTENED = [
    ("actual_pos_inf_where_expected_is_finite", blind(lambda a, b: (np.where(np.isposinf(a), b, a), b))),
    ("actual_neg_inf_where_expected_is_finite", blind(lambda a, b: (np.where(np.isneginf(a), b, a), b))),
    ("actual_nan_where_expected_is_finite", blind(lambda a, b: (np.where(np.isnan(a), b, a), b))),
    ("expected_pos_inf_where_actual_is_finite", blind(lambda a, b: (a, np.where(np.isposinf(b), a, b)))),
    ("expected_neg_inf_where_actual_is_finite", blind(lambda a, b: (a, np.where(np.isneginf(b), a, b)))),
    ("expected_nan_where_actual_is_finite", blind(lambda a, b: (a, np.where(np.isnan(b), a, b)))),
    ("actual_neg_inf_where_expected_is_pos_inf", blind(lambda a, b: (np.abs(a), np.abs(b)))),  # signs ignored
    ("grad_input_off_by_1.5_tolerances", twice_as_lenient("grad input")),
    ("grad_input_off_by_1.5_tolerances", skipping(VerdictKind.GRADIENT)),
    ("grad_weight_off_by_1.5_tolerances", twice_as_lenient("grad weight")),
    ("sgd_update_off_by_1.5_tolerances", twice_as_lenient("sgd update weight")),
    ("sgd_update_off_by_1.5_tolerances", skipping(VerdictKind.UPDATE)),
    ("running_mean_off_by_1.5_tolerances", twice_as_lenient("running_mean after 1 step(s)")),
    ("running_mean_off_by_1.5_tolerances", skipping(VerdictKind.STATISTICS)),
    ("reference_off_by_1.75_tolerances", twice_as_lenient("torch vs reference")),
    ("reference_off_by_1.75_tolerances", reference_skipped),
    ("dropout_sample_dropping_too_often", wider_sample_interval),
]


@pytest.mark.parametrize(("name", "soften"), SOFTENED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SOFTENED)])
def test_a_planted_canary_fails_once_its_check_goes_soft(name: str, soften: Callable,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = run_point(POINTS[name], "cpu")
    assert shipped.status == "passed", shipped.message
    assert any(v.planted for v in shipped.verdicts)
    soften(monkeypatch)
    softened = run_point(POINTS[name], "cpu")
    assert softened.status == "failed", softened.message
    assert softened.message.startswith(f"canary: expect.fails is {POINTS[name].expect_fails}: the comparison planted "
                                       "into")


def _device_verdicts_from_cpu(point: Point, compared: tuple[str, ...] = devices.FRAMEWORKS) -> list:
    """compare: devices without a GPU: the CPU run standing in for both devices (the GPU's output equal to the
    CPU's, as a correct GPU gives within rounding); the plant goes into "torch cpu vs gpu" all the same."""
    plain = dataclasses.replace(point, compare_with="frameworks", expect_fails=None, expect_plant=None)
    result = run_point(plain, "cpu", keep_outputs=True)
    torch_outs, keras_outs = result.outputs
    outs = {d: {"torch": torch_outs, "keras": keras_outs} for d in devices.DEVICES}
    with planting(point):
        return devices.device_verdicts(point, point.input.make(), outs, compared)


def test_the_device_canary_fails_once_the_device_comparison_goes_soft(monkeypatch: pytest.MonkeyPatch) -> None:
    point = POINTS["device_only_difference_of_1.75_tolerances"]
    status, message = judge(point, _device_verdicts_from_cpu(point))
    assert status == "passed", message
    with monkeypatch.context() as mp:
        twice_as_lenient("torch cpu vs gpu")(mp)
        status, message = judge(point, _device_verdicts_from_cpu(point))
        assert status == "failed", message
    status, message = judge(point, _device_verdicts_from_cpu(point, ("keras",)))  # PyTorch's comparison skipped
    assert status == "failed" and "was never made" in message, message


@pytest.mark.skipif(not {"tensorflow", "jax"} <= set(installed_backends()) or BACKEND != "tensorflow",
                    reason="the backend canary compares Keras on TensorFlow (this process) with Keras on JAX")
def test_the_backend_canary_fails_once_the_backend_comparison_goes_soft(monkeypatch: pytest.MonkeyPatch) -> None:
    point = POINTS["backend_only_difference_of_1.75_tolerances"]
    run = lambda: suite_backends.run_backends_comparison(point, "cpu", ("tensorflow", "jax"))  # noqa: E731
    shipped = run()
    assert shipped.status == "passed", shipped.message
    real = suite_backends.backend_verdicts
    for soften in (twice_as_lenient("keras[jax] vs keras[tensorflow]"),
                   lambda mp: mp.setattr(suite_backends, "backend_verdicts", lambda *a, **k: [
                       v for v in real(*a, **k) if v.kind != VerdictKind.BACKEND])):
        with monkeypatch.context() as mp:
            soften(mp)
            softened = run()
            assert softened.status == "failed", softened.message


def test_every_planted_canary_has_a_test_that_softens_its_check() -> None:
    planted = {name for name, point in POINTS.items() if point.expect_plant is not None}
    covered = {name for name, _ in SOFTENED} | {"device_only_difference_of_1.75_tolerances",
                                               "backend_only_difference_of_1.75_tolerances"}
    assert planted == covered
