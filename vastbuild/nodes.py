"""The Vastfile syntax tree: plain dataclasses, one per directive.

The parser (:mod:`vastbuild.syntax`) builds these from the lark tree and knows
nothing about Vast: values stay the words the user wrote, with their spans, and
the checker (:mod:`vastbuild.check`) gives them meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

from vastbuild.diagnostics import Span


@dataclass(frozen=True)
class Word:
    """One argument as written. ``text`` is the value after unquoting/unescaping;
    ``raw`` is the exact source text (quotes included); ``quote`` is ``'"'``,
    ``"'"`` or ``""`` for a bare word."""

    text: str
    raw: str
    quote: str
    span: Span


@dataclass(frozen=True)
class Assignment:
    """``KEY=VALUE`` in ENV and AUTOSCALE."""

    key: Word
    value: Word
    span: Span


@dataclass(frozen=True)
class Directive:
    """Base of every directive node: ``span`` covers the whole logical line,
    ``keyword_span`` the keyword alone."""

    span: Span
    keyword_span: Span


@dataclass(frozen=True)
class DeploymentName(Directive):
    name: Word


@dataclass(frozen=True)
class Tag(Directive):
    tag: Word


@dataclass(frozen=True)
class Version(Directive):
    label: Word


@dataclass(frozen=True)
class Ttl(Directive):
    duration: Word


@dataclass(frozen=True)
class From(Directive):
    image: Word
    storage: Word | None


@dataclass(frozen=True)
class Code(Directive):
    path: Word


@dataclass(frozen=True)
class Pip(Directive):
    specs: tuple[Word, ...]


@dataclass(frozen=True)
class PipRequirements(Directive):
    """``PIP -r file``."""

    file: Word


@dataclass(frozen=True)
class Apt(Directive):
    packages: tuple[Word, ...]


@dataclass(frozen=True)
class Env(Directive):
    assignments: tuple[Assignment, ...]


@dataclass(frozen=True)
class RunShell(Directive):
    """``RUN text``: ``text`` is the rest of the logical line, verbatim (continuations
    joined, trailing comment removed), ``text_span`` where it starts."""

    text: str
    text_span: Span


@dataclass(frozen=True)
class RunExec(Directive):
    """``RUN ["prog", "arg"]``: the JSON array, already decoded."""

    argv: tuple[str, ...]
    argv_span: Span


@dataclass(frozen=True)
class Copy(Directive):
    src: Word
    dst: Word


@dataclass(frozen=True)
class Venv(Directive):
    path: Word


@dataclass(frozen=True)
class SystemPython(Directive):
    pass


@dataclass(frozen=True)
class Port(Directive):
    ports: tuple[Word, ...]


@dataclass(frozen=True)
class ListValue:
    items: tuple[Word, ...]
    span: Span


@dataclass(frozen=True)
class Comparison:
    """``column OP value`` in REQUIRE. ``op`` keeps the operator as written
    (``>=``, ``in``, ``not in`` ...); ``value`` is a word or a bracketed list."""

    column: Word
    op: Word
    value: Word | ListValue
    span: Span


@dataclass(frozen=True)
class Require(Directive):
    """``joiners`` are the words between the terms as written (``AND``, ``and``, ``,``),
    one fewer than ``terms``: only the formatter reads them."""

    terms: tuple[Comparison, ...]
    joiners: tuple[str, ...] = ()


@dataclass(frozen=True)
class Autoscale(Directive):
    assignments: tuple[Assignment, ...]


@dataclass(frozen=True)
class Include(Directive):
    """``INCLUDE path``: a fragment's lines, in place of this one."""

    path: Word


@dataclass(frozen=True)
class Arg(Directive):
    """``ARG NAME`` or ``ARG NAME=default``: what ``${NAME}`` in later lines stands for."""

    name: Word
    default: Word | None


@dataclass(frozen=True)
class Secret(Directive):
    """``SECRET NAME...``: environment variables whose values are read at deploy time."""

    names: tuple[Word, ...]


@dataclass(frozen=True)
class Login(Directive):
    """``LOGIN user PASSWORD NAME [REGISTRY host]``: the image registry's login; the
    password is the secret ``NAME``, read at deploy time like a SECRET's value."""

    user: Word
    password: Word
    registry: Word | None


@dataclass(frozen=True)
class Extension(Directive):
    """A directive the language does not define: the checker looks its keyword
    up in the directive registry (plugins) and reports it when nobody claims it."""

    keyword: Word
    args: tuple[Word, ...]


@dataclass(frozen=True)
class Comment:
    """A comment, kept for the formatter. ``inline`` when it follows a directive
    on the same line."""

    text: str
    span: Span
    inline: bool


@dataclass(frozen=True)
class Vastfile:
    """A parsed file: directives in source order, comments, and the source text
    (the formatter reads blank lines from it)."""

    path: str
    directives: tuple[Directive, ...]
    comments: tuple[Comment, ...]
    source: str
