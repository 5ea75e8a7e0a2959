"""How a default tolerance says where it came from (`Tolerance.source`, `describe`): the report and every failure
message print it, so its words and figures are pinned here (issue 18: mutmut's changes to them survived)."""

from __future__ import annotations

from xfw_harness.core.tolerance import Tolerance, default_tolerance


def test_the_default_names_its_dtype_reduction_length_and_scale() -> None:
    assert default_tolerance("float32", 9, 250.0).source == "float32 default, reduction length 9, scale 250"
    assert default_tolerance("bfloat16", 4608, 1.5).source == "bfloat16 default, reduction length 4608, scale 1.5"


def test_a_scale_below_one_and_a_length_below_one_are_said_as_one() -> None:
    """atol is never below rtol (the scale is at least 1), and K is at least 1: the text says what was used."""
    assert default_tolerance("float64", 0, 0.25).source == "float64 default, reduction length 1, scale 1"
    assert default_tolerance("float16").source == "float16 default, reduction length 1, scale 1"
    assert default_tolerance("float32") == default_tolerance("float32", 1, 1.0)


def test_describe_gives_both_tolerances_and_their_source() -> None:
    assert Tolerance(1e-6, 2.5e-5).describe() == "atol=1e-06, rtol=2.5e-05 (case)"
    assert default_tolerance("float32", 4).describe() == "atol=3.81e-06, rtol=3.81e-06 (float32 default, reduction " \
                                                         "length 4, scale 1)"
