"""How PyTorch writes the calls of a model's forward that `xfw-harness port` reads, as PyTorch's facts (not any
block's): which function or method names the same operation (`operator.iadd`, `torch.add` and `x.add_` are all "add",
the name a block's `torch_functions` lists), which functional call computes what a torch.nn module computes (`F.relu` is
nn.ReLU, `torch.flatten(x, 1)` is nn.Flatten(1)), and which calls pass their input on unchanged. It lives beside the
blocks because a block's `torch_functions` speak these names.
"""

from __future__ import annotations

import operator
from typing import Any

from xfw_harness.core.frameworks import torch

F = torch.nn.functional
nn = torch.nn

# Functions and methods that are the same operation, by the name a block's `torch_functions` gives.
FUNCTION_NAMES: dict[Any, str] = {operator.add: "add", operator.iadd: "add", torch.add: "add",
                                  operator.mul: "mul", operator.imul: "mul", torch.mul: "mul",
                                  torch.cat: "cat", torch.concat: "cat", torch.mean: "mean",
                                  torch.permute: "permute", torch.narrow: "narrow",
                                  F.channel_shuffle: "channel_shuffle", torch.channel_shuffle: "channel_shuffle",
                                  F.pad: "pad"}
METHOD_NAMES = {"add": "add", "add_": "add", "mul": "mul", "mul_": "mul", "mean": "mean", "permute": "permute",
                "narrow": "narrow", "channel_shuffle": "channel_shuffle"}
# torch.chunk(x, n, dim) and x.chunk(n, dim): a tuple whose pieces (getitem) are read as this call on x.
CHUNKS = (torch.chunk, "chunk")
NARROW_CALL = "narrow"
# The idiom torchvision writes a channel shuffle with (view to (N, g, C/g, H, W), transpose(1, 2), view back), read as
# this call of its groups.
SHUFFLE_CALL = "channel_shuffle"
TRANSPOSES = (torch.transpose, "transpose")
# Calls that return their input unchanged (in eval mode): their node is an alias.
IDENTITY_METHODS = ("contiguous", "clone", "detach")


# A functional call and the torch.nn module that computes the same, built from the call's arguments (the tensor
# passed as None). Methods by name.
FUNCTIONAL_MODULES: dict[Any, Any] = {
    F.relu: lambda x, inplace=False: nn.ReLU(), torch.relu: lambda x: nn.ReLU(), "relu": lambda x: nn.ReLU(),
    "relu_": lambda x: nn.ReLU(), F.relu6: lambda x, inplace=False: nn.ReLU6(),
    torch.sigmoid: lambda x: nn.Sigmoid(), F.sigmoid: lambda x: nn.Sigmoid(), "sigmoid": lambda x: nn.Sigmoid(),
    torch.tanh: lambda x: nn.Tanh(), "tanh": lambda x: nn.Tanh(),
    F.hardsigmoid: lambda x, inplace=False: nn.Hardsigmoid(), F.hardswish: lambda x, inplace=False: nn.Hardswish(),
    F.silu: lambda x, inplace=False: nn.SiLU(), F.gelu: lambda x, approximate="none": nn.GELU(approximate),
    F.leaky_relu: lambda x, negative_slope=0.01, inplace=False: nn.LeakyReLU(negative_slope),
    F.softmax: lambda x, dim=None, _stacklevel=3, dtype=None: nn.Softmax(dim),
    F.log_softmax: lambda x, dim=None, _stacklevel=3, dtype=None: _uncast(nn.LogSoftmax(dim), dtype),
    torch.log_softmax: lambda x, dim, dtype=None: _uncast(nn.LogSoftmax(dim), dtype),
    "log_softmax": lambda x, dim, dtype=None: _uncast(nn.LogSoftmax(dim), dtype),
    F.threshold: lambda x, threshold, value, inplace=False: nn.Threshold(threshold, value),
    torch.threshold: lambda x, threshold, value: nn.Threshold(threshold, value),
    F.adaptive_avg_pool1d: lambda x, output_size: nn.AdaptiveAvgPool1d(output_size),
    F.adaptive_avg_pool3d: lambda x, output_size: nn.AdaptiveAvgPool3d(output_size),
    F.adaptive_max_pool1d: lambda x, output_size, return_indices=False: nn.AdaptiveMaxPool1d(output_size),
    F.adaptive_max_pool3d: lambda x, output_size, return_indices=False: nn.AdaptiveMaxPool3d(output_size),
    F.avg_pool1d: lambda x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True:
    nn.AvgPool1d(kernel_size, stride, padding, ceil_mode, count_include_pad),
    F.avg_pool3d: lambda x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None: nn.AvgPool3d(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override),
    F.max_pool1d: lambda x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False:
    nn.MaxPool1d(kernel_size, stride, padding, dilation, return_indices, ceil_mode),
    F.max_pool3d: lambda x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False:
    nn.MaxPool3d(kernel_size, stride, padding, dilation, return_indices, ceil_mode),
    F.adaptive_avg_pool2d: lambda x, output_size: nn.AdaptiveAvgPool2d(output_size),
    F.adaptive_max_pool2d: lambda x, output_size, return_indices=False: nn.AdaptiveMaxPool2d(output_size),
    F.avg_pool2d: lambda x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None: nn.AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override),
    F.max_pool2d: lambda x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False:
    nn.MaxPool2d(kernel_size, stride, padding, dilation, return_indices, ceil_mode),
    torch.flatten: lambda x, start_dim=0, end_dim=-1: nn.Flatten(start_dim, end_dim),
    F.interpolate: lambda x, size=None, scale_factor=None, mode="nearest", align_corners=None,
    recompute_scale_factor=None, antialias=False: _upsample(size, scale_factor, mode, align_corners, antialias,
                                                            recompute_scale_factor),
    "flatten": lambda x, start_dim=0, end_dim=-1: nn.Flatten(start_dim, end_dim),
    F.pixel_shuffle: lambda x, upscale_factor: nn.PixelShuffle(upscale_factor),  # F.pixel_shuffle is torch's
    F.pixel_unshuffle: lambda x, downscale_factor: nn.PixelUnshuffle(downscale_factor),
}
# Calls that are the identity in eval mode, by function (or method name), and the position of their `training`
# argument: an alias when it is false. torchvision's stochastic depth (EfficientNet, ConvNeXt) by its qualified name:
# the harness does not import torchvision.
EVAL_IDENTITIES: dict[Any, int] = {F.dropout: 2, "dropout": 2, F.dropout2d: 2, F.alpha_dropout: 2,
                                   "torchvision.ops.stochastic_depth.stochastic_depth": 3}


def eval_identity_position(target: Any) -> int | None:
    """Where the `training` argument of an eval-mode identity call is, or None for any other call."""
    key = target if not callable(target) else f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}"
    return EVAL_IDENTITIES.get(target, EVAL_IDENTITIES.get(key))
RESHAPES: tuple[Any, ...] = ("view", "reshape", torch.reshape)  # read as a flatten where they flatten each sample


def _uncast(module: Any, dtype: Any) -> Any:
    """The module of a call that has no `dtype` (log_softmax's dtype casts the input first: no module does that)."""
    if dtype is not None:
        raise TypeError(f"dtype={dtype} casts the input first, which the module has no form of")
    return module


def _upsample(size: Any, scale_factor: Any, mode: str, align_corners: Any, antialias: bool,
              recompute_scale_factor: Any = None) -> Any:
    """F.interpolate as nn.Upsample (the same computation), where it has no antialiasing (nn.Upsample has none);
    recompute_scale_factor kept: with a factor that is not m / n it moves the sampling points."""
    if antialias:
        raise TypeError("antialias=True has no nn.Upsample form")
    size = tuple(int(d) for d in size) if isinstance(size, (tuple, list)) else size
    return nn.Upsample(size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                       recompute_scale_factor=recompute_scale_factor)
