"""Cross-framework equivalence tests for neural-network building blocks: PyTorch vs Keras 3 on TensorFlow.

Modules: cases (YAML loader), registry + blocks/ (block families), layout (every layout conversion),
compare (the comparator), runner (runs a point), pytest_plugin, cli, results, report.
"""

__version__ = "0.1.0"
