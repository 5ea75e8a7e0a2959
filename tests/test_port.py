"""`harness port MODULE:FACTORY`: a PyTorch model in, its case and a verified Keras model out.

A LeNet-like nn.Sequential ports and its .keras file reloads and matches PyTorch on a new input (another batch
size too); --weights loads a saved state_dict; an unsupported layer is named with its place in the model; and a
model that is not what its modules say (a subclass of Conv2d with its own forward, a skip connection or a functional
flatten in a custom forward) is not passed, with the place where it first differs.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import harness.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from harness.cases import load_file
from harness.cli import main
from harness.compare import compare, default_tolerance
from harness.frameworks import keras, torch
from harness.port import keras_custom_objects, load_model

MODELS = textwrap.dedent('''
    import torch
    from torch import nn


    def lenet():
        torch.manual_seed(1)
        return nn.Sequential(
            nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2)),
            nn.Flatten(),
            nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)))


    lenet_instance = lenet()


    def recurrent():
        return nn.Sequential(nn.Linear(4, 8), nn.Sequential(nn.ReLU(), nn.LSTM(8, 8)))


    class Conv2d(nn.Conv2d):
        """Named like PyTorch's own, so the blocks read it: only running the model itself can tell."""

        def forward(self, x):
            return super().forward(x) * 1.001


    class ScaledConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 1.001


    def planted():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(64, 3))


    def subclassed():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), ScaledConv(4, 4, 3))


    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(x) + x)


    class FunctionalFlatten(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Linear(36, 5)

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))


    def dilated():
        torch.manual_seed(2)
        return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, dilation=2, padding=2), nn.MaxPool2d(3, stride=1, padding=1),
                             nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


    def not_a_module():
        return 3


    def shared():
        act = nn.Tanh()
        return nn.Sequential(nn.Linear(4, 4), act, nn.Linear(4, 4), act)
''')


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "port_models.py"
    path.write_text(MODELS, encoding="utf-8")
    return path


def port(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["port", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _same(model_out: np.ndarray, keras_out: np.ndarray, reduction_length: int) -> bool:
    tolerance = default_tolerance("float32", reduction_length, float(np.abs(model_out).max()))
    return compare(keras_out, model_out, tolerance, "keras vs model", ("keras", "model")).passed


def test_a_lenet_ports_and_its_keras_file_matches_pytorch_on_a_new_input(models: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, text, err = port(capsys, f"{models}:lenet", "--input-shape", "2,1,28,28", "--out", str(out))
    assert code == 0, text + err
    assert "PASS" in text and "PORTED" in text and f'keras.models.load_model("{out / "lenet.keras"}")' in text
    # The case is an ordinary case: it loads, and its layers say where they came from.
    entries, error = load_file(out / "lenet.yaml")
    assert error is None and entries[0].error is None
    assert entries[0].points[0].blocks == ["conv2d", "tanh", "avg_pool2d", "conv2d", "tanh", "avg_pool2d", "flatten",
                                           "dense", "relu", "dense", "relu", "dense"]
    assert "# 0.0: torch.nn.Conv2d" in (out / "lenet.yaml").read_text()
    assert sorted(p.name for p in (out / "weights").iterdir()) == ["00_conv2d.npz", "03_conv2d.npz", "07_dense.npz",
                                                                   "09_dense.npz", "11_dense.npz"]
    # A new input, of another batch size, through the reloaded file (in a session that did not build it).
    keras.backend.clear_session()
    reloaded = keras.models.load_model(out / "lenet.keras")
    x = np.random.default_rng(123).standard_normal((5, 1, 28, 28)).astype(np.float32)
    model = load_model(f"{models}:lenet").eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = np.asarray(reloaded(np.moveaxis(x, 1, -1)))
    assert _same(expected, got, 400)
    assert not _same(expected, -got, 400), "the comparison must be able to fail"


def test_weights_from_a_saved_state_dict_are_the_ones_ported(models: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    trained = load_model(f"{models}:lenet")
    with torch.no_grad():
        for p in trained.parameters():
            p.mul_(1.5).add_(0.01)  # other weights than the factory's
    torch.save(trained.state_dict(), tmp_path / "trained.pt")
    out = tmp_path / "out"
    code, text, err = port(capsys, f"{models}:lenet", "--weights", str(tmp_path / "trained.pt"), "--input-shape",
                           "2,1,28,28", "--out", str(out))
    assert code == 0, text + err
    with np.load(out / "weights" / "00_conv2d.npz") as npz:
        assert np.array_equal(npz["weight"], trained[0][0].weight.detach().numpy())
    x = np.random.default_rng(7).standard_normal((3, 1, 28, 28)).astype(np.float32)
    got = np.asarray(keras.models.load_model(out / "lenet.keras")(np.moveaxis(x, 1, -1)))
    with torch.no_grad():
        assert _same(trained.eval()(torch.from_numpy(x)).numpy(), got, 400)
        assert not _same(load_model(f"{models}:lenet").eval()(torch.from_numpy(x)).numpy(), got, 400)


def test_a_module_attribute_of_a_dotted_module(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(models.parent))
    code, text, err = port(capsys, "port_models:lenet_instance", "--input-shape", "1,1,28,28", "--out",
                           str(tmp_path / "o"))
    assert code == 0, text + err


def test_harness_keras_layers_are_listed_for_loading(models: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A strided dilated conv and a padded max pool need the harness's own Keras layers: the printed load line names
    them, and load_model with them gives the saved model back."""
    out = tmp_path / "out"
    code, text, err = port(capsys, f"{models}:dilated", "--input-shape", "2,3,12,12", "--out", str(out))
    assert code == 0, text + err
    assert 'custom_objects={"Subsample2D": harness.blocks.convolution.Subsample2D' in text
    saved = keras.models.load_model(out / "dilated.keras", custom_objects=_harness_layers())
    assert set(keras_custom_objects(saved)) >= {"Subsample2D"}
    with pytest.raises(TypeError, match="Subsample2D"):  # why the instructions name them
        keras.models.load_model(out / "dilated.keras")


def _harness_layers() -> dict[str, type]:
    from harness.blocks import convolution, pooling

    return {name: getattr(module, name) for module in (convolution, pooling) for name in dir(module)
            if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), keras.layers.Layer)
            and getattr(module, name).__module__ == module.__name__}


# --- what is not ported -----------------------------------------------------------------------------------------

def test_an_unsupported_layer_is_named_with_its_place(models: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = port(capsys, f"{models}:recurrent", "--out", str(tmp_path / "o"))
    assert code == 2
    assert "1.1: torch.nn.LSTM has no block" in err
    assert "supported: " in err and "Conv2d" in err and "Linear" in err
    assert not (tmp_path / "o").exists(), "nothing is written for a model that cannot be ported"


def test_a_subclass_with_its_own_name_is_not_read_as_its_base(models: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = port(capsys, f"{models}:subclassed", "--input-shape", "2,3,8,8", "--out", str(tmp_path / "o"))
    assert code == 2
    assert "ScaledConv has no block (it subclasses torch.nn.Conv2d, but its forward may differ" in err
    assert err.startswith("harness port: 2: ")


def test_a_planted_difference_in_a_conv_forward_is_not_passed(models: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The case alone passes (PyTorch's Conv2d against Keras's Conv2D agree): the model itself is what differs."""
    out = tmp_path / "o"
    code, text, _ = port(capsys, f"{models}:planted", "--input-shape", "2,3,8,8", "--out", str(out))
    assert code == 1
    assert "PASS   " in text  # the case: torch vs keras
    assert "the model first differs from the case at layers[2] (conv2d, the model's 2): the module computes " \
           "something else than its block conv2d" in text
    assert "NOT PORTED" in text
    assert (out / "planted.yaml").is_file() and not (out / "planted.keras").exists()


def test_a_skip_connection_in_forward_is_not_passed(models: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _ = port(capsys, f"{models}:Skip", "--input-shape", "2,4,6,6", "--out", str(tmp_path / "o"))
    assert code == 1
    assert "note: (the model) is a Skip, not an nn.Sequential" in text
    assert "at layers[1] (relu, the model's act): the model feeds this module other values" in text


def test_a_functional_flatten_is_not_passed(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _ = port(capsys, f"{models}:FunctionalFlatten", "--input-shape", "2,1,8,8", "--out",
                         str(tmp_path / "o"))
    assert code == 1
    assert ("layers[3] (dense, the model's classifier): the model feeds it shape [2, 36], but the case gives it the "
            "output of layers[2] (max_pool2d), shape [2, 4, 3, 3]") in text


@pytest.mark.parametrize(("spec", "extra", "message"), [
    ("{models}", (), "expected MODULE:FACTORY"),
    ("{models}:missing", (), "has no 'missing'"),
    ("{models}:not_a_module", (), "not_a_module() returned a int, not an nn.Module"),
    ("no_such_module_xyz:f", (), "cannot import 'no_such_module_xyz'"),
    ("{models}:planted", (), "give --input-shape N,C,H,W: the model's first layer (Conv2d) does not fix"),
    ("{models}:planted", ("--input-shape", "2,x"), "expected N,C,H,W"),
    ("{models}:planted", ("--input-shape", "2,5,8,8"), "the model refused an input of shape [2, 5, 8, 8]"),
    ("{models}:planted", ("--weights", "{lenet_weights}", "--input-shape", "2,3,8,8"), "does not fit the model"),
    ("{models}:shared", (), "1: torch.nn.Tanh is called 2 times by the model's forward"),
])
def test_what_cannot_be_ported_says_why(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        spec: str, extra: tuple[str, ...], message: str) -> None:
    weights = tmp_path / "lenet.pt"
    torch.save(load_model(f"{models}:lenet").state_dict(), weights)
    argv = [a.format(models=models, lenet_weights=weights) for a in (spec, *extra)]
    code, _, err = port(capsys, *argv, "--out", str(tmp_path / "o"))
    assert code == 2
    assert message in err
