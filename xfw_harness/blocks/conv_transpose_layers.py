"""The PyTorch modules and Keras layers of the transposed convolutions (xfw_harness/blocks/conv_transpose.py), apart
from the blocks' declarations: those name them through xfw_harness.core.lazy, so that reading the blocks (xfw-harness
check, the JSON Schema) imports no framework. Keras layers keep their registered names (package "harness"): saved .keras
files name them.
"""

from __future__ import annotations

from typing import Any

from xfw_harness.core.frameworks import keras


@keras.saving.register_keras_serializable(package="harness")
class GroupedConvTranspose(keras.layers.Layer):
    """PyTorch's grouped transposed convolution (ConvTranspose1d/2d/3d with groups > 1), which Keras's transposed
    convolutions cannot take: `groups` transposed convolutions (keras.ops.conv_transpose, as Conv2DTranspose runs
    it), group j on input channels j*in/g .. (j+1)*in/g with kernel[j] (*kernel_size, filters/g, in/g), their
    outputs concatenated in group order, then the bias (filters,) added."""

    def __init__(self, groups: int, filters: int, kernel_size: tuple[int, ...], strides: tuple[int, ...],
                 padding: str = "valid", output_padding: tuple[int, ...] | None = None,
                 dilation_rate: tuple[int, ...] | None = None, use_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.groups, self.filters, self.use_bias, self.padding = groups, filters, use_bias, padding
        self.kernel_size, self.strides = tuple(kernel_size), tuple(strides)
        self.output_padding = None if output_padding is None else tuple(output_padding)
        self.dilation_rate = tuple(dilation_rate) if dilation_rate is not None else (1,) * len(self.kernel_size)

    def build(self, input_shape: tuple) -> None:
        g = self.groups
        self.kernel = self.add_weight(name="kernel", initializer="glorot_uniform",
                                      shape=(g, *self.kernel_size, self.filters // g, int(input_shape[-1]) // g))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def call(self, x: Any) -> Any:
        outputs = [keras.ops.conv_transpose(piece, self.kernel[j], strides=list(self.strides), padding=self.padding,
                                            output_padding=self.output_padding, dilation_rate=self.dilation_rate,
                                            data_format="channels_last")
                   for j, piece in enumerate(keras.ops.split(x, self.groups, axis=-1))]
        y = keras.ops.concatenate(outputs, axis=-1)
        return y + self.bias if self.use_bias else y

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups, "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
                "output_padding": self.output_padding, "dilation_rate": self.dilation_rate, "use_bias": self.use_bias}
