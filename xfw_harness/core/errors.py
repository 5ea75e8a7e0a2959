"""The harness's own errors: each names the file, the case and the field, and says what is allowed."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from typing import Any


class _ShortRepr(reprlib.Repr):
    """repr() with bounded length and depth, keeping a mapping's order (reprlib would sort its keys)."""

    def repr_dict(self, x: dict, level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}" for k, v in list(x.items())[:self.maxdict]]
        return "{" + ", ".join(items) + (", ..." if len(x) > self.maxdict else "") + "}"


_SHORT = _ShortRepr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict, _SHORT.maxset = 3, 8, 8, 8, 8
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 80, 80, 40
SHOW_LIMIT = 200  # characters


def show(value: Any) -> str:
    """A user's value for an error message: repr(), cut to a bounded length and depth.

    A YAML file can make a small text stand for a huge value (aliases of aliases: "billion laughs"); a plain
    repr() of it would take minutes and gigabytes, this one a few microseconds.
    """
    text = _SHORT.repr(value)
    return text if len(text) <= SHOW_LIMIT else text[:SHOW_LIMIT - 4] + " ..."


def did_you_mean(name: object, options: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest options to a misspelt name, or "" when none is close."""
    word = name if isinstance(name, str) and len(name) <= 100 else show(name)
    close = difflib.get_close_matches(word.lower(), list(options), n=3, cutoff=0.5)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


class CaseError(Exception):
    """A case that cannot be run as written. Never a bare traceback: `str()` is the whole user-facing message."""

    def __init__(self, message: str, *, file: str | None = None, case: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.case = case
        self.field = field

    def located(self, *, file: str | None = None, case: str | None = None,
                field_prefix: str | None = None) -> CaseError:
        """The same error with its location filled in where it was not known yet."""
        field = self.field
        if field_prefix:
            field = f"{field_prefix}.{field}" if field else field_prefix
        return CaseError(self.message, file=self.file or file, case=self.case or case, field=field)

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.case:
            where.append(f"case '{self.case}'")
        if self.field:
            where.append(f"field '{self.field}'")
        return (": ".join(where) + ": " if where else "") + self.message


class Refusal(CaseError):
    """A combination that is well-formed but has no exact translation or cannot work (e.g. an empty output)."""


class HarnessWarning(UserWarning):
    """The harness's own warnings (a case that runs but likely not as meant): pytest lists them in its warnings
    summary, `xfw-harness run` prints them; `-W error::xfw_harness.core.errors.HarnessWarning` makes them errors."""


class InputLayoutWarning(HarnessWarning):
    """An input shape that looks channels-last (xfw_harness.cases.hints.channels_last_hint)."""


class FrameworkMissing(ImportError):
    """PyTorch, Keras or Keras's backend cannot be imported here: `str()` is one line saying what to install."""
