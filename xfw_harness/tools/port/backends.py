"""The saved .keras model on every Keras backend: `backend_verdicts`, one of `xfw-harness port`'s checks.

`save_keras` reloads the file in this process, on its own backend (xfw_harness.core.frameworks.BACKEND), and wants the
verified layers' output exactly. Keras fixes its backend when it is first imported, so each other backend gets a
process of its own: `python -m xfw_harness.tools.port.backends REQUEST.json` with KERAS_BACKEND set loads the file with
keras.models.load_model (the harness's layers named as custom_objects, as the printed load lines name them), runs
it on the port's input and saves its output. The processes run side by side. Each backend's output is held to the
PyTorch model's own output by the rule of the port's check of the whole model (xfw_harness.tools.port.verify:
relative_tolerance at the summed reduction length), so a verdict says whether the file computes the model there.
A backend that cannot load or run the file is a failed verdict saying why; where the model holds the harness's own
Keras layers, the message names them: one written for one backend only is the likely cause.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.core.compare import compare
from xfw_harness.core.frameworks import BACKEND, NUMPY_DTYPES
from xfw_harness.core.layout import Layout
from xfw_harness.core.verdicts import Verdict, VerdictKind
from xfw_harness.tools.port.verify import relative_tolerance

TIMEOUT_S = 600.0  # a backend's process: importing it, loading the file and one forward pass
MESSAGE_CHARS = 600  # of a backend's error, in the verdict


def verdict_name(backend: str) -> str:
    return f"the .keras on {backend} vs the model"


def _portable(x: np.ndarray) -> np.ndarray:
    """An array np.save writes and np.load reads back as numbers: bfloat16 (ml_dtypes) as float32, which holds it."""
    return x.astype(np.float32) if x.dtype == NUMPY_DTYPES["bfloat16"] else x


def _harness_layers_note(custom_objects: dict[str, type], error: str) -> str:
    """Which of the harness's own Keras layers the error concerns (those it names, else all the model holds)."""
    if not custom_objects:
        return ""
    named = [name for name in custom_objects if name in error] or list(custom_objects)
    paths = ", ".join(f"{custom_objects[n].__module__}.{n}" for n in named)
    return (f"; the model holds the harness's own Keras layer(s) {paths}: a layer written for some backends "
            "only cannot run on this one")


def backend_verdicts(keras_path: Path, custom_objects: dict[str, type], x_keras: np.ndarray,
                     expected: np.ndarray, output_layout: Layout, tolerance_k: int,
                     backends: tuple[str, ...]) -> list[Verdict]:
    """One verdict per backend in `backends` other than this process's: the .keras file at `keras_path` loaded
    there, run on `x_keras` (the Keras model's input), its output (turned channels-first by `output_layout`)
    against `expected` (the PyTorch model's, channels-first), relative to its size at reduction length
    `tolerance_k`."""
    others = [b for b in backends if b != BACKEND]
    if not others:
        return []
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="harness-port-") as folder:
        work = Path(folder)
        np.save(work / "x.npy", _portable(x_keras))
        custom = {name: f"{cls.__module__}.{cls.__qualname__}" for name, cls in custom_objects.items()}
        children = {}
        for backend in others:
            request = {"keras": str(Path(keras_path).resolve()), "custom": custom, "input": str(work / "x.npy"),
                       "dtype": str(x_keras.dtype) if x_keras.dtype != NUMPY_DTYPES["bfloat16"] else "bfloat16",
                       "output": str(work / f"{backend}.npy"), "answer": str(work / f"{backend}.json")}
            path = work / f"{backend}.request.json"
            path.write_text(json.dumps(request), encoding="utf-8")
            env = {**os.environ, "KERAS_BACKEND": backend}
            env.pop("PYTEST_XDIST_WORKER_COUNT", None)
            children[backend] = subprocess.Popen(
                [sys.executable, "-m", "xfw_harness.tools.port.backends", str(path)], env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for backend, child in children.items():
            what = verdict_name(backend)
            try:
                _, stderr = child.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                verdicts.append(Verdict(what, False, "error", f"Keras on {backend}: no answer in {TIMEOUT_S:.0f} s",
                                        kind=VerdictKind.BACKEND))
                continue
            answer_path = work / f"{backend}.json"
            answer = json.loads(answer_path.read_text(encoding="utf-8")) if answer_path.exists() else {
                "ok": False, "stage": "start", "error": (stderr.strip().splitlines() or [
                    f"the process exited with status {child.returncode}"])[-1]}
            if not answer["ok"]:
                error = answer["error"][:MESSAGE_CHARS]
                message = (f"Keras on {backend} cannot {answer['stage']} {keras_path}: {error}"
                           + _harness_layers_note(custom_objects, answer["error"]))
                verdicts.append(Verdict(what, False, "error", message, kind=VerdictKind.BACKEND))
                continue
            got = output_layout.to_channels_first(np.load(work / f"{backend}.npy").astype(expected.dtype))
            verdict = compare(got, expected, relative_tolerance(str(expected.dtype) if expected.dtype !=
                                                                NUMPY_DTYPES["bfloat16"] else "bfloat16",
                                                                tolerance_k, expected),
                              what, (f"keras[{backend}]", "model"), kind=VerdictKind.BACKEND)
            verdict.metrics["backend"] = backend
            verdicts.append(verdict)
    return verdicts


def _run(request: dict) -> dict:
    """In the backend's process: load, run, save the output. {"ok": True} or the stage that failed and why."""
    import importlib

    from xfw_harness.core.frameworks import keras, keras_device, keras_tensor, to_numpy

    stage = "import the harness's layers for"
    try:
        custom = {}
        for name, path in request["custom"].items():
            module, _, qualname = path.rpartition(".")
            custom[name] = getattr(importlib.import_module(module), qualname)
        stage = "load"
        model = keras.models.load_model(request["keras"], custom_objects=custom)
        stage = "run"
        x = np.load(request["input"]).astype(NUMPY_DTYPES[request["dtype"]])
        with keras_device("cpu"):
            y = to_numpy(model(keras_tensor(x), training=False))
        np.save(request["output"], _portable(y))
    except Exception as e:  # noqa: BLE001 - the verdict says what failed, in one line
        text = " ".join(f"{type(e).__name__}: {e}".split())
        return {"ok": False, "stage": stage, "error": text}
    return {"ok": True}


def main(request_path: str) -> None:
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    answer = _run(request)
    Path(request["answer"]).write_text(json.dumps(answer), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
