"""User-facing errors that are not diagnostics of a Vastfile.

Library code raises :class:`VastbuildError` for anything a user can fix (a
missing file, a server that said no, a bad option); the CLI prints its message
and hint and exits 1. Anything else reaching the CLI is a bug.
"""

from __future__ import annotations


class VastbuildError(Exception):
    """An error with a message that says what went wrong and a hint that says what to do."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  = help: {self.hint}"


class UsageError(VastbuildError):
    """The command line asked for something that cannot be done (exit 2)."""
