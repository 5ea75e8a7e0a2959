"""Parameter schemas: what each block parameter accepts, its default, and what it means.

A `Param` normalises a raw YAML value (int, list, string, ...) to the one form the blocks use, or raises a
`CaseError` that says what is allowed. Blocks declare their parameters with these; the loader, `xfw-harness
list` and the manual's generated block reference read the same declarations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from xfw_harness.core.errors import CaseError, did_you_mean, show

REQUIRED = object()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# YAML 1.1 (PyYAML, the loader's base) reads a number in exponent form only with a dot in the mantissa and a sign
# in the exponent: 1.0e-5 is a number, 1e-5 and 1.0e5 are text.
_EXPONENT_FORM = re.compile(r"\s*([+-]?[0-9_]*\.?[0-9_]*)[eE]([+-]?)([0-9]+)\s*")


def number_text_hint(value: Any) -> str:
    """Why a number the user wrote arrived as text, and how to write it, or "" (not a number written as text)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    word = value.strip().lstrip("+-").lower()
    if word in ("inf", "infinity", "nan"):  # float() reads these; YAML 1.1's words for them start with a dot
        sign = "-" if value.strip().startswith("-") else ""
        return (f" (YAML reads {value.strip()} as text: write {'.nan' if word == 'nan' else sign + '.inf'}, YAML's "
                "word for it)")
    match = _EXPONENT_FORM.fullmatch(value)
    if match and not ("." in match[1] and match[2]):  # with both, YAML reads it as a number: it was quoted
        mantissa, sign, exponent = match.groups()
        mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
        return (f" (YAML reads {value.strip()} as text: a number in exponent form needs a dot and a signed exponent, "
                f"write {mantissa}e{sign or '+'}{exponent})")
    return f" ({value.strip()!r} is quoted, so it is text: write the number without quotes)"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Param:
    """One parameter of a block.

    kind:
      int      an integer >= `minimum`
      pair     an int or [h, w] of ints >= `minimum` -> (h, w); with `size` 1 or 3 (a 1-D or 3-D block's spatial
               axes), an int or [l] -> (l,), an int or [d, h, w] -> (d, h, w)
      padding  an int >= 0, [h, w] of ints >= 0, "valid" or "same" -> "valid" | "same" | (h, w) (`size` values
               as for pair)
      float    a number in [minimum, maximum] (an end excluded where open_minimum / open_maximum says so)
      bool     true or false
      choice   one of `choices`
      axis     an integer (negative counts from the end), counted in the channels-first tensor
    """

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    open_minimum: bool = False  # a float must be > minimum (not >=): where the bound itself breaks the block
    open_maximum: bool = False  # a float must be < maximum (Adam's betas: 1 divides by zero)
    choices: tuple[Any, ...] = ()
    default_text: str = ""  # how to show a default that depends on other parameters (e.g. "pool_size")
    size: int = 2  # how many values a pair or padding holds: one per spatial axis of the block (1, 2 or 3)

    @property
    def axes_text(self) -> str:
        """The list a pair or padding is written as: [h, w], or [l] and [d, h, w] for 1-D and 3-D blocks."""
        return {1: "[l]", 2: "[h, w]", 3: "[d, h, w]"}.get(self.size, f"[{self.size} values]")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def allowed(self) -> str:
        lo = "" if self.minimum is None else f" {'>' if self.open_minimum else '>='} {self.minimum:g}"
        if self.kind == "int":
            return f"an integer{lo}"
        count = {1: "one such integer", 2: "two such integers", 3: "three such integers"}.get(self.size,
                                                                                             "such integers")
        if self.kind == "pair":
            return f"an integer{lo} or a list {self.axes_text} of {count}"
        if self.kind == "padding":
            return f'an integer >= 0, a list {self.axes_text} of {count}, "valid" or "same"'
        if self.kind == "float":
            hi = "" if self.maximum is None else f" {'<' if self.open_maximum else '<='} {self.maximum:g}"
            return f"a number{lo}{' and' if lo and hi else ''}{hi}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "axis":
            return "an integer axis of the channels-first tensor (negative counts from the end)"
        raise AssertionError(self.kind)

    def _int_ok(self, v: Any) -> bool:
        return _is_int(v) and (self.minimum is None or v >= self.minimum)

    def normalise(self, value: Any) -> Any:
        """The canonical form of `value`, or a CaseError (field = this parameter's name) saying what is allowed."""
        if value is None and self.default is None:
            return None
        ok, out = self._normalise(value)
        if not ok:
            hint = number_text_hint(value) if self.kind in ("int", "float") else ""
            raise CaseError(f"got {show(value)}; allowed: {self.allowed()}{hint}", field=self.name)
        return out

    def _normalise(self, v: Any) -> tuple[bool, Any]:
        kind = self.kind
        if kind == "int":
            return self._int_ok(v), v
        if kind == "pair":
            if self._int_ok(v):
                return True, (v,) * self.size
            if isinstance(v, (list, tuple)) and len(v) == self.size and all(self._int_ok(x) for x in v):
                return True, tuple(int(x) for x in v)
            return False, None
        if kind == "padding":
            if v in ("valid", "same"):
                return True, v
            if _is_int(v) and v >= 0:
                return True, (v,) * self.size
            if isinstance(v, (list, tuple)) and len(v) == self.size and all(_is_int(x) and x >= 0 for x in v):
                return True, tuple(int(x) for x in v)
            return False, None
        if kind == "float":
            ok = _is_number(v) and v == v and (self.minimum is None or v > self.minimum or (
                v == self.minimum and not self.open_minimum)) and (self.maximum is None or v < self.maximum or (
                v == self.maximum and not self.open_maximum))
            return ok, float(v) if ok else None
        if kind == "bool":
            return isinstance(v, bool), v
        if kind == "choice":
            return any(type(v) is type(c) and v == c for c in self.choices), v  # `true` is not the choice 1
        if kind == "axis":
            return _is_int(v), v
        raise AssertionError(kind)

    def json_schema(self) -> dict[str, Any]:
        """The values `normalise` accepts, as JSON Schema (xfw_harness.cases.json_schema writes the case file's schema
        from it): the keywords draft-07 and 2020-12 read alike, since editors' YAML support reads draft-07. A subclass
        that overrides `_normalise` overrides this beside it (tests/cases/test_json_schema.py holds the two to the
        same answers)."""
        schema = self._json_schema()
        return {"anyOf": [schema, {"type": "null"}]} if self.default is None else schema

    def _json_integer(self, minimum: float | None = None) -> dict[str, Any]:
        lo = self.minimum if minimum is None else minimum
        return {"type": "integer"} if lo is None else {"type": "integer", "minimum": lo}

    def _json_list(self, item: dict[str, Any], size: int | None = None) -> dict[str, Any]:
        n = self.size if size is None else size
        return {"type": "array", "items": item, "minItems": n, "maxItems": n}

    def _json_schema(self) -> dict[str, Any]:
        kind = self.kind
        if kind == "int":
            return self._json_integer()
        if kind == "pair":
            return {"anyOf": [self._json_integer(), self._json_list(self._json_integer())]}
        if kind == "padding":
            return {"anyOf": [{"enum": ["valid", "same"]}, self._json_integer(0),
                              self._json_list(self._json_integer(0))]}
        if kind == "float":
            schema: dict[str, Any] = {"type": "number"}
            if self.minimum is not None:
                schema["exclusiveMinimum" if self.open_minimum else "minimum"] = self.minimum
            if self.maximum is not None:
                schema["exclusiveMaximum" if self.open_maximum else "maximum"] = self.maximum
            return schema
        if kind == "bool":
            return {"type": "boolean"}
        if kind == "choice":
            return {"enum": list(self.choices)}  # a YAML list is never a tuple: a list choice is written as a list
        if kind == "axis":
            return {"type": "integer"}
        raise AssertionError(kind)

    def describe_default(self) -> str:
        if self.required:
            return "required"
        if self.default_text:
            return self.default_text
        d = self.default
        if isinstance(d, tuple):
            return "[" + ", ".join(str(x) for x in d) + "]"
        if isinstance(d, bool):
            return "true" if d else "false"
        return str(d)


def normalise_params(params: tuple[Param, ...], raw: Any) -> dict[str, Any]:
    """Check a case's `params` mapping against a block's schema; fill in defaults. Raises CaseError."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CaseError(f"must be a mapping of parameter names to values, got {type(raw).__name__}", field="params")
    by_name = {p.name: p for p in params}
    for key in raw:
        if key not in by_name:
            allowed = ", ".join(by_name) or "none (this block takes no parameters)"
            raise CaseError(f"unknown parameter {show(key)}{did_you_mean(key, by_name)}; allowed: {allowed}",
                            field=f"params.{key}")
    out: dict[str, Any] = {}
    for p in params:
        if p.name in raw:
            try:
                out[p.name] = p.normalise(raw[p.name])
            except CaseError as e:
                raise e.located(field_prefix="params") from None
        elif p.required:
            raise CaseError(f"missing required parameter; it is {p.allowed()} ({p.doc})", field=f"params.{p.name}")
        else:
            out[p.name] = p.default
    return out
