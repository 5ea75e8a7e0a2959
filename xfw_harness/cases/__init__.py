"""Cases: YAML case files in, validated `Point`s out (one case at one sweep combination), every problem a
`CaseError` naming the file, the case and the field; a bad case never hides the others in its file.

The package's public face is below. Its modules: the data model (model.py), safe YAML (safe_yaml.py), the data a case
names or holds (arrays.py), the fields of a case (fields.py), its layers (layers.py), sweeps (sweeps.py), loading a
file (loader.py) and test addresses (addresses.py).
"""

from xfw_harness.cases.addresses import find_points
from xfw_harness.cases.fields import OPTIMIZERS
from xfw_harness.cases.loader import find_case_files, load_case, load_file, load_paths
from xfw_harness.cases.model import (
    CASE_KEYS,
    CHECKS,
    COMPARES,
    DEFAULTS,
    DTYPES,
    FILLS,
    INPUT_KEYS,
    MODES,
    CaseEntry,
    InputSpec,
    Plant,
    Point,
    RefusedPoint,
    display_path,
    format_value,
    sweep_id,
)
from xfw_harness.cases.safe_yaml import case_yaml

__all__ = ["CASE_KEYS", "CHECKS", "COMPARES", "DEFAULTS", "DTYPES", "FILLS", "INPUT_KEYS", "MODES",
           "OPTIMIZERS", "CaseEntry", "InputSpec", "Plant", "Point", "RefusedPoint", "case_yaml", "display_path",
           "find_case_files", "find_points", "format_value", "load_case", "load_file", "load_paths",
           "sweep_id"]
