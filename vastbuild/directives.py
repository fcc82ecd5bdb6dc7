"""The directives of the language: the table of built-in ones, and what a plugin's directive is.

:data:`DIRECTIVES` is the one place a built-in directive is described: its
keyword, usage line, meaning, how often it may appear, and the syntax-tree
nodes that carry it. The parser takes its error messages from it, the checker
its cardinality rules, the formatter its keywords, and the language reference
its list of directives (``docs/vastfile.md``, checked by a test); the grammar
(``grammar/vastfile.lark``) must define a keyword terminal for each, which the
parser verifies when it is built.

A plugin adds a directive through the registry (:mod:`vastbuild.plugins`): an
object with a ``keyword`` and a ``check`` (:class:`DirectivePlugin`), which
receives a :class:`CheckContext` to resolve paths and report diagnostics the
way built-in directives do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from vastbuild import nodes
from vastbuild.diagnostics import Diagnostic, error
from vastbuild.workspace import PathMissing, PathOutsideWorkspace, resolve_inside

Count = Literal["once", "at most once", "any"]


@dataclass(frozen=True)
class DirectiveSpec:
    """One built-in directive, as every pass and the language reference see it."""

    keyword: str
    #: the usage line(s), alternatives separated by `` | ``
    usage: str
    #: one line: what it means (the language reference's list)
    meaning: str
    #: how often a Vastfile may hold it
    count: Count
    #: what a line that ends right after the keyword lacks ("an image")
    needs: str
    #: what a fixed-arity directive takes ("one path"); None when it takes any number
    takes: str | None
    #: the syntax-tree nodes that carry it
    nodes: tuple[type[nodes.Directive], ...]
    #: a line to suggest when it is required and missing
    example: str = ""
    #: what the language reference adds to "how often"
    note: str = ""


DIRECTIVES: tuple[DirectiveSpec, ...] = (
    DirectiveSpec("DEPLOYMENT", "DEPLOYMENT name", "the deployment's name", "at most once",
                  "a name", "one name", (nodes.DeploymentName,)),
    DirectiveSpec("TAG", "TAG tag", "the routing tag, `default` when absent", "at most once",
                  "a tag", "one tag", (nodes.Tag,)),
    DirectiveSpec("VERSION", "VERSION label", "a label for this version", "at most once",
                  "a label", "one label", (nodes.Version,)),
    DirectiveSpec("TTL", "TTL duration", "tear down after this much client inactivity",
                  "at most once", "a duration", "one duration", (nodes.Ttl,)),
    DirectiveSpec("FROM", "FROM image [STORAGE size]",
                  "the image, and the disk in GB (default 50)", "once", "an image",
                  "an image and an optional STORAGE size", (nodes.From,),
                  example="FROM vastai/pytorch:@vastai-automatic-tag"),
    DirectiveSpec("CODE", "CODE path", "the deployment's Python module or package", "once",
                  "a path", "one path", (nodes.Code,), example="CODE app.py"),
    DirectiveSpec("PIP", "PIP spec... | PIP -r file", "Python packages installed at start",
                  "any", "a package spec or -r file", None, (nodes.Pip, nodes.PipRequirements)),
    DirectiveSpec("APT", "APT package...", "Debian packages installed at start", "any",
                  "a package name", None, (nodes.Apt,)),
    DirectiveSpec("ENV", "ENV KEY=VALUE...", "environment variables", "any",
                  "a KEY=VALUE assignment", None, (nodes.Env,)),
    DirectiveSpec("RUN", 'RUN shell text | RUN ["prog", "arg"...]', "commands run at start",
                  "any", "a command", None, (nodes.RunShell, nodes.RunExec)),
    DirectiveSpec("COPY", "COPY src dst", "a local file or folder that travels to the worker",
                  "any", "a source and a destination", "a source and a destination",
                  (nodes.Copy,)),
    DirectiveSpec("VENV", "VENV path", "use the venv at `path`", "at most once", "a path",
                  "one path", (nodes.Venv,), note="not with SYSTEM_PYTHON"),
    DirectiveSpec("SYSTEM_PYTHON", "SYSTEM_PYTHON", "use the image's own Python",
                  "at most once", "nothing", "no arguments", (nodes.SystemPython,),
                  note="not with VENV"),
    DirectiveSpec("PORT", "PORT n[/tcp|/udp]...", "publish ports", "any", "a port number",
                  None, (nodes.Port,)),
    DirectiveSpec("REQUIRE", "REQUIRE column OP value [AND column OP value]...",
                  "which machines the workers may run on", "any", "a comparison", None,
                  (nodes.Require,)),
    DirectiveSpec("AUTOSCALE", "AUTOSCALE key=value...", "how the endpoint scales", "any",
                  "a key=value setting", None, (nodes.Autoscale,)),
    DirectiveSpec("INCLUDE", "INCLUDE path",
                  "the REQUIRE, AUTOSCALE, ENV, PIP, APT, ARG and SECRET lines of a shared "
                  "fragment",
                  "any", "a path", "one path", (nodes.Include,)),
    DirectiveSpec("ARG", "ARG NAME | ARG NAME=default",
                  "a value that `${NAME}` stands for in later lines (`--arg NAME=VALUE`)",
                  "any", "a NAME or NAME=default", "one NAME or NAME=default", (nodes.Arg,)),
    DirectiveSpec("SECRET", "SECRET NAME...",
                  "environment variables whose values are read at deploy time, never stored",
                  "any", "a NAME", None, (nodes.Secret,)),
    DirectiveSpec("LOGIN", "LOGIN user PASSWORD NAME [REGISTRY host]",
                  "the login of a private image's registry; the password is the secret NAME",
                  "at most once", "a user name",
                  "a user, PASSWORD and a secret's NAME, and an optional REGISTRY host",
                  (nodes.Login,)),
)

#: the keywords of the built-in directives, in the language reference's order
BUILTIN_KEYWORDS: tuple[str, ...] = tuple(spec.keyword for spec in DIRECTIVES)
BY_KEYWORD: dict[str, DirectiveSpec] = {spec.keyword: spec for spec in DIRECTIVES}
BY_NODE: dict[type[nodes.Directive], DirectiveSpec] = {
    node: spec for spec in DIRECTIVES for node in spec.nodes}


def spec_of(directive: nodes.Directive) -> DirectiveSpec:
    """The table entry of a built-in directive's node."""
    return BY_NODE[type(directive)]


def reference_table() -> str:
    """The language reference's list of directives (markdown), as docs/vastfile.md holds it."""
    def often(spec: DirectiveSpec) -> str:
        text = "exactly once" if spec.count == "once" else spec.count
        return f"{text}, {spec.note}" if spec.note else text

    rows = ["| directive | how often | meaning |", "| --- | --- | --- |"]
    for spec in DIRECTIVES:
        forms = " / ".join(f"`{form}`" for form in spec.usage.split(" | "))
        rows.append(f"| {forms.replace('|', chr(92) + '|')} | {often(spec)} | {spec.meaning} |")
    return "\n".join(rows) + "\n"


PathKind = Literal["file", "dir", "any"]


@dataclass(frozen=True)
class CheckContext:
    """What a directive's check may know about the Vastfile being checked.

    Built-in directives use the same helpers, so a plugin's paths obey the same
    workspace rules and its diagnostics read like the language's own.
    """

    #: the Vastfile, absolute, symbolic links resolved
    vastfile: Path
    #: the workspace root (see :mod:`vastbuild.workspace`)
    root: Path
    #: how diagnostics name the Vastfile (the path the user gave)
    display: str

    @property
    def folder(self) -> Path:
        """The Vastfile's folder: relative paths in the Vastfile start here."""
        return self.vastfile.parent

    def resolve(self, word: nodes.Word, kind: PathKind = "any"
                ) -> tuple[Path | None, list[Diagnostic]]:
        """Resolve a path word to an absolute path inside the workspace.

        ``kind`` says what must be there: a ``"file"``, a ``"dir"`` or either. On
        failure the path is ``None`` and the diagnostic points at the word:
        E026 (leaves the workspace), E027 (missing), E033 (wrong kind).
        """
        if not word.text:
            return None, [error("E050", "the path is empty", word.span,
                                "write a path relative to the Vastfile's folder")]
        try:
            path = resolve_inside(self.root, self.folder, word.text)
        except PathOutsideWorkspace as exc:
            return None, [error("E026", exc.message, word.span, exc.hint)]
        except PathMissing as exc:
            return None, [error("E027", exc.message, word.span, exc.hint)]
        if kind == "file" and not path.is_file():
            return None, [error("E033", f"`{word.text}` is not a file", word.span,
                                "name a file here, not a folder")]
        if kind == "dir" and not path.is_dir():
            return None, [error("E033", f"`{word.text}` is not a folder", word.span,
                                "name a folder here")]
        return path, []

    def display_path(self, path: Path) -> str:
        """How a diagnostic names another file of the workspace: next to the Vastfile's
        own display path, so that it opens from the same working folder."""
        relative = os.path.relpath(path, self.folder)
        return Path(os.path.normpath(os.path.join(os.path.dirname(self.display),
                                                  relative))).as_posix()


@runtime_checkable
class DirectivePlugin(Protocol):
    """What an entry point of the ``vastbuild.directives`` group loads: a module, an
    instance, or a class with a static ``check``."""

    keyword: str

    def check(self, node: nodes.Extension, context: CheckContext
              ) -> tuple[object | None, list[Diagnostic]]: ...
