"""Warnings about cases that load and run but likely not as their author meant.

An input written channels-last by mistake: PyTorch's layout is channels-first, (N, C, *spatial), and a block that
has spatial axes reads axis 1 as the channels. [2, 28, 28, 3] (a batch of RGB images in Keras's layout) then runs
as 28 channels of 28x3, and both frameworks agree on that, so nothing fails. The rule (`channels_last_hint`): the
input feeds a block that declares its input ranks (`Block.ranks`: it has spatial axes and a channel axis, axis 1)
and is not layout-agnostic (`Block.any_layout`: a permute takes any order), it has spatial axes (rank 3 or more),
its last axis is 1 or 3 (a grey or an RGB image's channels), and every other axis but the batch (axis 1, the
channels it would be read as, and the spatial axes between) is at least 8 and more than 4 times the last: an image's
channels last. A real channels-first input with a last spatial axis of 1 or 3 has a small axis before it or a
channel count its other spatial axes do not match ([8, 512, 6, 1], [3, 8, 1, 1], [1, 64, 4, 3] in the shipped
cases: none warns).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from xfw_harness.blocks import NETWORK_INPUT, Layer
from xfw_harness.core.errors import InputLayoutWarning

CHANNEL_AXIS = 1  # every block's channels-first input: (N, C, *spatial)
IMAGE_CHANNELS = (1, 3)
MIN_CHANNELS = 8
RATIO = 4


def channels_last_hint(shape: Sequence[int], layers: Sequence[Layer]) -> str | None:
    """Why `shape`, the input of `layers`, looks channels-last, and the shape likely meant; None when it does not."""
    readers = [layer.block for i, layer in enumerate(layers) if NETWORK_INPUT in layer.input_indices(i)]
    spatial = [block for block in readers if block.ranks is not None and not block.any_layout]
    if not spatial or len(shape) < 3:
        return None
    channels, last = shape[CHANNEL_AXIS], shape[-1]
    if last not in IMAGE_CHANNELS or any(d < MIN_CHANNELS or d <= RATIO * last for d in shape[CHANNEL_AXIS:-1]):
        return None
    meant = [shape[0], last, *shape[1:-1]]
    return (f"input shape {list(shape)} looks channels-last (N, ..., C): {spatial[0].name} reads axis 1 as the "
            f"channels (PyTorch's layout, (N, C, ...)), so it runs as {channels} channels of "
            f"{'x'.join(str(d) for d in shape[2:])}; if the data has {last} channel{'s' * (last > 1)}, write "
            f"{meant}")


def warn_if_channels_last(file: str, case: str, sweep_note: str, shape: Sequence[int], layers: Sequence[Layer]) -> None:
    """An InputLayoutWarning naming the file, the case (and sweep point) when the input looks channels-last."""
    if (hint := channels_last_hint(shape, layers)) is not None:
        where = f"{file}: case {case!r}" + (f" (at sweep point {sweep_note})" if sweep_note else "")
        warnings.warn(f"{where}: {hint}", InputLayoutWarning, stacklevel=2)
