"""`harness show FILE::CASE`: a case as the PyTorch and Keras programs that compute it.

harness.tools.show.source turns the runner's objects into Python source; harness.tools.show.programs writes the
two programs of a point, with the header and the footer `harness show` prints around them. The address
FILE::CASE[SWEEP-ID] is resolved by harness.cases.find_points.
"""

from harness.tools.show.programs import point_code, show_text
from harness.tools.show.source import ShowError

__all__ = ["ShowError", "point_code", "show_text"]
