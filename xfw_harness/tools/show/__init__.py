"""`xfw-harness show FILE::CASE`: a case as the PyTorch and Keras programs that compute it.

xfw_harness.tools.show.source turns the runner's objects into Python source; xfw_harness.tools.show.programs writes the
two programs of a point, with the header and the footer `xfw-harness show` prints around them. The address
FILE::CASE[SWEEP-ID] is resolved by xfw_harness.cases.find_points.
"""

from xfw_harness.tools.show.programs import point_code, show_text
from xfw_harness.tools.show.source import ShowError

__all__ = ["ShowError", "point_code", "show_text"]
