"""The PyTorch modules and Keras layers of the graph block (xfw_harness/blocks/graph.py), apart from the blocks'
declarations: those name them through xfw_harness.core.lazy, so that reading the blocks (xfw-harness check, the JSON
Schema) imports no framework. Keras layers keep their registered names (package "harness"): saved .keras files name
them.
"""

from __future__ import annotations

from xfw_harness.blocks.planning import Layer, run_layers
from xfw_harness.core.frameworks import torch


class TorchGraph(torch.nn.Module):
    """The nodes' modules (`nodes`, an nn.ModuleList) run in order, each on the outputs it takes."""

    def __init__(self, modules: list[torch.nn.Module], layers: list[Layer]) -> None:
        super().__init__()
        self.nodes = torch.nn.ModuleList(modules)
        self.layers = layers  # the nodes' inputs (a plain list: not a submodule)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.layers, x, lambda i, layer, args: self.nodes[i](*args))[-1]
