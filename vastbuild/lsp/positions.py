"""Positions in a document as the parser counts them and as the editor does.

The parser's :class:`~vastbuild.diagnostics.Span` is 1-based, counts code points and
splits lines on ``\\n`` only, after dropping a leading byte order mark. The Language
Server Protocol is 0-based and counts in the encoding the client and server agreed
on: UTF-16 code units unless the client offered another (an emoji is one column to
the parser and two to VS Code).
"""

from __future__ import annotations

from lsprotocol import types

from vastbuild.diagnostics import Span

BOM = "\ufeff"


class Text:
    """One version of a document's text, for converting columns both ways."""

    def __init__(self, source: str, encoding: str = types.PositionEncodingKind.Utf16):
        self.source = source
        self.encoding = encoding
        #: the document's physical lines, as the parser numbers and counts them
        self.lines = source.removeprefix(BOM).split("\n")
        #: the BOM is a character of the editor's first line but not of the parser's
        self._bom_units = self._units(BOM) if source.startswith(BOM) else 0

    def _units(self, text: str) -> int:
        if self.encoding == types.PositionEncodingKind.Utf8:
            return len(text.encode("utf-8", errors="surrogatepass"))
        if self.encoding == types.PositionEncodingKind.Utf32:
            return len(text)
        return len(text) + sum(ord(char) > 0xFFFF for char in text)

    def _line(self, line: int) -> str:
        return self.lines[line] if 0 <= line < len(self.lines) else ""

    def _shift(self, line: int) -> int:
        return self._bom_units if line == 0 else 0

    def position(self, line: int, col: int) -> types.Position:
        """The client position of 0-based ``line`` and 0-based code point ``col`` of the
        parser's text."""
        return types.Position(line, self._shift(line) + self._units(self._line(line)[:col]))

    def point(self, position: types.Position) -> tuple[int, int]:
        """0-based line and code point column of the parser's text at a client position
        (a position past the end of its line is the end of the line)."""
        text = self._line(position.line)
        wanted = position.character - self._shift(position.line)
        units = 0
        for col, char in enumerate(text):
            if units >= wanted:
                return position.line, col
            units += self._units(char)
        return position.line, len(text)

    def range(self, span: Span) -> types.Range:
        """The client range of a span of this document."""
        return types.Range(self.position(span.line - 1, span.col - 1),
                           self.position(span.end_line - 1, span.end_col - 1))

    def whole(self) -> types.Range:
        """From the start to the end of the document, for replacing all of it."""
        last = len(self.lines) - 1
        return types.Range(types.Position(0, 0), self.position(last, len(self.lines[last])))

    def before(self, position: types.Position) -> str:
        """The logical line up to ``position``: its physical line, after the lines it
        continues (those that end with ``\\``)."""
        line, col = self.point(position)
        text = self._line(line)[:col]
        while line > 0 and self.lines[line - 1].rstrip("\r").endswith("\\"):
            line -= 1
            text = self.lines[line].rstrip("\r")[:-1] + text
        return text


def contains(span: Span, line: int, col: int) -> bool:
    """Whether the 0-based ``line`` and code point ``col`` fall in ``span`` or touch its
    end (a cursor right after a word is still on it)."""
    start, end, here = (span.line, span.col), (span.end_line, span.end_col), (line + 1, col + 1)
    return start <= here <= end
