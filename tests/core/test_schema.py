"""xfw_harness/core/schema.py: what each kind of block parameter accepts, the words its errors and the block reference
use, the JSON Schema editors read for it, and the checks of a case's `params` mapping. Synthetic `Param`s, one per
kind and option, so that every branch is pinned whether or not a shipped block takes it today."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from xfw_harness.core.errors import CaseError
from xfw_harness.core.schema import Param, normalise_params, number_text_hint


def _error(p: Param, value: Any) -> CaseError:
    with pytest.raises(CaseError) as info:
        p.normalise(value)
    return info.value


# --- number_text_hint: why a number arrived as text, and what to write instead -----------------------------------

@pytest.mark.parametrize(("written", "word"), [
    ("inf", ".inf"), ("-inf", "-.inf"), ("+inf", ".inf"), ("Infinity", ".inf"), ("-INFINITY", "-.inf"),
    ("nan", ".nan"), ("NaN", ".nan"), ("-nan", ".nan"), (" inf ", ".inf"),
])
def test_python_spellings_of_infinity_and_nan_get_yamls_word(written: str, word: str) -> None:
    """float() reads inf, Infinity and nan in any case and with a sign, YAML 1.1 does not: the hint names YAML's word,
    keeping a minus sign (nan has none)."""
    assert number_text_hint(written) == f" (YAML reads {written.strip()} as text: write {word}, YAML's word for it)"
    meant, read = float(written), yaml.safe_load(word)
    assert (math.isnan(meant) and math.isnan(read)) or (meant == read and meant in (float("inf"), -float("inf")))


@pytest.mark.parametrize(("written", "fixed"), [
    ("1e-5", "1.0e-5"), ("1E5", "1.0e+5"), ("+3e-2", "+3.0e-2"), ("-2e3", "-2.0e+3"),  # no dot
    ("1.5e5", "1.5e+5"), ("2.5E3", "2.5e+3"),  # no sign in the exponent
])
def test_a_number_in_exponent_form_gets_the_form_yaml_reads(written: str, fixed: str) -> None:
    """YAML 1.1 reads a number in exponent form only with a dot in the mantissa and a signed exponent: the hint
    writes the same number in that form, which YAML then reads as the number meant."""
    assert number_text_hint(written) == (f" (YAML reads {written} as text: a number in exponent form needs a dot and a "
                                         f"signed exponent, write {fixed})")
    assert yaml.safe_load(fixed) == float(written)


@pytest.mark.parametrize("written", ["3", " 0.5 ", "-2", "1.0e-5", ".5e-3", "1.e+5"])
def test_a_number_yaml_would_read_was_quoted(written: str) -> None:
    """A number YAML reads as written arrived as text only because it was quoted: the hint says so (and does not tell
    the user to write what they wrote, for an exponent form YAML already reads)."""
    assert not isinstance(yaml.safe_load(written), str)
    quoted = f" ({written.strip()!r} is quoted, so it is text: write the number without quotes)"
    assert number_text_hint(written) == quoted


@pytest.mark.parametrize("value", ["abc", "", "1e", "valid", 3, 2.5, None, True, [1]])
def test_no_hint_for_what_is_not_a_number_written_as_text(value: Any) -> None:
    """Text that is no number and values that are not text get no hint (the message says only what is allowed)."""
    assert number_text_hint(value) == ""


# --- Param.allowed: the words every error and the block reference use ---------------------------------------------

@pytest.mark.parametrize(("param", "words"), [
    (Param("n", "int"), "an integer"),
    (Param("n", "int", minimum=1), "an integer >= 1"),
    (Param("k", "pair", minimum=1), "an integer >= 1 or a list [h, w] of two such integers"),
    (Param("k", "pair", minimum=1, size=1), "an integer >= 1 or a list [l] of one such integer"),
    (Param("k", "pair", minimum=1, size=3), "an integer >= 1 or a list [d, h, w] of three such integers"),
    (Param("k", "pair", size=4), "an integer or a list [4 values] of such integers"),
    (Param("p", "padding"), 'an integer >= 0, a list [h, w] of two such integers, "valid" or "same"'),
    (Param("p", "padding", size=1), 'an integer >= 0, a list [l] of one such integer, "valid" or "same"'),
    (Param("p", "padding", size=3), 'an integer >= 0, a list [d, h, w] of three such integers, "valid" or "same"'),
    (Param("x", "float"), "a number"),
    (Param("x", "float", minimum=0), "a number >= 0"),
    (Param("x", "float", minimum=0, open_minimum=True), "a number > 0"),
    (Param("x", "float", maximum=1), "a number <= 1"),
    (Param("x", "float", maximum=1, open_maximum=True), "a number < 1"),
    (Param("x", "float", minimum=0, maximum=1), "a number >= 0 and <= 1"),
    (Param("x", "float", minimum=1e-8, maximum=0.5, open_minimum=True, open_maximum=True),
     "a number > 1e-08 and < 0.5"),
    (Param("b", "bool"), "true or false"),
    (Param("c", "choice", choices=("zeros", "reflect")), "one of 'zeros', 'reflect'"),
    (Param("c", "choice", choices=(1, -1)), "one of 1, -1"),
    (Param("a", "axis"), "an integer axis of the channels-first tensor (negative counts from the end)"),
])
def test_allowed_says_what_each_kind_accepts(param: Param, words: str) -> None:
    """The exact words: bounds with their comparison (open ends strict), the list form by the block's rank."""
    assert param.allowed() == words


@pytest.mark.parametrize("method", ["allowed", "normalise", "json_schema"])
def test_an_unknown_kind_is_a_declaration_error_that_names_it(method: str) -> None:
    """A block that declares a kind the schema does not know fails on first use, naming the kind it wrote."""
    p = Param("n", "integer", 1)
    with pytest.raises(AssertionError, match="^integer$"):
        getattr(p, method)(*([2] if method == "normalise" else []))


# --- Param.normalise: the one form the blocks use, or an error saying what is allowed ----------------------------

@pytest.mark.parametrize(("param", "value", "out"), [
    (Param("n", "int", minimum=1), 1, 1),
    (Param("n", "int"), -7, -7),
    (Param("k", "pair", minimum=1), 3, (3, 3)),
    (Param("k", "pair", minimum=1), [1, 2], (1, 2)),
    (Param("k", "pair", minimum=1), (2, 1), (2, 1)),
    (Param("k", "pair", minimum=1, size=1), 4, (4,)),
    (Param("k", "pair", minimum=1, size=1), [4], (4,)),
    (Param("k", "pair", minimum=1, size=3), 2, (2, 2, 2)),
    (Param("k", "pair", minimum=1, size=3), [1, 2, 3], (1, 2, 3)),
    (Param("p", "padding"), "valid", "valid"),
    (Param("p", "padding"), "same", "same"),
    (Param("p", "padding"), 0, (0, 0)),
    (Param("p", "padding"), 2, (2, 2)),
    (Param("p", "padding"), [0, 3], (0, 3)),
    (Param("p", "padding", size=1), 1, (1,)),
    (Param("p", "padding", size=3), [1, 0, 2], (1, 0, 2)),
    (Param("x", "float", minimum=0), 0, 0.0),
    (Param("x", "float", minimum=0, maximum=1), 1, 1.0),
    (Param("x", "float", minimum=0, open_minimum=True), 1e-12, 1e-12),
    (Param("x", "float", maximum=1, open_maximum=True), 0.999, 0.999),
    (Param("x", "float"), -2.5, -2.5),
    (Param("x", "float"), float("inf"), float("inf")),
    (Param("b", "bool"), True, True),
    (Param("b", "bool"), False, False),
    (Param("c", "choice", choices=("zeros", "reflect")), "reflect", "reflect"),
    (Param("c", "choice", choices=(1, -1)), -1, -1),
    (Param("c", "choice", choices=([0, 1], [1, 0])), [1, 0], [1, 0]),
    (Param("c", "choice", choices=("auto",)), "auto", "auto"),
    (Param("c", "choice", choices=("auto", 0)), "auto", "auto"),
    (Param("c", "choice", choices=("auto", 0)), 0, 0),  # each choice of its own type, not the first one's
    (Param("a", "axis"), -1, -1),
    (Param("a", "axis"), 3, 3),
])
def test_normalise_accepts_each_form_and_gives_its_canonical_value(param: Param, value: Any, out: Any) -> None:
    """Accepted values and the form the blocks get: an int for a pair or padding repeated per axis, a list made a
    tuple of ints, a float for a number, bounds included unless declared open."""
    got = param.normalise(value)
    assert got == out and type(got) is type(out)
    if isinstance(got, tuple):
        assert all(type(x) is int for x in got)


@pytest.mark.parametrize(("param", "value"), [
    (Param("n", "int", minimum=1), 0),
    (Param("n", "int", minimum=1), True),  # a bool is not an integer here, though Python says so
    (Param("n", "int"), 2.0),
    (Param("n", "int"), "3"),
    (Param("n", "int"), None),
    (Param("k", "pair", minimum=1), 0),
    (Param("k", "pair", minimum=1), [1, 0]),
    (Param("k", "pair", minimum=1), [1, 2, 3]),
    (Param("k", "pair", minimum=1), [2]),
    (Param("k", "pair", minimum=1), [1, True]),
    (Param("k", "pair", minimum=1), [1.0, 2]),
    (Param("k", "pair", minimum=1, size=1), [1, 1]),
    (Param("k", "pair", minimum=1, size=3), [1, 1]),
    (Param("k", "pair", minimum=1), "2"),
    (Param("p", "padding"), -1),
    (Param("p", "padding"), [0, -1]),
    (Param("p", "padding"), [1, 1, 1]),
    (Param("p", "padding"), [1]),
    (Param("p", "padding"), True),
    (Param("p", "padding"), [True, 0]),
    (Param("p", "padding"), "full"),
    (Param("p", "padding"), "VALID"),
    (Param("p", "padding", size=3), [1, 1]),
    (Param("x", "float", minimum=0), -1e-12),
    (Param("x", "float", minimum=0, open_minimum=True), 0),
    (Param("x", "float", maximum=1), 1.0000001),
    (Param("x", "float", maximum=1, open_maximum=True), 1),
    (Param("x", "float"), float("nan")),
    (Param("x", "float"), True),
    (Param("x", "float"), "0.5"),
    (Param("b", "bool"), 1),
    (Param("b", "bool"), "true"),
    (Param("c", "choice", choices=("zeros", "reflect")), "Reflect"),
    (Param("c", "choice", choices=(1, -1)), True),  # `true` == 1 in Python, but it is not the choice 1
    (Param("c", "choice", choices=(1, -1)), 1.0),
    (Param("c", "choice", choices=("auto", 0)), False),
    (Param("c", "choice", choices=("auto", 0)), "0"),
    (Param("a", "axis"), True),
    (Param("a", "axis"), 1.0),
])
def test_normalise_refuses_what_is_not_allowed(param: Param, value: Any) -> None:
    """Each mistake is refused, with the parameter's name as the field and the allowed forms in the message."""
    error = _error(param, value)
    assert error.field == param.name
    assert error.message.startswith(f"got {value!r}; allowed: {param.allowed()}")


@pytest.mark.parametrize(("param", "value", "hint"), [
    (Param("x", "float", minimum=0), "1e-5", "a number in exponent form needs a dot and a signed exponent"),
    (Param("n", "int", minimum=1), "3", "'3' is quoted"),
    (Param("x", "float"), "nan", "write .nan"),
])
def test_a_number_written_as_text_gets_the_hint_for_an_int_or_a_float(param: Param, value: str, hint: str) -> None:
    """The message of a number parameter given a number as text is what is allowed, then why it is text."""
    error = _error(param, value)
    assert error.message == f"got {value!r}; allowed: {param.allowed()}{number_text_hint(value)}"
    assert hint in error.message


@pytest.mark.parametrize("param", [Param("c", "choice", choices=(1, 2)), Param("k", "pair", minimum=1),
                                   Param("b", "bool")])
def test_other_kinds_get_no_number_hint(param: Param) -> None:
    """Only an int or float parameter explains a quoted number; for the others the allowed forms say enough."""
    assert _error(param, "3").message == f"got '3'; allowed: {param.allowed()}"


def test_an_error_message_is_exact_and_located_at_the_parameter() -> None:
    error = _error(Param("filters", "int", minimum=1), 2.5)
    assert str(error) == "field 'filters': got 2.5; allowed: an integer >= 1"


def test_none_is_accepted_only_where_the_default_is_none() -> None:
    """null means 'the default' for a parameter whose default is None (e.g. a pooling's strides), and is a mistake
    for the others."""
    assert Param("strides", "pair", None, minimum=1).normalise(None) is None
    assert Param("x", "float", None).normalise(None) is None
    assert _error(Param("strides", "pair", (1, 1), minimum=1), None).message.startswith("got None; allowed:")
    assert _error(Param("strides", "pair", minimum=1), None).field == "strides"


# --- Param.json_schema: what editors check a case file with ---------------------------------------------------------

SCHEMA_PARAMS = [
    Param("n", "int"), Param("n", "int", minimum=1), Param("n", "int", 1, minimum=0),
    Param("k", "pair", minimum=1), Param("k", "pair"), Param("k", "pair", None, minimum=1),
    Param("k", "pair", minimum=2, size=1), Param("k", "pair", minimum=1, size=3),
    Param("p", "padding"), Param("p", "padding", size=1), Param("p", "padding", size=3),
    Param("x", "float"), Param("x", "float", minimum=0), Param("x", "float", minimum=0, open_minimum=True),
    Param("x", "float", maximum=1), Param("x", "float", maximum=1, open_maximum=True),
    Param("x", "float", None, minimum=-1, maximum=1, open_minimum=True),
    Param("b", "bool"), Param("c", "choice", choices=("zeros", "reflect")), Param("c", "choice", choices=(1, -1)),
    Param("c", "choice", choices=([0, 1], [1, 0])), Param("c", "choice", choices=("zeros", 0)),
    Param("a", "axis"), Param("a", "axis", None),
]
PROBES = [0, 1, 2, 3, -1, -2, 0.5, 1.5, 0.999, 1e-9, -0.5, -1.0000001, 1.0000001, "3", "1e-5", "valid", "same", "full",
          "zeros", "reflect", True, False, None, [], [0], [1], [2], [0, 0], [0, 1], [1, 0], [1, 2], [2, 2], [-1, 1],
          [1, 2, 3], [0, 0, 0], [1, 1, 1, 1], [1.5, 2], [True, 1], {"a": 1}]


@pytest.mark.parametrize("param", SCHEMA_PARAMS, ids=lambda p: f"{p.kind}{p.size}:{p.minimum}-{p.maximum}")
@pytest.mark.parametrize("validator", [Draft202012Validator, Draft7Validator], ids=["2020-12", "draft-07"])
def test_the_json_schema_accepts_exactly_what_normalise_accepts(param: Param, validator: type) -> None:
    """For every kind and option (bounds open and closed, sizes 1 to 3, a default of None), an editor checking with
    the parameter's JSON Schema agrees with the loader on each probe (integral floats left out: JSON Schema counts
    2.0 as an integer)."""
    check = validator(param.json_schema())
    validator.check_schema(param.json_schema())

    def accepts(value: Any) -> bool:
        try:
            param.normalise(value)
        except CaseError:
            return False
        return True

    disagreements = [v for v in PROBES if check.is_valid(v) != accepts(v)]
    assert not disagreements


@pytest.mark.parametrize(("param", "schema"), [
    (Param("n", "int"), {"type": "integer"}),
    (Param("n", "int", minimum=1), {"type": "integer", "minimum": 1}),
    (Param("a", "axis"), {"type": "integer"}),
    (Param("b", "bool", None), {"anyOf": [{"type": "boolean"}, {"type": "null"}]}),
    (Param("c", "choice", choices=("zeros", "reflect")), {"enum": ["zeros", "reflect"]}),
    (Param("x", "float", minimum=0, maximum=1, open_maximum=True),
     {"type": "number", "minimum": 0, "exclusiveMaximum": 1}),
])
def test_the_json_schema_is_written_in_the_keywords_editors_read(param: Param, schema: dict[str, Any]) -> None:
    """The schema's own words (draft-07 and 2020-12 read alike): what the shipped schema file holds."""
    assert param.json_schema() == schema


# --- Param.describe_default: the default as `xfw-harness list`, the manual and `new` show it ----------------------

@pytest.mark.parametrize(("param", "text"), [
    (Param("n", "int"), "required"),
    (Param("s", "pair", None, default_text="pool_size"), "pool_size"),
    (Param("k", "pair", (1, 2)), "[1, 2]"),
    (Param("k", "pair", (3,), size=1), "[3]"),
    (Param("b", "bool", True), "true"),
    (Param("b", "bool", False), "false"),
    (Param("x", "float", 0.5), "0.5"),
    (Param("n", "int", 0), "0"),
    (Param("c", "choice", "zeros", choices=("zeros",)), "zeros"),
    (Param("x", "float", None), "None"),
])
def test_describe_default_writes_the_default_as_a_case_would(param: Param, text: str) -> None:
    """A tuple as a YAML list, a bool as YAML's word, a default that depends on other parameters by its text."""
    assert param.describe_default() == text


# --- normalise_params: a case's `params` mapping against a block's parameters ----------------------------------------

CONV = (Param("filters", "int", minimum=1, doc="output channels"), Param("strides", "pair", 1, minimum=1, doc="step"),
        Param("use_bias", "bool", True, doc="add a bias"))


def _params_error(params: tuple[Param, ...], raw: Any) -> CaseError:
    with pytest.raises(CaseError) as info:
        normalise_params(params, raw)
    return info.value


def test_normalise_params_fills_in_the_defaults() -> None:
    assert normalise_params(CONV, {"filters": 4}) == {"filters": 4, "strides": 1, "use_bias": True}
    assert normalise_params(CONV, {"filters": 4, "strides": [1, 2]}) == {"filters": 4, "strides": (1, 2),
                                                                         "use_bias": True}


def test_missing_params_mean_all_defaults() -> None:
    """`params:` left out or empty (YAML null) is the empty mapping."""
    assert normalise_params(CONV[1:], None) == {"strides": 1, "use_bias": True}
    assert normalise_params((), None) == {}


def test_params_that_are_not_a_mapping_are_refused() -> None:
    error = _params_error(CONV, [4, 1])
    assert str(error) == "field 'params': must be a mapping of parameter names to values, got list"


def test_an_unknown_parameter_is_named_with_the_closest_names_and_the_allowed_ones() -> None:
    error = _params_error(CONV, {"filters": 4, "stride": 2})
    assert str(error) == ("field 'params.stride': unknown parameter 'stride' (did you mean 'strides'?); "
                          "allowed: filters, strides, use_bias")


def test_an_unknown_parameter_of_a_block_without_parameters_says_it_takes_none() -> None:
    error = _params_error((), {"inplace": True})
    assert str(error) == ("field 'params.inplace': unknown parameter 'inplace'; "
                          "allowed: none (this block takes no parameters)")


def test_a_parameters_error_is_located_under_params() -> None:
    error = _params_error(CONV, {"filters": 4, "strides": 0})
    assert str(error) == "field 'params.strides': got 0; allowed: an integer >= 1 or a list [h, w] of two such integers"


def test_a_missing_required_parameter_says_what_it_is() -> None:
    error = _params_error(CONV, {"strides": 2})
    assert str(error) == "field 'params.filters': missing required parameter; it is an integer >= 1 (output channels)"
