"""Cases: YAML case files in, validated `Point`s out (one case at one sweep combination), every problem a
`CaseError` naming the file, the case and the field.

The package's public face is below; its modules are the data model, safe YAML loading, the fields of a case,
sweeps and test addresses.
"""

from harness.cases.loader import (
    CASE_KEYS,
    CHECKS,
    COMPARES,
    DEFAULTS,
    DTYPES,
    FILLS,
    INPUT_KEYS,
    MAX_ELEMENTS,
    MODES,
    OPTIMIZERS,
    CaseEntry,
    InputSpec,
    Layer,
    Point,
    RefusedPoint,
    case_yaml,
    display_path,
    find_case_files,
    format_value,
    load_case,
    load_file,
    plan,
    sweep_id,
)

__all__ = ["CASE_KEYS", "CHECKS", "COMPARES", "DEFAULTS", "DTYPES", "FILLS", "INPUT_KEYS", "MAX_ELEMENTS", "MODES",
           "OPTIMIZERS", "CaseEntry", "InputSpec", "Layer", "Point", "RefusedPoint", "case_yaml", "display_path",
           "find_case_files", "format_value", "load_case", "load_file", "plan", "sweep_id"]
