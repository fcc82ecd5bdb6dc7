"""The directive registry: the language's own directives, and the ones plugins add.

A plugin adds a directive without touching vastbuild: it declares an entry point
in the group ``vastbuild.directives`` whose *name* is the directive's keyword,
upper case, and whose object has

* ``keyword: str`` -- the same keyword, upper case;
* ``check(node: nodes.Extension, context: CheckContext)
  -> tuple[object | None, list[Diagnostic]]`` -- turns the directive's words
  (``node.args``) into a checked value, reporting problems as diagnostics with
  the words' spans. The value must be immutable and hashable where later steps
  hash it (tuples, frozen dataclasses, strings, paths).

The object may be a module, an instance or a class with a static ``check``. For
each use of the directive the checker calls ``check``; when it reports no error,
the value lands in :attr:`vastbuild.model.Deployment.plugins` as
``PluginDirective(keyword, value, span)``, in source order. For example, in a
plugin's ``pyproject.toml``::

    [project.entry-points."vastbuild.directives"]
    TEMPLATE = "vastbuild_template:directive"

Only the entry points whose keyword a Vastfile uses are imported, and the list
of entry points is read once per process: a Vastfile without plugin directives
costs one metadata scan, however many plugins are installed.
"""

from __future__ import annotations

import difflib
import functools
import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Literal, Protocol

from vastbuild import nodes
from vastbuild.diagnostics import Diagnostic, Span, error
from vastbuild.workspace import PathMissing, PathOutsideWorkspace, resolve_inside

ENTRY_POINT_GROUP = "vastbuild.directives"

#: the language's own directives, in the order the language reference lists them
BUILTIN_DIRECTIVES: tuple[str, ...] = (
    "DEPLOYMENT", "TAG", "VERSION", "TTL", "FROM", "CODE", "PIP", "APT", "ENV", "RUN",
    "COPY", "VENV", "SYSTEM_PYTHON", "PORT", "REQUIRE", "AUTOSCALE",
)

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


class DirectivePlugin(Protocol):
    """What an entry point of the ``vastbuild.directives`` group loads."""

    keyword: str

    def check(self, node: nodes.Extension, context: CheckContext
              ) -> tuple[object | None, list[Diagnostic]]: ...


class PluginLoadError(Exception):
    """A plugin's entry point could not be imported or does not look like a directive."""


@functools.cache
def plugin_entry_points() -> dict[str, EntryPoint]:
    """Installed directive plugins by keyword (upper case), read once per process.
    Entry points named like a built-in directive are ignored: the language's own
    meaning wins."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        keyword = point.name.upper()
        if keyword not in BUILTIN_DIRECTIVES:
            found.setdefault(keyword, point)
    return found


@functools.cache
def load_plugin(keyword: str) -> DirectivePlugin:
    """Import the plugin that claims ``keyword`` (upper case); raises
    :class:`PluginLoadError` with a message that names the entry point."""
    point = plugin_entry_points()[keyword]
    try:
        plugin = point.load()
    except Exception as exc:  # any import failure of third-party code is the plugin's
        raise PluginLoadError(
            f"the plugin for {keyword} ({point.value}) failed to import: "
            f"{type(exc).__name__}: {exc}") from exc
    if str(getattr(plugin, "keyword", "")).upper() != keyword or not callable(
            getattr(plugin, "check", None)):
        raise PluginLoadError(
            f"the plugin for {keyword} ({point.value}) has no `keyword = {keyword!r}` "
            "or no `check(node, context)`")
    return plugin


def known_directives() -> tuple[str, ...]:
    """Every keyword a Vastfile may use here: built-ins, then installed plugins."""
    return BUILTIN_DIRECTIVES + tuple(sorted(plugin_entry_points()))


def nearest_directive(keyword: str) -> str | None:
    """The known directive ``keyword`` was most likely meant to be (``FORM`` -> ``FROM``)."""
    matches = difflib.get_close_matches(keyword.upper(), known_directives(), n=1, cutoff=0.6)
    return matches[0] if matches else None


def check_extension(node: nodes.Extension, context: CheckContext
                    ) -> tuple[object | None, list[Diagnostic]]:
    """Check a directive the language does not define: hand it to the plugin that
    claims its keyword, or report it with the nearest known directive."""
    keyword = node.keyword.text.upper()
    if keyword not in plugin_entry_points():
        return None, [_unknown(node, keyword)]
    try:
        plugin = load_plugin(keyword)
    except PluginLoadError as exc:
        return None, [error("E023", str(exc), node.keyword_span,
                            "reinstall the plugin, or remove the directive")]
    try:
        value, diagnostics = plugin.check(node, context)
        diagnostics = list(diagnostics)
        if not all(isinstance(d, Diagnostic) for d in diagnostics):
            raise TypeError("check() must return (value, [Diagnostic, ...])")
    except Exception as exc:  # a plugin bug must not become a vastbuild traceback
        return None, [error("E023", f"the plugin for {keyword} failed: "
                            f"{type(exc).__name__}: {exc}", node.keyword_span,
                            "this is a bug in the plugin; report it to its authors")]
    return value, diagnostics


def _unknown(node: nodes.Extension, keyword: str) -> Diagnostic:
    nearest = nearest_directive(keyword)
    span: Span = node.keyword_span
    if nearest:
        hint = f"did you mean `{nearest}`?"
    else:
        hint = ("the directives are " + ", ".join(known_directives())
                + "; a plugin may add more")
    return error("E022", f"unknown directive `{node.keyword.text}`", span, hint)
