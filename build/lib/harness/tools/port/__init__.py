"""`harness port MODULE:FACTORY`: a user's PyTorch model in, a verified case and the equivalent Keras model out.

By job: the user's model, its leaf modules and the probe run (model); from leaves to blocks (translate); the case
file and its weights (case_file); the model itself against the case (verify); the Keras model, its save and how to
load it (keras_model); what a port made and found (ported); and the command, `port` and `port_model`, with what
`harness port` prints (command). The steps are in harness.tools.port.command's doc.
"""

from harness.tools.port.case_file import case_name, write_case
from harness.tools.port.command import command, parse_shape, port, port_model, report_lines
from harness.tools.port.keras_model import keras_custom_objects, load_instructions, output_note, save_keras
from harness.tools.port.model import ForwardError, Leaf, PortError, leaves_of, load_model, load_weights, probe
from harness.tools.port.ported import Ported
from harness.tools.port.translate import block_for, readers, translate
from harness.tools.port.verify import model_verdicts

__all__ = ["ForwardError", "Leaf", "PortError", "Ported", "block_for", "case_name", "command", "keras_custom_objects",
           "leaves_of", "load_instructions", "load_model", "load_weights", "model_verdicts", "output_note",
           "parse_shape", "port", "port_model", "probe", "readers", "report_lines", "save_keras", "translate",
           "write_case"]
