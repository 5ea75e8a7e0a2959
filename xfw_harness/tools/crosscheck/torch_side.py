"""The PyTorch side of `xfw-harness verify`: the user's model (in eval mode) on the seeded input, its outputs by name,
its input gradient, and, for aligning a Keras model's layers, what each of its leaf modules computed.

- Outputs: a tensor, or a (nested) tuple, list or dict of tensors, named as xfw_harness.tools.crosscheck.artefact's
  `named_leaves` names them (`output`, `output[0]`, `output['logits']`).
- Input gradient: autograd of sum_i sum(output_i * r_i) with respect to the input (zero where the input does not
  reach the outputs), the same loss the artefact is differentiated on.
- Recording: forward hooks on every leaf module (a module without children) copy each tensor it returns, in the
  order of the calls, at the time of the call (an in-place module that runs later cannot change the copy). The
  model's input and its outputs are recorded too, so that a Keras layer computing a functional op at either end
  (a Permute of the input, a softmax after the last leaf) has something to meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xfw_harness.core.frameworks import to_numpy, torch
from xfw_harness.tools.crosscheck.artefact import named_leaves
from xfw_harness.tools.port.model import PortError, exception_text


@dataclass
class Recorded:
    """One tensor the PyTorch model computed: where (a leaf's path, "(input)", "(output) ..."), by what module."""

    where: str
    type_name: str
    value: np.ndarray  # channels-first, batch first
    order: int  # place among the recorded tensors
    input_shape: tuple[int, ...] | None = None  # per sample, of the module's first tensor argument
    flattened: bool = False  # derived: the tensor at `where`, flattened per sample (`with_flattened`)

    def describe(self) -> str:
        text = f"{self.where} ({self.type_name})" if self.type_name else self.where
        return f"{text}, flattened" if self.flattened else text


@dataclass
class TorchRun:
    outputs: list[tuple[str, np.ndarray]]
    recorded: list[Recorded]  # empty unless the run recorded


def type_name(module: Any) -> str:
    cls = type(module)
    return f"torch.nn.{cls.__name__}" if getattr(torch.nn, cls.__name__, None) is cls else cls.__qualname__


def _input_tensor(model: Any, x: np.ndarray) -> Any:
    """x as a tensor of the model's float dtype (float64 for a float64 model; float32 otherwise)."""
    dtypes = {p.dtype for p in list(model.parameters()) + list(model.buffers()) if p.is_floating_point()}
    dtype = torch.float64 if dtypes == {torch.float64} else torch.float32
    return torch.from_numpy(np.array(x)).to(dtype)  # a copy: the model may write into its input


def _forward(model: Any, t: Any) -> Any:
    try:
        return model(t)
    except Exception as e:  # noqa: BLE001 - the user's forward refused the input
        raise PortError(f"the PyTorch model refused an input of shape {list(t.shape)}: {exception_text(e)} "
                        "(give --input-shape as the model expects it, channels-first)") from None


def run_model(model: Any, x: np.ndarray, record: bool = False) -> TorchRun:
    """The model's named outputs on x; with `record`, every leaf module's outputs in call order too."""
    recorded: list[Recorded] = []
    handles = []
    if record:
        recorded.append(Recorded("(input)", "", np.array(x), 0))

        def hook(where: str, name: str) -> Any:
            def keep(module: Any, args: tuple, output: Any) -> None:
                fed = tuple(args[0].shape[1:]) if args and torch.is_tensor(args[0]) else None
                for sub, value in named_leaves(output, where, torch.is_tensor):
                    recorded.append(Recorded(sub, name, to_numpy(value).copy(), len(recorded), fed))
            return keep

        for path, module in model.named_modules():
            if path and not list(module.children()):
                handles.append(module.register_forward_hook(hook(path, type_name(module))))
    try:
        with torch.no_grad():
            out = _forward(model, _input_tensor(model, x))
    finally:
        for handle in handles:
            handle.remove()
    outputs = [(name, to_numpy(value).copy()) for name, value in named_leaves(out, is_leaf=torch.is_tensor)]
    if not outputs:
        raise PortError(f"the PyTorch model returned a {type(out).__name__} holding no tensor")
    if record:
        recorded += [Recorded(f"(the model's {name})", "", value, len(recorded)) for name, value in outputs]
    return TorchRun(outputs, recorded)


def with_flattened(recorded: list[Recorded]) -> list[Recorded]:
    """The recorded tensors and, after each of rank 3 or more, the same flattened per sample (C, H, W order), in its
    place of the call order: what a Keras Flatten meets where PyTorch flattens with torch.flatten, not a module."""
    out = []
    for r in recorded:
        out.append(r)
        if r.value.ndim >= 3:
            out.append(Recorded(r.where, r.type_name, r.value.reshape(r.value.shape[0], -1), r.order, r.input_shape,
                                flattened=True))
    return out


def input_gradient(model: Any, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """d/dx of sum_i sum(output_i * weights_i) (weights channels-first, in the order of the outputs)."""
    t = _input_tensor(model, x).requires_grad_(True)
    outputs = [value for _, value in named_leaves(_forward(model, t), is_leaf=torch.is_tensor)]
    terms = [(o * torch.from_numpy(w).to(o.dtype)).sum() for o, w in zip(outputs, weights)
             if o.is_floating_point() and o.requires_grad]
    if not terms:
        return np.zeros(x.shape, np.float32)
    (grad,) = torch.autograd.grad(torch.stack(terms).sum(), t, allow_unused=True)
    return np.zeros(x.shape, np.float32) if grad is None else to_numpy(grad)


def unflattened_shapes(recorded: list[Recorded], features: int) -> list[tuple[int, ...]]:
    """Per-sample shapes of rank 2 or more, holding `features` elements, among the recorded tensors (in call
    order, each once): what a flattened output of `features` features may have been flattened from."""
    shapes: list[tuple[int, ...]] = []
    for r in recorded:
        shape = tuple(int(d) for d in r.value.shape[1:])
        if len(shape) >= 2 and int(np.prod(shape)) == features and shape not in shapes:
            shapes.append(shape)
    return shapes


def flatten_points(recorded: list[Recorded]) -> list[tuple[str, tuple[int, ...]]]:
    """Where the PyTorch model flattens a tensor of rank 2 or more per sample (nn.Flatten, or torch.flatten before a
    leaf): the leaf that returns or receives the flat tensor, and the per-sample shape it was flattened from."""
    points, last = [], None
    for r in recorded:
        for shape in (r.input_shape, tuple(r.value.shape[1:])):
            if shape is None:
                continue
            if len(shape) == 1 and last is not None and int(np.prod(last)) == shape[0]:
                if r.where not in [w for w, _ in points]:
                    points.append((r.where, last))
                last = None
            elif len(shape) >= 2:
                last = shape
    return points
