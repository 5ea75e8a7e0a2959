"""`xfw-harness port MODULE:FACTORY`: a PyTorch model in, its case and a verified Keras model out.

A LeNet-like nn.Sequential ports and its .keras file reloads and matches PyTorch on a new input (another batch
size too); --weights loads a saved state_dict; an unsupported layer is named with its place in the model; and a
model that is not what its modules say (a subclass of Conv2d with its own forward, a skip connection or a functional
flatten in a custom forward) is not passed, with the place where it first differs. In-place activations port; a
later run into the same folder leaves nothing of the earlier one, and a failed save no partial .keras; errors of the
user's code are one line; every layer that cannot be ported is named in one run; a flatten's feature order is noted;
adaptive pooling to a divisor of its input is window pooling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
import xfw_harness.core.layout  # noqa: F401  (the NOTE's recipe names it)
from xfw_harness.cases import load_file
from xfw_harness.cli import main
from xfw_harness.core.compare import compare
from xfw_harness.core.frameworks import keras, torch
from xfw_harness.core.layout import Layout
from xfw_harness.core.tolerance import default_tolerance
from xfw_harness.core.verdicts import VerdictKind
from xfw_harness.tools.port import Ported, PortError, keras_custom_objects, load_model, output_note, port_model

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


    def inplace():
        torch.manual_seed(3)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3),
                             nn.LeakyReLU(0.1, inplace=True), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))


    def inplace_first():
        torch.manual_seed(3)
        return nn.Sequential(nn.ReLU(inplace=True), nn.Linear(3, 2))  # would overwrite the input it is given


    class later:
        """Another model under the name `inplace` (`later.inplace`), with fewer layers and a planted difference."""

        @staticmethod
        def inplace():
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), Conv2d(4, 4, 3))


    def needs_argument(n):
        return nn.Sequential(nn.Linear(n, 2))


    def raises():
        raise ValueError("no weights here")


    class Gate(nn.Module):
        """A layer of the user's own: no block reads it, and its forward keeps the shape."""

        def forward(self, x):
            return x * torch.sigmoid(x)


    def mixed_problems():
        # Gate: no block; BatchNorm2d(momentum=None): a block reads it, but refuses; AvgPool2d's divisor_override too.
        return nn.Sequential(nn.Conv2d(3, 4, 3), Gate(), nn.Sequential(nn.BatchNorm2d(4, momentum=None), Gate()),
                             nn.AvgPool2d(2, divisor_override=3), nn.Flatten(), nn.Linear(36, 2))


    def mixed_gate():
        torch.manual_seed(2)
        return nn.Sequential(nn.Conv2d(3, 4, 3), Gate(), nn.Flatten(), nn.Linear(4 * 7 * 7, 2))


    def stops_early():
        # nn.LSTM breaks the forward (a tuple out): the layers after it are never reached.
        return nn.Sequential(nn.Linear(4, 8), nn.LSTM(8, 8), nn.Linear(8, 2), nn.AdaptiveAvgPool2d(2))


    class Stack(nn.Sequential):
        """An nn.Sequential under another name: its forward is nn.Sequential's."""


    class OwnStack(nn.Sequential):
        def forward(self, x):
            return super().forward(x)


    class Listed(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(4, 4), nn.ReLU()])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x


    def ends_in_flatten():
        torch.manual_seed(4)
        return Stack(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten())


    def adaptive():
        torch.manual_seed(5)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(4), nn.AdaptiveMaxPool2d((2, None)),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
''')


@pytest.fixture(autouse=True)
def _this_backend_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """`xfw-harness port` checks its .keras on this process's backend only here: each other backend costs a process
    (tests/tools/test_port_backends.py checks them)."""
    monkeypatch.setenv("HARNESS_KERAS_BACKENDS", xfw_harness.core.frameworks.BACKEND)


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
    return compare(keras_out, model_out, tolerance, "keras vs model", ("keras", "model"),
                   kind=VerdictKind.FORWARD).passed


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
    assert 'custom_objects={"Subsample": xfw_harness.blocks.keras_layers.Subsample' in text
    saved = keras.models.load_model(out / "dilated.keras", custom_objects=_harness_layers())
    assert set(keras_custom_objects(saved)) >= {"Subsample"}
    # Why the instructions name them: a fresh Python that has not imported the harness cannot load the file.
    fresh = subprocess.run([sys.executable, "-c", "import sys, keras; keras.models.load_model(sys.argv[1])",
                            str(out / "dilated.keras")], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert fresh.returncode != 0 and "Subsample" in fresh.stderr, fresh.stderr[-2000:]


def _harness_layers() -> dict[str, type]:
    from xfw_harness.blocks import keras_layers

    return {name: cls for name, cls in vars(keras_layers).items()
            if isinstance(cls, type) and issubclass(cls, keras.layers.Layer)
            and cls.__module__ == keras_layers.__name__}


# --- what is not ported -----------------------------------------------------------------------------------------

def test_an_unsupported_layer_is_named_with_its_place(models: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = port(capsys, f"{models}:recurrent", "--out", str(tmp_path / "o"))
    assert code == 2
    assert "1.1: torch.nn.LSTM has no block" in err
    assert not (tmp_path / "o").exists(), "nothing is written for a model that cannot be ported"


def test_a_subclass_with_its_own_name_is_not_read_as_its_base(models: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = port(capsys, f"{models}:subclassed", "--input-shape", "2,3,8,8", "--out", str(tmp_path / "o"))
    assert code == 2
    assert "ScaledConv has no block (it subclasses torch.nn.Conv2d, but its forward may differ" in err
    assert err.startswith("xfw-harness port: 2: ")


def test_a_planted_difference_in_a_conv_forward_is_not_passed(models: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The case alone passes (PyTorch's Conv2d against Keras's Conv2D agree): the model itself is what differs."""
    out = tmp_path / "o"
    code, text, _ = port(capsys, f"{models}:planted", "--input-shape", "2,3,8,8", "--out", str(out))
    assert code == 1
    assert "PASS   " in text  # the case: torch vs keras
    assert "the model first differs from the case at nodes[2] 2 (conv2d), the model's 2: the case's conv2d with the " \
           "params written computes something else than the model's call" in text
    assert "NOT PORTED" in text
    assert (out / "planted.yaml").is_file() and not (out / "planted.keras").exists()


@pytest.mark.parametrize(("factory", "shape", "joins"), [("Skip", "2,4,6,6", "1 add"),
                                                          ("FunctionalFlatten", "2,1,8,8", "1 flatten"),
                                                          ("shared", "2,4", "2 tanh"),
                                                          ("mixed_gate", "2,3,9,9", "1 multiply")])
def test_a_forward_that_is_not_a_chain_of_its_modules_ports_as_a_graph(models: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str],
                                                                       factory: str, shape: str, joins: str) -> None:
    """A skip connection, a functional flatten, a module called twice, a layer of the user's own whose forward is
    made of calls blocks read (x * sigmoid(x)): each a node of the graph the capture records."""
    out = tmp_path / "o"
    code, text, err = port(capsys, f"{models}:{factory}", "--input-shape", shape, "--out", str(out))
    assert code == 0, text + err
    assert joins in text.splitlines()[0] and "PORTED" in text
    assert (out / f"{factory}.keras").is_file()  # reloaded and matched: tests/tools/test_port_graph.py


@pytest.mark.parametrize(("spec", "extra", "message"), [
    ("{models}", (), "expected MODULE:FACTORY"),
    ("{models}:missing", (), "has no 'missing'"),
    ("{models}:not_a_module", (), "not_a_module() returned a int, not an nn.Module"),
    ("no_such_module_xyz:f", (), "cannot import 'no_such_module_xyz'"),
    ("{models}:planted", (), "give --input-shape N,C,H,W: the model's first layer (Conv2d) does not fix"),
    ("{models}:planted", ("--input-shape", "2,x"), "expected N,C,H,W"),
    ("{models}:planted", ("--input-shape", "2,5,8,8"), "the model refused an input of shape [2, 5, 8, 8]"),
    ("{models}:planted", ("--weights", "{lenet_weights}", "--input-shape", "2,3,8,8"), "does not fit the model"),
])
def test_what_cannot_be_ported_says_why(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        spec: str, extra: tuple[str, ...], message: str) -> None:
    weights = tmp_path / "lenet.pt"
    torch.save(load_model(f"{models}:lenet").state_dict(), weights)
    argv = [a.format(models=models, lenet_weights=weights) for a in (spec, *extra)]
    code, _, err = port(capsys, *argv, "--out", str(tmp_path / "o"))
    assert code == 2
    assert message in err


# --- the audit's defects ------------------------------------------------------------------------------------------

def _reproduces(keras_path: Path, model: torch.nn.Module, shape: tuple[int, ...], reduction_length: int) -> bool:
    """The saved Keras model, reloaded, gives the PyTorch model's output on a new input (channels-last in)."""
    keras.backend.clear_session()
    reloaded = keras.models.load_model(keras_path)
    x = np.random.default_rng(11).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x.copy())).numpy()
    got = np.asarray(reloaded(np.moveaxis(x, 1, -1)))
    assert not _same(expected, -got, reduction_length), "the comparison must be able to fail"
    return _same(expected, got, reduction_length)


def test_in_place_activations_port_and_the_keras_file_reproduces_the_model(models: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """ReLU(inplace=True) overwrites its input: recorded after the call (or as a view of the array), the model's
    input to it looked like its output, and the model was said to do more than call its modules in a chain."""
    out = tmp_path / "out"
    code, text, err = port(capsys, f"{models}:inplace", "--input-shape", "2,3,8,8", "--out", str(out))
    assert code == 0, text + err
    assert "PORTED" in text and "does more than call its modules" not in text
    assert _reproduces(out / "inplace.keras", load_model(f"{models}:inplace"), (3, 3, 8, 8), 36)
    code, text, err = port(capsys, f"{models}:inplace_first", "--input-shape", "2,3", "--out", str(tmp_path / "o2"))
    assert code == 0, text + err


def test_a_later_run_into_the_same_folder_leaves_nothing_of_the_earlier_one(models: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """An earlier run left inplace.keras and 6 layers' weights; this run's model has 3 layers and is NOT PORTED: no
    .keras is left for a script to pick up, and weights/ holds only this run's files (a user's own file stays)."""
    out = tmp_path / "out"
    (out / "weights").mkdir(parents=True)
    (out / "inplace.keras").write_bytes(b"an earlier run's model")
    for earlier in ("00_conv2d.npz", "02_conv2d.npz", "05_dense.npz"):
        (out / "weights" / earlier).write_bytes(b"an earlier run's weights")
    (out / "weights" / "notes.txt").write_text("the user's own", encoding="utf-8")
    code, text, _ = port(capsys, f"{models}:later.inplace", "--input-shape", "2,3,8,8", "--out", str(out))
    assert code == 1 and "NOT PORTED" in text
    assert sorted(p.name for p in out.iterdir()) == ["inplace.yaml", "weights"]
    assert sorted(p.name for p in (out / "weights").iterdir()) == ["00_conv2d.npz", "02_conv2d.npz", "notes.txt"]
    with np.load(out / "weights" / "02_conv2d.npz") as npz:  # this run's, not the bytes planted
        assert npz["weight"].shape == (4, 4, 3, 3)


def test_a_failed_save_is_one_line_with_exit_1_and_leaves_no_keras_file(models: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Keras writes part of the file, then fails (a full disk): nothing under the final name, not even the earlier
    run's file, no temporary file; the case stays written; one line says why."""
    def broken_save(self: keras.Model, filepath: str | Path, *args: object, **kwargs: object) -> None:
        Path(filepath).write_bytes(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    out = tmp_path / "out"
    out.mkdir()
    (out / "inplace.keras").write_bytes(b"an earlier run's model")
    monkeypatch.setattr(keras.Model, "save", broken_save)
    code, text, err = port(capsys, f"{models}:inplace", "--input-shape", "2,3,8,8", "--out", str(out))
    assert code == 1, text + err
    assert "Traceback" not in text + err
    [line] = [line for line in text.splitlines() if line.startswith("NOT PORTED")]
    assert f"cannot save the Keras model as {out / 'inplace.keras'}: OSError: [Errno 28] No space left on device" \
        in line
    assert sorted(p.name for p in out.iterdir()) == ["inplace.yaml", "weights"]


def test_a_dotted_module_is_found_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`xfw-harness port portzoo.models:net` in the folder holding portzoo/, as `python -m` and pytest find it; a module
    that is not there says where it was looked for."""
    (tmp_path / "portzoo").mkdir()
    (tmp_path / "portzoo" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "portzoo" / "models.py").write_text(
        "from torch import nn\n\n\ndef net():\n    return nn.Sequential(nn.Linear(3, 2))\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])  # restored after
    code, text, err = port(capsys, "portzoo.models:net", "--out", str(tmp_path / "o"))
    assert code == 0, text + err
    code, _, err = port(capsys, "portzoo.nomod:net", "--out", str(tmp_path / "o2"))
    assert code == 2
    assert "cannot import 'portzoo.nomod'" in err
    assert f"importable from the current directory ({tmp_path}) or PYTHONPATH" in err


@pytest.mark.parametrize(("file", "spec", "messages"), [
    (None, "{models}:needs_argument", ("{models}:needs_argument: needs_argument() cannot be called without "
                                       "arguments", "missing a required argument: 'n'")),
    (None, "{models}:raises", ("{models}:raises: calling raises() raised ValueError: no weights here",)),
    ("bad_syntax.py", "{file}:net", ("{file}:net: importing {file} raised SyntaxError: ", "({file}, line 2)")),
    ("raising_import.py", "{file}:net", ("{file}:net: importing {file} raised RuntimeError: no GPU found",)),
])
def test_an_error_in_the_users_code_is_one_line_with_exit_2(models: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str], file: str | None,
                                                            spec: str, messages: tuple[str, ...]) -> None:
    sources = {"bad_syntax.py": "from torch import nn\ndef net(:\n    pass\n",
               "raising_import.py": "raise RuntimeError('no GPU found')\n"}
    path = tmp_path / file if file else None
    if path is not None:
        path.write_text(sources[file], encoding="utf-8")
    code, text, err = port(capsys, spec.format(models=models, file=path), "--out", str(tmp_path / "o"))
    assert code == 2, text + err
    assert "Traceback" not in err and err.startswith("xfw-harness port: ") and err.count("\n") == 1, err
    for message in messages:
        assert message.format(models=models, file=path) in err


def test_every_layer_that_cannot_be_ported_is_named_in_one_run(models: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Layers no block reads and layers whose block refuses them, in the model's order, in one message; where the
    forward fails (an LSTM's tuple fed to a Linear), the modules no block reads are named before the failure."""
    code, _, err = port(capsys, f"{models}:mixed_problems", "--input-shape", "2,3,9,9", "--out", str(tmp_path / "o"))
    assert code == 2
    lines = err.removeprefix("xfw-harness port: ").splitlines()
    assert [line.split(":")[0] for line in lines] == ["2.0", "3"], err  # the Gates port: x * sigmoid(x)
    assert lines[0].startswith("2.0: torch.nn.BatchNorm2d has no exact translation (batch_norm2d: momentum=None")
    assert lines[1].startswith("3: torch.nn.AvgPool2d has no exact translation (avg_pool2d: ")
    assert not (tmp_path / "o").exists()
    code, _, err = port(capsys, f"{models}:stops_early", "--out", str(tmp_path / "o"))
    assert code == 2
    assert "1: torch.nn.LSTM has no block" in err
    assert "the model refused an input of shape [2, 4] in 2: TypeError: " in err


def test_a_model_ending_in_flatten_says_its_feature_order(models: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The Keras model's features are (H, W, C)-ordered: a NOTE says so and how to reorder them, and the recipe it
    prints gives PyTorch's output. The model, an nn.Sequential subclass that keeps nn.Sequential's forward, gets no
    note that it is not one."""
    out = tmp_path / "out"
    code, text, err = port(capsys, f"{models}:ends_in_flatten", "--input-shape", "2,3,7,9", "--out", str(out))
    assert code == 0, text + err
    assert "note:" not in text
    [note] = [line for line in text.splitlines() if line.startswith("NOTE: ")]
    assert text.index("PORTED: ") < text.index("NOTE: ")
    recipe = "y[:, numpy.argsort(xfw_harness.core.layout.flatten_permutation((4, 5, 7)))]"
    assert "Keras's flatten order (H, W, C), not PyTorch's (C, H, W)" in note and recipe in note
    keras.backend.clear_session()
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 9)).astype(np.float32)
    y = np.asarray(keras.models.load_model(out / "ends_in_flatten.keras")(np.moveaxis(x, 1, -1)))
    with torch.no_grad():
        expected = load_model(f"{models}:ends_in_flatten").eval()(torch.from_numpy(x)).numpy()
    assert not _same(expected, y, 27), "without the reordering the features differ"
    assert _same(expected, eval(recipe, {"numpy": np, "xfw_harness": xfw_harness, "y": y}), 27)  # noqa: S307 - our own text


def test_the_output_note_says_how_the_keras_output_is_laid_out() -> None:
    """A channels-last tensor is noted; a flatten of (C, 1, 1) and a dense output keep PyTorch's order: no note."""
    def note(shape: tuple[int, ...], layout: Layout) -> str | None:
        return output_note(Ported(Path("x.yaml"), "x", (2, 3, 7, 9), [], [], output_shape=shape, output_layout=layout))

    assert note((2, 4, 5, 7), Layout()) == ("NOTE: the output is channels-last like the input (shape [None, 5, 7, 4]); "
                                            "PyTorch's layout is numpy.moveaxis(y, -1, 1)")
    assert note((2, 4), Layout(flattened_from=(4, 1, 1))) is None
    assert note((2, 4), Layout()) is None


def test_adaptive_pooling_to_a_divisor_of_its_input_is_window_pooling(models: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """AdaptiveAvgPool2d(4) on 8x8 is AvgPool2d(2); AdaptiveMaxPool2d((2, None)) on 4x4 is MaxPool2d((2, 1));
    AdaptiveAvgPool2d(1) stays global pooling."""
    out = tmp_path / "out"
    code, text, err = port(capsys, f"{models}:adaptive", "--input-shape", "2,3,8,8", "--out", str(out))
    assert code == 0, text + err
    case = (out / "adaptive.yaml").read_text(encoding="utf-8")
    assert "block: avg_pool2d, params: {pool_size: 2}, inputs: ['0']}  # 1: torch.nn.AdaptiveAvgPool2d" in case
    assert "block: max_pool2d, params: {pool_size: [2, 1]}, inputs: ['1']}  # 2: torch.nn.AdaptiveMaxPool2d" in case
    assert "global_avg_pool2d, params: {keepdims: true}, inputs: ['2']}  # 3: torch.nn.AdaptiveAvgPool2d" in case
    assert _reproduces(out / "adaptive.keras", load_model(f"{models}:adaptive"), (3, 3, 8, 8), 27)


def test_a_module_built_in_python_ports_without_a_file(tmp_path: Path) -> None:
    """port_model takes the nn.Module itself: the case is named after its class unless named, and its header says
    where it came from; a module with no layers and an object that is no module are PortErrors."""
    torch.manual_seed(6)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    ported = port_model(model, out=tmp_path / "out")
    assert ported.passed and ported.name == "Sequential" and ported.blocks == ["dense", "tanh"]
    assert ported.case_path == tmp_path / "out" / "Sequential.yaml" and ported.keras_path.is_file()
    header = ported.case_path.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("# Written by xfw_harness.tools.port.port_model: ")
    assert port_model(model, (5, 4), tmp_path / "named", name="tiny").case_path == tmp_path / "named" / "tiny.yaml"
    with pytest.raises(PortError, match="^empty: the model has no layers$"):
        port_model(torch.nn.Sequential(torch.nn.Identity()), out=tmp_path / "empty", name="empty")
    with pytest.raises(PortError, match="a int is not an nn.Module"):
        port_model(3)  # type: ignore[arg-type]
