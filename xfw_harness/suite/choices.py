"""The choices a run is given that the entry points read before any framework loads (the pytest plugin's options
are declared in every pytest run, cases or none: xfw_harness/pytest_plugin.py)."""

# Which tests keep pictures and generated code for the report: a passing suite needs none, a failure needs them.
DETAILS = ("failed", "all", "none")
