"""`xfw-harness verify`: check a model someone converted by other means (nobuco, onnx2tf, by hand) against the PyTorch
model it came from, end to end; and `export_tflite`, the LiteRT export `xfw-harness port --tflite` checks.

By job: what a converted model is to the command (artefact) and its readers, .keras files and SavedModel folders
(keras_files) and .tflite files on LiteRT's interpreter, with the export (litert); the input and output layouts
(alignment); the comparator and tolerance as used here (judge); the PyTorch side (torch_side); the checks seed by
seed (verify); the layer alignment of a Keras model (localize); the command and its report (command).

`xfw-harness port` imports `export_tflite` from xfw_harness.tools.crosscheck.litert, which imports nothing of
xfw_harness.tools.port (see xfw_harness.tools.crosscheck.artefact's doc).
"""

from xfw_harness.tools.crosscheck.command import command, open_artefact, parse_input_shape, report_lines
from xfw_harness.tools.crosscheck.litert import export_tflite
from xfw_harness.tools.crosscheck.verify import Outcome, verify

__all__ = ["Outcome", "command", "export_tflite", "open_artefact", "parse_input_shape", "report_lines", "verify"]
