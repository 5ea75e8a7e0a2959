"""Imports PyTorch and Keras once, on the TensorFlow backend, and places work on a device.

Import this module before anything else imports keras: the Keras backend is fixed at its first import.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    raise RuntimeError(
        f"KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}: the harness compares PyTorch with Keras on TensorFlow; "
        "unset KERAS_BACKEND or set it to 'tensorflow'")
os.environ["KERAS_BACKEND"] = "tensorflow"

# PyTorch first, and triton (where installed: the CUDA builds of torch pull it in) before TensorFlow. triton's
# libtriton.so carries its own LLVM, whose static initialisers (LLVM's DebugCounter, in PassBuilder.cpp) bind to
# the LLVM symbols TensorFlow loaded before it and crash in free(): the process dies with SIGSEGV and no message.
# Measured with torch 2.14.1 (CUDA build), triton 3.8.0 and tensorflow-cpu 2.21.0 on the CPU (.venv-zoo):
# `import tensorflow; import triton` exits 139, and so do `import tensorflow; import torchvision` and
# `import tensorflow; import torch._dynamo` (both import triton), and `import torch; import tensorflow; import
# triton` (torch alone does not load it); the reverse orders exit 0, and TensorFlow's own LLVM (XLA's jit_compile)
# still runs after triton. A harness user's model imports torchvision, so this module loads triton while TensorFlow
# is not yet there. It costs 67 to 137 ms where triton is installed (-X importtime, 5 runs), and a find_spec of
# about 0.1 ms where it is not, as in CI's CPU build of torch.
import torch  # noqa: E402

# Where TensorFlow is already loaded (a script that imports keras before the harness, as the load lines printed for
# a ported model do), importing triton here is what would crash (`import keras; import harness.core.frameworks`
# exits 139 with it): it warns instead, since the crash, if one comes, comes later at an import that says nothing.
if importlib.util.find_spec("triton") is not None:
    if "tensorflow" in sys.modules:
        warnings.warn("TensorFlow was imported before harness.core.frameworks: importing triton later in this process "
                      "(torchvision and torch._dynamo import it) kills it with SIGSEGV; import the harness, or "
                      "triton, before TensorFlow", RuntimeWarning, stacklevel=2)
    else:
        with contextlib.suppress(ImportError):  # a triton that cannot load here cannot crash a later import either
            import triton  # noqa: F401

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if keras.backend.backend() != "tensorflow":  # keras was imported elsewhere first, on another backend
    raise RuntimeError(f"Keras runs on {keras.backend.backend()!r}; the harness needs the TensorFlow backend")

DEVICES = ("cpu", "gpu")

# PyTorch notes that padding='same' with an even kernel copies the input: true, and no concern of a user's.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel", category=UserWarning)

# Reduced-precision shortcuts would make a GPU comparison a comparison of TF32 roundings: off, in both.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")
tf.config.experimental.enable_tensor_float_32_execution(False)
# float16/bfloat16 on a GPU: cuBLAS may otherwise sum split-K partial products in the reduced dtype (PyTorch's
# default True); TensorFlow computes half matmuls in float32 (TF_FP16_MATMUL_USE_FP32_COMPUTE, default true:
# tensorflow/core/util/matmul_autotune.cc). Off, so that both sum in float32 as on the CPU, where the reduced
# dtypes' tolerance was measured (harness/core/tolerance.py).
torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False

# Each framework's CPU threads: HARNESS_THREADS=n where set; in a pytest-xdist worker (which xdist marks with
# PYTEST_XDIST_WORKER_COUNT before anything is imported) cores / workers; else the frameworks' own defaults.
# Two frameworks' thread pools in each of several processes oversubscribe the cores, and an OpenMP barrier
# waiting on a descheduled thread costs a scheduler tick: a 2 ms conv took 32 ms (measured on the 2-core CI
# machine with another process busy).
def _thread_cap() -> int | None:
    if os.environ.get("HARNESS_THREADS", "").isdigit():
        return max(1, int(os.environ["HARNESS_THREADS"]))
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    return max(1, (os.cpu_count() or 1) // int(workers)) if workers.isdigit() and int(workers) > 0 else None


THREADS = _thread_cap()
if THREADS is not None:
    torch.set_num_threads(THREADS)
    with contextlib.suppress(RuntimeError):  # TensorFlow already started: its pools stay as they are
        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(THREADS)
for _gpu in tf.config.list_physical_devices("GPU"):
    with contextlib.suppress(RuntimeError):  # already initialised: growth can no longer be set
        tf.config.experimental.set_memory_growth(_gpu, True)

import ml_dtypes  # noqa: E402  (NumPy's bfloat16; TensorFlow depends on it and reads its arrays)

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                "bfloat16": torch.bfloat16}
TORCH_DTYPE_NAMES = {torch_dtype: name for name, torch_dtype in TORCH_DTYPES.items()}  # torch.float32 -> "float32"
# NumPy has no bfloat16 of its own: ml_dtypes' is the one TensorFlow (and so Keras) takes and gives back. One
# input array in the case's dtype feeds both frameworks, so both see exactly the same values.
NUMPY_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64), "float16": np.dtype(np.float16),
                "bfloat16": np.dtype(ml_dtypes.bfloat16)}


def gpu_unavailable_reason() -> str | None:
    """Why the `gpu` device cannot run here, or None when PyTorch sees a CUDA device."""
    if torch.cuda.is_available():
        return None
    return f"PyTorch {torch.__version__} sees no CUDA device" + (
        " (a CPU-only build)" if torch.version.cuda is None else "")


def keras_has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def available_devices() -> tuple[str, ...]:
    return ("cpu",) if gpu_unavailable_reason() else ("cpu", "gpu")


def placement(device: str) -> dict[str, str]:
    """Where each framework runs for a device. `gpu` puts PyTorch on CUDA and TensorFlow on its GPU when it
    has one; with a CPU-only TensorFlow (tensorflow-cpu) Keras runs on the CPU, and results say so."""
    if device != "gpu":
        return {"torch": "cpu", "keras": "cpu"}
    return {"torch": f"cuda ({torch.cuda.get_device_name(0)})",
            "keras": "gpu" if keras_has_gpu() else "cpu (TensorFlow sees no GPU)"}


def torch_device(device: str) -> torch.device:
    return torch.device("cuda" if device == "gpu" else "cpu")


@contextlib.contextmanager
def keras_device(device: str) -> Iterator[None]:
    with tf.device("/GPU:0" if device == "gpu" and keras_has_gpu() else "/CPU:0"):
        yield


def to_numpy(value: object) -> np.ndarray:
    """A framework tensor (either framework, any device) as a NumPy array."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16:  # Tensor.numpy() has no bfloat16: through float32, which holds it exactly
            return value.detach().cpu().float().numpy().astype(ml_dtypes.bfloat16)
        return value.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(value)


def to_torch(x: np.ndarray) -> torch.Tensor:
    """A NumPy array as a CPU tensor of the same dtype; bfloat16 (which torch.from_numpy refuses) goes through
    float32, which holds every bfloat16 exactly."""
    if x.dtype == NUMPY_DTYPES["bfloat16"]:
        return torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(x)


def versions() -> dict[str, str]:
    return {"torch": torch.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}
