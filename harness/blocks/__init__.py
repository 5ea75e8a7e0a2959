"""Block families. Importing this package registers every block; add a family's module to the list below."""

import harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend and TF logging before keras is imported)
from harness.blocks import activations, composite, convolution, dense, dropout, normalization, pooling, reshaping  # noqa: F401
