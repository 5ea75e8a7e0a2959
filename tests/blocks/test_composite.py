"""The shipped networks (cases/networks/) and the residual block (xfw_harness/blocks/composite.py).

The networks must be what their names say and be checked as the issue asks (forward and backward, eval and train);
the residual block must be read, planned and located by the same loader as every layer (a mistake inside a nested
body is named by its field), and a planted mistake in how it composes its nested blocks (a shortcut weight not
transferred, a branch left out of the sum in one framework, a nested kernel copied without its transpose) must fail
the shipped ResNet case, with the residual layer named as where the network first diverges.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
import xfw_harness.engine as runner
from xfw_harness.blocks import Layer, composite, composite_layers, get_block, plan
from xfw_harness.cases import Point, RefusedPoint, load_file
from xfw_harness.core.frameworks import keras, to_numpy, torch

NETWORKS = Path(__file__).resolve().parents[2] / "cases" / "networks"
RESNET = NETWORKS / "resnet.yaml"


def _points(path: Path) -> list[Point]:
    entries, error = load_file(path)
    assert error is None and all(e.error is None for e in entries), [str(e.error) for e in entries]
    points = [p for e in entries for p in e.points]
    assert all(isinstance(p, Point) for p in points), [str(p.error) for p in points if isinstance(p, RefusedPoint)]
    return points


def _point(path: Path, case: str, mode: str) -> Point:
    return next(p for p in _points(path) if p.case == case and p.mode == mode)


def _nested_blocks(layers: list) -> list[str]:
    names = []
    for layer in layers:
        names.append(layer.block.name)
        for key in getattr(layer.block, "nested", {}):
            names += _nested_blocks(list(layer.params[key]))
    return names


# --- the shipped networks ---------------------------------------------------------------------------------------

def test_every_network_is_checked_forward_and_backward_in_eval_and_train() -> None:
    files = {p.name for p in NETWORKS.glob("*.yaml")}
    assert files == {"lenet5.yaml", "vgg.yaml", "resnet.yaml", "all_convolutional.yaml"}
    for path in NETWORKS.glob("*.yaml"):
        points = _points(path)
        for case in {p.case for p in points}:
            mine = [p for p in points if p.case == case]
            assert {p.mode for p in mine} == {"eval", "train"}, case
            assert all(set(p.checks) == {"forward", "backward"} for p in mine), case


@pytest.mark.parametrize(("file", "case", "must_have"), [
    ("lenet5.yaml", "lenet5_tanh_avgpool", ["conv2d", "avg_pool2d", "flatten", "dense", "tanh"]),
    ("lenet5.yaml", "lenet5_relu_maxpool", ["conv2d", "max_pool2d", "flatten", "dense", "relu"]),
    ("vgg.yaml", "vgg_flatten_dense", ["conv2d", "relu", "max_pool2d", "flatten", "dense"]),
    ("vgg.yaml", "vgg_bn_global_pool", ["conv2d", "batch_norm2d", "max_pool2d", "global_avg_pool2d"]),
    ("resnet.yaml", "resnet_basic_blocks", ["residual", "conv2d", "batch_norm2d", "relu", "global_avg_pool2d"]),
    ("all_convolutional.yaml", "all_convolutional", ["conv2d", "global_avg_pool2d"]),
])
def test_each_network_is_the_architecture_it_names(file: str, case: str, must_have: list[str]) -> None:
    point = _point(NETWORKS / file, case, "eval")
    blocks = _nested_blocks(point.layers)
    assert set(must_have) <= set(blocks), blocks
    if case.startswith("lenet5"):
        convs = [layer.params for layer in point.layers if layer.block.name == "conv2d"]
        dense = [layer.params["units"] for layer in point.layers if layer.block.name == "dense"]
        assert [(c["filters"], c["kernel_size"]) for c in convs] == [(6, (5, 5)), (16, (5, 5))]
        assert dense == [120, 84, 10]
    if case.startswith("all_convolutional"):
        assert "flatten" not in blocks and "max_pool2d" not in blocks


def test_the_resnet_has_identity_and_projection_shortcuts() -> None:
    point = _point(RESNET, "resnet_basic_blocks", "eval")
    residuals = [layer for layer in point.layers if layer.block.name == "residual"]
    shortcuts = [[nested.block.name for nested in layer.params["shortcut"]] for layer in residuals]
    assert [] in shortcuts and ["conv2d", "batch_norm2d"] in shortcuts
    after = [point.layers[i + 1].block.name for i, layer in enumerate(point.layers) if layer.block.name == "residual"]
    assert after == ["relu"] * len(residuals)


# --- the residual form: read and located by the loader -------------------------------------------------------------

def _case_error(tmp_path: Path, layers: str, shape: str = "[2, 3, 8, 8]", mode: str = "eval") -> str:
    text = f"- name: c\n  block: sequential\n  layers:\n{textwrap.indent(textwrap.dedent(layers), '    ')}" \
           f"  input: {{shape: {shape}}}\n  mode: {mode}\n"
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    entries, error = load_file(path)
    assert error is None
    entry = entries[0]
    if entry.error is not None:
        return str(entry.error)
    refused = [p for p in entry.points if isinstance(p, RefusedPoint)]
    assert refused, "the case loaded without error"
    return str(refused[0].error)


BODY = """\
- block: residual
  layers:
    - {block: conv2d, params: {filters: 3, kernel_size: 3, padding: 1}}
"""

BAD_RESIDUALS = [
    pytest.param(BODY.replace("filters: 3", "filters: 0"), "field 'layers[0].layers[0].params.filters': got 0",
                 id="a bad parameter in the body"),
    pytest.param("- {block: relu}\n- block: residual\n  layers:\n    - {block: relu}\n    - block: residual\n"
                 "      layers:\n        - {block: conv2d, params: {filters: 3, kernel_size: 3, paddin: 1}}\n",
                 "field 'layers[1].layers[1].layers[0].params.paddin': unknown parameter 'paddin' (did you mean "
                 "'padding'", id="a misspelt parameter two residuals deep"),
    pytest.param(BODY + "  shortcut:\n    - {block: conv2d, params: {filters: 3, kernel_size: 30}}\n",
                 "field 'layers[0].shortcut[0].params.kernel_size': the kernel 30x30", id="a bad shortcut layer"),
    pytest.param(BODY.replace("filters: 3", "filters: 4"), "field 'layers[0].layers': the body's output shape "
                 "[2, 4, 8, 8] differs from the input's (the shortcut is the identity) [2, 3, 8, 8]",
                 id="identity shortcut, body changes the shape"),
    pytest.param(BODY + "  shortcut:\n    - {block: conv2d, params: {filters: 3, kernel_size: 1, strides: 2}}\n",
                 "field 'layers[0].shortcut': the body's output shape [2, 3, 8, 8] differs from the shortcut's "
                 "[2, 3, 4, 4]", id="a shortcut of another shape"),
    pytest.param("- {block: flatten}\n" + BODY, "field 'layers[1].layers[0].block': conv2d needs an input of rank 4 "
                 "(channels-first), got shape [2, 192] (the residual's input)", id="the body refuses the input"),
    pytest.param(BODY.replace("padding: 1}}", "padding: 1}}\n    - {block: dropout, params: {rate: 0.5}}"),
                 "field 'layers[0].layers[1].block': dropout in train mode cannot be inside a residual",
                 id="dropout in train mode in the body"),
    pytest.param("- {block: residual}\n", "field 'layers[0].layers': residual needs `layers`: a non-empty list",
                 id="no body"),
    pytest.param("- {block: residual, layers: []}\n", "field 'layers[0].layers': residual needs `layers`",
                 id="an empty body"),
    pytest.param(BODY + "  shortcut: {block: relu}\n", "field 'layers[0].shortcut': residual needs `shortcut`: a "
                 "list", id="a shortcut that is not a list"),
    pytest.param("- {block: conv2d, params: {filters: 3, kernel_size: 1}, shortcut: []}\n",
                 "field 'layers[0].shortcut': unknown key 'shortcut'", id="shortcut on a plain layer"),
    pytest.param(BODY.replace("padding: 1}}", "padding: 1}, weights: {path: w.npz}}"),
                 "field 'layers[0].layers[0].weights': a layer inside layers cannot read a weights file yet",
                 id="a weights file inside (not read yet: refused, not ignored)"),
    pytest.param("- block: residual\n  layers:\n    - {block: sequential, layers: [{block: relu}]}\n",
                 "field 'layers[0].layers[0].block': sequential cannot be nested", id="a sequential inside"),
]


@pytest.mark.parametrize(("layers", "expected"), BAD_RESIDUALS)
def test_a_mistake_inside_a_residual_is_named_by_its_nested_field(tmp_path: Path, layers: str, expected: str
                                                                   ) -> None:
    mode = "train" if "dropout" in layers else "eval"
    assert expected in _case_error(tmp_path, layers, mode=mode)


def test_a_flatten_in_one_branch_only_is_refused(tmp_path: Path) -> None:
    """Same shape, different Keras layouts (Keras flattens (H, W, C)): an elementwise sum would mix features."""
    layers = "- block: residual\n  layers: [{block: flatten}]\n  shortcut: [{block: global_avg_pool2d}]\n"
    message = _case_error(tmp_path, layers, "[2, 3, 1, 1]")
    assert "field 'layers[0].shortcut': in Keras the body's output is flattened" in message


def test_a_residual_is_not_a_case_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- {name: c, block: residual, layers: [{block: relu}], input: {shape: [2, 3]}}\n")
    entries, _ = load_file(path)
    assert "field 'block': residual is a layer of a sequential, not a case by itself" in str(entries[0].error)


def test_defaults_native_reaches_the_layers_inside_a_residual(tmp_path: Path) -> None:
    """A hand port's leaky_relu without its slope: PyTorch's 0.01 against Keras's 0.3, inside the body too."""
    path = tmp_path / "c.yaml"
    path.write_text("- name: c\n  block: sequential\n  defaults: native\n  mode: eval\n"
                    "  layers: [{block: residual, layers: [{block: leaky_relu}]}]\n  input: {shape: [2, 3, 4, 4]}\n")
    point = _points(path)[0]
    assert point.layers[0].block.branches(point.sites[0])["layers"].sites[0].written == frozenset()
    assert _run(point).status == "failed"
    path.write_text(path.read_text().replace("{block: leaky_relu}", "{block: leaky_relu, params: {negative_slope: "
                                                                    "0.01}}"))
    assert _run(_points(path)[0]).status == "passed"


# --- the residual form: planted mistakes fail the shipped ResNet ----------------------------------------------------

def _run(point: Point) -> runner.Result:
    return runner.run_point(point, "cpu")


def test_the_shipped_resnet_passes_as_the_control() -> None:
    for mode in ("eval", "train"):
        result = _run(_point(RESNET, "resnet_basic_blocks", mode))
        assert result.status == "passed", result.message
        names = {v.what for v in result.verdicts}
        assert "grad layers[5].shortcut.0.weight" in names  # the projection's gradients are compared
        if mode == "train":  # and the running statistics of the batch norms inside the residual blocks
            assert "layers[5].shortcut.1.running_var after 1 step(s)" in names


def _first_divergent(result: runner.Result) -> str:
    return result.message.split("[first divergent layer]", 1)[-1] if "[first divergent layer]" in result.message else ""


def test_a_shortcut_left_out_of_the_weight_transfer_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    right = composite.Residual.weight_copies

    def body_only(self, site, module, layer):  # noqa: ANN001, ANN202 - the planted mistake
        return [c for c in right(self, site, module, layer) if not c.torch_path.startswith("shortcut.")]

    monkeypatch.setattr(composite.Residual, "weight_copies", body_only)
    result = _run(_point(RESNET, "resnet_basic_blocks", "eval"))
    assert result.status == "failed"
    assert "layers[5] (residual)" in _first_divergent(result), result.message
    assert any(v.what == "weights mapped" and not v.passed for v in result.verdicts), "backward must say it too"


def test_a_nested_kernel_copied_without_its_layout_conversion_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    right = composite.Residual.weight_copies

    def hw_swapped(self, site, module, layer):  # noqa: ANN001, ANN202 - (3, 2, 1, 0) for the body's second conv
        return [replace(c, convert=lambda w: np.ascontiguousarray(w.transpose(3, 2, 1, 0)))
                if c.torch_path == "body.3.weight" else c for c in right(self, site, module, layer)]

    monkeypatch.setattr(composite.Residual, "weight_copies", hw_swapped)
    result = _run(_point(RESNET, "resnet_basic_blocks", "eval"))
    assert result.status == "failed"
    assert "layers[3] (residual)" in _first_divergent(result), result.message


def test_keras_adding_only_the_body_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def body_only(self, x, training=None):  # noqa: ANN001, ANN202 - the projection shortcut forgotten in Keras
        for sub in self.body:
            x = sub(x, training=training)
        return x

    monkeypatch.setattr(composite_layers.KerasResidual, "call", body_only)
    result = _run(_point(RESNET, "resnet_basic_blocks", "eval"))
    assert result.status == "failed"
    assert "layers[3] (residual)" in _first_divergent(result), result.message


def test_torch_subtracting_the_shortcut_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(composite_layers.TorchResidual, "forward", lambda self, x: self.body(x) - self.shortcut(x))
    result = _run(_point(RESNET, "resnet_odd_size_same_padding", "train"))
    assert result.status == "failed"
    assert "layers[0] (residual)" in _first_divergent(result), result.message


# --- the residual form: the Keras layer saves and loads, the reference composes -----------------------------------

def test_the_keras_residual_saves_and_loads(tmp_path: Path) -> None:
    point = _point(RESNET, "resnet_basic_blocks", "eval")
    modules = runner.build_torch(point, "cpu")
    layers = runner.build_keras(point, modules, "cpu")
    x = point.input.make()
    model = keras.Sequential([keras.Input((8, 8, 3)), *layers])
    model.save(tmp_path / "resnet.keras")
    reloaded = keras.models.load_model(tmp_path / "resnet.keras")  # KerasResidual is registered: no custom_objects
    nhwc = point.sites[0].layout.to_keras(x)
    assert np.array_equal(np.asarray(reloaded(nhwc)), np.asarray(model(nhwc)))
    assert any(isinstance(layer, composite_layers.KerasResidual) for layer in reloaded.layers)


def test_the_reference_composes_the_nested_references() -> None:
    """body(x) + shortcut(x) in float64 from the nested blocks' own references, against PyTorch in float64."""
    point = _point(RESNET, "resnet_odd_size_same_padding", "eval")
    layer, site = point.layers[0], point.sites[0]
    module = layer.block.torch_module(replace(site, dtype="float64")).double().eval()
    x = point.input.make().astype(np.float64)
    weights = {name: t.detach().numpy() for name, t in layer.block.torch_parameters(module).items()}
    assert set(weights) >= {"layers.0.weight", "layers.1.running_var", "layers.3.bias", "shortcut.0.weight"}
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    # 1e-9, not float64's 1e-15: ONNX keeps batch norm's epsilon attribute in float32 (1e-3 rounds by 4.7e-11
    # relative), which moved outputs by up to 1.4e-11 here; a composition mistake moves them by O(1).
    reference = layer.block.reference(site, x, weights)
    np.testing.assert_allclose(reference, expected, rtol=1e-9, atol=1e-9)
    negated = {k: -v if k == "shortcut.0.weight" else v for k, v in weights.items()}  # the shortcut's weights count
    assert np.abs(layer.block.reference(site, x, negated) - expected).max() > 0.1


# --- sequential as one block: its own builders compose its layers ---------------------------------------------------

NETWORK = """
- name: network
  block: sequential
  layers:
    - {block: conv2d, params: {filters: 4, kernel_size: 3, strides: 2, padding: same}}
    - {block: batch_norm2d}
    - {block: relu}
    - block: residual
      layers: [{block: conv2d, params: {filters: 4, kernel_size: 3, padding: 1}}]
    - {block: flatten}
    - {block: dense, params: {units: 5}}
  input: {shape: [2, 3, 9, 9], dtype: float64}
"""


def test_sequential_as_one_block_computes_what_the_runner_computes_layer_by_layer(case_points) -> None:
    """The runner builds a network's layers one by one; `sequential`'s own builders (for a network used as one layer)
    compose the same blocks into an nn.Sequential and a keras.Sequential, with their weight copies and reference
    prefixed: all three must compute what the runner does."""
    (point,) = case_points(NETWORK)
    x = point.input.make()
    modules = runner.build_torch(point, "cpu")
    ran = runner.forward_torch(point, modules, x, "cpu")[-1]
    block = get_block("sequential")
    (site,), shape = plan([Layer(block, {"layers": tuple(point.layers)})], point.input.shape, "float64", "eval", 0,
                          False)
    assert shape == point.output_shape
    torch.random.default_generator.manual_seed(point.input.seed)  # the runner's seeding: the same initial weights
    module = block.torch_module(site).to(torch.float64).eval()
    with torch.no_grad():
        whole = module(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(whole, ran)
    layer = block.keras_layer(site)
    layer.build(point.sites[0].layout.to_keras(x).shape)
    block.transfer_weights(site, module, layer)
    keras_out = layer(point.sites[0].layout.to_keras(x), training=False)
    np.testing.assert_allclose(block.output_layout(site).to_channels_first(to_numpy(keras_out)), whole,
                               rtol=1e-10, atol=1e-10)
    weights = {name: to_numpy(t).astype(np.float64) for name, t in block.torch_parameters(module).items()}
    assert sorted(weights) == sorted(f"layers.{i}.{name}" for i, (lay, m) in enumerate(zip(point.layers, modules))
                                     for name in lay.block.torch_parameters(m))
    np.testing.assert_allclose(block.reference(site, x, weights), whole, rtol=1e-10, atol=1e-10)
