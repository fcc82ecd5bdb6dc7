"""The Vastfile parser: source text in, a :class:`~vastbuild.nodes.Vastfile` and diagnostics out.

Parsing happens in two steps. First a small hand-written pass reads the physical
lines: it checks the characters (UTF-8, control characters, line length), joins
``\\`` continuations, cuts comments off (``#`` at a line start or after white
space, outside quotes) and tracks quotes, remembering for every character of a
logical line where it stood in the file. Then lark parses each logical line on
its own with the grammar in ``grammar/vastfile.lark``. One parse per line is what
makes error recovery free: a bad line is reported and skipped, and every later
line is still checked, so one run shows all the syntax errors of a file.

The parser knows nothing about Vast: words stay as written, with their spans,
and unknown directives become :class:`~vastbuild.nodes.Extension` nodes for the
checker (and the plugin registry) to judge.
"""

from __future__ import annotations

import functools
import json
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import lark
from lark.exceptions import UnexpectedInput, UnexpectedToken

from vastbuild import nodes
from vastbuild.diagnostics import Diagnostic, Span, error, sort_key
from vastbuild.directives import BUILTIN_KEYWORDS, BY_KEYWORD

#: The syntax error codes (the checker owns E020 and up, and every W-code).
SYNTAX_CODES: dict[str, str] = {
    "E001": "invalid UTF-8",
    "E002": "NUL byte or other control character",
    "E003": "line longer than 64 KiB",
    "E004": "tab inside a directive keyword",
    "E005": "unterminated quoted string",
    "E006": "unknown escape in a double-quoted string",
    "E007": "quote inside a word",
    "E008": "line does not start with a directive keyword",
    "E009": "missing argument",
    "E010": "unexpected extra argument",
    "E011": "expected KEY=VALUE",
    "E012": "RUN exec form is not a JSON array of strings",
    "E013": "REQUIRE: expected a column name",
    "E014": "REQUIRE: expected an operator",
    "E015": "REQUIRE: expected a value",
    "E016": "REQUIRE: expected AND or a comma between comparisons",
    "E017": "REQUIRE: malformed list",
    "E018": "unexpected text",
}

#: where the grammar lives, in the checkout and inside the installed package
GRAMMAR = "grammar/vastfile.lark"
MAX_LINE_BYTES = 64 * 1024

#: control characters, surrogates (undecodable bytes), and a byte order mark past the
#: start of the file: invisible, and a formatter that moved it to the start would
#: change what the file says
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff\ufeff]")
_BLANK_REST = re.compile(r"[ \t]*$")
# Where the line scanner must look, outside quotes / in "..." / in '...'.
_STOP_BARE = re.compile(r"[\"'#\\]")
_STOP_DQ = re.compile(r'["\\]')
_STOP_SQ = re.compile(r"['\\]")
_FIRST_WORD = re.compile(r"[ \t]*([^ \t]*)")
_TAB_SPLIT = re.compile(r"[ \t]*([A-Za-z_]+(?:\t+[A-Za-z_]+)+)")
# One word as the user meant it, quotes and all: used to name the culprit of an error.
_WORD_AT = re.compile(r"""(?:[^ \t"']|"(?:[^"\\]|\\.)*"?|'[^']*'?)+""")
_WHOLE_QUOTED = re.compile(r"""(?:"(?:[^"\\]|\\.)*"|'[^']*')\Z""")
_DQ_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)

#: A child of a lark tree: a token, or the tree of a sub-rule (``comparison``, ``list``).
_Child = lark.Token | lark.Tree[lark.Token]


@functools.cache
def _parser() -> lark.Lark:
    """The lark parser, built on first use (about 40 ms) and then shared.

    ``propagate_positions`` stays off: every node's span comes from its tokens,
    which lark always positions, and the position wrappers would more than double
    the parse time of a line.
    """
    parser = lark.Lark(grammar_text(), parser="lalr", lexer="contextual",
                       maybe_placeholders=False)
    missing = set(BUILTIN_KEYWORDS) - {terminal.name for terminal in parser.terminals}
    if missing:  # the directive table and the grammar must describe one language
        raise RuntimeError(f"the grammar defines no keyword for {', '.join(sorted(missing))}")
    return parser


def grammar_text() -> str:
    """The grammar: from the installed package (the wheel carries it there), else from
    the top-level ``grammar/`` folder of the checkout this module runs from."""
    packaged = resources.files("vastbuild").joinpath(GRAMMAR)
    if packaged.is_file():
        return packaged.read_text("utf-8")
    return (Path(__file__).resolve().parent.parent / GRAMMAR).read_text("utf-8")


@dataclass
class _LogicalLine:
    """One directive's text with continuations joined and the comment cut off.

    ``starts[i]`` is the offset in ``text`` where the piece taken from physical
    line ``lines[i]`` begins (each piece starts at column 1 of its line): enough to
    map any offset back into the file.
    """

    path: str
    text: str = ""
    starts: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    bad: bool = False

    def add(self, piece: str, line: int) -> None:
        self.starts.append(len(self.text))
        self.lines.append(line)
        self.text += piece

    def position(self, offset: int) -> tuple[int, int]:
        if len(self.starts) == 1:
            return self.lines[0], offset + 1
        i = max(bisect_right(self.starts, offset) - 1, 0)
        return self.lines[i], offset - self.starts[i] + 1

    def span(self, start: int, end: int) -> Span:
        if len(self.starts) == 1:
            line = self.lines[0]
            return Span(self.path, line, start + 1, line, max(start, end) + 1)
        line, col = self.position(start)
        if end <= start:
            return Span(self.path, line, col, line, col)
        end_line, end_col = self.position(end - 1)
        return Span(self.path, line, col, end_line, end_col + 1)

    def end_span(self) -> Span:
        """Just after the last character: where a missing argument would go."""
        last = len(self.text.rstrip(" \t"))
        line, col = self.position(max(last - 1, 0))
        return Span.point(self.path, line, col + (1 if last else 0))


def parse(source: str | bytes, path: str) -> tuple[nodes.Vastfile | None, list[Diagnostic]]:
    """Parse a Vastfile: the tree and every diagnostic of the file, sorted by position.

    A line with a syntax error is reported and left out of the tree, so that the
    checker can still judge the lines that did parse (one run, every mistake).
    The tree is None only when the file is not UTF-8 text: nothing in it can be
    trusted then.
    """
    text, diagnostics = _decode(source, path)
    logical, comments = _read_lines(text, path, diagnostics)
    directives: list[nodes.Directive] = []
    for line in logical:
        if line.bad:
            continue
        directive = _parse_line(line, diagnostics)
        if directive is not None:
            directives.append(directive)
    diagnostics.sort(key=sort_key)
    if any(d.code == "E001" for d in diagnostics):
        return None, diagnostics
    return nodes.Vastfile(path, tuple(directives), tuple(comments), text), diagnostics


# -- characters and lines ---------------------------------------------------------------


def _decode(source: str | bytes, path: str) -> tuple[str, list[Diagnostic]]:
    """Bytes to text without ever raising: invalid UTF-8 bytes survive as lone
    surrogates (``surrogateescape``) so that the line pass can report each with its
    line and column. A leading byte order mark is dropped."""
    if isinstance(source, bytes):
        text = source.decode("utf-8", errors="surrogateescape")
    else:
        text = source
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, []


def _check_characters(physical: str, number: int, path: str) -> list[Diagnostic]:
    """The character-level errors of one physical line (at most one of each kind)."""
    found: list[Diagnostic] = []
    encoded_length = len(physical) if physical.isascii() else len(
        physical.encode("utf-8", errors="surrogatepass"))
    if encoded_length > MAX_LINE_BYTES:
        fits = physical.encode("utf-8", errors="surrogatepass")[:MAX_LINE_BYTES]
        col = len(fits.decode("utf-8", errors="ignore")) + 1
        found.append(error(
            "E003", f"line {number} is {encoded_length} bytes long; the limit is 64 KiB",
            Span.point(path, number, col),
            help="split the directive over several lines with `\\`, or move the data "
                 "into a file (PIP -r, COPY)"))
    seen: set[str] = set()
    for match in _CONTROL.finditer(physical):
        char = match.group()
        col = match.start() + 1
        if "\ud800" <= char <= "\udfff":
            if "E001" in seen:
                continue
            seen.add("E001")
            if "\udc80" <= char <= "\udcff":
                message = f"invalid UTF-8 byte 0x{ord(char) - 0xDC00:02X}"
            else:
                message = f"lone surrogate U+{ord(char):04X} cannot be encoded as UTF-8"
            found.append(error("E001", message, Span.point(path, number, col),
                               help="save the Vastfile as UTF-8 text"))
        elif "E002" not in seen:
            seen.add("E002")
            name = {"\x00": "a NUL byte", "\r": "a carriage return",
                    "\ufeff": "a byte order mark (U+FEFF) past the start of the file"}.get(
                char, f"control character U+{ord(char):04X}")
            found.append(error(
                "E002", f"{name} in the Vastfile", Span.point(path, number, col),
                help="remove it: a Vastfile is plain text (line ends \\n or \\r\\n; "
                     "write a tab in a double-quoted string as \\t)"))
    return found


def _physical_lines(text: str) -> list[str]:
    """Split on ``\\n`` only (``str.splitlines`` would also split on form feeds and
    Unicode separators, which are characters of a word here); drop a CR before it."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@dataclass
class _Scan:
    """What the scanner found on one physical line."""

    end: int  # content ends here (comment, continuation backslash, or end of line)
    comment: int | None  # offset of an inline '#'
    continued: bool
    quote: str  # the quote still open at the end of the line ("" when none)
    quote_col: int  # 0-based column of the opening quote, when it opened on this line


def _scan(physical: str, quote: str) -> _Scan:
    """Find the comment, the continuation and the quotes of one physical line.

    A ``\\`` ending the line (white space allowed after it) continues the
    directive on the next line. Elsewhere, outside quotes and in double quotes, a
    ``\\`` pairs with the next character as it does in the shell, so
    ``echo it\\'s`` opens no quote, ``\\\\`` at the end of a line is not a
    continuation, and ``a\\ #b`` holds no comment; in single quotes it is literal.
    """
    i = 0
    quote_col = -1
    escaped_until = -1
    while True:
        stop = (_STOP_DQ if quote == '"' else _STOP_SQ if quote == "'" else _STOP_BARE)
        match = stop.search(physical, i)
        if match is None:
            return _Scan(len(physical), None, False, quote, quote_col)
        j = match.start()
        char = physical[j]
        if char == "\\":
            if _BLANK_REST.match(physical, j + 1):
                return _Scan(j, None, True, quote, quote_col)
            i = j + 1 if quote == "'" else j + 2
            escaped_until = i
        elif quote:
            if char == quote:
                quote = ""
            i = j + 1
        elif char == "#":
            if j == 0 or (physical[j - 1] in " \t" and escaped_until != j):
                content = physical[:j].rstrip(" \t")
                trailing = len(content) - len(content.rstrip("\\"))
                continued = trailing % 2 == 1
                end = len(content) - 1 if continued else j
                return _Scan(end, j, continued, quote, quote_col)
            i = j + 1
        else:
            quote = char
            quote_col = j
            i = j + 1


def _read_lines(text: str, path: str, diagnostics: list[Diagnostic],
                ) -> tuple[list[_LogicalLine], list[nodes.Comment]]:
    """Physical lines to logical lines and comments, reporting character errors,
    tabs inside keywords and unterminated quotes (those lines come back ``bad``)."""
    physical = _physical_lines(text)
    logical: list[_LogicalLine] = []
    comments: list[nodes.Comment] = []

    def comment_at(number: int, line: str, col: int, inline: bool) -> None:
        body = line[col:].rstrip(" \t")
        comments.append(nodes.Comment(
            body, Span(path, number, col + 1, number, col + 1 + len(body)), inline))

    index = 0
    while index < len(physical):
        line = physical[index]
        number = index + 1
        index += 1
        stripped = line.lstrip(" \t")
        problems = _check_characters(line, number, path)
        diagnostics.extend(problems)
        if not stripped:
            continue
        if stripped.startswith("#"):
            comment_at(number, line, len(line) - len(stripped), inline=False)
            continue
        current = _LogicalLine(path, bad=bool(problems))
        quote, quote_at = "", (number, 0)
        while True:
            scan = _scan(line, quote)
            current.add(line[:scan.end], number)
            if scan.quote_col >= 0:
                quote_at = (number, scan.quote_col)
            quote = scan.quote
            if scan.comment is not None:
                comment_at(number, line, scan.comment, inline=True)
            if not scan.continued:
                break
            # A continuation skips full-line comments (as a Dockerfile does); a blank
            # line or the end of the file ends the directive.
            while (index < len(physical) and not quote
                   and physical[index].lstrip(" \t").startswith("#")):
                following = physical[index]
                diagnostics.extend(_check_characters(following, index + 1, path))
                comment_at(index + 1, following,
                           len(following) - len(following.lstrip(" \t")), inline=False)
                index += 1
            if index >= len(physical) or not physical[index].strip(" \t"):
                break
            line = physical[index]
            number = index + 1
            index += 1
            problems = _check_characters(line, number, path)
            diagnostics.extend(problems)
            current.bad = current.bad or bool(problems)
        current.text = _strip_end(current.text)
        if not current.text.strip(" \t"):
            continue
        if quote:
            q_line, q_col = quote_at
            kind = "double" if quote == '"' else "single"
            diagnostics.append(error(
                "E005", f"unterminated {kind}-quoted string",
                Span.point(path, q_line, q_col + 1),
                help=f"close it with {quote} on the same line (a '#' inside quotes is not a "
                     "comment), or end the line with \\ to continue it"))
            current.bad = True
        tab_error = _tab_in_keyword(current)
        if tab_error is not None:
            diagnostics.append(tab_error)
            current.bad = True
        logical.append(current)
    return logical, comments


def _strip_end(text: str) -> str:
    """Drop trailing white space, and a backslash left dangling by it (``a\\ `` at the
    very end of a directive is a continuation into nothing, not an escaped space):
    so a directive never ends in an odd run of backslashes, and printing it back
    on one line cannot turn it into a continuation."""
    text = text.rstrip(" \t")
    while (len(text) - len(text.rstrip("\\"))) % 2:
        text = text[:-1].rstrip(" \t")
    return text


def _tab_in_keyword(line: _LogicalLine) -> Diagnostic | None:
    """``FR<tab>OM``: words split by tabs only that together spell a directive."""
    match = _TAB_SPLIT.match(line.text)
    if match is None:
        return None
    parts = re.split(r"(\t+)", match.group(1))
    if parts[0].upper() in BUILTIN_KEYWORDS:
        return None
    joined = parts[0]
    for k in range(2, len(parts), 2):
        joined += parts[k]
        if joined.upper() in BUILTIN_KEYWORDS:
            tab = match.start(1) + len(parts[0])
            return error("E004", f"a tab inside the keyword {joined.upper()}",
                         line.span(tab, tab + 1),
                         help=f"write {joined.upper()} without the tab")
    return None


# -- one logical line --------------------------------------------------------------------


def _parse_line(line: _LogicalLine, diagnostics: list[Diagnostic]) -> nodes.Directive | None:
    try:
        tree = _parser().parse(line.text)
    except UnexpectedInput as exc:
        diagnostics.append(_explain(exc, line))
        return None
    converter = _Converter(line)
    directive = converter.directive(tree)
    diagnostics.extend(converter.diagnostics)
    return None if converter.diagnostics else directive


class _Converter:
    """Lark tree of one line -> a directive node (the parser's Transformer, written as
    a dispatch on rule names because every node needs the line's position map)."""

    def __init__(self, line: _LogicalLine):
        self.line = line
        self.diagnostics: list[Diagnostic] = []

    def directive(self, tree: lark.Tree[lark.Token]) -> nodes.Directive:
        first, *args = tree.children
        keyword = _token(first)
        span = self.line.span(_start(keyword), len(self.line.text))
        keyword_span = self.span(keyword)
        if tree.data == "extension":
            return nodes.Extension(span, keyword_span, self.word(keyword),
                                   tuple(self.argument(_token(a)) for a in args))
        build: Callable[..., nodes.Directive] = getattr(self, "_" + tree.data)
        return build(span, keyword_span, args)

    # The directives: each gets (span, keyword_span, children after the keyword).

    def _deployment(self, span: Span, keyword_span: Span,
                    args: list[_Child]) -> nodes.DeploymentName:
        return nodes.DeploymentName(span, keyword_span, self.word(_token(args[0])))

    def _tag(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Tag:
        return nodes.Tag(span, keyword_span, self.word(_token(args[0])))

    def _version(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Version:
        return nodes.Version(span, keyword_span, self.word(_token(args[0])))

    def _ttl(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Ttl:
        return nodes.Ttl(span, keyword_span, self.word(_token(args[0])))

    def _from_image(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.From:
        storage = self.word(_token(args[2])) if len(args) == 3 else None
        return nodes.From(span, keyword_span, self.word(_token(args[0])), storage)

    def _code(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Code:
        return nodes.Code(span, keyword_span, self.word(_token(args[0])))

    def _pip(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Pip:
        return nodes.Pip(span, keyword_span, tuple(self.word(_token(a)) for a in args))

    def _pip_requirements(self, span: Span, keyword_span: Span,
                          args: list[_Child]) -> nodes.PipRequirements:
        return nodes.PipRequirements(span, keyword_span, self.word(_token(args[1])))

    def _apt(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Apt:
        return nodes.Apt(span, keyword_span, tuple(self.word(_token(a)) for a in args))

    def _env(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Env:
        return nodes.Env(span, keyword_span, tuple(self.assignment(_token(a)) for a in args))

    def _autoscale(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Autoscale:
        return nodes.Autoscale(span, keyword_span,
                               tuple(self.assignment(_token(a)) for a in args))

    def _run_shell(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.RunShell:
        token = _token(args[0])
        return nodes.RunShell(span, keyword_span, str(token), self.span(token))

    def _run_exec(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.RunExec:
        token = _token(args[0])
        return nodes.RunExec(span, keyword_span, self.exec_argv(token), self.span(token))

    def _copy(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Copy:
        return nodes.Copy(span, keyword_span, self.word(_token(args[0])),
                          self.word(_token(args[1])))

    def _venv(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Venv:
        return nodes.Venv(span, keyword_span, self.word(_token(args[0])))

    def _system_python(self, span: Span, keyword_span: Span,
                       args: list[_Child]) -> nodes.SystemPython:
        return nodes.SystemPython(span, keyword_span)

    def _port(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Port:
        return nodes.Port(span, keyword_span, tuple(self.word(_token(a)) for a in args))

    def _require(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Require:
        terms = tuple(self.comparison(_tree(t)) for t in args[0::2])
        joiners = tuple(str(j) for j in args[1::2])
        return nodes.Require(span, keyword_span, terms, joiners)

    def _include(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Include:
        return nodes.Include(span, keyword_span, self.word(_token(args[0])))

    def _arg(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Arg:
        token = _token(args[0])
        if token.type == "ASSIGNMENT":
            assignment = self.assignment(token)
            return nodes.Arg(span, keyword_span, assignment.key, assignment.value)
        return nodes.Arg(span, keyword_span, self.word(token), None)

    def _secret(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Secret:
        return nodes.Secret(span, keyword_span, tuple(self.word(_token(a)) for a in args))

    def _login(self, span: Span, keyword_span: Span, args: list[_Child]) -> nodes.Login:
        registry = self.word(_token(args[4])) if len(args) == 5 else None
        return nodes.Login(span, keyword_span, self.word(_token(args[0])),
                           self.word(_token(args[2])), registry)

    # The pieces.

    def span(self, token: lark.Token) -> Span:
        return self.line.span(_start(token), _end(token))

    def word(self, token: lark.Token) -> nodes.Word:
        raw = str(token)
        return nodes.Word(self.unquote(raw, _start(token)), raw, _quote_of(raw),
                          self.span(token))

    def unquote(self, raw: str, offset: int) -> str:
        """The value of a word: quotes removed, double-quote escapes decoded (an
        unknown escape is reported, E006)."""
        if raw[:1] == "'":
            return raw[1:-1]
        if raw[:1] != '"':
            return raw

        def replace(match: re.Match[str]) -> str:
            char = match.group(1)
            if char in _DQ_ESCAPES:
                return _DQ_ESCAPES[char]
            at = offset + 1 + match.start()
            self.diagnostics.append(error(
                "E006", f"unknown escape \\{char} in a double-quoted string",
                self.line.span(at, at + 2),
                help='the escapes are \\" \\\\ \\n \\t; write \\\\ for a backslash, or use '
                     "single quotes, which take everything literally"))
            return match.group()

        return _ESCAPE.sub(replace, raw[1:-1])

    def argument(self, token: lark.Token) -> nodes.Word:
        """An extension's argument: a word, or KEY=VALUE kept as one word whose text
        has the value unquoted (``key="a b"`` -> ``key=a b``)."""
        if token.type != "ASSIGNMENT":
            return self.word(token)
        assignment = self.assignment(token)
        return nodes.Word(f"{assignment.key.text}={assignment.value.text}", str(token),
                          assignment.value.quote, assignment.span)

    def assignment(self, token: lark.Token) -> nodes.Assignment:
        raw = str(token)
        equals = raw.index("=")
        start = _start(token)
        key = nodes.Word(raw[:equals], raw[:equals], "", self.line.span(start, start + equals))
        value_raw = raw[equals + 1:]
        value_start = start + equals + 1
        value = nodes.Word(self.unquote(value_raw, value_start), value_raw,
                           _quote_of(value_raw),
                           self.line.span(value_start, _end(token)))
        return nodes.Assignment(key, value, self.span(token))

    def comparison(self, tree: lark.Tree[lark.Token]) -> nodes.Comparison:
        column_child, operator, value = tree.children
        column_token = _token(column_child)
        column = self.word(column_token)
        op_tokens = [_token(t) for t in _tree(operator).children]
        first, last = op_tokens[0], op_tokens[-1]
        op_raw = self.line.text[_start(first):_end(last)]
        op_text = " ".join(str(t) for t in op_tokens)
        op = nodes.Word(op_text, op_raw, "", self.line.span(_start(first), _end(last)))
        if isinstance(value, lark.Tree):
            list_tokens = [_token(t) for t in value.children]
            bracket_open, bracket_close = list_tokens[0], list_tokens[-1]
            items = tuple(self.word(t) for t in list_tokens[1:-1] if t.type != "COMMA")
            checked: nodes.Word | nodes.ListValue = nodes.ListValue(
                items, self.line.span(_start(bracket_open), _end(bracket_close)))
            end = _end(bracket_close)
        else:
            checked = self.word(value)
            end = _end(value)
        return nodes.Comparison(column, op, checked,
                                self.line.span(_start(column_token), end))

    def exec_argv(self, token: lark.Token) -> tuple[str, ...]:
        """Decode RUN's exec form; anything but a JSON array of strings is E012."""
        text = str(token)
        help_ = ('write RUN ["prog", "arg", ...] with every item in double quotes, or use '
                 "the shell form, which must not start with [\"")
        try:
            argv = json.loads(text)
        except json.JSONDecodeError as exc:
            at = _start(token) + exc.pos
            self.diagnostics.append(error(
                "E012", f"RUN's exec form is not valid JSON: {exc.msg}",
                self.line.span(at, at + 1), help=help_))
            return ()
        except RecursionError:
            self.diagnostics.append(error(
                "E012", "RUN's exec form is nested too deeply to be a list of strings",
                self.span(token), help=help_))
            return ()
        bad = [item for item in argv if not isinstance(item, str)]
        if bad:
            shown = json.dumps(bad[0])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            self.diagnostics.append(error(
                "E012", f"RUN's exec form must hold only strings, not {shown}",
                self.span(token), help=help_))
            return ()
        if any("\x00" in item or _has_surrogate(item) for item in argv):
            self.diagnostics.append(error(
                "E012", "RUN's exec form holds a NUL character or a lone surrogate, "
                        "which no program can receive",
                self.span(token), help=help_))
            return ()
        return tuple(argv)


def _token(child: _Child) -> lark.Token:
    """A child the grammar makes a terminal, typed as one."""
    assert isinstance(child, lark.Token), child
    return child


def _tree(child: _Child) -> lark.Tree[lark.Token]:
    """A child the grammar makes a sub-rule (``comparison``, ``operator``), typed as one."""
    assert isinstance(child, lark.Tree), child
    return child


def _start(token: lark.Token) -> int:
    """Where ``token`` starts in the line: lark positions every token its lexer makes."""
    assert token.start_pos is not None
    return token.start_pos


def _end(token: lark.Token) -> int:
    """Where ``token`` ends in the line (see :func:`_start`)."""
    assert token.end_pos is not None
    return token.end_pos


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def _quote_of(raw: str) -> str:
    return raw[0] if raw[:1] in ("'", '"') else ""


# -- explaining a parse error ------------------------------------------------------------

_REQUIRE_WORD_AT = re.compile(r"""(?:[^ \t"',\[\]]|"(?:[^"\\]|\\.)*"?|'[^']*'?)+|.""")
_BRACKETS = re.compile(r"""("(?:[^"\\]|\\.)*"?|'[^']*'?)|\[|\]""")


def _explain(exc: UnexpectedInput, line: _LogicalLine) -> Diagnostic:
    """Turn lark's "unexpected token" into an error a user can act on, with a code.

    The message comes from the line itself (its keyword, the word at fault, the
    words before it) rather than from the parser state alone, because LALR merges
    the expectations of neighbouring states.
    """
    text = line.text
    at_end = isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    offset = len(text) if at_end else min(exc.pos_in_stream or 0, len(text))
    at_end = at_end or offset >= len(text)
    expected = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    first = _match(_FIRST_WORD, text, 0)
    keyword = first.group(1).upper()
    keyword = keyword if keyword in BUILTIN_KEYWORDS else None
    if keyword == "REQUIRE":
        return _explain_require(line, offset, at_end, expected, first.end())
    culprit = "" if at_end else _match(_WORD_AT, text, offset).group() or text[offset]
    where = line.end_span() if at_end else line.span(offset, offset + len(culprit))
    before = _WORD_AT.findall(text, first.end(), offset)

    if not at_end and _glued_quote(culprit):
        return _glued_quote_error(culprit, where)
    if offset <= first.start(1):
        return error("E008", f"a line must start with a directive keyword, not {culprit}",
                     where, help="start the line with a directive such as FROM, CODE or RUN; "
                                 "a quoted keyword is not a keyword")
    if keyword is None:
        return _unexpected(culprit, where)
    usage = f"usage: {BY_KEYWORD[keyword].usage}"
    if keyword in ("ENV", "AUTOSCALE") and not at_end:
        hint = ('quote only the value: KEY="a value"' if _WHOLE_QUOTED.match(culprit)
                else "write KEY=VALUE with no space around '='")
        return error("E011", f"{keyword} takes KEY=VALUE assignments; `{culprit}` is not one",
                     where, help=f"{hint} ({usage})")
    if at_end:
        needs = f"{keyword} needs {BY_KEYWORD[keyword].needs}"
        if keyword == "COPY" and before:
            needs = f"COPY needs a destination after `{before[-1]}`"
        elif keyword == "FROM" and before and before[-1].upper() == "STORAGE":
            needs = "STORAGE needs a size (in GB, or with a unit: 80GB, 0.5TB)"
        elif keyword == "PIP" and before == ["-r"]:
            needs = "PIP -r needs a requirements file"
        elif keyword == "LOGIN" and before:
            needs = {"PASSWORD": "PASSWORD needs the NAME of the secret that holds it",
                     "REGISTRY": "REGISTRY needs a host (ghcr.io, docker.io)"}.get(
                before[-1].upper(), f"LOGIN needs PASSWORD and a secret's NAME after "
                                    f"`{before[-1]}`")
        return error("E009", needs, where, help=usage)
    if keyword == "LOGIN" and expected & {"PASSWORD", "REGISTRY"}:
        # the culprit is not quoted back: it may be a password written in the wrong place
        word = ("PASSWORD after the user name" if "PASSWORD" in expected
                else "REGISTRY or the end of the line after the secret's NAME")
        return error("E010", f"LOGIN expects {word}", where,
                     help=usage + "; the password is never written in the Vastfile: "
                                  "PASSWORD names a secret")
    if expected & {"$END", "<END-OF-FILE>", "STORAGE"}:
        if keyword == "PIP":
            return error("E010", f"PIP -r takes one file: unexpected `{culprit}`", where,
                         help="write one PIP -r line per requirements file")
        takes = BY_KEYWORD[keyword].takes or "fewer arguments"
        if keyword == "FROM" and len(before) == 1:
            hint = f"; the size needs STORAGE before it: FROM {before[0]} STORAGE {culprit}"
        elif keyword in ("FROM", "SYSTEM_PYTHON"):
            hint = ""
        else:
            hint = "; a value with spaces goes in quotes"
        return error("E010", f"{keyword} takes {takes}: unexpected `{culprit}`", where,
                     help=usage + hint)
    return _unexpected(culprit, where)


def _explain_require(line: _LogicalLine, offset: int, at_end: bool, expected: set[str],
                     keyword_end: int) -> Diagnostic:
    text = line.text
    culprit = "" if at_end else _match(_REQUIRE_WORD_AT, text, offset).group()
    where = line.end_span() if at_end else line.span(offset, offset + len(culprit))
    before = text[keyword_end:offset].rstrip(" \t")
    usage = f"usage: {BY_KEYWORD['REQUIRE'].usage}"
    found = "" if at_end else f", found `{culprit}`"
    if not before and at_end:
        return error("E009", "REQUIRE needs a comparison", where,
                     help=f"{usage}, e.g. REQUIRE gpu_ram >= 48")
    if not at_end and _glued_quote(culprit):
        return _glued_quote_error(culprit, where)
    depth = 0
    for match in _BRACKETS.finditer(text, keyword_end, offset):
        if match.group(1) is None:
            depth = depth + 1 if match.group() == "[" else max(depth - 1, 0)
    if depth:
        if at_end:
            message = "the list is not closed"
        elif culprit == "[":
            message = "a list cannot hold another list"
        elif "ITEM" in expected:
            message = f"expected a list item{found}"
        else:
            message = f"expected `,` or `]` in the list{found}"
        return error("E017", message, where,
                     help="write a list as [A, B, C]: items separated by commas, closed by ]")
    last = before.split()[-1] if before.split() else ""
    if "COLUMN" in expected:
        after = f" after `{last}`" if last.upper() == "AND" else (
            " after `,`" if before.endswith(",") else "")
        return error("E013", f"expected a column name{after}{found}", where,
                     help=f"a comparison is column OP value, e.g. gpu_ram >= 48 ({usage})")
    if "OP" in expected:
        help_ = "the operators are == != < <= > >= IN NOTIN (also `not in`)"
        if culprit in ("=>", "=<"):
            help_ = f"write {culprit[::-1]}; " + help_
        elif culprit.startswith("=") and not culprit.startswith("=="):
            help_ = "write == to compare for equality; " + help_
        return error("E014", f"expected an operator after `{last}`{found}", where, help=help_)
    if expected & {"LBRACKET", "ITEM"}:
        return error("E015", f"expected a value after `{last}`{found}", where,
                     help="a value is a number, true/false, a word, a quoted string, or a "
                          "list [A, B] for IN and NOTIN")
    if expected & {"AND", "COMMA"}:
        return error("E016", f"expected AND, a comma or the end of the line{found}", where,
                     help="join comparisons with AND or a comma: "
                          "REQUIRE gpu_ram >= 48 AND num_gpus == 1")
    return _unexpected(culprit, where)


def _match(pattern: re.Pattern[str], text: str, pos: int) -> re.Match[str]:
    """``pattern.match`` where it cannot fail: ``_FIRST_WORD`` matches anywhere, and the
    word patterns match at any character lark stops at (never white space, which the
    grammar ignores)."""
    match = pattern.match(text, pos)
    assert match is not None, (pattern.pattern, text, pos)
    return match


def _glued_quote(word: str) -> bool:
    return ('"' in word or "'" in word) and not _WHOLE_QUOTED.match(word)


def _glued_quote_error(culprit: str, where: Span) -> Diagnostic:
    return error("E007", f"a quote inside the word `{culprit}`", where,
                 help='quotes enclose a whole word ("a b" or \'a b\'); '
                      "put the whole word in quotes, or leave the quotes out")


def _unexpected(culprit: str, where: Span) -> Diagnostic:
    return error("E018", f"unexpected `{culprit}`" if culprit else "unexpected end of line",
                 where, help="see the directive's usage in docs/vastfile.md")
