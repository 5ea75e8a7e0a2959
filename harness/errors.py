"""The harness's own errors: each names the file, the case and the field, and says what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: object, options: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest options to a misspelt name, or "" when none is close."""
    close = difflib.get_close_matches(str(name).lower(), list(options), n=3, cutoff=0.5)
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
