"""Blocks: everything about each building block (conv2d, max_pool2d, dense, ...) in its family's module, the
contract every block implements (`Block`, xfw_harness/blocks/base.py), the registry, and the planning of a chain of
layers. Importing the package registers every family; a new family's module goes in the list below.
"""

# No framework is imported here: the families name PyTorch and Keras through xfw_harness.core.lazy, so that reading
# the blocks (check, list, new, collecting case files) does not pay for loading them.
from xfw_harness.blocks import (  # noqa: F401  (each family registers its blocks)
    activations,
    activations_ops,
    axes,
    composite,
    conv_transpose,
    convolution,
    dense,
    depth_space,
    dropout,
    global_pooling,
    graph,
    group_normalization,
    merging,
    normalization,
    padding,
    pooling,
    resize,
    separable,
    stochastic_depth,
    upsampling,
)
from xfw_harness.blocks.base import (
    BENCHMARK_INPUT,
    CHECKED_BY,
    Block,
    Corner,
    Emulation,
    KnownDifference,
    SkeletonWriter,
)
from xfw_harness.blocks.graph import functional_model
from xfw_harness.blocks.planning import MAX_ELEMENTS, NETWORK_INPUT, Layer, plan, run_layers
from xfw_harness.blocks.registry import REGISTRY, all_blocks, get_block, graph_block, network_block, register
from xfw_harness.blocks.site import (
    Site,
    StateConvention,
    WeightCopy,
    find_keras_layer,
    parameter_path,
    resolve_path,
    sublayer_path,
)

__all__ = ["BENCHMARK_INPUT", "CHECKED_BY", "MAX_ELEMENTS", "NETWORK_INPUT", "REGISTRY", "Block", "Corner", "Emulation",
           "KnownDifference", "Layer", "Site",
           "SkeletonWriter", "StateConvention", "WeightCopy", "all_blocks", "find_keras_layer", "functional_model",
           "get_block", "graph_block", "network_block", "parameter_path", "plan", "register", "resolve_path",
           "run_layers", "sublayer_path"]
