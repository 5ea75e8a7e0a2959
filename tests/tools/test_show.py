"""`xfw-harness show` and `xfw-harness new`.

The printed code is only worth reading if it is what runs: for every point of every shipped case, the PyTorch and
the Keras programs that `xfw-harness show` prints are executed and must give exactly the runner's outputs, and a
planted mistake in the printed weight transfer must be caught by that check. The skeletons of `xfw-harness new` must
load and pass as printed, with their commented examples switched on too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
import xfw_harness.engine as runner
from tests.helpers import runner_outputs, same, shipped_points, shown_outputs, switch_on
from xfw_harness.cases import Point, find_points, load_file
from xfw_harness.cli import main
from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import BACKEND, installed_backends
from xfw_harness.tools.new import case_skeleton
from xfw_harness.tools.show import point_code, show_text

PROJECT = Path(__file__).resolve().parents[2]
CASES = PROJECT / "cases"
SHIPPED = shipped_points()


# --- (a) the printed code is what runs ---------------------------------------------------------------------

@pytest.mark.parametrize("point", SHIPPED, ids=lambda p: p.test_id("cpu"))
def test_printed_code_computes_what_the_runner_computes(point: Point) -> None:
    """Bit for bit: the programs make the same input, draw the same initial weights from the same seed in the same
    order, and run the same operations. This holds for dropout in train mode too: PyTorch's mask comes from the
    generator seeded before the modules are built, Keras's from Dropout(seed=input.seed), in both the runner and
    the printed code, so no point needs a looser comparison."""
    try:
        code = point_code(point, "cpu")
    except runner.StageError as e:  # a hand port Keras refuses to build (known_differences): the runner refuses alike
        assert "building the Keras layer" in str(e), e
        with pytest.raises(runner.StageError, match=re.escape(str(e)[:80])):
            runner_outputs(point)
        return
    for source in code.values():
        assert not re.search(r"initializer|regularizer|constraint|trainable=True|\bname=", source), \
            "get_config noise in the printed code"
    ran_torch, ran_keras = runner_outputs(point)
    shown_torch, shown_keras = shown_outputs(point, code)
    assert same(shown_torch, ran_torch), f"the printed PyTorch code differs from the runner's:\n{code['torch']}"
    assert same(shown_keras, ran_keras), f"the printed Keras code differs from the runner's:\n{code['keras']}"


# --- (b) a planted mistake in the printed weight transfer is caught ------------------------------------------

def _one(spec: str) -> Point:
    points = find_points(spec)
    assert len(points) == 1
    return points[0]


HW_SWAP = "(lambda w: np.ascontiguousarray(w.transpose(3, 2, 1, 0)))("  # also swaps kh and kw
PLANTED = [
    pytest.param("cases/conv2d.yaml::kernel_shapes[kernel_size=5-strides=1-padding=valid]",
                 "conv_kernel_to_keras(", HW_SWAP, id="conv kernel (3, 2, 1, 0), square: the values tell"),
    pytest.param("cases/dense.yaml::flatten_then_dense[input.shape=2x4x5x6]",
                 "dense_after_flatten_kernel_to_keras(", "(lambda w, _: np.ascontiguousarray(w.T))(",
                 id="dense after flatten without the row permutation"),
]


def _planted(point: Point, right: str, wrong: str) -> dict[str, str]:
    code = point_code(point, "cpu")
    assert code["keras"].count(right) == 1
    return {**code, "keras": code["keras"].replace(right, wrong)}


@pytest.mark.parametrize(("spec", "right", "wrong"), PLANTED)
def test_a_wrong_printed_weight_transfer_is_caught(spec: str, right: str, wrong: str) -> None:
    """The exec check fails both ways: the correct printed code matches, the planted one does not."""
    point = _one(spec)
    ran_torch, ran_keras = runner_outputs(point)
    assert same(shown_outputs(point, point_code(point, "cpu"))[1], ran_keras), "the correct code must match"
    shown_torch, shown_keras = shown_outputs(point, _planted(point, right, wrong))
    assert shown_keras.shape == ran_keras.shape, "the planted mistake keeps the shape: only the values can tell"
    assert same(shown_torch, ran_torch)
    assert not same(shown_keras, ran_keras), "the exec check missed a wrong kernel layout in the printed code"


def test_a_wrong_printed_kernel_transpose_fails_on_a_non_square_kernel() -> None:
    """On a 3x2 kernel, (3, 2, 1, 0) gives a (kw, kh, in, out) array: the printed program stops at the assign."""
    point = _one("cases/conv2d.yaml::kernel_shapes[kernel_size=3x2-strides=1-padding=valid]")
    assert same(shown_outputs(point, point_code(point, "cpu"))[1], runner_outputs(point)[1])
    with pytest.raises(ValueError, match=r"variable.shape=\(3, 2, 2, 3\), Received: value.shape=\(2, 3, 2, 3\)"):
        shown_outputs(point, _planted(point, "conv_kernel_to_keras(", HW_SWAP))


def test_the_printed_conversion_is_the_one_the_block_uses() -> None:
    """The conversion named in the printed code comes from the block's weight_copies, the data transfer_weights
    runs; its comment is the xfw_harness.core.layout function's own docstring."""
    keras_code = point_code(_one("cases/conv2d.yaml::kernel_shapes[kernel_size=4-strides=2-padding=same]"))["keras"]
    assert "# Conv2d weight [out, in/groups, kh, kw] -> Keras Conv2D kernel (kh, kw, in/groups, out)." in keras_code
    assert "conv_kernel_to_keras(t0[1].weight.detach().cpu().numpy())" in keras_code  # ZeroPad2d then Conv2d
    assert "torch.nn.ZeroPad2d(padding=(1, 1, 1, 2))" in keras_code  # TensorFlow's odd pixel at the bottom
    assert 'padding="same"' in keras_code  # Keras pads TensorFlow's same itself


# --- show_text: header, parts and footer ---------------------------------------------------------------------

def test_show_text_header_parts_and_tolerance() -> None:
    point = _one("cases/networks.yaml::small_cnn")
    text = show_text(point)
    assert text.startswith(f"# cases/networks.yaml::small_cnn on cpu, Keras on {BACKEND} (test id "
                           f"cases/networks.yaml::small_cnn[cpu-{BACKEND}])")
    assert ("#   layers[2] max_pool2d {pool_size: [2, 2], strides: null, padding: valid, ceil_mode: false, "
            "dilation:") in text
    assert "# --- PyTorch ---" in text and "# --- Keras ---" in text
    assert "dense_after_flatten_kernel_to_keras(t4.weight.detach().cpu().numpy(), (8, 13, 13))" in text
    ran_torch, _ = runner_outputs(point)
    rtol = runner.point_tolerance(point, ran_torch).rtol  # the runner's own rule for this point
    assert f"= {rtol:.3g}, K = 1352" in re.sub(r"\n#\s+", " ", text)
    only_torch = show_text(point, parts=("torch",))
    assert "# --- Keras ---" not in only_torch and "keras." not in only_torch.split("# --- How")[0]


def test_show_text_names_a_case_tolerance_and_the_dropout_rule() -> None:
    assert "(set by the case)" in show_text(_one("cases/activations.yaml::gelu_float64[approximate=none]"))
    text = show_text(_one("cases/dropout.yaml::dense_then_dropout_train"))
    assert "x / (1 - rate)" in text and "The outputs before the dropout are compared" in text


def test_gpu_code_runs_on_cuda_and_sets_the_runners_precision() -> None:
    code = point_code(_one("cases/seed_article.yaml::seed_conv_28x28"), "gpu")
    assert 'm.to(device="cuda", dtype=torch.float32)' in code["torch"]
    assert all("import xfw_harness.core.frameworks" in code[side] for side in ("torch", "keras"))
    assert 'keras.device("gpu:0" if xfw_harness.core.frameworks.keras_has_gpu() else "cpu")' in code["keras"]


# --- the Keras program of each backend ---------------------------------------------------------------------------

def test_the_keras_program_names_this_backend_and_uses_no_backend_api() -> None:
    """Backend-neutral code (keras.device, keras.ops.convert_to_tensor): nothing of TensorFlow's but where
    TensorFlow is the backend named."""
    keras_code = point_code(_one("cases/seed_article.yaml::seed_conv_28x28"))["keras"]
    assert f'os.environ["KERAS_BACKEND"] = "{BACKEND}"' in keras_code
    assert not re.search(r"\btf\.|import tensorflow|\bjnp\.", keras_code), keras_code
    assert 'keras.device("cpu")' in keras_code
    assert 'keras.ops.convert_to_tensor(np.ascontiguousarray(to_channels_last(x)), dtype="float32")' in keras_code
    assert ('os.environ["JAX_ENABLE_X64"] = "1"' in keras_code) == (BACKEND == "jax")


# One point of each kind: a convolution, TensorFlow's `same` emulated by padding, a flatten before a dense, a graph
# in train mode (batch statistics), dropout in train mode (seeded masks), float64 (JAX keeps it only with x64),
# bfloat16, and a harness Keras layer (reflect padding).
CROSS_POINTS = [
    "cases/seed_article.yaml::seed_conv_28x28",
    "cases/conv2d.yaml::kernel_shapes[kernel_size=4-strides=2-padding=same]",
    "cases/networks.yaml::small_cnn",
    "cases/graphs.yaml::residual_add[mode=train]",
    "cases/dropout.yaml::dense_then_dropout_train",
    "cases/activations.yaml::gelu_float64[approximate=none]",
    "cases/dtypes.yaml::dense_features[input.dtype=bfloat16]",
    "cases/padding.yaml::pad2d_modes[padding_mode=reflect-padding=0x1x2x3-input.dtype=float64]",
    "cases/activations.yaml::mish[input.dtype=float32-input.seed=0]",  # see STRIDED
]
# The torch backend keeps a NumPy view's strides, and PyTorch's kernels round otherwise on a strided tensor: mish
# 1.5e-8 off the runner's, which converts a contiguous array (Layout.to_keras). A program without the copy is caught.
STRIDED = (CROSS_POINTS[-1], "np.ascontiguousarray(to_channels_last(x))", "to_channels_last(x)")
OTHER_BACKENDS = [b for b in installed_backends() if b != BACKEND]


def _on_backend(backend: str, request: dict, tmp_path: Path) -> list[dict]:
    """tests/tools/show_on_backend.py in a process running Keras on `backend`: each program against its runner."""
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-m", "tests.tools.show_on_backend", str(path)], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=850, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["backend"] == backend
    return answer["results"]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_the_program_for_another_backend_computes_what_its_runner_computes(
        backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`xfw-harness show --keras-backend B` from this process prints B's program (generated in a process of B's); run
    there, it gives that backend's runner outputs bit for bit, and so do the programs of the other kinds of point;
    a planted kernel transpose in B's printed program is caught there."""
    spec = CROSS_POINTS[0]
    assert main(["show", spec, "--keras-backend", backend]) == 0
    text = capsys.readouterr().out
    assert f'os.environ["KERAS_BACKEND"] = "{backend}"' in text and f"Keras on {backend} (test id" in text
    assert not re.search(r"\btf\.|import tensorflow", text)
    shown, planted = tmp_path / "shown.py", tmp_path / "planted.py"
    shown.write_text(text, encoding="utf-8")
    assert text.count("conv_kernel_to_keras(") == 1
    planted.write_text(text.replace("conv_kernel_to_keras(", HW_SWAP), encoding="utf-8")
    strided = [STRIDED] if backend == "torch" else []
    results = _on_backend(backend, {"points": CROSS_POINTS, "texts": [[spec, str(shown)], [spec, str(planted)]],
                                    "planted": strided}, tmp_path)
    assert len(results) == len(CROSS_POINTS) + 2 + len(strided)
    for r in results[:len(CROSS_POINTS) + 1]:
        assert r["error"] is None and r["torch"] and r["keras"], r
    for r in results[len(CROSS_POINTS) + 1:]:
        assert r["error"] is None and r["torch"], r
        assert not r["keras"], f"the {backend} run missed a planted mistake in the printed code: {r}"


def test_the_header_says_when_the_case_does_not_run_on_this_backend(tmp_path: Path) -> None:
    elsewhere = next(b for b in ("jax", "torch") if b != BACKEND)
    path = tmp_path / "where.yaml"
    path.write_text(f"- name: here\n  block: relu\n  input: {{shape: [1, 2, 3, 3]}}\n"
                    f"- name: elsewhere\n  block: relu\n  input: {{shape: [1, 2, 3, 3]}}\n  backends: [{elsewhere}]\n",
                    encoding="utf-8")
    assert "# note: the case runs on" not in show_text(_one(f"{path}::here"))
    text = re.sub(r"\n#\s+", " ", show_text(_one(f"{path}::elsewhere")))
    assert (f"note: the case runs on {elsewhere} only (its `backends:`), not on {BACKEND}: `xfw-harness show "
            f"--keras-backend {elsewhere}` prints the program there") in text


def test_show_refuses_an_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "cases/seed_article.yaml::seed_conv_28x28", "--keras-backend", "jaxx"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--keras-backend 'jaxx': not a Keras backend (did you mean 'jax'" in err


# --- (c) find_points -----------------------------------------------------------------------------------------

def test_find_points_by_case_sweep_id_and_test_id() -> None:
    assert len(find_points("cases/conv2d.yaml::stride_padding_grid")) == 24
    one = _one("cases/conv2d.yaml::stride_padding_grid[strides=3x2-padding=same-input.shape=2x3x27x27]")
    assert one.sweep == {"strides": [3, 2], "padding": "same", "input.shape": [2, 3, 27, 27]}
    same = _one("cases/conv2d.yaml::stride_padding_grid[strides=3x2-padding=same-input.shape=2x3x27x27-cpu]")
    assert same.sweep == one.sweep  # a test id as `xfw-harness run` prints it
    assert _one("cases/seed_article.yaml::seed_conv_28x28[cpu]").case == "seed_conv_28x28"


@pytest.mark.parametrize(("spec", "parts"), [
    ("cases/conv2d.yaml", ["FILE::CASE"]),
    ("cases/nope.yaml::x", ["cases/nope.yaml", "no such case file"]),
    ("cases::x", ["cases", "it is a folder"]),
    ("cases/conv2d.yaml::stride_padding_gird",
     ["cases/conv2d.yaml", "case 'stride_padding_gird'", "did you mean 'stride_padding_grid'", "dilation"]),
    ("cases/conv2d.yaml::stride_padding_grid[strides=2-padding=same-input.shape=2x3x28x27]",
     ["cases/conv2d.yaml", "case 'stride_padding_grid'", "no sweep point",
      "did you mean 'strides=2-padding=same-input.shape=2x3x28x28'"]),
    ("cases/conv2d.yaml::stride_padding_grid[strides=5]", ["case 'stride_padding_grid'", "its points: strides=1-"]),
])
def test_find_points_errors_name_file_and_case(spec: str, parts: list[str]) -> None:
    with pytest.raises(CaseError) as info:
        find_points(spec)
    for part in parts:
        assert part in str(info.value), str(info.value)


def test_find_points_invalid_case_and_refused_point(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("- name: broken\n  block: conv2d\n  params: {filters: 0, kernel_size: 3}\n"
                    "  input: {shape: [1, 2, 5, 5]}\n"
                    "- name: grouped\n  block: conv2d\n  params: {filters: 4, kernel_size: 1}\n"
                    "  input: {shape: [1, 2, 5, 5]}\n  sweep: {groups: [1, 3]}\n", encoding="utf-8")
    with pytest.raises(CaseError) as info:
        find_points(f"{path}::broken")
    assert "case 'broken'" in str(info.value) and "params.filters" in str(info.value)
    with pytest.raises(CaseError) as info:
        find_points(f"{path}::grouped[groups=3]")
    assert "case 'grouped'" in str(info.value) and "does not divide" in str(info.value)
    assert [p.sweep for p in find_points(f"{path}::grouped")] == [{"groups": 1}]  # the refused point left out


# --- (d) xfw-harness new -----------------------------------------------------------------------------------------

def test_new_lists_every_parameter_with_its_default() -> None:
    text = case_skeleton("max_pool2d")
    assert re.search(r"^    pool_size: 3 +# REQUIRED \(an example value\)", text, re.M)
    assert re.search(r"^    strides: null +# default; step between windows; default: pool_size", text, re.M)
    assert re.search(r"^    padding: valid +# default;", text, re.M)
    assert re.search(r"^    negative_slope: 0.01 +# default;", case_skeleton("leaky_relu"), re.M)
    assert re.search(r"^    padding: 0 +# default;", case_skeleton("conv2d"), re.M)


def test_new_offers_the_backends_key_and_it_loads(tmp_path: Path) -> None:
    text = case_skeleton("relu")
    assert re.search(r"^  # backends: \[tensorflow, jax, torch\] +# Keras's backends it runs on", text, re.M)
    path = tmp_path / "relu.yaml"
    path.write_text(switch_on(text, "backends").replace("[tensorflow, jax, torch]", "[jax]"), encoding="utf-8")
    entries, error = load_file(path)
    assert error is None and entries[0].error is None
    assert entries[0].points[0].backends == ("jax",)


def test_new_unknown_block() -> None:
    with pytest.raises(CaseError, match=r"unknown block 'conv2'.*did you mean 'conv2d'"):
        case_skeleton("conv2")


# --- (e) the command line ------------------------------------------------------------------------------------

def test_cli_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "cases/seed_article.yaml::seed_conv_28x28"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # not a terminal: plain text
    assert re.search(r"torch\.nn\.Conv2d\(\s+in_channels=3,\s+out_channels=5,\s+kernel_size=\(3, 3\),", out)
    assert re.search(r"keras\.layers\.Conv2D\(\s+filters=5,\s+kernel_size=\(3, 3\),\s+strides=\(1, 1\),"
                     r"\s+padding=\"valid\",", out)
    assert "k0.kernel.assign(conv_kernel_to_keras(t0.weight.detach().cpu().numpy()))" in out

    assert main(["show", "cases/pooling.yaml::global_pooling", "--keras-only"]) == 0
    out = capsys.readouterr().out
    assert out.count("# --- Keras ---") == 2 and "# --- PyTorch ---" not in out and "# ====" in out


def test_cli_show_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "cases/seed_article.yaml::seed_conv"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "cases/seed_article.yaml: case 'seed_conv': no case named 'seed_conv' (did you mean" in err


@pytest.mark.parametrize("args", [["cases/seed_article.yaml::seed_conv_28x28[gpu]"],
                                  ["cases/conv2d.yaml::stride_padding_grid[strides=2-padding=same-input.shape=2x3x28x28-gpu]"],
                                  ["cases/seed_article.yaml::seed_conv_28x28", "--device", "gpu"]])
def test_cli_show_refuses_the_gpu_device_without_a_gpu(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    """A `-gpu` test id (or --device gpu) on a machine without CUDA: exit 2, no program, and why (issue 17: it
    printed the CPU program without a word)."""
    import xfw_harness.tools.show.command as show_command

    monkeypatch.setattr(show_command, "gpu_unavailable_reason", lambda: "PyTorch 9.9 sees no CUDA device (planted)")
    assert main(["show", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"xfw-harness show: {args[0]} on the gpu device cannot be shown here: PyTorch 9.9 sees no CUDA device " \
           "(planted)" in err


def test_cli_show_takes_the_device_of_a_test_id(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a GPU is (here: said to be), the `-gpu` test id's program is the gpu one, not the CPU one."""
    import xfw_harness.tools.show.command as show_command

    monkeypatch.setattr(show_command, "gpu_unavailable_reason", lambda: None)
    assert main(["show", "cases/seed_article.yaml::seed_conv_28x28[gpu]", "--torch-only"]) == 0
    out = capsys.readouterr().out
    assert "on gpu, Keras on" in out and '.to("cuda")' in out
    assert main(["show", "cases/seed_article.yaml::seed_conv_28x28[cpu]", "--torch-only"]) == 0
    assert "on cpu, Keras on" in capsys.readouterr().out


def test_cli_new(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "dense"]) == 0
    assert "  block: dense" in capsys.readouterr().out
    assert main(["new", "dense2"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "did you mean 'dense'" in err


def test_cli_show_on_a_terminal_keeps_long_lines_whole(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal rich colours the code; it must not crop lines wider than the terminal (copied code would
    break)."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["show", "cases/seed_article.yaml::seed_conv_28x28", "--torch-only"]) == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "# input: shape [1, 3, 28, 28] (channels-first), float32, fill normal, seed 0; PyTorch's initial weights " \
           "from seed 0\n" in out
    assert "torch_out = t.detach().cpu().numpy()  # channels-first" in out


def test_printed_code_reads_input_and_weight_files(tmp_path: Path) -> None:
    """Input from a .npy file and weights from a .npz (paths printed relative to where show runs, or absolute)."""
    rng = np.random.default_rng(7)
    np.save(tmp_path / "x.npy", rng.standard_normal((2, 3, 6, 5)))
    np.savez(tmp_path / "w.npz", weight=rng.standard_normal((4, 3, 2, 3)), bias=rng.standard_normal(4))
    path = tmp_path / "files.yaml"
    path.write_text("- name: from_files\n  block: sequential\n  layers:\n"
                    "    - {block: conv2d, params: {filters: 4, kernel_size: [2, 3], padding: same}, "
                    "weights: {path: w.npz}}\n    - {block: flatten}\n    - {block: dense, params: {units: 3}}\n"
                    "  input: {fill: file, path: x.npy, dtype: float64}\n", encoding="utf-8")
    point = _one(f"{path}::from_files")
    code = point_code(point, "cpu")
    assert "np.load(" in code["torch"] and "x.npy" in code["torch"] and "w.npz" in code["keras"]
    shown_torch, shown_keras = shown_outputs(point, code)
    ran_torch, ran_keras = runner_outputs(point)
    assert same(shown_torch, ran_torch) and same(shown_keras, ran_keras)
