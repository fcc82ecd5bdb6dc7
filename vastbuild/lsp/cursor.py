"""What the cursor is on, or in the middle of writing.

Hover and go-to-definition look the cursor up in the syntax tree, so they work on
every line that parses. Completion cannot: the line being typed rarely parses yet
(``REQUIRE gpu_`` is a syntax error), so it reads the text of the logical line
before the cursor instead, and says which kind of word is being written there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from vastbuild import nodes
from vastbuild.diagnostics import Span
from vastbuild.directives import spec_of
from vastbuild.lsp.positions import contains

WordKind = Literal["directive", "column", "value", "autoscale", "path"]
CompletionKind = Literal["directive", "column", "operator", "value", "autoscale", "path"]

#: what a REQUIRE term may look like while it is written: a column, the white space
#: after it, an operator (a word operator only once white space or `[` follows it),
#: and what follows
_TERM = re.compile(
    r"\s*(?P<column>[^\s,\[\]\"'=!<>]*)(?P<gap>\s*)"
    r"(?:(?P<op>==|!=|<=|>=|<|>|(?i:not\s+in|notin|in)(?=[\s\[]))\s*)?(?P<value>.*)",
    re.DOTALL)
#: directives whose first argument names a file or folder
_PATH_FIRST = frozenset({"CODE", "COPY", "INCLUDE"})


@dataclass(frozen=True)
class MeaningfulWord:
    """A word of a parsed directive that has a meaning to show or a file to open."""

    kind: WordKind
    text: str
    span: Span


def _meaningful_words(directive: nodes.Directive) -> Iterator[MeaningfulWord]:
    keyword = (directive.keyword.text.upper() if isinstance(directive, nodes.Extension)
               else spec_of(directive).keyword)
    yield MeaningfulWord("directive", keyword, directive.keyword_span)
    match directive:
        case nodes.Require(terms=terms):
            for term in terms:
                yield MeaningfulWord("column", term.column.text, term.column.span)
                values = (term.value.items if isinstance(term.value, nodes.ListValue)
                          else (term.value,))
                yield from (MeaningfulWord("value", v.text, v.span) for v in values if not v.quote)
        case nodes.Autoscale(assignments=assignments):
            yield from (MeaningfulWord("autoscale", a.key.text, a.key.span) for a in assignments)
        case (nodes.Include(path=word) | nodes.Code(path=word) | nodes.Copy(src=word)
              | nodes.PipRequirements(file=word)):
            yield MeaningfulWord("path", word.text, word.span)


def word_at(tree: nodes.Vastfile, line: int, col: int) -> MeaningfulWord | None:
    """The word at 0-based ``line`` and code point ``col``, when it has a meaning."""
    for directive in tree.directives:
        if contains(directive.span, line, col):
            return next((word for word in _meaningful_words(directive)
                         if contains(word.span, line, col)), None)
    return None


@dataclass(frozen=True)
class Completion:
    """The kind of word being written, what of it is written (``partial``, which a
    completion replaces) and, for a REQUIRE value, the column it is compared with."""

    kind: CompletionKind
    partial: str
    column: str = ""


def completing(before: str) -> Completion | None:
    """What the logical line ``before`` the cursor is in the middle of; None where
    nothing is to be completed (a comment, a value, past a directive's paths)."""
    if before.lstrip().startswith("#"):
        return None
    words = before.split()
    in_word = bool(words) and not before[-1].isspace()
    partial = words[-1] if in_word else ""
    if len(words) == int(in_word):
        return Completion("directive", partial)
    keyword = words[0].upper()
    argument = len(words) - int(in_word)  # 0 is the keyword, 1 the first argument...
    if (argument == 1 and keyword in _PATH_FIRST
            or keyword == "PIP" and argument == 2 and words[1] == "-r"):
        return Completion("path", partial)
    if keyword == "AUTOSCALE" and "=" not in partial:
        return Completion("autoscale", partial)
    if keyword == "REQUIRE":
        return _require(before.lstrip()[len(words[0]):])
    return None


def _require(rest: str) -> Completion | None:
    """Completion in the comparisons of a REQUIRE line: a column, an operator, a value
    (of a list, too)."""
    start, bracket, quote = 0, -1, ""
    for i, char in enumerate(rest):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "[":
            bracket = i
        elif char == "]":
            bracket = -1
        elif bracket < 0 and (char == "," or char.isspace() and re.match(
                r"(?i)and\s", rest[i + 1:])):
            start = i + 1 if char == "," else i + 4
    if quote:
        return None
    if bracket >= 0:
        term = _TERM.fullmatch(rest[start:bracket])
        item = re.split(r"[,\s]", rest[bracket + 1:])[-1]
        return Completion("value", item, term.group("column")) if term else None
    term = _TERM.fullmatch(rest[start:])
    if term is None:
        return None
    column, gap, op, value = term.group("column", "gap", "op", "value")
    if op is None:
        if not gap and not value:
            return Completion("column", column)
        return None if any(c.isspace() for c in value) else Completion("operator", value)
    return None if any(c.isspace() for c in value) else Completion("value", value, column)
