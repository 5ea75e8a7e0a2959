"""Imports PyTorch and Keras once, on the Keras backend this process runs (KERAS_BACKEND: tensorflow, the default,
jax or torch), and places work on a device.

Import this module before anything else imports keras: the Keras backend is fixed at its first import, so one process
runs Keras on one backend; a run that covers several gives each other backend a worker process
(xfw_harness.suite.backends).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator

from xfw_harness.core.backend_choice import (  # noqa: F401  (these names are also read from here)
    BACKEND_EXTRAS,
    BACKEND_LIBRARIES,
    BACKENDS,
    DEVICES,
    ENV_BACKENDS,
    BackendSelectionError,
    chosen_backends,
    home_backend,
    installed_backends,
)
from xfw_harness.core.errors import FrameworkMissing
from xfw_harness.core.native_logs import keep_all, quiet_native_banners

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
BACKEND = home_backend()
os.environ["KERAS_BACKEND"] = BACKEND
# JAX computes in float32 at most unless 64-bit types are enabled before its first array: float64 cases would
# silently run in float32 (measured: keras.ops.convert_to_tensor of a float64 array gives float32 on Keras 3.15.1
# with jax 0.10.2, with a UserWarning only). Keras does not enable them itself.
if BACKEND == "jax":
    os.environ["JAX_ENABLE_X64"] = "1"

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
try:
    import torch  # noqa: E402
except ImportError as e:
    raise FrameworkMissing(f"PyTorch cannot be imported in this Python ({sys.executable}): {e}; install it with "
                           "`pip install xfw-harness` (README: install)") from e


# Where TensorFlow is already loaded (a script that imports keras before the harness, as the load lines printed for
# a ported model do), importing triton here is what would crash (`import keras; import xfw_harness.core.frameworks`
# exits 139 with it): it warns instead, since the crash, if one comes, comes later at an import that says nothing.
if importlib.util.find_spec("triton") is not None:
    if "tensorflow" in sys.modules:
        warnings.warn("TensorFlow was imported before xfw_harness.core.frameworks: importing triton later in this "
                      "process (torchvision and torch._dynamo import it) kills it with SIGSEGV; import the harness, or "
                      "triton, before TensorFlow", RuntimeWarning, stacklevel=2)
    else:
        with contextlib.suppress(ImportError):  # a triton that cannot load here cannot crash a later import either
            import triton  # noqa: F401


def _missing(backend: str, e: ImportError) -> FrameworkMissing:
    return FrameworkMissing(
        f"Keras on its {backend} backend cannot be imported in this Python ({sys.executable}): {e}; install it with "
        f"`pip install '{BACKEND_EXTRAS[backend]}'`, or set KERAS_BACKEND to an installed backend "
        f"(installed: {', '.join(installed_backends())})")


try:
    with quiet_native_banners():  # TensorFlow's native start-up lines (xfw_harness/core/native_logs.py)
        import keras  # noqa: E402
except ImportError as e:
    raise _missing(BACKEND, e) from e
import numpy as np  # noqa: E402

if keras.backend.backend() != BACKEND:  # keras was imported elsewhere first, on another backend
    raise RuntimeError(f"Keras runs on {keras.backend.backend()!r} in this process, KERAS_BACKEND says {BACKEND!r}: "
                       "keras was imported before xfw_harness.core.frameworks with another KERAS_BACKEND")
# TensorFlow only where it is Keras's backend: its tools (SavedModel, TFLite) import it themselves.
if BACKEND == "tensorflow":
    import tensorflow as tf  # noqa: E402  (already loaded by keras, under the banner filter above)
    if not keep_all():
        # Python-side warnings a user cannot act on, "tf.function retracing" above all: the harness builds a new
        # layer for every test, and Keras traces each.
        tf.get_logger().setLevel("ERROR")
else:
    tf = None
if BACKEND == "jax":
    import jax  # noqa: E402

    # JAX's default matmul and convolution precision on a GPU is not float32 (bfloat16 passes, like TF32): highest.
    jax.config.update("jax_default_matmul_precision", "highest")
    jax.config.update("jax_enable_x64", True)
else:
    jax = None

# PyTorch notes that padding='same' with an even kernel copies the input: true, and no concern of a user's.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel", category=UserWarning)

# Reduced-precision shortcuts would make a GPU comparison a comparison of TF32 roundings: off, in both.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")
if tf is not None:
    tf.config.experimental.enable_tensor_float_32_execution(False)
# float16/bfloat16 on a GPU: cuBLAS may otherwise sum split-K partial products in the reduced dtype (PyTorch's
# default True); TensorFlow computes half matmuls in float32 (TF_FP16_MATMUL_USE_FP32_COMPUTE, default true:
# tensorflow/core/util/matmul_autotune.cc). Off, so that both sum in float32 as on the CPU, where the reduced
# dtypes' tolerance was measured (xfw_harness/core/tolerance.py).
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
    with contextlib.suppress(RuntimeError, AttributeError):  # TensorFlow started already, or not here
        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(THREADS)
for _gpu in tf.config.list_physical_devices("GPU") if tf is not None else []:
    with contextlib.suppress(RuntimeError):  # already initialised: growth can no longer be set
        tf.config.experimental.set_memory_growth(_gpu, True)
if tf is not None and not keep_all():
    # TensorFlow logs once per process, at its first float16 operation on a CPU without AVX-512 FP16, an E-level
    # native line "oneDNN supports DT_HALF only on platforms with AVX-512. Falling back to the default Eigen-based
    # implementation" (util.cc): no error, nothing to act on. One float16 operation here, after the thread and
    # memory settings above (the first operation fixes them), makes it come while the banners are filtered.
    with quiet_native_banners():
        tf.matmul(tf.ones((1, 1), tf.float16), tf.ones((1, 1), tf.float16))

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
    """Whether Keras's backend here sees a GPU: TensorFlow's GPU build, JAX's CUDA build, PyTorch's CUDA."""
    if BACKEND == "tensorflow":
        return bool(tf.config.list_physical_devices("GPU"))
    if BACKEND == "jax":
        return any(d.platform == "gpu" for d in jax.devices())
    return torch.cuda.is_available()


def keras_gpu_missing() -> str:
    """Why Keras has no GPU here, in words (for placements and skipped comparisons)."""
    return {"tensorflow": "TensorFlow sees no GPU", "jax": "JAX sees no GPU", "torch": "PyTorch sees no CUDA device"}[
        BACKEND]


def available_devices() -> tuple[str, ...]:
    return ("cpu",) if gpu_unavailable_reason() else ("cpu", "gpu")


def placement(device: str) -> dict[str, str]:
    """Where each framework runs for a device. `gpu` puts PyTorch on CUDA and TensorFlow on its GPU when it
    has one; with a CPU-only TensorFlow (tensorflow-cpu) Keras runs on the CPU, and results say so."""
    if device != "gpu":
        return {"torch": "cpu", "keras": "cpu"}
    return {"torch": f"cuda ({torch.cuda.get_device_name(0)})",
            "keras": "gpu" if keras_has_gpu() else f"cpu ({keras_gpu_missing()})"}


def torch_device(device: str) -> torch.device:
    return torch.device("cuda" if device == "gpu" else "cpu")


@contextlib.contextmanager
def keras_device(device: str) -> Iterator[None]:
    """Keras's tensors and variables made inside go to the device (keras.device: tf.device, JAX's default device,
    the torch backend's device scope). The CPU is named "cpu", not "cpu:0": the torch backend moves each new
    variable with Parameter.to(device), and torch.device("cpu:0") != the CPU tensor's device "cpu", so the move
    copies it into a plain tensor that TorchLayer's ParameterDict re-wraps as a Parameter requiring gradients,
    which an integer variable (a SeedGenerator's state) refuses (keras/src/backend/torch/core.py,
    Variable._initialize)."""
    with keras.device("gpu:0" if device == "gpu" and keras_has_gpu() else "cpu"):
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


# JAX keeps every operation it compiled, for each shape and dtype, for the life of the process: about 10 MB a test
# over the shipped cases (measured: conv2d.yaml and dense.yaml on JAX, 174 tests, 0.55 to 2.33 GB), so a whole
# suite would grow past 15 GB. Clearing after every test keeps it flat (0.66 GB) but recompiles everything, about
# 2.9x slower; clearing when the process passes JAX_CACHE_LIMIT keeps both in hand.
JAX_CACHE_LIMIT = 3 << 30
_tests_since_clear = 0


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def after_test() -> None:
    """Called by the runner after each test: on JAX, drop its compiled operations once the process passes
    JAX_CACHE_LIMIT (every 200 tests where the resident size cannot be read)."""
    global _tests_since_clear
    if jax is None:
        return
    _tests_since_clear += 1
    resident = _resident_bytes()
    if (resident is not None and resident > JAX_CACHE_LIMIT) or (resident is None and _tests_since_clear >= 200):
        jax.clear_caches()
        _tests_since_clear = 0


def keras_tensor(x: np.ndarray) -> object:
    """A NumPy array as a tensor of Keras's backend, in its dtype, on the current keras_device."""
    return keras.ops.convert_to_tensor(x, dtype=str(x.dtype) if x.dtype != NUMPY_DTYPES["bfloat16"] else "bfloat16")


def versions() -> dict[str, str]:
    """The frameworks' versions; `backend` is Keras's backend here and `backend_version` its library's."""
    library = {"tensorflow": tf, "jax": jax, "torch": torch}[BACKEND]
    return {"torch": torch.__version__, "keras": keras.__version__, "numpy": np.__version__, "backend": BACKEND,
            "backend_version": library.__version__, **({"tensorflow": tf.__version__} if tf is not None else {})}
