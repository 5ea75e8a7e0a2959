"""`xfw-harness show FILE::CASE [--keras-backend B]`: the command, and the program for another Keras backend.

Keras fixes its backend when it is first imported, so the Keras program for a backend is generated from the layers
the runner builds on that backend: for this process's own (xfw_harness.core.frameworks.BACKEND) here, for another in
a `python -m xfw_harness show` child process with KERAS_BACKEND set, whose text this process prints. The printed
program then names that backend and runs on it (xfw_harness.tools.show.programs).
"""

from __future__ import annotations

import os
import subprocess
import sys

from xfw_harness.cases import find_points
from xfw_harness.cases.addresses import address_device
from xfw_harness.core.errors import CaseError, did_you_mean
from xfw_harness.core.frameworks import BACKEND, BACKENDS, gpu_unavailable_reason, installed_backends
from xfw_harness.engine import StageError
from xfw_harness.tools.show.programs import show_text

PART_FLAGS = {("torch",): ["--torch-only"], ("keras",): ["--keras-only"], ("torch", "keras"): []}


def backend_error(backend: str) -> str | None:
    """Why `--keras-backend backend` cannot be shown here, or None."""
    if backend not in BACKENDS:
        return (f"--keras-backend {backend!r}: not a Keras backend{did_you_mean(backend, BACKENDS)}; allowed: "
                f"{', '.join(BACKENDS)}")
    if backend not in installed_backends():
        return (f"--keras-backend {backend}: {backend} is not installed in this Python ({sys.executable}); "
                f"installed: {', '.join(installed_backends())}")
    return None


def device_error(spec: str, device: str) -> tuple[str, str | None]:
    """(the device to show the point on, why it cannot be shown here or None). A test id copied from a `-gpu`
    test names the gpu device as --device gpu does. Without a GPU here the program would be read off CPU objects
    and name a device this machine lacks: refused rather than printed, so that nobody takes the CPU program for
    the GPU test's."""
    named = address_device(spec)
    if named is not None and device != "cpu" and named != device:
        return device, f"{spec} names the {named} device but --device says {device}"
    device = named or device
    if device == "gpu" and (why := gpu_unavailable_reason()) is not None:
        return device, (f"{spec} on the gpu device cannot be shown here: {why}; show it on the CPU (drop the "
                        "-gpu suffix or --device gpu) or on a machine with a CUDA device")
    return device, None


def print_code(text: str) -> None:
    """Python source on stdout: coloured by rich on a terminal, plain text otherwise (pipes, files, tests)."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.syntax import Syntax

        # soft_wrap: long lines reach the terminal whole (rich would crop them), so copied code stays valid
        Console().print(Syntax(text.rstrip("\n"), "python", background_color="default"), soft_wrap=True)
    else:
        print(text, end="")


def _on_backend(spec: str, device: str, parts: tuple[str, ...], backend: str) -> int:
    """`xfw-harness show` in a child process running Keras on `backend`: its text printed here, its messages on
    stderr as they come, its exit status returned."""
    argv = [sys.executable, "-m", "xfw_harness", "show", spec, "--device", device, "--keras-backend", backend,
            *PART_FLAGS[parts]]
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, check=False)
    if done.returncode == 0:
        print_code(done.stdout)
    else:
        print(done.stdout, end="")
        if done.returncode < 0:
            print(f"xfw-harness show: the Keras {backend} process died (signal {-done.returncode})", file=sys.stderr)
    return done.returncode


def command(spec: str, device: str = "cpu", parts: tuple[str, ...] = ("torch", "keras"),
            backend: str | None = None) -> int:
    """`xfw-harness show`: 0 after printing the points' programs, 1 when a framework refuses to build a layer of the
    case, 2 when the case cannot be found or is invalid, the backend is unknown or not installed, or the gpu device
    (--device gpu, or a `-gpu` test id) is asked for where PyTorch has no CUDA device. `backend`: the Keras
    program's (default: this process's)."""
    backend = backend or BACKEND
    device, device_why = device_error(spec, device)
    if (why := backend_error(backend) or device_why) is not None:
        print(f"xfw-harness show: {why}", file=sys.stderr)
        return 2
    if backend != BACKEND:
        return _on_backend(spec, device, parts, backend)
    try:
        texts = [show_text(point, device, parts) for point in find_points(spec)]
    except CaseError as e:
        print(e, file=sys.stderr)
        return 2
    except StageError as e:  # a framework refused to build a layer of the case
        print(e, file=sys.stderr)
        return 1
    print_code(f"\n# {'=' * 78}\n\n".join(texts))  # a rule between the points of a case
    return 0
