"""`xfw-harness fuzz BLOCK`: property-based search for divergences nobody wrote a case for.

Hypothesis draws cases from a block's declared parameter schema and input ranks, or random small networks for
`sequential` (strategies); each is loaded and run as a case file's would be (run); the first that fails or errors
is shrunk (search) and written as a case file (finding); the run's counts and summary are its report (report).
"""

from xfw_harness.tools.fuzz.finding import case_text, named_case, write_case
from xfw_harness.tools.fuzz.report import FuzzReport, FuzzStats
from xfw_harness.tools.fuzz.run import FUZZ_FILE, Outcome, known_difference, run_case
from xfw_harness.tools.fuzz.search import check_options, fuzz, parse_dtypes
from xfw_harness.tools.fuzz.strategies import DEFAULT_DTYPES, case_strategy, fuzzable_blocks, param_strategy

__all__ = ["DEFAULT_DTYPES", "FUZZ_FILE", "FuzzReport", "FuzzStats", "Outcome", "case_strategy", "case_text",
           "check_options", "fuzz", "fuzzable_blocks", "known_difference", "named_case", "param_strategy",
           "parse_dtypes", "run_case", "write_case"]
