"""INCLUDE and ARG: the pass between parsing and checking.

It turns a parsed Vastfile into the tree the checker sees: each ``INCLUDE path``
replaced by the lines of the fragment it names (read relative to the including
file, inside the workspace, recursively), each ``ARG`` removed once recorded,
and every ``${NAME}`` outside RUN replaced by the ARG's value (``--arg
NAME=VALUE`` over the declared default). Lines that came from a fragment keep
their spans in the fragment, so a diagnostic points into it; the checker's
diagnostics get an "included from" note afterwards (:func:`with_include_notes`).

A fragment may hold REQUIRE, AUTOSCALE, ENV, PIP (packages), APT, ARG, SECRET
and INCLUDE: what a team shares between deployments. What names a file relative to
a Vastfile (CODE, COPY, PIP -r) or says what the deployment is stays in the
Vastfile itself. RUN is never substituted: ``${HOME}`` there is the shell's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from vastbuild import nodes
from vastbuild.diagnostics import Diagnostic, Note, Span, error
from vastbuild.directives import CheckContext

#: what an ARG may be called
ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: ``${NAME}``; a ``${`` that this does not match is malformed
REFERENCE = re.compile(r"\$\{(" + ARG_NAME.pattern + r")\}")
#: the directives a fragment may hold
FRAGMENT_NODES: tuple[type[nodes.Directive], ...] = (
    nodes.Require, nodes.Autoscale, nodes.Env, nodes.Pip, nodes.Apt, nodes.Arg, nodes.Include,
    nodes.Secret)
#: how a fragment's file name ends, by convention: a file so named is checked on its own
#: as a fragment (``vastbuild lsp``, ``check -`` with such a --stdin-filename)
FRAGMENT_SUFFIX = ".vast"
#: how deep fragments may include fragments (a cycle is reported before this)
MAX_DEPTH = 32

Reader = Callable[[Path, str], "tuple[nodes.Vastfile | None, list[Diagnostic]]"]


@dataclass(frozen=True)
class Expanded:
    """The tree the checker sees, the fragments read (absolute, in order: inputs of
    the target), every ARG with its value, and what went wrong."""

    tree: nodes.Vastfile
    fragments: tuple[Path, ...]
    args: tuple[tuple[str, str], ...]
    #: fragment display path -> the INCLUDE that pulled it in (for notes)
    included_from: Mapping[str, Span]
    diagnostics: tuple[Diagnostic, ...]


@dataclass
class _Args:
    """The ARGs declared so far: name -> (value or None, where declared)."""

    overrides: Mapping[str, str]
    values: dict[str, tuple[str | None, Span]] = dataclasses.field(default_factory=dict)

    def declare(self, arg: nodes.Arg) -> None:
        name = arg.name.text
        value = self.overrides.get(name, arg.default.text if arg.default else None)
        self.values[name] = (value, arg.span)


def expand(tree: nodes.Vastfile, context: CheckContext, read: Reader, *,
           overrides: Mapping[str, str] | None = None) -> Expanded:
    """Expand ``tree``, the Vastfile of ``context``; ``read(path, display)`` parses a
    fragment. ``overrides``: the ``--arg`` values."""
    walker = _Walker(context, read, _Args(overrides or {}))
    directives = walker.directives(tree, context, [context.vastfile], None)
    args = tuple((name, value) for name, (value, _) in walker.args.values.items()
                 if value is not None)
    return Expanded(replace(tree, directives=tuple(directives)), tuple(walker.fragments),
                    args, walker.included_from, tuple(walker.diagnostics))


def not_in_a_fragment(directive: nodes.Directive) -> Diagnostic:
    """E054 at a directive a fragment may not hold (one not in :data:`FRAGMENT_NODES`)."""
    return error("E054", "an included fragment holds only REQUIRE, AUTOSCALE, ENV, PIP, "
                 "APT, ARG, SECRET and INCLUDE lines, not this one", directive.keyword_span,
                 "move this line into each Vastfile that includes the fragment")


def with_include_notes(diagnostics: list[Diagnostic], included_from: Mapping[str, Span]
                       ) -> list[Diagnostic]:
    """Each diagnostic inside a fragment with notes saying which INCLUDE (and which
    of its includers, up the chain) pulled the fragment in."""
    out = []
    for found in diagnostics:
        notes: list[Note] = []
        path = found.span.path if found.span else ""
        while path in included_from and len(notes) < MAX_DEPTH:
            at = included_from[path]
            notes.append(Note(at, "included from here"))
            path = at.path
        out.append(replace(found, notes=found.notes + tuple(notes)) if notes else found)
    return out


class _Walker:
    def __init__(self, context: CheckContext, read: Reader, args: _Args):
        self.top = context
        self.read = read
        self.args = args
        self.fragments: list[Path] = []
        self.included_from: dict[str, Span] = {}
        self.diagnostics: list[Diagnostic] = []

    def directives(self, tree: nodes.Vastfile, context: CheckContext, chain: list[Path],
                   fragment: str | None) -> list[nodes.Directive]:
        out: list[nodes.Directive] = []
        for directive in tree.directives:
            if fragment is not None and not isinstance(directive, FRAGMENT_NODES):
                self.diagnostics.append(not_in_a_fragment(directive))
                continue
            if isinstance(directive, nodes.Arg):
                self.args.declare(directive)
                continue
            if isinstance(directive, (nodes.RunShell, nodes.RunExec)):
                out.append(directive)
                continue
            substituted = cast(nodes.Directive, self.substitute(directive))
            if isinstance(substituted, nodes.Include):
                out.extend(self.include(substituted, context, chain))
            else:
                out.append(substituted)
        return out

    def include(self, node: nodes.Include, context: CheckContext,
                chain: list[Path]) -> list[nodes.Directive]:
        path, problems = context.resolve(node.path, "file")
        self.diagnostics.extend(problems)
        if path is None:
            return []
        if path in chain:
            cycle = " -> ".join(self.top.display_path(p) for p in [*chain, path])
            self.diagnostics.append(error(
                "E053", f"INCLUDE makes a cycle: {cycle}", node.path.span,
                "remove one of the INCLUDE lines of the cycle"))
            return []
        if len(chain) > MAX_DEPTH:
            self.diagnostics.append(error(
                "E053", f"INCLUDE nests deeper than {MAX_DEPTH} files", node.path.span,
                "include fewer levels of fragments"))
            return []
        display = context.display_path(path)
        self.included_from.setdefault(display, node.path.span)
        if path not in self.fragments:
            self.fragments.append(path)
        tree, problems = self.read(path, display)
        self.diagnostics.extend(problems)
        if tree is None:
            return []
        inner = CheckContext(vastfile=path, root=context.root, display=display)
        return self.directives(tree, inner, [*chain, path], display)

    def substitute(self, node: object) -> object:
        """``node`` with ``${NAME}`` replaced in every value it holds (not in names:
        an ENV key, a REQUIRE column, an extension's keyword)."""
        if isinstance(node, nodes.Word):
            return self.word(node)
        if isinstance(node, tuple):
            return tuple(self.substitute(item) for item in node)
        if isinstance(node, nodes.Assignment):
            return replace(node, value=self.word(node.value))
        if isinstance(node, nodes.Comparison):
            value = node.value
            if isinstance(value, nodes.Word):
                return replace(node, value=self.word(value))
            return replace(node, value=replace(value, items=self._words(value.items)))
        if isinstance(node, nodes.Extension):
            return replace(node, args=self._words(node.args))
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            changes = {f.name: self.substitute(getattr(node, f.name))
                       for f in dataclasses.fields(node)
                       if isinstance(getattr(node, f.name),
                                     (nodes.Word, tuple, nodes.ListValue, nodes.Comparison))}
            return replace(node, **changes) if changes else node
        return node

    def _words(self, words: tuple[nodes.Word, ...]) -> tuple[nodes.Word, ...]:
        return tuple(self.word(word) for word in words)

    def word(self, word: nodes.Word) -> nodes.Word:
        if "${" not in word.text:
            return word
        out, position = [], 0
        for match in REFERENCE.finditer(word.text):
            out.append(word.text[position:match.start()])
            position = match.end()
            value, declared = self.args.values.get(match[1], (None, None))
            if value is None:
                self.diagnostics.append(self._unknown(word, match[0], match[1], declared))
                return word
            out.append(value)
        rest = word.text[position:]
        if "${" in rest:
            at = self._span_of(word, "${")
            self.diagnostics.append(error(
                "E056", "`${` starts no reference: a reference is ${NAME}, NAME made of "
                "letters, digits and `_`", at, "write ${NAME}, or remove the `$`"))
            return word
        return replace(word, text="".join(out) + rest)

    def _unknown(self, word: nodes.Word, reference: str, name: str,
                 declared: Span | None) -> Diagnostic:
        at = self._span_of(word, reference)
        if declared is not None:
            return error("E055", f"`{reference}` has no value: `ARG {name}` sets no default",
                         at, f"give one with --arg {name}=VALUE, or write ARG {name}=default",
                         [Note(declared, "declared here")])
        return error("E055", f"`{reference}` names no ARG declared above it", at,
                     f"declare it first: ARG {name}=default (a secret belongs in the "
                     "environment, not in a Vastfile)")

    @staticmethod
    def _span_of(word: nodes.Word, text: str) -> Span:
        """Where ``text`` is inside ``word`` (the whole word when it cannot be told)."""
        index = word.raw.find(text)
        if index < 0 or word.span.line != word.span.end_line:
            return word.span
        col = word.span.col + index
        return Span(word.span.path, word.span.line, col, word.span.line, col + len(text))
