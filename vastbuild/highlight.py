"""Syntax highlighting of Vastfiles: the language's vocabulary, and a Pygments lexer.

Every highlighter vastbuild ships colours the same words: this lexer, and the VS
Code (TextMate) and Vim grammars that ``scripts/editor_grammars.py`` writes into
``editors/``. So the words are read in one place, :func:`vocabulary`, from where
the language itself defines them -- the directive table, the grammar's keyword
terminals, the query catalog, the AUTOSCALE settings and the units -- and a new
directive, column or GPU reaches every editor when the grammars are regenerated
(a test fails while they are stale). :data:`PATTERNS` holds the regular
expressions the highlighters share, written in the syntax both Python's ``re``
and Oniguruma (VS Code's engine) read.

The lexer is registered as a Pygments plugin (entry point ``pygments.lexers``),
so ``pygmentize -l vastfile``, Sphinx and MkDocs colour Vastfiles once vastbuild
is installed. It reads a line the way the parser does (``vastbuild.syntax``): a
directive keyword starts it, ``\\`` at its end continues it, ``#`` after white
space outside quotes starts a comment; REQUIRE, AUTOSCALE, ENV/ARG and RUN get
their own states because a word means something else in each.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import lark
from pygments.lexer import RegexLexer, bygroups, include
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
    _TokenType,
)

from vastbuild.catalog import catalog
from vastbuild.directives import BUILTIN_KEYWORDS
from vastbuild.model import AUTOSCALE_SETTINGS
from vastbuild.require import BOOLEAN_WORDS
from vastbuild.syntax import grammar_text
from vastbuild.units import DURATION_UNITS_S, NUMBER_PATTERN, SIZE_UNITS_GB

#: the directives whose arguments are compared, set or run rather than listed
REQUIRE, AUTOSCALE, RUN = "REQUIRE", "AUTOSCALE", "RUN"
#: the directives whose arguments are KEY=VALUE assignments (ARG's may be a bare NAME)
ASSIGNING = ("ENV", "ARG")


@dataclass(frozen=True)
class Vocabulary:
    """The words a highlighter colours, as the language defines them."""

    #: the built-in directive keywords (case-insensitive), in the reference's order
    directives: tuple[str, ...]
    #: directive -> the other keywords its line may hold (``FROM`` -> ``STORAGE``), as
    #: the grammar's rules reach them; REQUIRE's are its word operators
    sub_keywords: Mapping[str, tuple[str, ...]]
    #: REQUIRE's symbolic comparison operators (``>=``)
    comparison_operators: tuple[str, ...]
    #: every column REQUIRE accepts (case-sensitive)
    columns: tuple[str, ...]
    #: the GPU constants REQUIRE accepts for ``gpu_name`` (``RTX_4090``)
    gpu_constants: tuple[str, ...]
    #: the values of bool columns (any case)
    booleans: tuple[str, ...]
    #: the AUTOSCALE keys
    autoscale_keys: tuple[str, ...]
    #: the units a number may carry: sizes (``80GB``) and durations (``15m``), any case
    units: tuple[str, ...]

    @property
    def keyword_directives(self) -> tuple[str, ...]:
        """The directives besides REQUIRE whose line holds keywords of its own (FROM's
        ``STORAGE``): each gets a state of its own."""
        return tuple(keyword for keyword in self.sub_keywords if keyword != REQUIRE)

    @property
    def listing_directives(self) -> tuple[str, ...]:
        """The directives whose line is a plain list of words (DEPLOYMENT, COPY, PORT...)."""
        special = (REQUIRE, AUTOSCALE, RUN, *ASSIGNING, *self.sub_keywords)
        return tuple(keyword for keyword in self.directives if keyword not in special)


#: a keyword terminal of the grammar: a literal word, then a look-ahead for its end
_KEYWORD_TERMINAL = re.compile(r"(?P<word>-?[a-z_]+)\(\?[!=]")
#: the Pygments states of a lexer, by name
TokenStates = dict[str, list[object]]


def _grammar_sub_keywords() -> dict[str, tuple[str, ...]]:
    """Directive -> the keyword terminals its grammar rules reach besides its own.

    A keyword terminal is one whose pattern is a literal word ended by a look-ahead
    (``storage(?![^ \\t])``); the grammar's rules for a directive start with the
    directive's terminal, and what they reach through sub-rules (REQUIRE's
    ``comparison`` and ``operator``) belongs to that directive.
    """
    parser = lark.Lark(grammar_text(), parser="lalr", lexer="contextual",
                       maybe_placeholders=False)
    word_of: dict[str, str] = {}  # terminal name -> its word, in capitals when any case
    for terminal in parser.terminals:
        match = _KEYWORD_TERMINAL.match(terminal.pattern.value)
        if match and terminal.name not in BUILTIN_KEYWORDS:
            word = match["word"]
            word_of[terminal.name] = word.upper() if "i" in terminal.pattern.flags else word
    expansions: dict[str, list[list[str]]] = {}
    for rule in parser.rules:
        expansions.setdefault(rule.origin.name, []).append(
            [symbol.name for symbol in rule.expansion])

    def reached(symbols: Iterable[str], seen: set[str]) -> list[str]:
        found: list[str] = []
        for symbol in symbols:
            if symbol in word_of and word_of[symbol] not in found:
                found.append(word_of[symbol])
            elif symbol in expansions and symbol not in seen:
                seen.add(symbol)
                for expansion in expansions[symbol]:
                    found += [word for word in reached(expansion, seen) if word not in found]
        return found

    by_directive: dict[str, list[str]] = {}
    for rule_expansions in expansions.values():
        for expansion in rule_expansions:
            if expansion and expansion[0] in BUILTIN_KEYWORDS:
                known = by_directive.setdefault(expansion[0], [])
                known += [word for word in reached(expansion[1:], set()) if word not in known]
    return {keyword: tuple(found) for keyword, found in by_directive.items() if found}


@functools.cache
def vocabulary() -> Vocabulary:
    """The vocabulary of the language vastbuild implements, read once."""
    queries = catalog()
    return Vocabulary(
        directives=BUILTIN_KEYWORDS,
        sub_keywords=MappingProxyType(_grammar_sub_keywords()),
        comparison_operators=tuple(op for op in queries.operators if not op.isalpha()),
        columns=tuple(sorted(queries.columns)),
        gpu_constants=tuple(queries.gpu_constants),
        booleans=BOOLEAN_WORDS,
        autoscale_keys=tuple(setting.name for setting in AUTOSCALE_SETTINGS),
        units=(*SIZE_UNITS_GB, *DURATION_UNITS_S),
    )


def alternation(words: Iterable[str]) -> str:
    """A regex group matching any of ``words`` literally, longest first so that no
    word loses to its prefix (``RTX_4090_Ti`` before ``RTX_4090``)."""
    return "(?:" + "|".join(re.escape(word) for word in
                            sorted(set(words), key=lambda word: (-len(word), word))) + ")"


@dataclass(frozen=True)
class Patterns:
    """The regular expressions every highlighter shares (``re`` and Oniguruma syntax).

    A line holds a trailing ``\\n`` when these run (Pygments and VS Code both pass
    it), so "end of word" is a look-ahead for white space, ``\\n`` or the end.
    """

    #: the white space a directive may follow at a line's start
    line_start: str = r"^[ \t]*"
    #: a line that is a comment
    comment_line: str = r"^[ \t]*#[^\n]*"
    #: REQUIRE's list brackets and commas, RUN's JSON array's
    punctuation: str = r"[\[\],]"
    #: a word's start: after white space, or at a line's start (a line a ``\\`` continues
    #: is read on its own by the editors, so the lexer does the same)
    word_start: str = r"(?<![^ \t\n])"
    #: a keyword's end: the grammar's ``(?![^ \\t])``
    word_end: str = r"(?![^ \t\n])"
    #: the start of REQUIRE's ``AND``, ``IN``...: after white space or a list
    operator_start: str = r"(?<![^ \t\n\]])"
    #: the end of REQUIRE's ``IN`` and ``NOTIN``, which may touch their list
    operator_end: str = r"(?![^ \t\n\[])"
    #: a REQUIRE column's start: after white space or a comma
    column_start: str = r"(?<![^ \t\n,])"
    #: a REQUIRE column's end, where an operator may touch it (``gpu_ram>=48``)
    column_end: str = r"(?=[ \t\n=!<>]|$)"
    #: where a value may start: at a word's start, after ``=``, an operator, in a list
    value_start: str = r"(?<![^ \t\n=<>!,\[])"
    #: a value's end: white space, a comma or a closing bracket
    value_end: str = r"(?![^ \t\n,\]])"
    #: a decimal number, as vastbuild.units reads one
    number: str = NUMBER_PATTERN
    #: ``${NAME}``: an ARG reference
    arg_reference: str = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"
    #: a ``\\`` that continues the line, with an optional comment after it
    continuation: str = r"(?<!\\)(\\)([ \t]*)((?<=[ \t])#[^\n]*)?(\n)"
    #: a comment line between the pieces of a continued directive
    continued_comment: str = r"^([ \t]*)(#[^\n]*)(\n)"
    #: ``#`` after white space outside quotes
    inline_comment: str = r"(?<=[ \t])#[^\n]*"
    #: a single-quoted word: everything literal
    single_quoted: str = r"'[^'\n]*'"
    #: a ``\\`` at a line's end inside a double-quoted word: the word goes on
    quoted_continuation: str = r"\\\n"
    #: an escape in a double-quoted word
    escape: str = r"\\."
    #: the key of a ``KEY=VALUE`` word
    key: str = r"(?<![^ \t\n])[^ \t\n=\"'$\\]+(?==)"
    #: a plain word, stopping where a string, an ARG reference or a ``\\`` may start (or
    #: that ``$`` or ``\\`` alone): every highlighter reads a line from its start, one
    #: word at a time, so that no word is coloured from its middle (``x=1`` is no number)
    plain: str = r"[^ \t\n\"'$\\]+|[$\\]"
    #: a plain word of REQUIRE, stopping where an operator or a list may start
    require_plain: str = r"[^ \t\n\"'$\\,\[\]=!<>]+|[$\\=!]"
    #: a plain word of RUN's shell text or JSON array
    shell_plain: str = r"[^ \t\n\"'\\\[\],]+|\\"
    #: a directive keyword the language does not define (a plugin's): an unquoted word,
    #: up to a ``\\`` that continues the line
    bare_keyword: str = r"(?:[^ \t\n\"'\\]|\\(?![ \t]*\n|[ \t]+#[^\n]*\n))+(?![^ \t\n\\])"


    @property
    def assignment(self) -> str:
        """A ``KEY=`` at a word's start; groups: the key, the ``=``."""
        return f"({self.key})(=)"


PATTERNS = Patterns()


def _groups(*tokens: _TokenType) -> object:
    """Pygments' ``bygroups``: a token type for each group of a rule's match (typed here,
    since the stubs leave it untyped)."""
    return bygroups(*tokens)  # type: ignore[no-untyped-call]


def keyword_pattern(words: Iterable[str], end: str = PATTERNS.word_end) -> str:
    """Any of ``words`` as a whole, case-insensitive word (the grammar's keywords)."""
    return f"(?i:{alternation(words)}){end}"


def number_pattern(units: Iterable[str]) -> str:
    """A whole-word number with an optional unit (``80``, ``80GB``, ``1.5h``); groups:
    the number, the unit."""
    return (f"{PATTERNS.value_start}({PATTERNS.number})((?i:{alternation(units)})?)"
            f"{PATTERNS.value_end}")


def value_pattern(values: Iterable[str], ignore_case: bool = False) -> str:
    """Any of ``values`` as a whole REQUIRE value (a GPU constant, ``true``)."""
    words = f"(?i:{alternation(values)})" if ignore_case else alternation(values)
    return PATTERNS.value_start + words + PATTERNS.value_end


def word_operator_pattern(words: Vocabulary) -> str:
    """REQUIRE's word operators (``AND``, ``IN``, ``NOTIN``, ``NOT``), any case."""
    return PATTERNS.operator_start + keyword_pattern(words.sub_keywords[REQUIRE],
                                                     PATTERNS.operator_end)


def sub_keyword_pattern(words: Vocabulary, directive: str) -> str:
    """The other keywords of ``directive``'s line (``STORAGE``), as whole words."""
    return PATTERNS.word_start + keyword_pattern(words.sub_keywords[directive])


def autoscale_key_pattern(words: Vocabulary) -> str:
    """An AUTOSCALE key the language defines, before its ``=``."""
    return f"{PATTERNS.word_start}{alternation(words.autoscale_keys)}(?==)"


def column_pattern(words: Vocabulary) -> str:
    """A REQUIRE column the catalog knows, as a whole word."""
    return PATTERNS.column_start + alternation(words.columns) + PATTERNS.column_end


def _directive_states(words: Vocabulary) -> TokenStates:
    """The Pygments states: ``root`` at a line's start, one state per kind of
    directive line, and the rules they share."""
    p = PATTERNS
    numbers = number_pattern(words.units)
    root: list[object] = [
        (p.comment_line, Comment.Single),
        (r"[ \t]*\n", Whitespace),
        (r"[ \t]+", Whitespace),
        # a line that only continues: its directive starts on the next line
        (p.continuation, _groups(String.Escape, Whitespace, Comment.Single, Whitespace)),
        (keyword_pattern([RUN]), Keyword, "run"),
        (keyword_pattern([REQUIRE]), Keyword, "require"),
        (keyword_pattern([AUTOSCALE]), Keyword, "autoscale"),
        (keyword_pattern(ASSIGNING), Keyword, "assignments"),
        *[(keyword_pattern([keyword]), Keyword, f"arguments-{keyword}")
          for keyword in words.keyword_directives],
        (keyword_pattern(words.listing_directives), Keyword, "arguments"),
        # a directive the language does not define: a plugin's, with KEY=VALUE words
        (p.bare_keyword, Name.Builtin, "assignments"),
        (r"[^\n]+", Error),
    ]
    states: TokenStates = {
        "root": root,
        "line": [
            (p.continuation, _groups(String.Escape, Whitespace, Comment.Single, Whitespace)),
            (p.continued_comment, _groups(Whitespace, Comment.Single, Whitespace)),
            (r"\n", Whitespace, "#pop"),
            (r"[ \t]+", Whitespace),
            (p.inline_comment, Comment.Single),
            (p.single_quoted, String.Single),
        ],
        "strings": [('"', String.Double, "string")],
        "values": [
            (p.arg_reference, String.Interpol),
            (numbers, _groups(Number, Keyword.Type)),
            (p.plain, Text),
        ],
        "string": [
            (p.quoted_continuation, String.Escape),
            (p.escape, String.Escape),
            (p.arg_reference, String.Interpol),
            (r'"', String.Double, "#pop"),
            (r'[^"\\$\n]+', String.Double),
            (r"\$", String.Double),
            (r"\n", Error, "#pop:2"),
        ],
        # RUN's quoted words are the shell's: ``${HOME}`` in them is no ARG reference
        "shell-string": [
            (p.quoted_continuation, String.Escape),
            (p.escape, String.Escape),
            (r'"', String.Double, "#pop"),
            (r'[^"\\\n]+', String.Double),
            (r"\n", Error, "#pop:2"),
        ],
        "arguments": [include("line"), include("strings"), include("values")],
        "assignments": [include("line"), include("strings"),
                        (p.assignment, _groups(Name.Variable, Operator)), include("values")],
        "autoscale": [include("line"), include("strings"),
                      (f"({autoscale_key_pattern(words)})(=)", _groups(Name.Attribute, Operator)),
                      (p.assignment, _groups(Name.Variable, Operator)),
                      include("values")],
        "require": [
            include("line"),
            include("strings"),
            (word_operator_pattern(words), Operator.Word),
            (alternation(words.comparison_operators), Operator),
            (p.punctuation, Punctuation),
            (column_pattern(words), Name.Attribute),
            (value_pattern(words.gpu_constants), Name.Constant),
            (value_pattern(words.booleans, ignore_case=True), Keyword.Constant),
            (p.arg_reference, String.Interpol),
            (numbers, _groups(Number, Keyword.Type)),
            (p.require_plain, Text),
        ],
        # RUN's text is the shell's (or a JSON array's): no ARG references, no units
        "run": [include("line"), ('"', String.Double, "shell-string"),
                (p.punctuation, Punctuation), (p.shell_plain, Text)],
    }
    for keyword in words.keyword_directives:
        states[f"arguments-{keyword}"] = [
            include("line"),
            include("strings"),
            (sub_keyword_pattern(words, keyword), Keyword),
            include("values"),
        ]
    return states


class VastfileLexer(RegexLexer):
    """Pygments lexer for Vastfiles (``Vastfile``, or any name ending in ``.vastfile``) and
    the fragments they INCLUDE (``*.vast``)."""

    name = "Vastfile"
    aliases = ["vastfile"]
    filenames = ["Vastfile", "*.vastfile", "*.vast"]
    mimetypes = ["text/x-vastfile"]
    flags = re.MULTILINE
    tokens = _directive_states(vocabulary())
