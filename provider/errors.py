"""The root of circlecost's own errors.

Every error a person can see says what went wrong, naming the field, file or resource, and
`hint` says what to do next. The CLI prints both on one line each; the Pulumi provider puts
them in the failure it reports.
"""

from __future__ import annotations


class CirclecostError(Exception):
    """An error circlecost explains to the person who runs it."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
