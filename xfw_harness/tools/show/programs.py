"""`xfw-harness show FILE::CASE`: a point as the PyTorch and Keras programs that compute it, with a header and a footer.

It teaches the mapping between the frameworks, as the tutorial this project grew from did by hand: the layer
constructors with every argument, the padding steps, the weight transfer with its layout conversion, the NCHW/NHWC
transposes. The programs are generated from the objects the runner builds for the point
(`xfw_harness.engine.build_torch` / `build_keras`, turned into source by xfw_harness.tools.show.source), and the weight
transfer from the blocks' `weight_copies`, the same data `transfer_weights` runs. So the printed code cannot drift
from what runs, and tests/tools/test_show.py executes it for every shipped case and checks that it computes the runner's
outputs. The header says what the point is (case, blocks, parameters with defaults, input, mode); the footer how
the harness compares the two outputs.
"""

from __future__ import annotations

import math
from typing import Any

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
import xfw_harness.core.layout
from xfw_harness.blocks import NETWORK_INPUT, parameter_path
from xfw_harness.cases import InputSpec, Point, display_path
from xfw_harness.core.frameworks import BACKEND, DEVICES, gpu_unavailable_reason
from xfw_harness.core.layout import CHANNELS_LAST
from xfw_harness.core.spatial import same_padding_1d
from xfw_harness.core.tolerance import ACCUMULATOR, EPS, OUTPUT_ULPS, ULP_FACTOR, default_tolerance
from xfw_harness.engine import build_keras, build_torch
from xfw_harness.tools.show.source import (
    Node,
    ShowError,
    SourceContext,
    attribute_source,
    comment_lines,
    first_paragraph,
    format_source,
    keras_node,
    source_of,
    string_literal,
    torch_node,
    yaml_flow,
)

GPU_SETTINGS = ("import xfw_harness.core.frameworks  # the runner's settings: TF32 off in both frameworks, full "
                "float32 on GPU")


def _input_lines(spec: InputSpec) -> list[str]:
    """The input as InputSpec.make makes it, in NumPy."""
    shape, dtype = repr(tuple(spec.shape)), string_literal(spec.dtype)
    if spec.fill == "values":
        return [f"x = {format_source(Node('np.asarray', [source_of(spec.values, SourceContext()), ('dtype', dtype)]))}"]
    if spec.fill == "file":
        return ["# the path is relative to the folder xfw-harness show ran in",
                f"x = np.load({string_literal(display_path(spec.path))}, allow_pickle=False).astype({dtype})"]
    if spec.fill == "arange":
        return [f"x = np.arange({math.prod(spec.shape)}, dtype=np.float64).reshape({shape}).astype({dtype})"]
    draw = "uniform(-1.0, 1.0, " if spec.fill == "uniform" else "standard_normal("
    return [f"rng = np.random.default_rng({spec.seed})", f"x = rng.{draw}{shape}).astype({dtype})"]


def _layer_label(point: Point, i: int) -> str:
    layer = point.layers[i]
    name = f"layers[{i}] {layer.block.name}" if point.sequential else layer.block.name
    return f"{name} {yaml_flow(layer.params)}" if layer.params else name


def _layer_comment(point: Point, i: int, indent: int = 0) -> list[str]:
    """The comment above a layer's construction: the block and its parameters, and what `same` means."""
    lines = comment_lines(_layer_label(point, i), indent)
    if point.layers[i].params.get("padding") == "same":
        # A block whose `same` is not the forward convolution's (conv2d_transpose) says what its own means.
        meaning = point.layers[i].block.padding_doc or same_padding_1d.__doc__
        lines += comment_lines(f"padding same: {first_paragraph(meaning)}", indent)
    return lines


def _torch_device(device: str) -> str:
    return "cuda" if device == "gpu" else "cpu"


def _keras_device(device: str) -> str:
    """keras.device's argument, as xfw_harness.core.frameworks.keras_device chooses it: backend-neutral (tf.device on
    TensorFlow, JAX's default device, the torch backend's device scope). A `gpu` program imports the harness's
    settings (GPU_SETTINGS), whose keras_has_gpu asks the backend itself. The CPU is "cpu", not "cpu:0", as there:
    on the torch backend "cpu:0" makes an integer variable (a Dropout's seed state) fail to build."""
    return ('"gpu:0" if xfw_harness.core.frameworks.keras_has_gpu() else "cpu"' if device == "gpu" else '"cpu"')


# What the harness sets for each backend before Keras runs (xfw_harness.core.frameworks), as the program's lines: where
# the lines go (before `import keras`, after the imports) and the lines.
BACKEND_SETUP = {
    "jax": ([
        '# JAX computes in float32 at most unless 64-bit types are enabled before its first array: float64 would',
        '# silently become float32 (the harness enables them)',
        'os.environ["JAX_ENABLE_X64"] = "1"',
    ], [
        "# the harness's matmul and convolution precision on JAX: full float32 (JAX's GPU default is not)",
        'jax.config.update("jax_default_matmul_precision", "highest")',
    ]),
}
BACKEND_IMPORTS = {"jax": ["import jax"]}


def _tensor_source(source: str, dtype: str) -> str:
    """keras.ops.convert_to_tensor in the input's dtype, as xfw_harness.core.frameworks.keras_tensor makes it."""
    return f"keras.ops.convert_to_tensor({source}, dtype={string_literal(dtype)})"


def _torch_build(point: Point, modules: list[Any], device: str, ctx: SourceContext) -> list[str]:
    """Seed, construct (the runner's order), load weight files, move to device and dtype, set the mode."""
    lines = [
        "# PyTorch draws the initial weights from its global generator: seeded with input.seed and the modules",
        "# built in the runner's order, they get the runner's weights. Built in PyTorch's default float32 on the",
        "# CPU (so the draws match), then moved to the device and dtype.",
        f"torch.manual_seed({point.input.seed})",
    ]
    for i, module in enumerate(modules):
        node = torch_node(module, ctx)
        lines += [*_layer_comment(point, i), *(line for n in ctx.take_notes() for line in comment_lines(n))]
        lines.append(f"t{i} = {format_source(node)}")
    for i, (layer, module) in enumerate(zip(point.layers, modules)):
        if layer.weights is None:
            continue
        params = layer.block.torch_parameters(module)
        lines.append(f"# layers[{i}].weights: PyTorch-layout arrays from a file, over the initial weights"
                     if point.sequential else "# weights: PyTorch-layout arrays from a file, over the initial weights")
        weights_file = string_literal(display_path(layer.weights))
        lines.append(f"with np.load({weights_file}, allow_pickle=False) as npz, torch.no_grad():")
        for name, tensor in params.items():
            target = attribute_source(f"t{i}", parameter_path(module, tensor))
            lines.append(f"    {target}.copy_(torch.from_numpy(npz[{string_literal(name)}]))")
    names = ", ".join(f"t{i}" for i in range(len(modules)))
    lines += [
        f"for m in ({names}{',' if len(modules) == 1 else ''}):",
        f"    m.to(device={string_literal(_torch_device(device))}, dtype=torch.{point.input.dtype})",
        f"    m.train({point.training('torch')})  # mode: "
        + (point.mode if point.training("torch") == (point.mode == "train") else "not written: PyTorch's default")
        + (" (dropout is the identity)" if point.mode == "eval" and any(
            layer.block.stochastic for layer in point.layers) else ""),
    ]
    return lines


def _conversion(copy: Any, ctx: SourceContext) -> tuple[str, str]:
    """(comment, function name) of a WeightCopy's layout conversion, which must be an xfw_harness.core.layout
    function."""
    name = getattr(copy.convert, "__name__", "")
    if getattr(xfw_harness.core.layout, name, None) is not copy.convert:
        raise ShowError(f"the weight conversion {copy.convert!r} is not a xfw_harness.core.layout function")
    ctx.layout_names[name] = None
    return first_paragraph(copy.convert.__doc__), name


def _keras_transfer(point: Point, i: int, module: Any, klayer: Any, ctx: SourceContext) -> list[str]:
    layer, site = point.layers[i], point.sites[i]
    lines = []
    for copy in layer.block.weight_copies(site, module, klayer):
        as_float = ".float()" * (site.dtype == "bfloat16")
        src = f"{attribute_source(f't{i}', copy.torch_path)}.detach().cpu(){as_float}.numpy()"
        dst = attribute_source(f"k{i}", copy.keras_path)
        if copy.convert is None:
            lines.append(f"{dst}.assign({src})  # the same layout in both")
            continue
        comment, name = _conversion(copy, ctx)
        extra = "".join(f", {format_source(source_of(a, ctx))}" for a in copy.args)
        lines += [f"# {comment}", f"{dst}.assign({name}({src}{extra}))"]
    return lines


def _stdlib(ctx: SourceContext, *extra: str) -> list[str]:
    return sorted({*extra, *(line for line in ctx.imports if not line.startswith("import xfw_harness."))})


def _harness_imports(ctx: SourceContext) -> list[str]:
    return sorted(line for line in ctx.imports if line.startswith("import xfw_harness."))


_BF16_IMPORT = ("import ml_dtypes  # NumPy's bfloat16 (the dtype name 'bfloat16' is known once it is imported)",)


def _torch_script(point: Point, modules: list[Any], device: str) -> str:
    ctx = SourceContext()
    build = _torch_build(point, modules, device, ctx)
    bf16 = point.input.dtype == "bfloat16"  # torch.from_numpy and Tensor.numpy() have no bfloat16: via float32
    tensor = "torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16)" if bf16 else "torch.from_numpy(x)"
    run = ["with torch.no_grad():", f"    t = {tensor}.to({string_literal(_torch_device(device))})"]
    run += _graph_calls(point, "t", "t", "") if point.graph else [f"    t = t{i}(t)" for i in range(len(modules))]
    run.append("torch_out = t.detach().cpu()" + (".float().numpy().astype(ml_dtypes.bfloat16)" if bf16 else ".numpy()")
               + "  # channels-first")
    head = [*_stdlib(ctx, *_BF16_IMPORT * bf16), "import numpy as np", "import torch"]
    head += [GPU_SETTINGS] if device == "gpu" else []
    head += _harness_imports(ctx)
    body = ["", "# The input, channels-first, as the case's `input` makes it (xfw_harness.cases.loader.InputSpec.make)",
            *_input_lines(point.input), "", *build, "", *run]
    return "\n".join(head + body) + "\n"


def _keras_script(point: Point, modules: list[Any], klayers: list[Any], device: str) -> str:
    ctx = SourceContext()
    copies = any(layer.block.weight_copies(site, module, klayer)
                 for layer, site, module, klayer in zip(point.layers, point.sites, modules, klayers))
    build = _torch_build(point, modules, device, ctx) if copies else []
    kbuild = [f"with keras.device({_keras_device(device)}):"]
    for i, (site, module, klayer) in enumerate(zip(point.sites, modules, klayers)):
        node = keras_node(klayer, ctx)
        kbuild += [*_layer_comment(point, i, 4), *(line for n in ctx.take_notes() for line in comment_lines(n, 4))]
        kbuild.append(f"    k{i} = {format_source(node, 4)}")
        shapes = ([layout.keras_shape(shape) for layout, shape in zip(site.in_layouts, site.in_shapes)]
                  if site.in_shapes else site.layout.keras_shape(site.in_shape))
        kbuild.append(f"    k{i}.build({shapes!r})  # channels-last input shape")
        kbuild += [f"    {line}" for line in _keras_transfer(point, i, module, klayer, ctx)]
    training = point.training("keras")  # the case's mode; None: Keras's default (defaults: native, mode not written)
    first, last = point.sites[0].layout, point.layers[-1].block.output_layout(point.sites[-1])
    if first == CHANNELS_LAST:
        ctx.layout_names["to_channels_last"] = None
        # Contiguous, as the runner's Layout.to_keras makes it: the torch backend keeps a NumPy view's strides, and
        # PyTorch's kernels on a strided tensor round otherwise (mish, elu, pooling 1 ulp off, measured)
        to_keras = "np.ascontiguousarray(to_channels_last(x))"
        note = f"{first_paragraph(xfw_harness.core.layout.to_channels_last.__doc__)} Contiguous, as the runner's"
    else:  # plan() starts every network channels-last; kept general in case that changes
        ctx.layout_names["Layout"] = None
        to_keras, note = f"{first!r}.to_keras(x)", "the input in the Keras layout of the first layer"
    if last == CHANNELS_LAST:
        ctx.layout_names["to_channels_first"] = None
        back = [f"# {first_paragraph(xfw_harness.core.layout.to_channels_first.__doc__)}",
                "keras_out = to_channels_first(keras.ops.convert_to_numpy(y))"]
    else:
        ctx.layout_names["Layout"] = None
        back = ["# Keras flattened its channels-last tensor in (H, W, C) order: put the features back in PyTorch's",
                "# (C, H, W) order to compare",
                f"keras_out = {last!r}.to_channels_first(keras.ops.convert_to_numpy(y))"]
    run = [f"with keras.device({_keras_device(device)}):",
           f"    y = {_tensor_source(to_keras, point.input.dtype)}  # {note}"]
    run += (_graph_calls(point, "k", "y", f", training={training}") if point.graph
            else [f"    y = k{i}(y, training={training})" for i in range(len(klayers))])
    run += back
    before, after = BACKEND_SETUP.get(BACKEND, ([], []))
    head = [*_stdlib(ctx, "import os", *_BF16_IMPORT * (point.input.dtype == "bfloat16")), "",
            f'os.environ["KERAS_BACKEND"] = "{BACKEND}"  # before keras is imported: Keras fixes its backend then',
            *before, "import keras", "import numpy as np", *BACKEND_IMPORTS.get(BACKEND, [])]
    head += ["import torch"] if copies else []
    head += [GPU_SETTINGS] if device == "gpu" else []
    head += _harness_imports(ctx)
    head.append(f"from xfw_harness.core.layout import {', '.join(sorted(ctx.layout_names))}")
    head += ["", *after] if after else []
    if copies:
        build = ["# The PyTorch modules, built exactly as in the PyTorch script: their weights go into Keras.",
                 *build, ""]
    body = ["", "# The input, channels-first, as the case's `input` makes it (xfw_harness.cases.loader.InputSpec.make)",
            *_input_lines(point.input), "", *build,
            *comment_lines("The Keras layers, each built for its channels-last input shape"
                           + (", then given the PyTorch weights through xfw_harness.core.layout's conversions"
                              if copies else "")),
            *kbuild, "",
            f"# Run channels-last, training={training} (mode: {point.mode})", *run]
    return "\n".join(head + body) + "\n"


def _graph_calls(point: Point, prefix: str, variable: str, extra: str) -> list[str]:
    """A graph's calls, each node on the outputs it takes (`o3 = t3(o1, o2)`; a Keras join takes their list), the
    last node's output left in `variable`."""
    lines = []
    for i, layer in enumerate(point.layers):
        args = ["x_in" if j == NETWORK_INPUT else f"o{j}" for j in layer.input_indices(i)]
        given = ", ".join(args) if prefix == "t" or layer.block.arity == 1 else f"[{', '.join(args)}]"
        lines.append(f"    o{i} = {prefix}{i}({given}{extra})  # {layer.name}")
    return [f"    x_in = {variable}", *lines, f"    {variable} = o{len(point.layers) - 1}"]


def _built(point: Point, device: str) -> tuple[list[Any], list[Any]]:
    """The runner's own PyTorch modules and Keras layers of the point: what the printed code is read from.

    The structure does not depend on the device; without a GPU here, a `gpu` listing is read off CPU objects.
    """
    here = device if device == "cpu" or gpu_unavailable_reason() is None else "cpu"
    modules = build_torch(point, here)
    return modules, build_keras(point, modules, here)


def point_code(point: Point, device: str = "cpu") -> dict[str, str]:
    """{"torch": ..., "keras": ...}: two complete Python programs that compute what the runner computes for the
    point on `device`, leaving the channels-first outputs in `torch_out` and `keras_out` (NumPy). The Keras program
    runs Keras on this process's backend (xfw_harness.core.frameworks.BACKEND), from the layers the runner builds
    here; xfw_harness.tools.show.command runs another backend's in a process of its own.

    The Keras program builds the PyTorch modules first, the same way, because their weights are what the Keras
    layers get.
    """
    if device not in DEVICES:
        raise ValueError(f"device {device!r}; allowed: {', '.join(DEVICES)}")
    modules, klayers = _built(point, device)
    return {"torch": _torch_script(point, modules, device), "keras": _keras_script(point, modules, klayers, device)}



def _header(point: Point, device: str) -> list[str]:
    spec = point.input
    lines = [f"# {point.address} on {device}, Keras on {BACKEND} (test id {point.test_id(device)})"]
    if point.sequential:
        lines.append(f"# sequential of {len(point.layers)} layers (parameters with the defaults filled in):")
        lines += [line for i in range(len(point.layers)) for line in comment_lines(_layer_label(point, i), lead="  ")]
    else:
        lines += comment_lines(f"block: {_layer_label(point, 0)} (parameters with the defaults filled in)")
    source = {"values": "inline values", "file": f"from {display_path(spec.path) if spec.path else '?'}"}.get(
        spec.fill, f"fill {spec.fill}, seed {spec.seed}")
    lines.append(f"# input: shape {list(spec.shape)} (channels-first), {spec.dtype}, {source}; PyTorch's initial "
                 f"weights from seed {spec.seed}")
    lines.append(f"# mode: {point.mode}; output: shape {list(point.output_shape)} (channels-first)")
    if point.backends is not None and BACKEND not in point.backends:  # shown where the case does not run
        lines += comment_lines(f"note: the case runs on {', '.join(point.backends)} only (its `backends:`), not on "
                               f"{BACKEND}: `xfw-harness show --keras-backend {point.backends[0]}` prints the program "
                               "there")
    return lines


def _footer(point: Point) -> list[str]:
    """How the runner compares the two outputs (xfw_harness.engine.forward.compare_outputs,
    xfw_harness.engine.tolerances)."""
    dtype = point.input.dtype
    if point.tolerance is not None:
        tol = f"atol={point.tolerance.atol:g}, rtol={point.tolerance.rtol:g} (set by the case)"
    else:
        k = max(layer.block.reduction_length(site) for layer, site in zip(point.layers, point.sites))
        rtol = default_tolerance(dtype, k).rtol
        acc, floor = ACCUMULATOR[dtype], OUTPUT_ULPS[dtype]
        rounding = f" + {floor:g} * eps({dtype}) (the outputs' rounding; sums run in {acc})" if floor else ""
        tol = (f"the default tolerance (xfw_harness.core.tolerance.default_tolerance): rtol = {ULP_FACTOR:g} * "
               f"eps({acc}) * "
               f"sqrt(K){rounding} = {ULP_FACTOR:g} * {EPS[acc]:.3g} * sqrt({k})"
               f"{f' + {floor:g} * {EPS[dtype]:.3g}' if floor else ''} = {rtol:.3g}, K = {k} being the most terms "
               "one output element sums; atol = rtol * max(1, max |torch_out|), so that an element a long sum "
               "cancels to near zero is judged against the size of the terms")
    rule = ("shapes equal, NaN/Inf in the same places, and |keras_out - torch_out| <= atol + rtol * |torch_out| "
            f"elementwise, with {tol}.")
    texts = []
    if point.sampled:
        texts.append("Dropout in train mode draws different masks in the two frameworks, so the harness checks each "
                     f"framework's sample on its own ({point.layers[-1].block.sample_rule}).")
        if len(point.layers) > 1:
            texts.append(f"The outputs before the dropout are compared: {rule}")
    else:
        texts.append(f"The harness compares keras_out with torch_out: {rule}")
    texts.append(f"Each output's shape must also be the one the block semantics give, {list(point.output_shape)}.")
    meaning = {"backward": "backward compares the gradients of sum(output * R), R seeded, with respect to the input "
               "and every weight", "train_step": f"train_step the weights' updates after {point.steps} step(s) of "
               "each optimiser"}
    if beyond := [meaning[c] for c in point.checks if c in meaning]:
        texts.append(f"Not printed here (xfw_harness/engine/backward.py, train_step.py): {'; '.join(beyond)}.")
    if point.expect_shape is not None:
        texts.append(f"expect.shape: {list(point.expect_shape)}.")
    if point.expect_output is not None:
        texts.append("expect.output: torch_out and keras_out are each compared with the golden values, by the same "
                     "rule.")
    if point.expect_fails is not None:
        texts.append(f"expect.fails: {point.expect_fails}: a canary. The test passes only when every comparison with "
                     f"the expectation fails the {point.expect_fails} check (and keras_out still matches torch_out).")
    lines = ["# --- How the harness compares them ---"]
    for text in texts:
        lines += comment_lines(text)
    return lines


def show_text(point: Point, device: str = "cpu", parts: tuple[str, ...] = ("torch", "keras")) -> str:
    """What `xfw-harness show` prints for one point: a header (case, blocks, parameters with defaults, input, mode),
    the PyTorch and/or Keras program (`parts`), and how the harness compares their outputs."""
    code = point_code(point, device)
    lines = _header(point, device)
    for part in parts:
        lines += ["", f"# --- {'PyTorch' if part == 'torch' else 'Keras'} ---", code[part].rstrip("\n")]
    lines += ["", *_footer(point)]
    return "\n".join(lines) + "\n"


