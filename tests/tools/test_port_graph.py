"""`xfw-harness port` on models that are graphs, not chains: residual adds, concatenations, squeeze-and-excite gates, a
module called twice, functional calls in forward, a ConvNeXt block (permutes, LayerNorm and Linear on the last axis,
layer scale), ShuffleNet's unit (torch.chunk, the channel-shuffle idiom), a dict output, traced with torch.fx and
verified node by node.

Each hand-written model ports (the case passes PyTorch against Keras, the case's modules reproduce the model's own
values node by node, and the saved .keras reloads and matches the model on a new input); what cannot be ported is
named with its place, every such node in one run, and nothing is written. Planted mistakes in the graph's
translation are each caught: a concatenation along the wrong axis, a flatten after a channels-last tensor without
the permutation, an add whose operands are laid out differently, a dropped squeeze-and-excite gate, and a residual
add that vanishes in a network whose activations are tiny.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.blocks import get_block
from xfw_harness.core.frameworks import keras, torch
from xfw_harness.core.layout import CHANNELS_LAST, to_channels_first, to_channels_last
from xfw_harness.tools.port import PortError, port_model

translate_module = importlib.import_module("xfw_harness.tools.port.translate")  # the package exports its function

nn = torch.nn
F = torch.nn.functional


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)  # called twice: two nodes
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.stem(x)))
        out = self.bn2(self.conv(x))
        out += x
        out = self.relu(out)
        return self.fc(torch.flatten(self.pool(out), 1))


class SqueezeExcite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Conv2d(8, 2, 1)
        self.fc2 = nn.Conv2d(2, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return (x * s).mean((2, 3))


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 2, 3, padding=1)
        self.fc = nn.Linear(6 * 3 * 3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.a(x), self.b(x)], dim=1)
        y = F.max_pool2d(y, 2)
        return self.fc(y.view(y.size(0), -1))


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ConvNeXt LayerNorm2d: over the channels of (N, C, H, W), written with permutes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtLike(nn.Module):
    """A ConvNeXt block: permute to channels-last, LayerNorm and Linear on the last axis, permute back, layer scale."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 2, stride=2), LayerNorm2d(8, eps=1e-6))
        self.dwconv = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.norm = nn.LayerNorm(8, eps=1e-6)
        self.pw1, self.pw2 = nn.Linear(8, 32), nn.Linear(32, 8)
        self.layer_scale = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(self.norm(y)))).permute(0, 3, 1, 2)
        x = self.layer_scale * y + x
        return self.head(x.mean((2, 3)))


class ShuffleUnit(nn.Module):
    """ShuffleNet v2's unit: torch.chunk, one half transformed, torch.cat, torchvision's channel-shuffle idiom."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.stem(x).chunk(2, dim=1)
        out = torch.cat((x1, self.branch(x2)), dim=1)
        b, c, h, w = out.size()
        out = torch.transpose(out.view(b, 2, c // 2, h, w), 1, 2).contiguous()
        return out.view(b, c, h, w)


class Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.LocalResponseNorm(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.flip(self.norm(self.conv(x)), [2])
        return y * 0.5


class DictOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x)}


def _reloaded_matches(ported: Any, shape: tuple[int, ...]) -> float:
    """The saved .keras in this process, reloaded, on a new input: its max abs difference from the model's output."""
    model = keras.models.load_model(ported.keras_path, custom_objects=ported.custom_objects)
    x = np.random.default_rng(7).standard_normal(shape).astype("float32")
    with torch.no_grad():
        expected = ported.model(torch.from_numpy(x)).numpy()
    got = np.asarray(model(to_channels_last(x)))
    got = to_channels_first(got) if got.ndim > 2 else got
    return float(np.max(np.abs(got - expected)))


@pytest.mark.parametrize(("model", "shape", "joins"), [
    (Residual, (2, 3, 8, 8), {"add": 1}),
    (SqueezeExcite, (2, 3, 6, 5), {"multiply": 1}),
    (Concat, (2, 3, 6, 6), {"concatenate": 1}),
    (ConvNeXtLike, (2, 3, 8, 8), {"permute": 2, "layer_norm": 2, "scale": 1, "add": 1}),
    (ShuffleUnit, (2, 3, 6, 5), {"narrow": 2, "concatenate": 1, "channel_shuffle": 1}),
])
def test_a_graph_model_ports_and_its_keras_file_reproduces_it(model: type, shape: tuple[int, ...],
                                                              joins: dict[str, int], tmp_path: Path) -> None:
    torch.manual_seed(0)
    ported = port_model(model(), shape, out=tmp_path, name="m")
    assert ported.passed, (ported.result.message, ported.diverged, ported.keras_error)
    for block, count in joins.items():
        assert ported.blocks.count(block) == count, ported.blocks
    assert ported.worst_headroom is not None and ported.worst_headroom < 1
    assert _reloaded_matches(ported, shape) < 1e-4


def test_a_module_called_twice_is_two_nodes_and_functional_calls_are_read(tmp_path: Path) -> None:
    ported = port_model(Residual(), (2, 3, 8, 8), out=tmp_path, name="m")
    names = [m.name for m in ported.nodes]
    assert "relu" in names and "relu.call2" in names  # the shared nn.ReLU, called twice
    assert ported.blocks[-2:] == ["flatten", "dense"]  # torch.flatten(x, 1) read as the flatten block
    text = (tmp_path / "m.yaml").read_text()
    assert "block: graph" in text and "inputs: [bn2, relu]" in text  # `out += x`: the add's operands by name


def test_batch_norm_statistics_are_calibrated_on_a_copy(tmp_path: Path) -> None:
    model = Residual()
    ported = port_model(model, (2, 3, 8, 8), out=tmp_path, name="m")
    assert any("initial statistics" in note for note in ported.notes)
    assert int(model.bn.num_batches_tracked) == 0  # the user's model untouched
    assert ported.model is not model and float(ported.model.bn.running_var.mean()) != 1.0


def test_every_node_that_cannot_be_ported_is_named_in_one_run_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(PortError) as e:
        port_model(Unsupported(), (2, 3, 4, 4), out=tmp_path / "out", name="m")
    lines = str(e.value).splitlines()
    assert any(line.startswith("flip(): flip has no block (test_port_graph.py:") for line in lines), lines
    assert any(line.startswith("norm: torch.nn.LocalResponseNorm has no block") for line in lines), lines
    assert any("constant operand" in line for line in lines), lines  # `* 0.5`
    assert not (tmp_path / "out").exists()


class TwoOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return y, torch.sigmoid(y)


def test_a_dict_of_one_tensor_ports_as_that_tensor_and_several_outputs_are_refused(tmp_path: Path) -> None:
    """torchvision's segmentation models return {"out": tensor}: the case and the Keras model give the tensor."""
    ported = port_model(DictOutput(), (1, 3, 4, 4), out=tmp_path / "one", name="m")
    assert ported.passed and any("returns a dict (keys out) holding one tensor" in n for n in ported.notes)
    with pytest.raises(PortError, match="returns a tuple of 2 tensors"):
        port_model(TwoOutputs(), (1, 3, 4, 4), out=tmp_path / "two", name="m")


# --- planted mistakes ---------------------------------------------------------------------------------------------

def test_planted_a_concatenation_along_the_wrong_axis_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    block = get_block("concatenate")
    monkeypatch.setattr(type(block), "keras_layer", lambda self, site: keras.layers.Concatenate(axis=1))  # H, not C
    ported = port_model(Concat(), (2, 3, 6, 6), out=tmp_path, name="m")
    assert not ported.passed and ported.keras_path is None


def test_planted_a_flatten_after_channels_last_without_the_permutation_is_caught(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(get_block("flatten")), "output_layout", lambda self, site: CHANNELS_LAST)
    ported = port_model(Concat(), (2, 3, 6, 6), out=tmp_path, name="m")
    assert not ported.passed and ported.result.status == "failed"


class _SwapHW(keras.layers.Layer):
    """An add whose second operand reaches it transposed (H and W swapped): the same shape on a square input."""

    def call(self, xs: list[Any]) -> Any:
        return xs[0] + keras.ops.transpose(xs[1], (0, 2, 1, 3))


def test_planted_an_add_with_an_operand_in_another_layout_is_caught(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(get_block("add")), "keras_layer", lambda self, site: _SwapHW())
    ported = port_model(Residual(), (2, 3, 8, 8), out=tmp_path, name="m")
    assert not ported.passed
    assert "add" in ported.result.message  # the first divergent node is named


def test_planted_a_dropped_squeeze_excite_gate_is_caught_by_the_model_check(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The translation reads the gate `x * s` as `x + s`: PyTorch and Keras agree on the case, but the case is not
    the model."""
    real = translate_module._read

    def drop_gate(node: Any, inputs: list[str], *args: Any) -> Any:
        if node.op in ("call_function", "call_method") and getattr(node.target, "__name__", "") == "mul":
            return get_block("add"), {}, inputs
        return real(node, inputs, *args)

    monkeypatch.setattr(translate_module, "_read", drop_gate)
    ported = port_model(SqueezeExcite(), (2, 3, 6, 5), out=tmp_path, name="m")
    assert ported.result.status == "passed"  # the frameworks agree on the (wrong) case
    assert not ported.passed and ported.diverged is not None and ported.keras_path is None


class Tiny(nn.Module):
    """Activations around 1e-9: a tolerance with an absolute floor of 1e-6 would pass anything."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 3, 1)
        self.b = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            for conv in (self.a, self.b):
                conv.weight.mul_(1e-5)
                conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return self.b(y) + y


def test_planted_a_vanished_residual_add_is_caught_however_small_the_activations(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    real = translate_module._read

    def drop_add(node: Any, inputs: list[str], *args: Any) -> Any:
        if node.op == "call_function" and getattr(node.target, "__name__", "") == "add":
            raise translate_module._Alias  # the sum read as its first operand
        return real(node, inputs, *args)

    assert port_model(Tiny(), (2, 3, 4, 4), out=tmp_path / "ok", name="m").passed
    monkeypatch.setattr(translate_module, "_read", drop_add)
    ported = port_model(Tiny(), (2, 3, 4, 4), out=tmp_path / "bad", name="m")
    assert not ported.passed and "output" in (ported.diverged or "")


def test_a_node_the_loader_refuses_leaves_nothing_written(tmp_path: Path) -> None:
    """nn.Linear on the width of an (N, C, H, W) tensor: read as a dense on the last axis, which Keras's Dense cannot
    take from a channels-last tensor; refused with the node's field, and the folder is left as it was."""
    with pytest.raises(PortError, match=r"nodes\[1\]\.params\.axis.*Keras's Dense acts on the last"):
        port_model(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Linear(5, 2)), (2, 3, 4, 5), out=tmp_path / "out", name="m")
    assert not (tmp_path / "out").exists()


def test_progress_hears_each_stage_and_every_node(tmp_path: Path) -> None:
    heard: list[tuple[str, int, int]] = []
    ported = port_model(Concat(), (2, 3, 6, 6), out=tmp_path, name="m",
                        progress=lambda stage, done=0, total=0: heard.append((stage, done, total)))
    stages = [stage for stage, _, _ in heard]
    assert stages[0] == "tracing the model" and stages[-1] == "saving the Keras model"
    nodes = [(done, total) for stage, done, total in heard if stage == "the case against the model"]
    assert nodes == [(i, len(ported.nodes)) for i in range(len(ported.nodes))]


class TupleModule(nn.Module):
    """A module that returns a tuple (as nn.MultiheadAttention does), read by getitem."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(4, 2, batch_first=True)
        self.fc = nn.Linear(4, 2)
        self.pos = nn.Parameter(torch.zeros(1, 3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.attention(x, x, x)
        return self.fc(out) + self.pos


def test_what_follows_a_module_returning_a_tuple_is_not_a_traceback(tmp_path: Path) -> None:
    """Its pieces are not named again (the module is); a parameter operand is said by its shape, not printed."""
    with pytest.raises(PortError) as e:
        port_model(TupleModule(), (2, 3, 4), out=tmp_path / "out", name="m")
    lines = str(e.value).splitlines()
    assert lines[0].startswith("attention: torch.nn.MultiheadAttention has no block"), lines
    assert not any("getitem" in line for line in lines), lines
    assert any("a parameter of shape [1, 3, 2]" in line for line in lines), lines
