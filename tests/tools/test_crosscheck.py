"""`xfw-harness verify MODULE:FACTORY ARTEFACT` and `export_tflite` (xfw_harness.tools.crosscheck).

Two small PyTorch models (a conv, batch norm, ReLU, max-pool and linear net with a functional flatten; a model with
two outputs, a vector and a channels-first map) are converted to Keras *by hand* here, as someone porting with
nobuco or onnx2tf in mind would (channels-last; weights through xfw_harness.core.layout), and saved as a .keras file, a
SavedModel folder and a .tflite file. A correct conversion passes for each kind; planted mistakes fail with the
output and the seed named: a kernel with kh and kw swapped, a missing bias, a Dense after a flatten whose rows were
not permuted (the message names the flatten order), a wrong batch-norm epsilon, an output left in Keras's flatten
order, and a straight-through ReLU that only changes the gradient. Bad input exits 2 with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.cli import build_parser, main
from xfw_harness.core.frameworks import BACKEND, installed_backends, keras, to_numpy, torch
from xfw_harness.core.layout import (
    conv_kernel_to_keras,
    dense_after_flatten_kernel_to_keras,
    dense_kernel_to_keras,
    to_channels_last,
)
from xfw_harness.tools.crosscheck import export_tflite, open_artefact
from xfw_harness.tools.crosscheck.alignment import NHWC, choose_input_layout
from xfw_harness.tools.crosscheck.artefact import ArtefactError, natural_key
from xfw_harness.tools.crosscheck.judge import DEFAULT_K
from xfw_harness.tools.crosscheck.verify import pair_outputs
from xfw_harness.tools.port.model import load_model

MODELS = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                          nn.MaxPool2d(2))
            self.classifier = nn.Linear(6 * 5 * 5, 7)

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))


    def make_net(seed=0):
        torch.manual_seed(seed)
        net = Net()
        bn = net.features[1]
        with torch.no_grad():  # statistics of a trained net, small variances: a wrong epsilon shows
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.05, 0.2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        return net


    def make_other_net():
        return make_net(seed=1)


    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(2)
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.act = nn.ReLU()
            self.head = nn.Linear(4, 5)
            self.map = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            h = self.act(self.stem(x))
            return self.head(h.mean(dim=(2, 3))), self.map(h)


    class Features(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(3)
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return torch.flatten(torch.relu(self.conv(x)), 1)
''')

SHAPE = "2,3,10,10"
L = keras.layers


@keras.saving.register_keras_serializable("crosscheck_test")
class StraightThroughReLU(L.Layer):
    """ReLU forward, identity backward: the same outputs as PyTorch's ReLU, another gradient."""

    def call(self, x):
        return x + keras.ops.stop_gradient(keras.ops.relu(x) - x)


def _np(t: torch.Tensor) -> np.ndarray:
    return to_numpy(t).astype(np.float32)


def keras_net(net, kernel=conv_kernel_to_keras, dense_bias=True, eps=1e-5, permute=True) -> keras.Model:
    conv, bn, _, _ = net.features
    inp = keras.Input((10, 10, 3))
    c, b, d = L.Conv2D(6, 3, padding="same"), L.BatchNormalization(epsilon=eps), L.Dense(7, use_bias=dense_bias)
    out = d(L.Flatten()(L.MaxPooling2D(2)(L.ReLU()(b(c(inp))))))
    model = keras.Model(inp, out)
    c.set_weights([kernel(_np(conv.weight)), _np(conv.bias)])
    b.set_weights([_np(bn.weight), _np(bn.bias), _np(bn.running_mean), _np(bn.running_var)])
    w = _np(net.classifier.weight)
    d.set_weights([dense_after_flatten_kernel_to_keras(w, (6, 5, 5)) if permute else dense_kernel_to_keras(w)]
                  + ([_np(net.classifier.bias)] if dense_bias else []))
    return model


def keras_two_heads(m, channels_first_input=False, activation=None) -> keras.Model:
    inp = keras.Input((3, 10, 10) if channels_first_input else (10, 10, 3))
    x = L.Permute((2, 3, 1))(inp) if channels_first_input else inp
    stem, head, cmap = L.Conv2D(4, 3, padding="same"), L.Dense(5), L.Conv2D(2, 1)
    h = (activation or L.ReLU())(stem(x))
    model = keras.Model(inp, [head(L.GlobalAveragePooling2D()(h)), cmap(h)])
    stem.set_weights([conv_kernel_to_keras(_np(m.stem.weight)), _np(m.stem.bias)])
    head.set_weights([dense_kernel_to_keras(_np(m.head.weight)), _np(m.head.bias)])
    cmap.set_weights([conv_kernel_to_keras(_np(m.map.weight)), _np(m.map.bias)])
    return model


def keras_features(m) -> keras.Model:
    """Conv, ReLU, Flatten on a channels-last tensor: its output keeps Keras's (H, W, C) feature order."""
    inp = keras.Input((10, 10, 3))
    conv = L.Conv2D(4, 3, padding="same")
    model = keras.Model(inp, L.Flatten()(L.ReLU()(conv(inp))))
    conv.set_weights([conv_kernel_to_keras(_np(m.conv.weight)), _np(m.conv.bias)])
    return model


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if BACKEND != "tensorflow":  # the artefacts are exported through TensorFlow (SavedModel, LiteRT)
        pytest.skip(f"xfw-harness verify's .keras and SavedModel run in TensorFlow; Keras runs on {BACKEND} here")
    """The models' file, and every artefact the tests verify (built once: the exports take most of the time)."""
    root = tmp_path_factory.mktemp("crosscheck")
    models = root / "crosscheck_models.py"
    models.write_text(MODELS, encoding="utf-8")
    paths = {"models": str(models)}

    def model(name: str):  # noqa: ANN202
        return load_model(f"{models}:{name}")

    net, two, feats = model("make_net"), model("TwoHeads"), model("Features")

    def save(name: str, keras_model: keras.Model, kinds: str) -> None:
        if "k" in kinds:
            paths[f"{name}.keras"] = str(root / f"{name}.keras")
            keras_model.save(paths[f"{name}.keras"])
        if "s" in kinds:
            paths[f"{name}.sm"] = str(root / f"{name}_savedmodel")
            keras_model.export(paths[f"{name}.sm"], verbose=False)
        if "t" in kinds:
            paths[f"{name}.tflite"] = str(root / f"{name}.tflite")
            keras_model.export(paths[f"{name}.tflite"], format="litert", verbose=False)

    save("net", keras_net(net), "kst")
    save("two", keras_two_heads(two), "kst")
    save("two_nchw", keras_two_heads(two, channels_first_input=True), "k")
    save("kernel_T", keras_net(net, kernel=lambda w: np.ascontiguousarray(w.T)), "k")  # the classic weight.T
    save("no_bias", keras_net(net, dense_bias=False), "t")
    save("unpermuted", keras_net(net, permute=False), "ks")
    save("eps", keras_net(net, eps=1e-3), "s")
    save("features", keras_features(feats), "t")
    save("straight_through", keras_two_heads(two, activation=StraightThroughReLU()), "s")
    state = root / "net_state.pt"
    torch.save(net.state_dict(), state)
    paths["state"] = str(state)
    txt = root / "notes.txt"
    txt.write_text("not a model", encoding="utf-8")
    paths["txt"] = str(txt)
    broken = root / "broken.keras"
    broken.write_text("not a zip", encoding="utf-8")
    paths["broken"] = str(broken)
    return paths


def verify(built: dict[str, str], factory: str, artefact: str, *options: str,
           capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    options = tuple(built.get(o, o) for o in options)  # a key of `built` stands for its path
    code = main(["verify", f"{built['models']}:{factory}", built.get(artefact, artefact), "--input-shape", SHAPE,
                 *options])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", ["keras", "sm", "tflite"])
def test_a_correct_conversion_passes_for_each_kind_of_artefact(built, capsys, kind: str) -> None:
    code, out, err = verify(built, "make_net", f"net.{kind}", capsys=capsys)
    assert code == 0, out + err
    assert out.count("PASS   seed") == (3 if kind == "tflite" else 6)
    assert "channels-last (NHWC)" in out and "verify: PASS" in out
    if kind == "tflite":
        assert out.count("not differentiable") == 3 and "LiteRT interpreter, ai-edge-litert" in out


@pytest.mark.parametrize("kind", ["keras", "sm", "tflite"])
def test_two_outputs_are_paired_in_order_and_the_map_read_channels_last(built, capsys, kind: str) -> None:
    code, out, err = verify(built, "TwoHeads", f"two.{kind}", "--seeds", "2", capsys=capsys)
    assert code == 0, out + err
    assert "output[1]" in out and "read channels-last" in out
    if kind == "tflite":  # the interpreter lists the map first; the signature's names put it back in order
        assert "natural order of their names: output_0, output_1" in out


def test_a_channels_first_input_is_detected(built, capsys) -> None:
    code, out, err = verify(built, "TwoHeads", "two_nchw.keras", capsys=capsys)
    assert code == 0, out + err
    assert "input: channels-first (NCHW)" in out
    code, _, err = verify(built, "TwoHeads", "two_nchw.keras", "--layout", "nhwc", capsys=capsys)
    assert code == 2 and "--layout nhwc" in err and "does not fit" in err


def test_weights_are_loaded_from_a_state_dict(built, capsys) -> None:
    assert verify(built, "make_other_net", "net.keras", capsys=capsys)[0] == 1
    code, out, err = verify(built, "make_other_net", "net.keras", "--weights", built["state"], capsys=capsys)
    assert code == 0, out + err


def test_a_kernel_with_kh_and_kw_swapped_is_caught_and_located(built, capsys) -> None:
    code, out, _ = verify(built, "make_net", "kernel_T.keras", capsys=capsys)
    assert code == 1
    assert "FAIL   seed 0  output" in out and "FAIL   seed 2  output" in out and "values differ" in out
    assert "first divergence: Keras layer 'conv2d" in out and "features.0 (torch.nn.Conv2d)" in out


def test_a_missing_bias_is_caught_on_the_tflite_interpreter(built, capsys) -> None:
    code, out, _ = verify(built, "make_net", "no_bias.tflite", capsys=capsys)
    assert code == 1
    assert "FAIL   seed 1  output" in out and "layers: not aligned" in out


def test_a_dense_after_flatten_not_permuted_is_named_with_the_flatten_order(built, capsys) -> None:
    code, out, _ = verify(built, "make_net", "unpermuted.keras", capsys=capsys)
    assert code == 1 and "FAIL   seed 0  output" in out
    assert "first divergence: Keras layer 'dense" in out
    assert "finding: flatten order" in out and "fed PyTorch's own (C, H, W)-ordered features" in out
    assert "classifier (torch.nn.Linear)" in out
    code, out, _ = verify(built, "make_net", "unpermuted.sm", capsys=capsys)  # no layers: a hint, not a finding
    assert code == 1 and "hint: the PyTorch model flattens a [6, 5, 5] tensor" in out and "flatten order" in out


def test_a_wrong_batch_norm_epsilon_is_caught(built, capsys) -> None:
    code, out, _ = verify(built, "make_net", "eps.sm", capsys=capsys)
    assert code == 1 and "FAIL   seed 0  output" in out and "FAIL   seed 0  input gradient" in out


def test_an_output_left_in_keras_flatten_order_is_a_finding(built, capsys) -> None:
    code, out, _ = verify(built, "Features", "features.tflite", capsys=capsys)
    assert code == 1
    assert "finding: flatten order: output differs as PyTorch orders its features but matches read in Keras's " \
           "channels-last flatten order of a [4, 10, 10] tensor" in out


def test_a_difference_in_the_gradient_only_is_caught(built, capsys) -> None:
    code, out, _ = verify(built, "TwoHeads", "straight_through.sm", capsys=capsys)
    assert code == 1
    assert "PASS   seed 0  output[0]" in out and "PASS   seed 0  output[1]" in out
    assert "FAIL   seed 0  input gradient" in out and "values differ" in out


@pytest.mark.parametrize(("args", "expected"), [
    (["make_net", "missing.keras"], "missing.keras: no such file or folder"),
    (["make_net", "txt"], "not a Keras 3 .keras file, a TensorFlow SavedModel folder or a .tflite file"),
    (["make_net", "broken"], "broken.keras: not a Keras 3 .keras file (which is a zip archive"),
    (["make_net", "net.keras", "--weights", "txt"], "cannot read"),  # torch.load's error spans lines: one here
    (["make_net", "net.keras", "--input-shape", "2,3,12,12"], "fits neither NCHW [2, 3, 12, 12] nor NHWC"),
    (["make_net", "net.tflite", "--input-shape", "2,x"], "--input-shape '2,x'"),
    (["no_such_factory", "net.keras"], "has no 'no_such_factory'"),
])
def test_bad_input_exits_2_with_one_line(built, capsys, args: list[str], expected: str) -> None:
    factory, artefact, *options = args
    code, out, err = verify(built, factory, artefact, *options, capsys=capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err, err


def test_the_interpreter_lists_outputs_out_of_order_and_the_signature_does_not(built) -> None:
    """Why a .tflite with a signature is read through it: the interpreter's own output list has the map first."""
    tflite = open_artefact(built["two.tflite"])
    x = np.zeros((3, 10, 10, 3), np.float32)
    assert [a.shape for _, a in tflite.run(x)] == [(3, 5), (3, 10, 10, 2)]
    tflite._runner, tflite._outputs = None, None  # as a file without signatures is read
    assert [a.shape for _, a in tflite.run(x)] == [(3, 10, 10, 2), (3, 5)]


def test_export_tflite_runs_on_litert_and_compares(built, tmp_path: Path) -> None:
    net = load_model(f"{built['models']}:make_net").eval()
    x = np.random.default_rng(5).standard_normal((2, 3, 10, 10)).astype(np.float32)
    with torch.no_grad():
        expected = _np(net(torch.from_numpy(x)))
    verdict = export_tflite(built["net.keras"], tmp_path / "net.tflite", to_channels_last(x), expected)
    assert verdict.passed, verdict.message
    assert (tmp_path / "net.tflite").is_file() and verdict.metrics["max_abs"] < 1e-4
    assert not export_tflite(built["net.keras"], tmp_path / "again.tflite", to_channels_last(x), expected + 0.1).passed
    failed = export_tflite(tmp_path / "missing.keras", tmp_path / "x.tflite", to_channels_last(x), expected)
    assert not failed.passed and failed.check == "export" and "missing.keras" in failed.message


def test_export_tflite_converts_every_layer_it_was_measured_on(tmp_path: Path) -> None:
    """Conv2D, BatchNormalization, DepthwiseConv2D, Add, Multiply, Concatenate, ReLU, PReLU, Dense and
    GlobalAveragePooling2D through keras.Model.export(format="litert") (xfw_harness/tools/crosscheck/litert.py)."""
    inp = keras.Input((8, 8, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(4, 3, padding="same")(inp)))
    a = L.Add()([x, L.DepthwiseConv2D(3, padding="same")(x)])
    c = L.PReLU(shared_axes=[1, 2])(L.Concatenate()([a, L.Multiply()([a, x])]))
    model = keras.Model(inp, L.Dense(5)(L.GlobalAveragePooling2D()(c)))
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in model.get_weights()])
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    verdict = export_tflite(model, tmp_path / "layers.tflite", x, to_numpy(model(x)))
    assert verdict.passed, verdict.message


def test_pieces() -> None:
    assert sorted(["output_10", "output_2", "output_0"], key=natural_key) == ["output_0", "output_2", "output_10"]
    assert pair_outputs(["output['a']", "output['b']"], ["b", "a"]) == [(0, 1), (1, 0)]
    assert pair_outputs(["output[0]", "output[1]"], ["output_1", "output_0"]) == [(0, 0), (1, 1)]
    assert pair_outputs(["output"], ["a", "b"]) is None
    ambiguous = choose_input_layout((None, None, None, None), (2, 3, 8, 8), "auto", "m")
    assert ambiguous.layout == NHWC and "fits both layouts" in ambiguous.reason
    assert "one at a time" in choose_input_layout((1, 8, 8, 3), (2, 3, 8, 8), "auto", "m").reason
    with pytest.raises(ArtefactError, match="fits neither"):
        choose_input_layout((None, 9, 9, 3), (2, 3, 8, 8), "auto", "m")
    with pytest.raises(ArtefactError, match="no such file"):
        open_artefact("nowhere.tflite")
    defaults = build_parser().parse_args(["verify", "m:f", "a.keras", "--input-shape", "1,2"])
    assert defaults.tolerance_k == DEFAULT_K and defaults.seeds == 3 and defaults.layout == "auto"


OTHER_THAN_TF = [b for b in installed_backends() if b != "tensorflow"]


@pytest.mark.skipif(not OTHER_THAN_TF, reason="no Keras backend but TensorFlow is installed")
def test_keras_and_savedmodel_artefacts_on_another_backend_say_they_need_tensorflow(tmp_path: Path) -> None:
    """On jax or torch, a .keras file or a SavedModel is refused (exit 2) with one line saying why and what to do,
    before anything is run; and without a traceback. (On TensorFlow the same artefacts verify: the tests above.)"""
    (tmp_path / "net.py").write_text("import torch\n\ndef net():\n    return torch.nn.Sequential("
                                     "torch.nn.Linear(3, 2))\n", encoding="utf-8")
    keras_file = tmp_path / "net.keras"
    with zipfile.ZipFile(keras_file, "w") as archive:  # a zip: opened no further than the backend check
        archive.writestr("config.json", "{}")
    saved = tmp_path / "net_savedmodel"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    backend = OTHER_THAN_TF[0]
    for artefact, kind in ((keras_file, "Keras 3 model (.keras)"), (saved, "TensorFlow SavedModel")):
        done = subprocess.run([sys.executable, "-m", "xfw_harness", "verify", f"{tmp_path / 'net.py'}:net",
                               str(artefact), "--input-shape", "2,3"], env={**os.environ, "KERAS_BACKEND": backend},
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stdout == ""
        expected = (f"xfw-harness verify: {artefact}: xfw-harness verify runs a {kind} in TensorFlow "
                    f"(tf.GradientTape for the input gradient), and Keras runs on {backend} in this process "
                    f"(KERAS_BACKEND={backend}): run it with KERAS_BACKEND=tensorflow, or unset")
        assert expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
