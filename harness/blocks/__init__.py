"""Block families. Importing this package registers every block; add a family's module to the list below."""

import harness.frameworks  # noqa: F401  (first: fixes the Keras backend and TF logging before keras is imported)
from harness.blocks import activations, convolution, dense, dropout, pooling  # noqa: F401
