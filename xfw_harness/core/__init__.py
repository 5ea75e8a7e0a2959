"""Core: what every other layer stands on, knowing no block and no case: errors (core/errors.py), parameter schemas
(schema.py), every NCHW/NHWC and weight-layout conversion (layout.py), padding and output-size arithmetic
(spatial.py), tolerances (tolerance.py), verdicts and statuses (verdicts.py), the comparator (compare.py) and the
checks of a stochastic sample (samples.py), the frameworks' set-up (frameworks.py) and the per-test time limit
(timeout.py). Import the modules themselves: this package exports nothing of its own.
"""
