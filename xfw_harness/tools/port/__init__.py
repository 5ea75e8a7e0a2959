"""`xfw-harness port MODULE:FACTORY`: a user's PyTorch model in, a verified case and the equivalent Keras model out.

By job: the user's model and its weights (model); batch-norm statistics for realistic activations (calibrate); its
forward traced as a graph, each node's value recorded (capture); from nodes to blocks (translate); the case file and
its weights (case_file); the model itself against the case, node by node (verify); the Keras model, its save and how
to load it (keras_model); what a port made and found (ported); and the command, `port` and `port_model`, with what
`xfw-harness port` prints (command). The steps are in xfw_harness.tools.port.command's doc.
"""

from xfw_harness.tools.port.calibrate import calibrate_batch_norms, uncalibrated
from xfw_harness.tools.port.capture import Captured, CapturedNode, capture
from xfw_harness.tools.port.case_file import case_name, write_case
from xfw_harness.tools.port.command import command, parse_shape, port, port_model, report_lines
from xfw_harness.tools.port.keras_model import keras_custom_objects, load_instructions, output_note, save_keras
from xfw_harness.tools.port.model import PortError, load_model, load_weights
from xfw_harness.tools.port.ported import Ported
from xfw_harness.tools.port.translate import Mapped, readers, translate
from xfw_harness.tools.port.verify import model_verdicts, relative_tolerance

__all__ = ["Captured", "CapturedNode", "Mapped", "PortError", "Ported", "calibrate_batch_norms", "capture",
           "case_name", "command", "keras_custom_objects", "load_instructions", "load_model", "load_weights",
           "model_verdicts", "output_note", "parse_shape", "port", "port_model", "readers", "relative_tolerance",
           "report_lines", "save_keras", "translate", "uncalibrated", "write_case"]
