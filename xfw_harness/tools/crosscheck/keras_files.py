"""Readers for the TensorFlow artefacts: a Keras 3 `.keras` file and a TensorFlow SavedModel folder.

Both run in TensorFlow and are differentiable: the input gradient is taken with tf.GradientTape on
sum_i sum(output_i * r_i), an output the input does not reach giving a zero gradient (as PyTorch's autograd does).
So both need Keras on TensorFlow: this module imports TensorFlow itself (xfw_harness.core.frameworks does only where it
is Keras's backend), and where Keras runs on another backend (KERAS_BACKEND=jax or torch) opening either is an
ArtefactError saying so (`tensorflow`). A .tflite file (xfw_harness.tools.crosscheck.litert) runs on any backend.

- `.keras`: keras.saving.load_model(compile=False), in Keras's safe mode (a Lambda layer's pickled code is refused;
  the error says so). Its declared input is `model.inputs[0].shape`; a functional (or built Sequential) model keeps
  its layers, which xfw_harness.tools.crosscheck.localize can align with the PyTorch model's leaves.
- SavedModel: tf.saved_model.load. The endpoint called is `serve` when the folder has one taking a single tensor
  (what `keras.Model.export` writes: it keeps the model's output structure, so outputs come in the model's order);
  else the `serving_default` signature (what tf.saved_model.save and onnx2tf write), or the folder's only
  signature. A signature returns a mapping of output names; they are taken in the natural order of their names
  (output_0, output_1, ..., output_10), which the printed notes state.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from xfw_harness.core.frameworks import BACKEND, keras, to_numpy
from xfw_harness.tools.crosscheck.artefact import Artefact, ArtefactError, named_leaves, natural_key, open_error


def tensorflow(path: Path, what: str) -> Any:
    """TensorFlow, which `what` at `path` runs in; ArtefactError where Keras runs on another backend here (a .keras
    file would load on that backend, out of tf.GradientTape's reach; a SavedModel's tensors are TensorFlow's)."""
    if BACKEND != "tensorflow":
        raise ArtefactError(f"{path}: xfw-harness verify runs a {what} in TensorFlow (tf.GradientTape for the input "
                            f"gradient), and Keras runs on {BACKEND} in this process (KERAS_BACKEND={BACKEND}): run "
                            "it with KERAS_BACKEND=tensorflow, or unset; a .tflite file verifies on any backend")
    import tensorflow as tf

    return tf


def _tf_gradient(call: Any, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    import tensorflow as tf  # an artefact of this module was opened: tensorflow() let it

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        outputs = [value for _, value in call(xt)]
        loss = tf.add_n([tf.reduce_sum(o * tf.cast(w, o.dtype)) for o, w in zip(outputs, weights)])
    return to_numpy(tape.gradient(loss, xt, unconnected_gradients=tf.UnconnectedGradients.ZERO))


def _declared(spec: Any) -> tuple | None:
    shape = getattr(spec, "shape", None)
    if shape is None or getattr(shape, "rank", 0) is None:
        return None
    return tuple(None if d is None else int(d) for d in shape)


class KerasFile(Artefact):
    kind = "Keras 3 model (.keras)"
    differentiable = True

    def __init__(self, path: Path) -> None:
        if not zipfile.is_zipfile(path):
            raise ArtefactError(f"{path}: not a Keras 3 .keras file (which is a zip archive; this one is not)")
        self._tf = tensorflow(path, self.kind)
        try:
            model = keras.saving.load_model(str(path), compile=False)
        except Exception as e:  # noqa: BLE001 - not a .keras zip, an unknown custom layer, a refused Lambda
            raise open_error(path, "a Keras 3 model (keras.saving.load_model)", e) from None
        inputs = list(getattr(model, "inputs", None) or [])
        if len(inputs) > 1:
            raise ArtefactError(f"{path}: the model takes {len(inputs)} inputs; verify feeds it one, the PyTorch "
                                "model's input")
        super().__init__(path, _declared(inputs[0]) if inputs else None,
                         np.dtype(inputs[0].dtype) if inputs else np.float32)
        self.model = model
        if inputs:
            self.keras_model = model

    def _call(self, x: Any) -> list[tuple[str, Any]]:
        return named_leaves(self.model(x, training=False), is_leaf=self._tf.is_tensor)

    def _forward(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        return [(name, to_numpy(value)) for name, value in self._call(self._tf.constant(x))]

    def _gradient(self, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
        return _tf_gradient(self._call, x, weights)


class SavedModelDir(Artefact):
    kind = "TensorFlow SavedModel"
    differentiable = True

    def __init__(self, path: Path) -> None:
        if not any((path / name).is_file() for name in ("saved_model.pb", "saved_model.pbtxt")):
            raise ArtefactError(f"{path}: a folder but not a TensorFlow SavedModel (no saved_model.pb in it)")
        self._tf = tf = tensorflow(path, self.kind)
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as e:  # noqa: BLE001 - a damaged or incompatible SavedModel
            raise open_error(path, "a TensorFlow SavedModel (tf.saved_model.load)", e) from None
        self._loaded = loaded  # keeps the restored variables alive
        serve = getattr(loaded, "serve", None)
        functions = list(getattr(serve, "concrete_functions", None) or [])
        specs = tf.nest.flatten(functions[0].structured_input_signature) if functions else []
        if len(specs) == 1:
            super().__init__(path, _declared(specs[0]), np.dtype(specs[0].dtype.as_numpy_dtype))
            self.kind = "TensorFlow SavedModel, endpoint `serve`"
            self._call = lambda t: named_leaves(serve(t), is_leaf=tf.is_tensor)
            return
        signatures = dict(getattr(loaded, "signatures", {}) or {})
        if not signatures:
            raise ArtefactError(f"{path}: the SavedModel has neither a `serve` endpoint nor a signature to call "
                                f"(saved_model_cli show --dir {path} --all lists what it has)")
        key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
        if len(signatures) > 1 and key != "serving_default":
            raise ArtefactError(f"{path}: several signatures ({', '.join(sorted(signatures))}) and no "
                                "serving_default; verify cannot tell which to call")
        signature = signatures[key]
        inputs = signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise ArtefactError(f"{path}: signature {key!r} takes {len(inputs)} inputs "
                                f"({', '.join(inputs)}); verify feeds it one, the PyTorch model's input")
        (name, spec), = inputs.items()
        super().__init__(path, _declared(spec), np.dtype(spec.dtype.as_numpy_dtype))
        self.kind = f"TensorFlow SavedModel, signature {key!r}"
        order = sorted(signature.structured_outputs, key=natural_key)
        if len(order) > 1:
            self.notes.append(f"the signature's outputs are taken in the natural order of their names: "
                              f"{', '.join(order)}")
        self._call = lambda t: [(k, v) for k, v in sorted(signature(**{name: t}).items(),
                                                          key=lambda kv: natural_key(kv[0]))]

    def _forward(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        return [(name, to_numpy(value)) for name, value in self._call(self._tf.constant(x))]

    def _gradient(self, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
        return _tf_gradient(self._call, x, weights)
