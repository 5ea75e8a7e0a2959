""".tflite files on the real LiteRT interpreter: the reader `xfw-harness verify` uses, and `export_tflite` for
`xfw-harness port --tflite`.

The runtime is `ai_edge_litert.interpreter.Interpreter` from the ai-edge-litert package (pinned in
requirements.lock and requirements-gpu.txt; it imports beside TensorFlow 2.21 without conflict). Not
tf.lite.Interpreter: TensorFlow 2.21 warns that it is deprecated and scheduled for deletion, and the runtime that
ships on devices is LiteRT's. The interpreter runs with its default CPU delegate (XNNPACK), as on a device.

Reading: a file with a signature (every converter from a SavedModel or a Keras model writes `serving_default`) is
called through its signature runner, which resizes the input to the batch given, and its outputs are taken in the
natural order of their names (output_0, output_1, ...): the interpreter's own output list need not follow the
model's order (for a Keras model with outputs [logits, map] it lists map first; measured with TF 2.21). A file
without signatures is run through the interpreter's input and output lists. A quantized input (int8, uint8) is
refused: verify compares float models.

Export (`export_tflite`): `keras.Model.export(path, format="litert")` (Keras 3.15: ExportArchive, then
tf.lite.TFLiteConverter.from_saved_model). Measured with Keras 3.15.1 and TF 2.21.0 on a model holding Conv2D,
BatchNormalization, DepthwiseConv2D, Add, Multiply, Concatenate, ReLU, PReLU, Dense and GlobalAveragePooling2D:
format="litert" converts and runs within 5.5e-7 of Keras; format="tflite" does not exist (ValueError: Unrecognized
format=tflite); tf.lite.TFLiteConverter.from_keras_model converts the same; from_concrete_functions on a
tf.function of the model converts without an error but keeps the weights as resource variables (VAR_HANDLE and
READ_VARIABLE ops) that nothing initialises, and the interpreter returns NaN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xfw_harness.core.frameworks import keras
from xfw_harness.core.layout import CHANNELS_LAST, Layout
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.tools.crosscheck.artefact import Artefact, ArtefactError, natural_key, one_line, open_error
from xfw_harness.tools.crosscheck.judge import DEFAULT_K, judge

PIN = "ai-edge-litert==2.3.0"


def interpreter_class() -> tuple[Any, str]:
    """LiteRT's Interpreter and the runtime's name with its version (ArtefactError when the package is missing)."""
    try:
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise ArtefactError(f"running a .tflite file needs LiteRT's interpreter: pip install {PIN} (pinned in "
                            f"requirements.lock) ({one_line(e)})") from None
    return Interpreter, f"LiteRT interpreter, ai-edge-litert {version('ai-edge-litert')}"


class TFLiteFile(Artefact):
    differentiable = False
    why_not_differentiable = ("not differentiable: a .tflite model runs on the LiteRT interpreter, which has no "
                              "gradients")

    def __init__(self, path: Path) -> None:
        interpreter, runtime = interpreter_class()
        try:
            self._interpreter = interpreter(model_path=str(path))
        except Exception as e:  # noqa: BLE001 - not a flatbuffer, an op the runtime lacks
            raise open_error(path, "a TFLite model (LiteRT Interpreter)", e) from None
        signatures = self._interpreter.get_signature_list()
        self._runner = None
        if signatures:
            key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
            self._runner = self._interpreter.get_signature_runner(key)
            inputs = self._runner.get_input_details()  # name -> details
            self._outputs = sorted(self._runner.get_output_details(), key=natural_key)
            details = list(inputs.items())
            how = f"signature {key!r}"
        else:
            details = [(d["name"], d) for d in self._interpreter.get_input_details()]
            self._outputs = self._interpreter.get_output_details()
            how = "no signature: the interpreter's input and output lists"
        if len(details) != 1:
            raise ArtefactError(f"{path}: the model takes {len(details)} inputs; verify feeds it one, the PyTorch "
                                "model's input")
        self._input_name, detail = details[0]
        if not np.issubdtype(detail["dtype"], np.floating):
            raise ArtefactError(f"{path}: a quantized input ({np.dtype(detail['dtype']).name}); verify compares "
                                "float models")
        signature = detail.get("shape_signature")
        dims = signature if signature is not None and len(signature) else detail["shape"]
        super().__init__(path, tuple(None if int(d) < 0 else int(d) for d in dims), detail["dtype"])
        self.kind = f"TFLite model on the {runtime}, {how}"
        if self._runner is not None and len(self._outputs) > 1:
            self.notes.append("the signature's outputs are taken in the natural order of their names: "
                              f"{', '.join(self._outputs)}")

    def _forward(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        if self._runner is not None:
            out = self._runner(**{self._input_name: x})
            return [(name, np.array(out[name])) for name in self._outputs]
        it = self._interpreter
        index = it.get_input_details()[0]["index"]
        if list(it.get_input_details()[0]["shape"]) != list(x.shape):
            it.resize_tensor_input(index, x.shape)
        it.allocate_tensors()
        it.set_tensor(index, x)
        it.invoke()
        return [(d["name"], np.array(it.get_tensor(d["index"]))) for d in it.get_output_details()]


def export_tflite(keras_model_path: str | Path | Any, out_path: str | Path, x_channels_last: np.ndarray,
                  expected: np.ndarray, layout: Layout = CHANNELS_LAST, reduction_length: int = DEFAULT_K
                  ) -> Verdict:
    """Convert a Keras 3 model (a .keras path or the model) to `out_path` (.tflite) with
    keras.Model.export(format="litert"), run it on LiteRT's interpreter on `x_channels_last` (the Keras model's
    input) and compare its output with `expected`, given in the Keras model's output layout; `layout` says how that
    layout maps onto channels-first (CHANNELS_LAST; a Layout with flattened_from after a flatten), so that the
    verdict, like every verdict, speaks channels-first. The tolerance is the default rule's for K =
    `reduction_length`. A failing conversion or run is a failed verdict (check "export") saying why."""
    what, out_path = "tflite vs expected", Path(out_path)
    try:
        model = keras_model_path if isinstance(keras_model_path, keras.Model) else keras.saving.load_model(
            str(keras_model_path), compile=False)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        model.export(str(out_path), format="litert", verbose=False)
    except Exception as e:  # noqa: BLE001 - a layer the converter refuses: the verdict says which
        return Verdict(what, False, "export", f"{keras_model_path}: the LiteRT export "
                       f"(keras.Model.export(format='litert')) failed: {one_line(e)}", kind=VerdictKind.FORWARD)
    try:
        outputs = TFLiteFile(out_path).run(np.asarray(x_channels_last))
    except ArtefactError as e:
        return Verdict(what, False, "export", f"{out_path}: converted, but {e}", kind=VerdictKind.FORWARD)
    if len(outputs) != 1:
        return Verdict(what, False, "export", f"{out_path}: {len(outputs)} outputs; export_tflite compares one",
                       kind=VerdictKind.FORWARD)
    verdict = judge(layout.to_channels_first(outputs[0][1]), layout.to_channels_first(np.asarray(expected)), what,
                    ("tflite", "expected"), reduction_length, VerdictKind.FORWARD)
    verdict.metrics["tflite"] = str(out_path)
    return verdict
