"""Global and adaptive pooling: `global_avg_pool1d/2d/3d`, `global_max_pool1d/2d/3d`, `adaptive_avg_pool1d/2d/3d`,
`adaptive_max_pool1d/2d/3d`: the spatial axes of (N, C, L), (N, C, H, W) or (N, C, D, H, W) pooled to a fixed size.

Global pooling reduces every spatial axis; `keepdims` keeps them as size 1 ([N, C, 1, 1] like AdaptiveAvgPool2d(1)),
else they are flattened away ([N, C], Keras's GlobalAveragePooling/GlobalMaxPooling{1,2,3}D default). PyTorch has
no keepdims: AdaptiveAvgPool{1,2,3}d(1) keeps them, which `xfw-harness port` reads as keepdims true.

Adaptive pooling (PyTorch's AdaptiveAvgPool/AdaptiveMaxPool{1,2,3}d) pools each axis of n cells to `output_size` k
cells: output cell i reduces the input cells [floor(i*n/k), ceil((i+1)*n/k)) (aten/src/ATen/native/AdaptivePooling.h:
start_index (i/k)*n + ((i%k)*n)/k, end_index 1 + ((i+1)*n - 1)/k; xfw_harness.core.spatial.adaptive_window). Windows
differ in size and may overlap where k does not divide n, and with k > n input cells repeat (5 -> 3: [0, 2), [1, 4),
[3, 5); averaging 0..4 gives 0.5, 2, 3.5, measured). Measured against PyTorch on every n in 1..11 and k in 1..14:
the rule's NumPy windows give adaptive_max_pool1d exactly and adaptive_avg_pool1d within 1.7e-16 (float64). An entry
of output_size may be null (PyTorch's None): that axis keeps its size. The mean divides by the window's cells (no
padding ever).
- PyTorch: AdaptiveAvgPool/AdaptiveMaxPool{1,2,3}d(output_size), as they are.
- Keras: the harness's AdaptivePooling layer (xfw_harness.blocks.pooling_layers), keras.ops slices of each window,
  each reduced (mean or max), concatenated, one axis after the other: exact for any sizes. Keras 3.15 has
  AdaptiveAveragePooling/AdaptiveMaxPooling{1,2,3}D (the project allows Keras >= 3.3, which had none). Measured on
  the TensorFlow backend, they agree with PyTorch (float32 within 6e-8, float64 within 2.3e-16, max exactly, on n
  1..12, k 1..14 in 1-D), but AdaptiveMaxPooling kills the Python process (SIGFPE, no exception) where its second
  window size ceil(n/k) + 1 exceeds the last axis's n: output size 1 or input size 1 on that axis (1-D: n 3 -> 1,
  n 1 -> 1; 2-D: 4x5 -> 2x1 dies, 4x5 -> 1x3 does not). The harness does not build them; `defaults: native` does
  (the hand port), and on TensorFlow refuses where any axis is in that range. Keras's JAX and torch backends run
  them there too and agree with PyTorch (measured, Keras 3.15.1: n 1..12, k 1..14 in 1-D and those 2-D sizes, max
  exactly, float64 average within 2.2e-16).
- Reference: global average pooling is ONNX's GlobalAveragePool. Global max pooling is the maximum in NumPy: ONNX's
  reference GlobalMaxPool (onnx 1.23.2, onnx/reference/ops/op_global_max_pool.py) reduces the axes
  range(ndim - 2, ndim), the spatial axes only for a 4-D input (measured: [2, 5, 9] gives [2, 1], the channels
  reduced; [2, 3, 3, 4, 5] gives [2, 3, 3, 1, 1, 1], the depth kept). Adaptive pooling is NumPy from the rule (ONNX has
  no adaptive pooling): each output cell the mean or max of its box.
`xfw-harness port` reads AdaptiveAvgPool{1,2,3}d(1) as global pooling, to a divisor of the input as window pooling
(avg_pool2d etc., Keras's own layers), and every other output size as adaptive pooling.
"""

from __future__ import annotations

import itertools
from math import ceil, prod
from typing import Any, ClassVar

import numpy as np

from xfw_harness.blocks.base import Block, Corner, Emulation, size_one_axis
from xfw_harness.blocks.pooling_common import AXES, OutputSizeParam, adaptive_output_size, sizes_text
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site
from xfw_harness.core.backend_choice import home_backend
from xfw_harness.core.errors import Refusal
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param
from xfw_harness.core.spatial import Sizes, adaptive_windows

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
pooling_layers = lazy_module("xfw_harness.blocks.pooling_layers")

SHORT_AXES = {1: "L", 2: "H and W", 3: "D, H and W"}
OP_WORDS = {"avg": ("Avg", "Average", "Mean"), "max": ("Max", "Max", "Maximum")}  # PyTorch's, Keras's, the docs'


GLOBAL_EMULATIONS = (
    Emulation("torch_flatten",
              "PyTorch has no keepdims: without it the harness's TorchGlobalPool flattens adaptive pooling's "
              "[N, C, 1, ...] to [N, C] (torch.flatten); the reference reshapes its own pooled array, and Keras's "
              "global pooling layer is the other side", lambda s: not s.params["keepdims"], "reference",
              (Corner("size-1 axis", size_one_axis),)),
)


def _not_a_divisor(site: Site) -> bool:
    out = adaptive_output_size(site.params["output_size"], site.in_shape[2:])
    return any(n % k for n, k in zip(site.in_shape[2:], out))


ADAPTIVE_EMULATIONS = (
    Emulation("keras_adaptive_windows",
              "Keras (before 3.15) has no adaptive pooling: the harness's AdaptivePooling reduces PyTorch's windows "
              "(core.spatial.adaptive_windows) one axis after the other. The reference reduces the same windows: "
              "PyTorch's own AdaptiveAvgPool/AdaptiveMaxPool, on the other side, is the check outside them",
              lambda s: True, "framework",
              (Corner("output not a divisor of the input (unequal, overlapping windows)", _not_a_divisor),
               Corner("output larger than the input", lambda s: any(
                   k > n for n, k in zip(s.in_shape[2:], adaptive_output_size(s.params["output_size"],
                                                                              s.in_shape[2:])))),
               Corner("size-1 axis", size_one_axis),
               Corner("an axis kept (null)", lambda s: None in s.params["output_size"]),
               Corner("odd size", lambda s: any(n % 2 for n in s.in_shape[2:])),
               Corner("even size", lambda s: any(n % 2 == 0 for n in s.in_shape[2:])))),
)


class _GlobalPool(Block):
    family = "pooling"
    spatial: ClassVar[int] = 2
    op: ClassVar[str]
    emulations = GLOBAL_EMULATIONS
    keras_class: ClassVar[str]
    torch_class: ClassVar[str]  # the adaptive pooling a hand port writes: AdaptiveAvgPool2d(1) keeps [N, C, 1, 1]
    onnx_type: ClassVar[str]  # the ONNX operator of the reference

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A registered class (one that names itself) gets its ranks, classes and docs from `spatial` and `op`."""
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            n, (torch_word, keras_word, doc_word) = cls.spatial, OP_WORDS[cls.op]
            cls.ranks = (n + 2,)
            cls.doc = f"{doc_word} over {SHORT_AXES[n]} of each channel."
            cls.keras_class = f"Global{'Average' if cls.op == 'avg' else 'Max'}Pooling{n}D"
            cls.torch_class = f"Adaptive{torch_word}Pool{n}d"
            cls.onnx_type = f"Global{keras_word}Pool"
            cls.torch_types = (cls.torch_class,)
            cls.params = (Param("keepdims", "bool", False,
                                doc=f"keep {SHORT_AXES[n]} as size 1: [N, C{', 1' * n}] instead of [N, C]"),)

    def output_shape(self, site: Site) -> tuple[int, ...]:
        n, c = site.in_shape[:2]
        return (n, c, *(1,) * self.spatial) if site.params["keepdims"] else (n, c)

    def torch_module(self, site: Site) -> torch.nn.Module:
        return pooling_layers.TorchGlobalPool(self.op, site.params["keepdims"])

    def keras_layer(self, site: Site) -> keras.Layer:
        return getattr(keras.layers, self.keras_class)(keepdims=site.params["keepdims"], dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        # [N, C, 1, ...]. ONNX's reference GlobalMaxPool is right in 2-D only (module doc): the maximum in NumPy.
        pooled = onnx_op(self.onnx_type, x) if self.op == "avg" else x.max(axis=tuple(range(2, x.ndim)), keepdims=True)
        return pooled if site.params["keepdims"] else pooled.reshape(pooled.shape[:2])

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        # PyTorch has no keepdims: AdaptiveAvgPool2d(1) always keeps [N, C, 1, 1] (a written keepdims is left out).
        return getattr(torch.nn, self.torch_class)(1)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        kwargs = site.written_args(keepdims="keepdims")
        return getattr(keras.layers, self.keras_class)(dtype=site.dtype, **kwargs)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if type(module).__name__ != self.torch_class:
            raise Refusal(f"{self.name} reads {self.torch_class}, not {type(module).__name__}")
        size = module.output_size
        if (tuple(size) if isinstance(size, (tuple, list)) else (size,) * self.spatial) != (1,) * self.spatial:
            raise Refusal(f"{self.torch_class}.output_size={module.output_size}: only 1 is global pooling",
                          field="output_size")
        if getattr(module, "return_indices", False):
            raise Refusal(f"{self.torch_class}.return_indices=True: Keras pooling returns no indices",
                          field="return_indices")
        return {"keepdims": True}  # adaptive pooling to 1 keeps the spatial axes


class _GlobalAvgPool(_GlobalPool):
    op = "avg"
    torch_functions = ("mean",)  # x.mean((2, 3), keepdim=...): a squeeze-and-excite's or a head's pooling

    def reduction_length(self, site: Site) -> int:
        return prod(site.in_shape[2:])

    def params_from_call(self, function: str, args: tuple, kwargs: dict[str, Any],
                         in_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        rank, dims = len(in_shapes[0]), kwargs.get("dim", args[1] if len(args) > 1 else None)
        dims = [dims] if isinstance(dims, int) else dims
        dims = sorted(d % rank for d in dims) if isinstance(dims, (list, tuple)) else dims
        wanted = list(range(2, self.spatial + 2))
        if rank != self.spatial + 2 or dims != wanted or kwargs.get("dtype") is not None:
            raise Refusal(f"mean over dims {dims} of a rank-{rank} input: only the mean over dims {wanted} of a "
                          f"rank-{self.spatial + 2} tensor is {self.name}", field="mean.dim")
        return {"keepdims": bool(kwargs.get("keepdim", args[2] if len(args) > 2 else False))}


class _GlobalMaxPool(_GlobalPool):
    op = "max"


@register
class GlobalAvgPool1D(_GlobalAvgPool):
    name, spatial = "global_avg_pool1d", 1
    benchmark = {"input": {"shape": [8, 32, 1024]}}


@register
class GlobalAvgPool2D(_GlobalAvgPool):
    name, spatial = "global_avg_pool2d", 2


@register
class GlobalAvgPool3D(_GlobalAvgPool):
    name, spatial = "global_avg_pool3d", 3
    benchmark = {"input": {"shape": [2, 16, 16, 16, 16]}}


@register
class GlobalMaxPool1D(_GlobalMaxPool):
    name, spatial = "global_max_pool1d", 1
    benchmark = {"input": {"shape": [8, 32, 1024]}}


@register
class GlobalMaxPool2D(_GlobalMaxPool):
    name, spatial = "global_max_pool2d", 2


@register
class GlobalMaxPool3D(_GlobalMaxPool):
    name, spatial = "global_max_pool3d", 3
    benchmark = {"input": {"shape": [2, 16, 16, 16, 16]}}


def _keras_max_dies(size: int, out: int) -> bool:
    """Where Keras's AdaptiveMaxPooling kills the process on TensorFlow (module doc): its bigger window exceeds the
    axis."""
    return ceil(size / out) + 1 > size


class _AdaptivePool(Block):
    family = "pooling"
    spatial: ClassVar[int] = 2
    op: ClassVar[str]
    torch_class: ClassVar[str]
    emulations = ADAPTIVE_EMULATIONS
    keras_class: ClassVar[str]  # Keras 3.15's own layer, which only `defaults: native` builds

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A registered class (one that names itself) gets its ranks, classes and docs from `spatial` and `op`."""
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            n, (torch_word, keras_word, doc_word) = cls.spatial, OP_WORDS[cls.op]
            cls.ranks = (n + 2,)
            cls.doc = (f"{doc_word} over PyTorch's adaptive windows: {AXES[n]} pooled to output_size, any size "
                       "(windows of unequal size, overlapping where it does not divide the input).")
            cls.torch_class = f"Adaptive{torch_word}Pool{n}d"
            cls.keras_class = f"Adaptive{keras_word}Pooling{n}D"
            # Global (output 1) and window pooling (a divisor of the input) read the same class first.
            cls.torch_fallback_types = (cls.torch_class,)
            cls.params = (OutputSizeParam("output_size", "pair", minimum=1, size=n,
                                    doc="output cells per axis (an int for every axis); null keeps that axis's "
                                        "size"),)

    def output_size(self, site: Site) -> Sizes:
        return adaptive_output_size(site.params["output_size"], site.in_shape[2:])

    def output_shape(self, site: Site) -> tuple[int, ...]:
        return (*site.in_shape[:2], *self.output_size(site))

    def reduction_length(self, site: Site) -> int:
        if self.op == "max":
            return 1
        return prod(max(end - start for start, end in adaptive_windows(n, k))
                    for n, k in zip(site.in_shape[2:], self.output_size(site)))

    def torch_module(self, site: Site) -> torch.nn.Module:
        return getattr(torch.nn, self.torch_class)(self.output_size(site))

    def keras_layer(self, site: Site) -> keras.Layer:
        return pooling_layers.AdaptivePooling(self.op, self.output_size(site), dtype=site.dtype)

    def reference(self, site: Site, x: Any, weights: dict[str, Any]) -> Any:
        out = self.output_size(site)
        windows = [adaptive_windows(n, k) for n, k in zip(x.shape[2:], out)]
        axes = tuple(range(2, 2 + self.spatial))
        y = np.empty((*x.shape[:2], *out), dtype=np.float64)
        for cell in itertools.product(*(range(k) for k in out)):
            box = x[(slice(None), slice(None), *(slice(*w[i]) for w, i in zip(windows, cell)))]
            y[(slice(None), slice(None), *cell)] = box.mean(axis=axes) if self.op == "avg" else box.max(axis=axes)
        return y

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return getattr(torch.nn, self.torch_class)(site.params["output_size"])  # None entries as PyTorch takes them

    def native_keras_layer(self, site: Site) -> keras.Layer:
        layer = getattr(keras.layers, self.keras_class, None)
        if layer is None:
            raise Refusal(f"this Keras ({keras.__version__}) has no {self.keras_class}", field="block")
        out = self.output_size(site)  # a hand port writes the numbers: Keras's layer takes no None
        if home_backend() == "tensorflow" and self.op == "max" and any(map(_keras_max_dies, site.in_shape[2:], out)):
            raise Refusal(f"Keras's {self.keras_class} kills the process (SIGFPE) pooling {list(site.in_shape[2:])} "
                          f"to {list(out)}: a window of ceil(n/k) + 1 cells exceeds an axis", field="output_size")
        return layer(out, dtype=site.dtype)

    def params_from_torch(self, module: Any, in_shape: tuple[int, ...]) -> dict[str, Any]:
        name = type(module).__name__
        if name != self.torch_class:
            raise Refusal(f"{self.name} reads {self.torch_class}, not {name}")
        if getattr(module, "return_indices", False):
            raise Refusal(f"{name}.return_indices=True: Keras pooling returns no indices", field="return_indices")
        out = adaptive_output_size(module.output_size, in_shape[2:])
        if not any(n % k for n, k in zip(in_shape[2:], out)):
            raise Refusal(f"{name}.output_size={module.output_size} divides the input {list(in_shape[2:])}: global "
                          "or window pooling reads it (Keras's own layers)", field="output_size")
        size = module.output_size
        written = tuple(size) if isinstance(size, (tuple, list)) else (size,) * self.spatial
        return {"output_size": sizes_text(written)}


@register
class AdaptiveAvgPool1D(_AdaptivePool):
    name, spatial, op = "adaptive_avg_pool1d", 1, "avg"
    benchmark = {"params": {"output_size": 100}, "input": {"shape": [8, 32, 1024]}}


@register
class AdaptiveAvgPool2D(_AdaptivePool):
    name, spatial, op = "adaptive_avg_pool2d", 2, "avg"
    benchmark = {"params": {"output_size": 7}, "input": {"shape": [8, 32, 30, 30]}}


@register
class AdaptiveAvgPool3D(_AdaptivePool):
    name, spatial, op = "adaptive_avg_pool3d", 3, "avg"
    benchmark = {"params": {"output_size": 3}, "input": {"shape": [2, 16, 16, 16, 16]}}


@register
class AdaptiveMaxPool1D(_AdaptivePool):
    name, spatial, op = "adaptive_max_pool1d", 1, "max"
    benchmark = {"params": {"output_size": 100}, "input": {"shape": [8, 32, 1024]}}


@register
class AdaptiveMaxPool2D(_AdaptivePool):
    name, spatial, op = "adaptive_max_pool2d", 2, "max"
    benchmark = {"params": {"output_size": 7}, "input": {"shape": [8, 32, 30, 30]}}


@register
class AdaptiveMaxPool3D(_AdaptivePool):
    name, spatial, op = "adaptive_max_pool3d", 3, "max"
    benchmark = {"params": {"output_size": 3}, "input": {"shape": [2, 16, 16, 16, 16]}}
