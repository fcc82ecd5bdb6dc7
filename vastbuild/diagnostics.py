"""Diagnostics: spans, errors and warnings, and how a compiler prints them.

Every pass reports problems as :class:`Diagnostic` values instead of raising,
so that one run can show every mistake of a file. A pass that cannot go on
raises :class:`DiagnosticError` carrying the diagnostics gathered so far.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, order=True)
class Span:
    """A region of a source file: 1-based line and column, end exclusive.

    ``end_col`` is the column just after the last character on ``end_line``.
    """

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    @classmethod
    def point(cls, path: str, line: int, col: int, width: int = 1) -> Span:
        return cls(path, line, col, line, col + max(width, 1))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Note:
    """A secondary location that explains a diagnostic ("first set here")."""

    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in the input, with a stable code documented in docs/vastfile.md."""

    severity: Severity
    code: str
    message: str
    span: Span | None
    help: str | None = None
    notes: tuple[Note, ...] = field(default=())
    #: the text that would fix the span when ``help`` is a "did you mean" (an editor's
    #: quick fix applies it)
    suggestion: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def error(code: str, message: str, span: Span | None, help: str | None = None,
          notes: Iterable[Note] = (), suggestion: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, span, help, tuple(notes), suggestion)


def warning(code: str, message: str, span: Span | None, help: str | None = None,
            notes: Iterable[Note] = (), suggestion: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, span, help, tuple(notes), suggestion)


#: the language reference, which has a ``#### E042`` section for every code
LANGUAGE_REFERENCE = "docs/vastfile.md"


def reference_link(code: str) -> str:
    """Where the language reference explains ``code``, relative to the repository root:
    what SARIF's ``helpUri`` and an editor's link to a diagnostic's code point at."""
    return f"{LANGUAGE_REFERENCE}#{code.lower()}"


class DiagnosticError(Exception):
    """Raised when input errors stop a command; carries every diagnostic found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        first = next((d for d in self.diagnostics if d.is_error), None)
        super().__init__(first.message if first else "invalid input")


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def sort_key(d: Diagnostic) -> tuple[str, int, int]:
    span = d.span
    return (span.path, span.line, span.col) if span else ("", 0, 0)


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text fit for a terminal: a control character that came from a file or a
    server's answer is shown as U+FFFD, one character for one (so a caret stays
    under its column), instead of acting as an escape sequence. Line feeds stay."""
    return _CONTROL.sub("\ufffd", text)
#: the most characters of a source line an excerpt shows
EXCERPT_WIDTH = 160


def render(d: Diagnostic, source_lines: Sequence[str] | None = None,
           color: bool = False) -> str:
    """Format a diagnostic as compilers do: location, message, source line, caret, help.

    ``source_lines`` is the text of ``d.span.path`` split into lines (no newline);
    notes in the same file are rendered with their own source line.
    """
    red, yellow, blue, bold, reset = (
        ("\x1b[31m", "\x1b[33m", "\x1b[34m", "\x1b[1m", "\x1b[0m") if color
        else ("", "", "", "", ""))
    tint = red if d.is_error else yellow
    where = printable(f"{d.span}: ") if d.span else ""
    out = [f"{bold}{where}{tint}{d.severity.value}[{d.code}]{reset}{bold}: "
           f"{printable(d.message)}{reset}"]
    indent = "  "  # the help's `=` stands under the excerpt's `|`, as rustc's does
    if d.span and source_lines is not None:
        excerpt = _excerpt(d.span, source_lines, tint, blue, reset)
        out.extend(excerpt)
        if excerpt:
            indent = " " * (len(str(d.span.line)) + 1)
    for note in d.notes:
        out.append(f"{blue}note{reset}: {printable(f'{note.span}: {note.message}')}")
        if source_lines is not None and note.span.path == (d.span.path if d.span else None):
            out.extend(_excerpt(note.span, source_lines, blue, blue, reset))
    if d.help:
        out.append(f"{indent}{blue}= help{reset}: {printable(d.help)}")
    return "\n".join(out)


def _excerpt(span: Span, lines: Sequence[str], tint: str, gutter: str,
             reset: str) -> list[str]:
    if not 1 <= span.line <= len(lines):
        return []
    # one character for one, so the caret stays under its column; a control character
    # from the file never reaches the terminal, where an escape sequence would act
    text = printable(lines[span.line - 1].replace("\t", " "))
    number = str(span.line)
    pad = " " * len(number)
    end = span.end_col if span.end_line == span.line else len(text) + 1
    col = span.col
    if len(text) > EXCERPT_WIDTH:  # a minified or binary line: show the part that matters
        start = max(0, min(col - 1 - EXCERPT_WIDTH // 4, len(text) - EXCERPT_WIDTH))
        text = ("…" if start else "") + text[start:start + EXCERPT_WIDTH] + \
            ("…" if start + EXCERPT_WIDTH < len(text) else "")
        shift = start - (1 if start else 0)
        col, end = col - shift, min(end - shift, len(text) + 1)
    width = max(1, end - col)
    caret = " " * (col - 1) + "^" * width
    return [
        f"{gutter}{pad} |{reset}",
        f"{gutter}{number} |{reset} {text}",
        f"{gutter}{pad} |{reset} {tint}{caret}{reset}",
    ]
