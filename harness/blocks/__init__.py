"""Blocks: everything about each building block (conv2d, max_pool2d, dense, ...) in its family's module, the
contract every block implements (`Block`), and the registry. Importing the package registers every family; add a
new family's module to the list below.
"""

import harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend and TF logging before keras is imported)
from harness.blocks import (  # noqa: F401  (each family registers its blocks)
    activations,
    composite,
    convolution,
    dense,
    dropout,
    normalization,
    pooling,
    reshaping,
)
from harness.blocks.registry import (
    REGISTRY,
    Block,
    Site,
    StateConvention,
    WeightCopy,
    all_blocks,
    find_keras_layer,
    get_block,
    parameter_path,
    register,
    resolve_path,
    sublayer_path,
)

__all__ = ["REGISTRY", "Block", "Site", "StateConvention", "WeightCopy", "all_blocks", "find_keras_layer", "get_block",
           "parameter_path", "register", "resolve_path", "sublayer_path"]
