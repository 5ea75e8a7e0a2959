"""`xfw-harness port MODULE:FACTORY`: the command. A user's PyTorch model in, a verified case and the equivalent Keras
model out.

`port` loads the model (xfw_harness.tools.port.model) and its weights and hands it to `port_model`, which a test or a
script may call with an nn.Module built in Python:
1. the model loaded (xfw_harness.tools.port.model); batch-norm statistics at their initial values calibrated on a copy
   (xfw_harness.tools.port.calibrate); its forward traced and run once, each node's value recorded
   (xfw_harness.tools.port.capture);
2. each node's block, params and inputs (xfw_harness.tools.port.translate);
3. the case file and its weights, written in every outcome (xfw_harness.tools.port.case_file);
4. two verdicts, both needed: the case through the same loader and runner as every case (xfw_harness.cases.load_file,
   xfw_harness.engine.run_point): PyTorch against Keras, forward and gradients, a failed network saying where it first
   diverges; and the case against the model itself, node by node (xfw_harness.tools.port.verify.model_verdicts);
5. on success, the Keras model saved and reloaded (xfw_harness.tools.port.keras_model), and loaded and run on each
   other installed Keras backend against the model (xfw_harness.tools.port.backends).
`report_lines` is what `xfw-harness port` prints of the outcome (`Ported`); `command` is the CLI's entry point, with
its exit status.
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from pathlib import Path

from xfw_harness.blocks import MAX_ELEMENTS
from xfw_harness.cases import InputSpec, RefusedPoint, load_file
from xfw_harness.core.errors import CaseError
from xfw_harness.core.frameworks import BACKEND, BackendSelectionError, chosen_backends, keras, torch
from xfw_harness.core.verdicts import VerdictKind
from xfw_harness.engine import StageError, build_torch, result_lines, run_point
from xfw_harness.tools.crosscheck.litert import export_tflite
from xfw_harness.tools.port.backends import backend_verdicts
from xfw_harness.tools.port.calibrate import calibrate_batch_norms, copy_if_uncalibrated
from xfw_harness.tools.port.capture import capture
from xfw_harness.tools.port.case_file import case_name, clear_earlier_run, write_case
from xfw_harness.tools.port.keras_model import keras_input_shape_text, load_instructions, output_note, save_keras
from xfw_harness.tools.port.model import PortError, exception_text, load_model, load_weights, model_dtype
from xfw_harness.tools.port.ported import Ported
from xfw_harness.tools.port.progress import ProgressFn, StageBar, silent
from xfw_harness.tools.port.translate import Mapped, readers, translate
from xfw_harness.tools.port.verify import MODEL_OUTPUT, model_verdicts, whole_length, worst_headroom


def parse_shape(text: str) -> tuple[int, ...]:
    """--input-shape N,C,H,W as a shape; PortError, in the option's terms, for anything else."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise PortError(f"--input-shape {text!r}: expected N,C,H,W (channels-first, batch included), e.g. 2,3,32,32"
                        ) from None
    if len(shape) < 2 or min(shape) < 1:
        raise PortError(f"--input-shape {text!r}: expected at least N,C of positive integers, e.g. 2,3,32,32")
    return shape


def port_model(model: torch.nn.Module, input_shape: tuple[int, ...] | None = None, out: str | Path | None = None,
               name: str | None = None, spec: str | None = None, calibrate: bool = True,
               tflite: bool = False, progress: ProgressFn = silent, backends: tuple[str, ...] | None = None
               ) -> Ported:
    """Port an nn.Module (module doc, steps 1-5), put in eval mode first. `input_shape` is channels-first, batch
    included (None: only a model that starts with nn.Linear fixes it); `out` the folder the case and the Keras model
    go in (default ported/<name>); `name` the case's name and its files' (default: the model's class name); `spec`
    the MODULE:FACTORY the model came from, said in the case file and in messages (`port` passes it); `calibrate`:
    batch-norm statistics still at their initial values are set on a copy from a few forward passes first
    (xfw_harness.tools.port.calibrate); `tflite`: the saved Keras model is also exported to DIR/<name>.tflite and run on
    LiteRT's interpreter against the model's output (xfw_harness.tools.crosscheck.litert); `progress(stage, done,
    total)` hears what it is doing (xfw_harness.tools.port.progress); `backends`: the Keras backends the saved model
    is loaded and checked on, each other than this process's in a process of its own (default: this process's
    only; `xfw-harness port` checks every installed one, or $HARNESS_KERAS_BACKENDS). Raises PortError when it cannot
    be ported as asked; then nothing is written."""
    if not isinstance(model, torch.nn.Module):
        raise PortError(f"a {type(model).__name__} is not an nn.Module")
    if tflite and BACKEND != "tensorflow":
        raise PortError(f"--tflite exports through TensorFlow (keras.Model.export(format='litert')), and Keras runs "
                        f"on {BACKEND} here: run the port with KERAS_BACKEND=tensorflow")
    try:
        backends = chosen_backends(backends, default=(BACKEND,))
    except BackendSelectionError as e:
        raise PortError(str(e)) from None
    name = name if name is not None else case_name(type(model).__name__)
    model.eval()
    dtype = model_dtype(model)
    by_type = readers()
    if input_shape is None and not any(not isinstance(m, torch.nn.Identity) for m in model.modules()
                                       if not list(m.children())):
        raise PortError(f"{spec or name}: the model has no layers")
    shape = input_shape or default_shape(model)
    notes = []
    if calibrate and (note := calibrate_batch_norms(model := copy_if_uncalibrated(model), shape, dtype)):
        notes.append(note)
    x = InputSpec(shape=shape, dtype=dtype, seed=0).make()  # the case's own input: `input: {shape, dtype, seed: 0}`
    progress("tracing the model")
    captured = capture(model, x, set(by_type))
    progress(f"reading its {len(captured.nodes)} nodes")
    mapped = translate(captured, by_type)
    if captured.output_structure != "tensor":
        notes.append(f"the model returns {captured.output_structure} holding one tensor: the case and the Keras "
                     "model give that tensor")
    model_out = captured.by_name()[captured.outputs[0]].value
    out = Path(out) if out is not None else Path("ported") / name
    clear_earlier_run(out, name)
    case_path = write_case(out, name, spec, mapped, shape, dtype, budget(model, mapped))
    ported = Ported(case_path, name, shape, mapped, [m.block.name for m in mapped], notes=notes,
                    output_shape=tuple(model_out.shape), model=model)
    entries, error = load_file(case_path)
    refused = error or (entries[0].error if entries else "no case") or (
        entries[0].points[0].error if isinstance(entries[0].points[0], RefusedPoint) else None)
    if refused is not None:  # a node's translation the loader refuses (a Linear on the width of an NCHW tensor)
        clear_earlier_run(out, name)
        case_path.unlink(missing_ok=True)
        for folder in (out / "weights", out):  # left as it was: the folders too, where this run made them
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise PortError(f"the model's case is refused: {refused}")
    point = entries[0].points[0]
    ported.output_layout = point.layers[-1].block.output_layout(point.sites[-1])
    progress(f"running the case: PyTorch against Keras, {len(mapped)} nodes")
    ported.result = run_point(point, "cpu", timeout_s=0)
    try:  # once, for the check against the model and for the Keras model's weights
        modules = build_torch(point, "cpu")
    except (StageError, CaseError):
        modules = None  # model_verdicts says why they cannot be built
    ported.model_verdicts, ported.diverged = model_verdicts(
        point, mapped, model_out, x, lambda done, total: progress("the case against the model", done, total),
        modules)
    ported.worst_headroom = worst_headroom(ported.model_verdicts)
    for m in mapped:  # the model's recorded values are checked: not held for the rest of the port and after it
        m.node.value = None
    del captured
    if ported.passed:
        progress("saving the Keras model")
        try:
            ported.keras_path, ported.custom_objects = save_keras(point, out, name, x, modules)
        except Exception as e:  # noqa: BLE001 - Keras's serialisation or the disk: said in one line, exit 1
            why = str(e) if isinstance(e, PortError) else exception_text(e)
            ported.keras_error = f"cannot save the Keras model as {out / f'{name}.keras'}: {why}"
    if ported.keras_path is not None and (others := [b for b in backends if b != BACKEND]):
        progress(f"loading the Keras model on {', '.join(others)}")
        ported.backend_verdicts = backend_verdicts(ported.keras_path, ported.custom_objects,
                                                   point.sites[0].layout.to_keras(x), model_out,
                                                   ported.output_layout, whole_length(point), tuple(others))
    if tflite and ported.keras_path is not None:
        progress("exporting to TFLite and running it on LiteRT")
        model = keras.models.load_model(ported.keras_path, custom_objects=ported.custom_objects)
        ported.tflite_verdict = export_tflite(model, out / f"{name}.tflite", point.sites[0].layout.to_keras(x),
                                              ported.output_layout.to_keras(model_out), ported.output_layout)
    return ported


def budget(model: torch.nn.Module, mapped: list[Mapped]) -> int | None:
    """The `max_elements` a port of the model needs where its largest weight or activation exceeds the default
    budget (which is for hostile case files; a model's own weights are the user's): twice the largest, for padded
    copies. None where the default serves."""
    largest = max([t.numel() for t in (*model.parameters(), *model.buffers())]
                  + [m.node.value.size for m in mapped], default=0)
    return 2 * largest if 2 * largest > MAX_ELEMENTS else None


def default_shape(model: torch.nn.Module) -> tuple[int, ...]:
    """The input shape when --input-shape is not given: only a model whose first layer is nn.Linear fixes it."""
    first = next((m for m in model.modules() if not list(m.children())), None)
    if isinstance(first, torch.nn.Linear):
        return 2, first.in_features
    kind = type(first).__name__ if first is not None else "nothing"
    raise PortError(f"give --input-shape N,C,H,W: the model's first layer ({kind}) does not fix its input's size")


def port(spec: str, weights: str | Path | None = None, input_shape: tuple[int, ...] | None = None,
         out: str | Path | None = None, calibrate: bool = True, tflite: bool = False,
         progress: ProgressFn = silent, backends: tuple[str, ...] | None = None) -> Ported:
    """Port the model `spec` (MODULE:FACTORY) names, with the state_dict `weights` loaded into it when given (module
    doc). Raises PortError when it cannot be ported as asked."""
    model = load_model(spec)
    if weights is not None:
        load_weights(model, weights)
    return port_model(model, input_shape, out, name=case_name(spec), spec=spec, calibrate=calibrate, tflite=tflite,
                      progress=progress, backends=backends)


def report_lines(ported: Ported) -> list[str]:
    """What `xfw-harness port` prints after the run: the verdicts, where it diverged, or how to load the model."""
    counts = Counter(ported.blocks)
    summary = ", ".join(f"{n} {block}" for block, n in counts.most_common())
    lines = [f"case: {ported.case_path} ({len(ported.blocks)} nodes: {summary})"]
    lines += [f"note: {note}" for note in ported.notes]
    lines += result_lines(ported.result, quiet=False)
    grads = [v for v in ported.result.verdicts if v.kind == VerdictKind.GRADIENT]
    if grads:
        lines.append(f"       compared: the output, and the gradients of the input and of {len(grads) - 1} weights "
                     f"({sum(v.passed for v in grads)} of {len(grads)} gradients within tolerance)")
    for verdict in ported.model_verdicts:
        if not verdict.passed or verdict.what == MODEL_OUTPUT:
            m = verdict.metrics
            numbers = f"  max abs {m['max_abs']:.2e}" if "max_abs" in m else ""
            lines.append(f"{'PASS' if verdict.passed else 'FAIL':5}  {verdict.what}{numbers}")
    if ported.diverged:
        lines.append(f"the model first differs from the case at {ported.diverged}")
    if ported.keras_path is not None:
        lines.append(f"PASS   the .keras on {BACKEND} (this process): reloaded, the verified Keras layers' output "
                     "exactly")
    for v in ported.backend_verdicts:
        numbers = f"  max abs {v.metrics['max_abs']:.2e}" if "max_abs" in v.metrics else ""
        lines.append(f"{'PASS' if v.passed else 'FAIL':5}  {v.what}{numbers}")
        if not v.passed:
            lines.append(f"       {v.message}")
    if (v := ported.tflite_verdict) is not None:
        numbers = f"  max abs {v.metrics['max_abs']:.2e}" if "max_abs" in v.metrics else ""
        lines.append(f"{'PASS' if v.passed else 'FAIL':5}  tflite (LiteRT interpreter) vs the model{numbers}")
        if not v.passed:
            lines.append(f"       {v.message}")
    if ported.keras_error:
        lines.append(f"NOT PORTED: {ported.keras_error}; the case is written ({ported.case_path}) and passes")
        return lines
    if failed := [v.metrics.get("backend") or v.what for v in ported.backend_verdicts if not v.passed]:
        good = [BACKEND, *(v.metrics["backend"] for v in ported.backend_verdicts if v.passed)]
        lines.append(f"PORTED for {', '.join(good)} only: the Keras model {ported.keras_path} does not load or match "
                     f"the model on {', '.join(failed)} (above); on {', '.join(good)} load it with:")
        return lines + [f"    {line}" for line in load_instructions(ported)]
    if not ported.passed:
        lines.append(f"NOT PORTED: the case is written ({ported.case_path}); fix it or the model and run "
                     f"`xfw-harness run {ported.case_path}`")
        return lines
    lines.append(f"PORTED: the Keras model is {ported.keras_path} (input channels-last, "
                 f"{keras_input_shape_text(ported)}); load it with:")
    lines += [f"    {line}" for line in load_instructions(ported)]
    if (note := output_note(ported)) is not None:
        lines.append(note)
    return lines


def command(spec: str, weights: str | None, input_shape: str | None, out: str | None, calibrate: bool = True,
            tflite: bool = False, backends: list[str] | None = None) -> int:
    """`xfw-harness port`: 0 when ported and verified, 1 when the verification or the save of the Keras model failed
    (the case is written), or the saved model does not load or match on a Keras backend in `backends` (default:
    every installed one), 2 when the model cannot be ported as asked (its module or factory fails too)."""
    try:
        shape = parse_shape(input_shape) if input_shape else None
        with StageBar() as progress:
            chosen = chosen_backends(backends)  # default: $HARNESS_KERAS_BACKENDS, else every installed one
            ported = port(spec, weights, shape, out, calibrate, tflite, progress, backends=chosen)
    except (PortError, CaseError, BackendSelectionError) as e:
        print(f"xfw-harness port: {e}", file=sys.stderr)
        return 2
    for line in report_lines(ported):
        print(line)
    return 0 if ported.passed else 1
