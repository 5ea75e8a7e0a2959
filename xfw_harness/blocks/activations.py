"""Activations: `relu`, `tanh`, `sigmoid`, `softmax`, `leaky_relu`, `prelu`, `elu`, `gelu`, `silu`, `softplus`,
`mish`, `softsign`, `celu`, `hard_tanh`, `relu6`, `hard_swish`, `selu` (`log_softmax`, `threshold`,
`thresholded_relu` and `hard_sigmoid`, whose parameters Keras's layers cannot take, are in activations_ops.py).

Elementwise on any rank >= 2, except softmax, which normalises along `axis` of the channels-first tensor
(default 1, the channels) and is given to Keras as the matching channels-last axis. Every parameter is
passed explicitly to both frameworks, because their defaults differ:
- leaky_relu: PyTorch's slope default is 0.01, keras.layers.LeakyReLU's 0.3, keras.activations.leaky_relu's
  0.2 (keras/src/layers/activations/leaky_relu.py). The harness's default is PyTorch's 0.01.
- prelu: x if x >= 0 else a * x with learned slopes a: one for the whole tensor (`per_channel: false`,
  torch.nn.PReLU(num_parameters=1), PyTorch's default) or one per channel, axis 1 of the channels-first tensor
  (`per_channel: true`, PReLU(num_parameters=C): torch/_refs/nn/functional prelu broadcasts the weight along dim 1
  and refuses any other length). keras.layers.PReLU's `alpha` has the shape of one channels-last sample with size 1
  only on its `shared_axes` (keras/src/layers/activations/prelu.py, build), so Keras gets shared_axes = every
  non-batch axis (one slope) or every one but the last, the channels (per channel), and the slopes as alpha of shape
  (1, ..., 1) or (1, ..., 1, C) (xfw_harness.core.layout.channel_vector_to_keras). Keras's default, shared_axes=None, is
  one slope per element, built for one input size (another H, W is refused); it counts shared_axes with the batch
  as 0 and sets param_shape[i - 1], so shared_axes=[-1] shares the wrong axis. Initial slope: PyTorch's init 0.25,
  Keras's alpha_initializer 'Zeros' (a ReLU until trained); without `init` the harness draws the slopes (draw_slopes)
  so that the transfer is tested. Keras computes relu(x) - alpha * relu(-x): the same values, bit for bit, in every
  dtype, but at x = 0 its input gradient is 0 (both ReLUs' gradient there) where PyTorch's is the slope (its
  backward tests x > 0; torch/_decomp/decompositions.py, _prelu_kernel_backward): cases/known_differences.yaml.
- gelu: `approximate: none` is the exact x * Phi(x) (torch approximate='none', keras approximate=False);
  `tanh` is 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). keras.activations.gelu and
  keras.layers.Activation('gelu') are exact by default, keras.ops.gelu approximates; the forms differ by ~4.7e-4.
- softmax: PyTorch's implicit dim picks 1 for 4-D but 0 (the batch) for 3-D; the harness always sets it.
- softplus: log(1 + exp(x)). PyTorch returns x above its threshold 20, TensorFlow above -log(eps) + 2 (17.9 in
  float32, 38 in float64). In float32 both are within an ulp of the exact value there; in float64 PyTorch's
  cut-off is off by log(1 + exp(-x)), up to 2.1e-9 just above 20, where TensorFlow is exact.
- relu6: min(max(x, 0), 6) (torch.nn.ReLU6, tf.nn.relu6).
- hard_swish: x * relu6(x + 3) / 6 (torch.nn.Hardswish; keras.activations.hard_silu, registered as 'hard_silu'
  and 'hard_swish'; Keras computes x * (relu6(x + 3) / 6), PyTorch (x * relu6(x + 3)) / 6: 1 ulp apart).
- selu: scale * (x if x > 0 else alpha * (exp(x) - 1)), alpha = 1.6732632423543772848170429916717,
  scale = 1.0507009873554804934193349852946 (Klambauer et al. 2017). Both frameworks write these literals
  (aten/src/ATen/native/Activation.cpp; tensorflow/core/kernels/relu_op_functor.h), but TensorFlow writes the
  product scale * alpha as its own literal 1.7580993408473768599402175208123, which rounds in float64 to
  1.7580993408473768, while PyTorch multiplies the two rounded constants at run time: 1.7580993408473766, one ulp
  below. On x < 0 the two frameworks differ by that ulp (in float32 both products round alike); any
  tolerance admits it. keras.activations.selu's docstring rounds the constants to 1.67326324 and 1.05070098: a
  hand-written SELU with those is 7e-9 off, which only float64 comparisons see.

References (`reference`): ONNX's reference runtime where its operator carries the block's constants exactly
(Relu, Tanh, Sigmoid, Softmax, Softplus, PRelu with the slope as a float64 input, Clip with float64 bounds),
NumPy otherwise, because ONNX's FLOAT attributes are float32 (LeakyRelu's alpha 0.01, Elu's alpha, Selu's
constants would be rounded), HardSwish and Gelu are function ops whose bodies hold float32
constants, and its Erf evaluates in float32 (np.vectorize(math.erf, otypes=["f"])): each is 1e-8..6e-8 away in
float64, where the frameworks agree to 1e-16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from xfw_harness.blocks.base import BENCHMARK_INPUT, Block, Corner, Emulation, KnownDifference
from xfw_harness.blocks.reference import onnx_op
from xfw_harness.blocks.registry import register
from xfw_harness.blocks.site import Site, WeightCopy
from xfw_harness.core.errors import Refusal
from xfw_harness.core.layout import channel_vector_to_keras
from xfw_harness.core.lazy import keras, lazy_module, torch
from xfw_harness.core.schema import Param

# The framework layers of these blocks, loaded with the frameworks at their first use (xfw_harness.core.lazy).
activation_layers = lazy_module("xfw_harness.blocks.activation_layers")
keras_layers = lazy_module("xfw_harness.blocks.keras_layers")

# Klambauer et al. 2017, as both frameworks' sources write them (see the module docstring).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_TANH_KAPPA = 0.044715

_erf = np.vectorize(math.erf, otypes=[np.float64])  # float64 throughout (ONNX's Erf rounds to float32)


def gelu_reference(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + GELU_TANH_KAPPA * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def selu_reference(x: np.ndarray) -> np.ndarray:
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))


class _Activation(Block):
    family = "activations"
    any_layout = True  # elementwise: any layout
    torch_factory: Callable[[dict[str, Any]], torch.nn.Module]
    keras_factory: Callable[[dict[str, Any], str], keras.Layer]
    reference_function: Callable[[dict[str, Any], np.ndarray], np.ndarray]
    native_torch_factory: Callable[[Site], torch.nn.Module]
    native_keras_factory: Callable[[Site], keras.Layer]
    from_torch: Callable[[torch.nn.Module], dict[str, Any]]

    def torch_module(self, site: Site) -> torch.nn.Module:
        return type(self).torch_factory(site.params)

    def keras_layer(self, site: Site) -> keras.Layer:
        return type(self).keras_factory(site.params, site.dtype)

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        return type(self).reference_function(site.params, np.asarray(x, np.float64))

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        return type(self).native_torch_factory(site)

    def native_keras_layer(self, site: Site) -> keras.Layer:
        return type(self).native_keras_factory(site)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        if type(module).__name__ not in self.torch_types:
            raise Refusal(f"{type(module).__name__} is not a {' or '.join(self.torch_types)}", field="module")
        return type(self).from_torch(module)


def _activation(name: str, doc: str, torch_factory: Callable, keras_factory: Callable,
                params: tuple[Param, ...] = (), *, reference: Callable, torch_type: str,
                native_torch: Callable | None = None, native_keras: Callable | None = None,
                from_torch: Callable = lambda module: {},
                known_differences: tuple[KnownDifference, ...] = (), emulations: tuple[Emulation, ...] = (),
                base: type = _Activation) -> type[Block]:
    """Register an activation. `native_torch(site)` / `native_keras(site)` build the layer from the parameters the
    case wrote (Site.written_args); without them the native builders are the harness's own (nothing to leave to a
    default); `from_torch(module)` gives the case params of a `torch_type` module; `known_differences` are
    Block.known_differences, `emulations` Block.emulations; `base` a subclass of _Activation where the block checks
    its input further."""
    cls = type(name, (base,), {
        "name": name, "doc": doc, "params": params, "torch_types": (torch_type,),
        "torch_factory": staticmethod(torch_factory), "keras_factory": staticmethod(keras_factory),
        "reference_function": staticmethod(reference),
        "native_torch_factory": staticmethod(native_torch or (lambda site: torch_factory(site.params))),
        "native_keras_factory": staticmethod(native_keras or (lambda site: keras_factory(site.params, site.dtype))),
        "from_torch": staticmethod(from_torch), "known_differences": known_differences, "emulations": emulations})
    return register(cls)


_activation("relu", "max(x, 0).", lambda p: torch.nn.ReLU(), lambda p, dt: keras.layers.ReLU(dtype=dt),
            reference=lambda p, x: onnx_op("Relu", x), torch_type="ReLU")
_activation("tanh", "Hyperbolic tangent.", lambda p: torch.nn.Tanh(),
            lambda p, dt: keras.layers.Activation("tanh", dtype=dt),
            reference=lambda p, x: onnx_op("Tanh", x), torch_type="Tanh")
_activation("sigmoid", "1 / (1 + exp(-x)).", lambda p: torch.nn.Sigmoid(),
            lambda p, dt: keras.layers.Activation("sigmoid", dtype=dt),
            reference=lambda p, x: onnx_op("Sigmoid", x), torch_type="Sigmoid")
_activation("leaky_relu", "x if x >= 0 else negative_slope * x.",
            lambda p: torch.nn.LeakyReLU(negative_slope=p["negative_slope"]),
            lambda p, dt: keras.layers.LeakyReLU(negative_slope=p["negative_slope"], dtype=dt),
            (Param("negative_slope", "float", 0.01, minimum=0.0,
                   doc="slope for x < 0 (PyTorch's default; Keras's layer defaults to 0.3)"),),
            # PRelu takes the slope as a float64 input; LeakyRelu's float32 attribute would round 0.01.
            reference=lambda p, x: onnx_op("PRelu", x, np.array([p["negative_slope"]])),
            torch_type="LeakyReLU",
            native_torch=lambda s: torch.nn.LeakyReLU(**s.written_args(negative_slope="negative_slope")),
            native_keras=lambda s: keras.layers.LeakyReLU(**s.written_args(negative_slope="negative_slope"),
                                                          dtype=s.dtype),
            from_torch=lambda m: {"negative_slope": float(m.negative_slope)},
            # TensorFlow keeps the slope as float32: a float64 case differs unless the slope is a float32 number
            # (0.5 is, 0.1 is not).
            known_differences=(KnownDifference(
                "tf_float64_leaky_relu_slope",
                lambda s: s.dtype == "float64" and float(np.float32(s.params["negative_slope"]))
                != s.params["negative_slope"],
                "TensorFlow keeps LeakyReLU's slope in float32: a float64 case with a slope that is not a float32 "
                "number differs by the slope's rounding"),))
_activation("elu", "x if x > 0 else alpha * (exp(x) - 1).",
            lambda p: torch.nn.ELU(alpha=p["alpha"]),
            lambda p, dt: keras.layers.ELU(alpha=p["alpha"], dtype=dt),
            (Param("alpha", "float", 1.0, minimum=0.0, doc="scale of the negative part"),),
            reference=lambda p, x: np.where(x > 0, x, p["alpha"] * np.expm1(x)),  # ONNX Elu: a float32 alpha
            torch_type="ELU",
            native_torch=lambda s: torch.nn.ELU(**s.written_args(alpha="alpha")),
            native_keras=lambda s: keras.layers.ELU(**s.written_args(alpha="alpha"), dtype=s.dtype),
            from_torch=lambda m: {"alpha": float(m.alpha)})


def _keras_gelu(approximate: str) -> Any:
    """The Keras activation of the gelu block: 'gelu' (keras.activations.gelu, exact by default) or gelu_tanh."""
    return "gelu" if approximate == "none" else activation_layers.gelu_tanh


_activation("gelu", "x * Phi(x) (exact) or its tanh approximation.",
            lambda p: torch.nn.GELU(approximate=p["approximate"]),
            lambda p, dt: keras.layers.Activation(_keras_gelu(p["approximate"]), dtype=dt),
            (Param("approximate", "choice", "none", choices=("none", "tanh"),
                   doc="'none' = exact erf form; 'tanh' = the tanh approximation"),),
            reference=lambda p, x: gelu_reference(x, p["approximate"]),
            torch_type="GELU",
            native_torch=lambda s: torch.nn.GELU(**s.written_args(approximate="approximate")),
            # Activation('gelu') is keras.activations.gelu, exact by default (keras.ops.gelu would approximate); an
            # unwritten approximate is the harness's default, 'none', so the hand port writes Activation('gelu').
            native_keras=lambda s: keras.layers.Activation(_keras_gelu(s.params["approximate"]), dtype=s.dtype),
            from_torch=lambda m: {"approximate": m.approximate},
            # Both forms: TensorFlow rounds their constants to float32 (cases/activations.yaml::gelu_float64).
            known_differences=(KnownDifference(
                "tf_float64_gelu", lambda s: s.dtype == "float64",
                "TensorFlow's float64 GELU is only float32-accurate (its constants are rounded to float32)"),))
_activation("silu", "x * sigmoid(x) (swish).", lambda p: torch.nn.SiLU(),
            lambda p, dt: keras.layers.Activation("silu", dtype=dt),
            reference=lambda p, x: x * onnx_op("Sigmoid", x), torch_type="SiLU")


def _softplus_from_torch(module: torch.nn.Module) -> dict[str, Any]:
    # The block is log(1 + exp(x)): beta scales x, and a threshold other than 20 moves PyTorch's linear cut-off.
    for attr, default in (("beta", 1.0), ("threshold", 20.0)):
        if float(getattr(module, attr)) != default:
            raise Refusal(f"Softplus({attr}={getattr(module, attr)!r}) has no translation: the harness's softplus is "
                          f"log(1 + exp(x)), PyTorch's {attr}={default:g}, and Keras's softplus has no {attr}",
                          field=f"Softplus.{attr}")
    return {}


_activation("mish", "x * tanh(softplus(x)).", lambda p: torch.nn.Mish(),
            lambda p, dt: keras.layers.Activation("mish", dtype=dt),
            reference=lambda p, x: x * np.tanh(np.logaddexp(0.0, x)), torch_type="Mish")
_activation("softsign", "x / (1 + |x|).", lambda p: torch.nn.Softsign(),
            lambda p, dt: keras.layers.Activation("softsign", dtype=dt),
            reference=lambda p, x: x / (1.0 + np.abs(x)), torch_type="Softsign")
_activation("celu", "x if x > 0 else alpha * (exp(x / alpha) - 1).",
            lambda p: torch.nn.CELU(alpha=p["alpha"]), lambda p, dt: keras_layers.CELU(alpha=p["alpha"], dtype=dt),
            (Param("alpha", "float", 1.0, minimum=0.0, open_minimum=True, doc="scale of the negative part"),),
            # exp of the negative part only: the positive one is x (and would overflow for a small alpha).
            reference=lambda p, x: np.where(x > 0, x, p["alpha"] * np.expm1(np.minimum(x, 0) / p["alpha"])),
            torch_type="CELU",
            from_torch=lambda m: {"alpha": float(m.alpha)},
            emulations=(Emulation("keras_celu_layer", "the harness's Keras CELU layer (keras.ops.celu with its alpha): "
                                  "Keras has no CELU layer that keeps an alpha", lambda s: True, "reference",
                                  (Corner("alpha other than 1", lambda s: s.params["alpha"] != 1.0),)),))


class _Bounded(_Activation):
    """hard_tanh: its bounds must be in order."""

    def check_input(self, site: Site) -> None:
        super().check_input(site)
        if not site.params["min_val"] < site.params["max_val"]:
            raise Refusal(f"min_val {site.params['min_val']} must be below max_val {site.params['max_val']}",
                          field="params.max_val")


_activation("hard_tanh", "min(max(x, min_val), max_val) (PyTorch's Hardtanh; -1 and 1 by default).",
            lambda p: activation_layers.TorchHardTanh(p["min_val"], p["max_val"]),
            lambda p, dt: keras_layers.Clip(p["min_val"], p["max_val"], dtype=dt),
            (Param("min_val", "float", -1.0, doc="the lower bound"),
             Param("max_val", "float", 1.0, doc="the upper bound")),
            reference=lambda p, x: np.clip(x, p["min_val"], p["max_val"]), torch_type="Hardtanh",
            native_torch=lambda s: torch.nn.Hardtanh(**s.written_args(min_val="min_val", max_val="max_val")),
            from_torch=lambda m: {"min_val": float(m.min_val), "max_val": float(m.max_val)}, base=_Bounded,
            emulations=(Emulation("keras_clip_layer", "the harness's Keras Clip layer (keras.ops.clip between the "
                                  "bounds): Keras's hard_tanh is fixed at -1 and 1", lambda s: True, "reference",
                                  (Corner("bounds other than -1 and 1",
                                          lambda s: (s.params["min_val"], s.params["max_val"]) != (-1.0, 1.0)),)),))
_activation("softplus", "log(1 + exp(x)).", lambda p: torch.nn.Softplus(),
            lambda p, dt: keras.layers.Activation("softplus", dtype=dt),
            reference=lambda p, x: onnx_op("Softplus", x), torch_type="Softplus", from_torch=_softplus_from_torch)
_activation("relu6", "min(max(x, 0), 6).", lambda p: torch.nn.ReLU6(),
            lambda p, dt: keras.layers.Activation("relu6", dtype=dt),
            reference=lambda p, x: onnx_op("Clip", x, np.array(0.0), np.array(6.0)), torch_type="ReLU6",
            # keras.applications' MobileNetV2 writes its ReLU6 so.
            native_keras=lambda s: keras.layers.ReLU(max_value=6.0, dtype=s.dtype))
_activation("hard_swish", "x * relu6(x + 3) / 6 (hard_silu).", lambda p: torch.nn.Hardswish(),
            lambda p, dt: keras.layers.Activation("hard_silu", dtype=dt),
            reference=lambda p, x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,  # ONNX HardSwish: float32 constants
            torch_type="Hardswish",
            native_keras=lambda s: keras.layers.Activation("hard_swish", dtype=s.dtype))
_activation("selu", "scale * (x if x > 0 else alpha * (exp(x) - 1)), alpha 1.67326..., scale 1.05070....",
            lambda p: torch.nn.SELU(), lambda p, dt: keras.layers.Activation("selu", dtype=dt),
            reference=lambda p, x: selu_reference(x), torch_type="SELU")  # ONNX Selu: float32 constants


def torch_implicit_softmax_dim(rank: int) -> int:
    """The dim torch.nn.Softmax() uses when none is given (torch.nn.functional._get_softmax_dim), with a warning."""
    return 0 if rank in (0, 1, 3) else 1


@register
class Softmax(Block):
    any_layout = True  # along an axis the layout maps
    name = "softmax"
    family = "activations"
    doc = "exp(x) / sum(exp(x)) along axis (channels-first axis; default 1, the channels)."
    params = (Param("axis", "axis", 1, doc="axis of the channels-first tensor to normalise over"),)
    torch_types = ("Softmax",)

    def output_shape(self, site: Site) -> tuple[int, ...]:
        axis = site.params["axis"]
        if not -site.rank <= axis < site.rank:
            raise Refusal(f"axis {axis} is out of range for an input of rank {site.rank}", field="params.axis")
        return site.in_shape

    def reduction_length(self, site: Site) -> int:
        return site.in_shape[site.params["axis"]]

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Softmax(dim=site.params["axis"] % site.rank)

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.Softmax(axis=site.layout.keras_axis(site.params["axis"], site.rank), dtype=site.dtype)

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        return onnx_op("Softmax", x, axis=site.params["axis"] % site.rank)

    def native_torch_module(self, site: Site) -> torch.nn.Module:
        # No axis written: torch.nn.Softmax() with its implicit dim (and its deprecation warning), as ported code has.
        return torch.nn.Softmax(**site.written_args(axis="dim"))

    def native_keras_layer(self, site: Site) -> keras.Layer:
        # A written axis is the same axis of the data, which Keras holds channels-last; none: Keras's axis=-1.
        if "axis" not in site.written_names:
            return keras.layers.Softmax(dtype=site.dtype)
        return keras.layers.Softmax(axis=site.layout.keras_axis(site.params["axis"], site.rank), dtype=site.dtype)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        # dim=None is read as the dim PyTorch really uses for this input (0, the batch, for a 3-D one).
        dim = module.dim if module.dim is not None else torch_implicit_softmax_dim(len(in_shape))
        return {"axis": int(dim)}


def draw_slopes(module: torch.nn.PReLU) -> torch.nn.PReLU:
    """`module` (a PReLU) with each slope drawn uniformly from [-0.5, 1.5) by PyTorch's global generator, which the
    runner seeds with input.seed. PyTorch starts every slope at the same `init`: a shared value would hide a transfer
    that reverses the channels, and one Keras's layer was also given would hide a transfer that copies nothing. Half
    the draws lie outside [0, 1], where max(x, a * x), a common hand-written PReLU, is not PReLU."""
    with torch.no_grad():
        module.weight.uniform_(-0.5, 1.5)
    # xfw-harness show prints the builder as draw_slopes(torch.nn.PReLU(...)), so its program draws the same values.
    module.harness_initialiser = draw_slopes
    return module


def slopes_in_keras_feature_order(site: Site) -> bool:
    """Whether the harness permutes a PReLU's per-feature slopes into Keras's (H, W, C) flatten order (after a
    flatten; a hand port, `defaults: native`, copies them as they are)."""
    return site.layout.flattened_from is not None and site.written is None


@register
class PReLU(Block):
    name = "prelu"
    family = "activations"
    doc = "x if x >= 0 else a * x, the slope a learned: one for the tensor or one per channel (axis 1)."
    params = (
        Param("per_channel", "bool", False,
              doc="one slope per channel, axis 1 (PyTorch's num_parameters=C; Keras's alpha shared over every axis "
                  "but the channels); false: one slope for the whole tensor (num_parameters=1)"),
        Param("init", "float", None, default_text="drawn",
              doc="every slope's initial value (PyTorch's init, whose default is 0.25; Keras's alpha_initializer, "
                  "whose default is 0); unset: each slope drawn from the case's seed in [-0.5, 1.5), so that the "
                  "weight transfer is tested"),
    )
    weight_names = ("weight",)
    benchmark = {"params": {"per_channel": True}, "input": BENCHMARK_INPUT}
    torch_types = ("PReLU",)
    emulations = (Emulation("slopes_in_keras_feature_order",
                            "after a flatten the harness permutes the per-feature slopes into Keras's (H, W, C) "
                            "order (channel_vector_to_keras); the reference reads them in PyTorch's",
                            slopes_in_keras_feature_order, "reference",
                            (Corner("one slope per feature", lambda s: s.params["per_channel"]),)),)

    @staticmethod
    def num_parameters(site: Site, per_channel: bool) -> int:
        return site.in_shape[1] if per_channel else 1

    @staticmethod
    def shared_axes(site: Site, per_channel: bool) -> list[int]:
        """Keras's shared_axes (counted with the batch as 0, channels-last): every non-batch axis but the channels
        (the last) for one slope per channel, every one for one slope."""
        return list(range(1, site.rank - 1 if per_channel else site.rank))

    def torch_module(self, site: Site) -> torch.nn.Module:
        p = site.params
        module = torch.nn.PReLU(self.num_parameters(site, p["per_channel"]),
                                init=0.25 if p["init"] is None else p["init"])
        return draw_slopes(module) if p["init"] is None else module

    def keras_layer(self, site: Site) -> keras.Layer:
        p = site.params
        initial = {} if p["init"] is None else {"alpha_initializer": keras.initializers.Constant(p["init"])}
        return keras.layers.PReLU(shared_axes=self.shared_axes(site, p["per_channel"]), **initial, dtype=site.dtype)

    def torch_parameters(self, module: torch.nn.Module) -> dict[str, Any]:
        return {"weight": module.weight}

    def weight_copies(self, site: Site, module: torch.nn.Module, layer: keras.Layer) -> list[WeightCopy]:
        # Into alpha's own shape: (1, ..., 1[, C]) as the harness builds it, a sample's shape where a hand port left
        # Keras's per-element default (`defaults: native`; the slopes are broadcast, as such a port copies them).
        # After a flatten the per-feature slopes follow Keras's (H, W, C) order, except in a hand port (as dense's).
        args: tuple[Any, ...] = (tuple(layer.alpha.shape),)
        if slopes_in_keras_feature_order(site):
            args += (site.layout.flattened_from,)
        return [WeightCopy("weight", "alpha", channel_vector_to_keras, args)]

    def reference(self, site: Site, x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
        x = np.asarray(x, np.float64)
        # ONNX's PRelu broadcasts the slope NumPy's way (a [C] slope would meet the last axis) and, failing that, onto
        # whichever axis has its length: shaped (C, 1, ..., 1) it can only be the channels.
        slope = np.asarray(weights["weight"], np.float64).reshape(-1, *([1] * (x.ndim - 2)))
        return onnx_op("PRelu", x, slope)

    # --- native defaults: nn.PReLU() and keras.layers.PReLU() with only what the case wrote ----------------------
    def native_torch_module(self, site: Site) -> torch.nn.Module:
        p, written = site.params, site.written_names
        kwargs: dict[str, Any] = {}
        if "per_channel" in written:
            kwargs["num_parameters"] = self.num_parameters(site, p["per_channel"])
        if "init" in written and p["init"] is not None:
            return torch.nn.PReLU(**kwargs, init=p["init"])
        return draw_slopes(torch.nn.PReLU(**kwargs))  # a trained model's slopes, copied by the port

    def native_keras_layer(self, site: Site) -> keras.Layer:
        # Sharing written as Keras writes it (shared_axes); none written: Keras's default, one alpha per element.
        p, written = site.params, site.written_names
        kwargs: dict[str, Any] = {}
        if "per_channel" in written:
            kwargs["shared_axes"] = self.shared_axes(site, p["per_channel"])
        if "init" in written and p["init"] is not None:
            kwargs["alpha_initializer"] = keras.initializers.Constant(p["init"])
        return keras.layers.PReLU(**kwargs, dtype=site.dtype)

    def params_from_torch(self, module: torch.nn.Module, in_shape: tuple[int, ...]) -> dict[str, Any]:
        # The slopes travel in the port's weights file: only the sharing is a parameter.
        count, channels = module.weight.numel(), in_shape[1]
        if count not in (1, channels):
            raise Refusal(f"PReLU(num_parameters={module.num_parameters}) receives {channels} channels (input "
                          f"{list(in_shape)}): PyTorch takes 1 slope or one per channel (axis 1)",
                          field="PReLU.num_parameters")
        return {"per_channel": count > 1}
