"""Dropout: `dropout`.

eval mode: the identity in both frameworks. train mode: each element is zeroed with probability `rate`
and survivors are scaled by 1/(1-rate) (torch.nn.Dropout, keras.layers.Dropout). The two frameworks'
random masks cannot match, so the runner compares what can be compared (compare.check_dropout_sample):
every output is 0 or input/(1-rate), the zero fraction lies in a 5-sigma binomial interval, and survivors
are scaled identically. A PyTorch module starts in training mode and a Keras call defaults to inference:
the harness sets both from the case's `mode`.
"""

from __future__ import annotations

import keras
import torch

from harness.registry import Block, Site, register
from harness.schema import Param


@register
class Dropout(Block):
    name = "dropout"
    family = "dropout"
    doc = "Zero each element with probability rate in train mode, scaling survivors by 1/(1-rate); identity in eval."
    stochastic = True
    params = (Param("rate", "float", minimum=0.0, maximum=0.99, doc="probability of zeroing an element"),)

    def torch_module(self, site: Site) -> torch.nn.Module:
        return torch.nn.Dropout(p=site.params["rate"])

    def keras_layer(self, site: Site) -> keras.Layer:
        return keras.layers.Dropout(site.params["rate"], seed=site.seed, dtype=site.dtype)
