"""The catalogue of real differences (cases/known_differences.yaml) and the `expect: divergent` semantics.

- Every catalogue entry names its framework source and the harness's own correct translation (a case that exists),
  and is a known difference that still differs (or, for the entries that document an agreement, still agrees).
- The facts a case can only encode (a port that wrote keras.activations.leaky_relu, keras.ops.gelu, or froze a
  Keras BatchNormalization) are checked here by running the frameworks themselves.
- `expect.divergent` passes while the frameworks differ, and fails, asking for the catalogue to be updated, once a
  planted "fix" makes them agree; the pytest plugin shows such a test as a pass marked DIVERGENT.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
import torch

from xfw_harness.blocks import get_block
from xfw_harness.cases import Point, load_file, load_paths
from xfw_harness.core.frameworks import BACKEND
from xfw_harness.engine import Result, run_point

pytest_plugins = ["pytester"]

PROJECT = Path(__file__).resolve().parents[2]
CATALOGUE = PROJECT / "cases" / "known_differences.yaml"


def _entries() -> list[tuple[str, str]]:
    """(case name, the comment block above it) for each case of the catalogue, in order."""
    text = CATALOGUE.read_text(encoding="utf-8")
    out = []
    for match in re.finditer(r"((?:^#.*\n)*)^- name: (\S+)", text, flags=re.M):
        out.append((match.group(2), match.group(1)))
    return out


def _points() -> dict[str, Point]:
    entries, error = load_file(CATALOGUE)
    assert error is None and all(e.error is None for e in entries), [str(e.error) for e in entries if e.error]
    return {e.name: e.points[0] for e in entries}


ENTRIES = _entries()


def _differs(comments: str) -> tuple[str, str] | None:
    """What an entry's difference is, from its `# differs: WHAT (CHECK)` line: the PyTorch-vs-Keras verdict that must
    fail, and how (a status of "divergent" alone would also hold for an unrelated difference)."""
    m = re.search(r"^# differs: (.+) \((\w+)\)$", comments, flags=re.M)
    return (m.group(1), m.group(2)) if m else None


DIFFERS = {name: differs for name, comments in ENTRIES if (differs := _differs(comments)) is not None}
# The entries without one document an agreement (or a canary against an old definition): they must pass.
AGREEMENTS = {name for name, _ in ENTRIES} - set(DIFFERS)


def test_the_catalogue_has_every_required_difference() -> None:
    names = {name for name, _ in ENTRIES}
    required = {"leaky_relu_default_slope", "leaky_relu_keras_function_slope", "gelu_keras_ops_default",
                "batch_norm_default_epsilon", "batch_norm_default_momentum", "batch_norm_momentum_copied_as_is",
                "batch_norm_unbiased_running_variance", "batch_norm_frozen_keras_runs_inference",
                "avg_pool_border_divisor", "max_pool_padded_with_zeros", "conv_same_stride2_symmetric_padding",
                "max_pool_ceil_mode", "dense_after_flatten_rows_not_permuted", "torch_module_left_in_training_mode",
                "softmax_implicit_dim", "conv_keras_refuses_dilation_with_stride", "hard_sigmoid_keras2_definition",
                "tf_float64_leaky_relu_slope", "tf_float64_gelu"}
    assert required <= names, required - names


@pytest.mark.parametrize(("name", "comments"), ENTRIES, ids=[name for name, _ in ENTRIES])
def test_each_entry_names_its_source_and_a_correct_translation_that_exists(name: str, comments: str) -> None:
    assert "# source: " in comments, f"{name}: no `# source:` line above it"
    correct = re.search(r"# correct: (cases/\S+\.yaml)::(\S+)", comments)
    assert correct, f"{name}: no `# correct: cases/FILE.yaml::CASE` line above it"
    entries, error = load_file(PROJECT / correct.group(1))
    assert error is None
    assert correct.group(2) in {e.name for e in entries}, f"{name}: {correct.group(0)} does not exist"
    point = _points()[name]
    assert point.raw.get("description") and "\n" not in point.raw["description"].strip()
    if name not in AGREEMENTS:
        assert point.expect_divergent, f"{name}: not marked expect.divergent"


def test_the_catalogue_documents_agreements_too() -> None:
    assert {"gelu_layers_agree", "hard_sigmoid_layers_agree", "hard_sigmoid_keras2_definition"} <= AGREEMENTS


@pytest.mark.parametrize("name", [name for name, _ in ENTRIES])
def test_each_entry_still_holds(name: str) -> None:
    result = run_point(_points()[name], "cpu")
    want = "passed" if name in AGREEMENTS else "divergent"
    assert result.status == want, result.message
    if name not in AGREEMENTS:
        failing = {(v.what, v.check) for v in result.verdicts if not v.passed}
        assert DIFFERS[name] in failing, f"{name}: the documented difference {DIFFERS[name]} is not among {failing}"


# --- facts a case can only encode: run the frameworks themselves -------------------------------------------------

def test_keras_functions_default_to_what_the_catalogue_says() -> None:
    x = np.array([-2.0, -0.5, 0.0, 1.5], dtype=np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.activations.leaky_relu(x)),
                                  np.where(x < 0, np.float32(0.2) * x, x))
    approximate = keras.ops.convert_to_numpy(keras.activations.gelu(x, approximate=True))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.ops.gelu(x)), approximate)
    exact = torch.nn.GELU()(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(approximate - exact)) > 1e-4  # far above any float32 tolerance
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.activations.gelu(x)), exact, rtol=1e-6, atol=1e-7)


def test_a_frozen_keras_batch_norm_runs_in_inference_under_training_true() -> None:
    x = np.random.default_rng(0).standard_normal((4, 3, 3, 2)).astype(np.float32)
    layer = keras.layers.BatchNormalization()
    layer.build(x.shape)
    layer.trainable = False
    frozen = keras.ops.convert_to_numpy(layer(x, training=True))
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_array_equal(frozen, inference)
    batch = (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + 1e-3)
    assert np.max(np.abs(frozen - batch)) > 0.1


def test_pytorch_keeps_the_unbiased_variance_keras_the_biased_one() -> None:
    x = np.random.default_rng(1).standard_normal((2, 1, 2, 2)).astype(np.float32)
    bn = torch.nn.BatchNorm2d(1, momentum=1.0)  # running = the last batch's
    bn(torch.from_numpy(x))
    kbn = keras.layers.BatchNormalization(momentum=0.0)
    kbn(np.moveaxis(x, 1, -1), training=True)
    n = x.size
    np.testing.assert_allclose(bn.running_var.detach().numpy(), [x.var() * n / (n - 1)], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kbn.moving_variance), [x.var()], rtol=1e-6)


# --- expect.divergent: passes while they differ, fails once they agree -------------------------------------------

DIVERGENT_LEAKY = """
- name: leaky
  block: leaky_relu
  defaults: native
  input: {shape: [2, 3, 4, 4]}
  expect: {divergent: "default slope: PyTorch 0.01, Keras 0.3"}
"""


def test_divergent_passes_while_the_frameworks_differ(run_case: Callable[[str], list[Result]]) -> None:
    (result,) = run_case(DIVERGENT_LEAKY)
    assert result.status == "divergent"
    lines = result.message.splitlines()
    assert lines[0] == "known difference (expect.divergent): default slope: PyTorch 0.01, Keras 0.3"
    assert lines[1] == "the reference agrees with torch; keras differs"
    assert any(line.startswith("[keras vs torch] values differ") for line in lines)


def test_divergent_fails_once_a_release_makes_them_agree(run_case: Callable[[str], list[Result]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted "fix": Keras's LeakyReLU defaulting to PyTorch's 0.01. The known difference is gone, so the test
    fails and says to update the catalogue."""
    block = get_block("leaky_relu")
    monkeypatch.setattr(block, "native_keras_layer",
                        lambda site: keras.layers.LeakyReLU(negative_slope=0.01, dtype=site.dtype))
    (result,) = run_case(DIVERGENT_LEAKY)
    assert result.status == "failed"
    assert result.message.startswith("the frameworks agree, but expect.divergent says they differ")
    assert "update the catalogue" in result.message


def test_divergent_still_fails_on_another_failed_expectation(run_case: Callable[[str], list[Result]]) -> None:
    (result,) = run_case(DIVERGENT_LEAKY.replace("expect: {", "expect: {shape: [2, 3, 4, 5], "))
    assert result.status == "failed" and "[expected shape]" in result.message
    # the frameworks still differ: no word of their agreeing (mutmut: the catalogue's 'update' text here survived)
    assert "the frameworks agree" not in result.message and "update the catalogue" not in result.message


def test_a_keras_refusal_is_a_divergence_only_in_a_native_case_that_says_so(
        run_case: Callable[[str], list[Result]]) -> None:
    case = """
- name: dilated
  block: conv2d
  defaults: native
  params: {filters: 1, kernel_size: 3, strides: 2, dilation_rate: 2}
  input: {shape: [1, 1, 9, 9]}
"""
    (plain,) = run_case(case)
    assert plain.status == "error" and "dilation_rate > 1" in plain.message
    (known,) = run_case(case + '  expect: {divergent: "Keras refuses it", refuses: "dilation_rate > 1"}\n')
    assert known.status == "divergent" and "Keras refuses the hand port" in known.message
    (unnamed,) = run_case(case + '  expect: {divergent: "Keras refuses it"}\n')  # which refusal: not said
    assert unnamed.status == "error"


def test_an_adapter_that_cannot_build_is_no_known_difference(run_case: Callable[[str], list[Result]],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the refusal a case names (expect.refuses) stands for a difference: a broken native builder (a misspelt
    keyword, which Keras also refuses with a ValueError) stays an error, even in a case marked divergent."""
    block = type(get_block("leaky_relu"))
    monkeypatch.setattr(block, "native_keras_layer", lambda self, site: keras.layers.LeakyReLU(negative_slop=0.3))
    (result,) = run_case(DIVERGENT_LEAKY.replace('"}', '", refuses: "not supported"}'))
    assert result.status == "error" and "negative_slop" in result.message


def test_a_known_difference_with_expect_reference_needs_a_side_that_agrees(
        run_case: Callable[[str], list[Result]], monkeypatch: pytest.MonkeyPatch) -> None:
    case = DIVERGENT_LEAKY.replace("expect: {", "expect: {reference: true, ")
    (right,) = run_case(case)
    assert right.status == "divergent", right.message
    monkeypatch.setattr(type(get_block("leaky_relu")), "reference", lambda self, site, x, weights: x * 7)
    (wrong,) = run_case(case)
    assert wrong.status == "failed" and "agrees with neither" in wrong.message


def test_an_incomplete_adapter_is_no_framework_difference() -> None:
    from xfw_harness.core.verdicts import Verdict, VerdictKind

    assert Verdict("grad layers[0].weight", False, "values", "", kind=VerdictKind.GRADIENT).compares_frameworks()
    assert not Verdict("weights mapped", False, "mapping", "", kind=VerdictKind.MAPPING).compares_frameworks()
    assert not Verdict("grad w", False, "mapping", "", kind=VerdictKind.GRADIENT).compares_frameworks()


def test_port_params_are_native_only(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- {name: c, block: relu, keras_params: {}, input: {shape: [1, 2]}}\n"
                    "- {name: d, block: leaky_relu, keras_params: {negative_slope: 0.2}, input: {shape: [1, 2]}}\n")
    entries, _ = load_file(path)
    assert entries[0].error.field == "keras_params"
    assert "is only read with defaults: native" in str(entries[1].error)


def test_pytest_shows_a_divergent_case_as_a_pass_marked_divergent(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", known=DIVERGENT_LEAKY)
    result = pytester.runpytest_inprocess("known.yaml", "-v", "-p", "no:cacheprovider", "--keras-backend", BACKEND)
    result.assert_outcomes(passed=0, failed=0)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*known.yaml::leaky*DIVERGENT*", "*1 divergent*"])


def test_every_shipped_case_file_still_loads() -> None:
    """The catalogue's keys (defaults, torch_params, keras_params, expect.divergent) are read by the loader that
    reads every case file: nothing else in cases/ broke."""
    _, errors = load_paths([PROJECT / "cases"])
    assert errors == []



def test_junit_and_the_summary_count_a_divergent_test_as_a_pass(run_case: Callable[[str], list[Result]],
                                                                 tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from xfw_harness.suite.results import results_document, summarise, write_junit

    (result,) = run_case(DIVERGENT_LEAKY)
    doc = results_document([result.to_dict()])
    assert summarise(doc["results"])["divergent"] == 1
    write_junit(tmp_path / "junit.xml", doc)
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    case = suite.find("testcase")
    assert case.find("failure") is None
    assert case.find("properties/property").get("value") == "divergent"
    assert case.find("system-out").text.startswith("known difference (expect.divergent)")
