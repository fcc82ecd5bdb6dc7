"""The TEMPLATE directive: ``TEMPLATE src dst KEY=VALUE...``.

``src`` is a text file of the workspace (relative to the Vastfile's folder),
``dst`` where the rendered file lands on the worker (absolute, or relative to
the worker's working folder, as COPY's dst), and each ``KEY=VALUE`` fills the
placeholder ``$KEY`` / ``${KEY}`` of :class:`string.Template` (``$$`` is a
literal ``$``). The check reads the template once so that a placeholder without
a value is an error in the Vastfile, with its line and column, and not a failed
build later.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vastbuild import nodes
from vastbuild.diagnostics import Diagnostic, Note, Span, error, warning
from vastbuild.directives import CheckContext

KEYWORD = "TEMPLATE"
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class TemplateSpec:
    """One checked TEMPLATE line: what the ``template`` step renders, and where to."""

    src: Path
    dst: str
    values: tuple[tuple[str, str], ...]


class TemplateDirective:
    keyword = KEYWORD

    def check(self, node: nodes.Extension, context: CheckContext
              ) -> tuple[TemplateSpec | None, list[Diagnostic]]:
        if len(node.args) < 2:
            return None, [error(
                "TPL001", "TEMPLATE needs a source file and a destination",
                node.span, "write `TEMPLATE src dst KEY=VALUE...`, e.g. "
                "`TEMPLATE settings.ini.in /app/settings.ini MODEL=qwen`")]
        source_word, dst_word, *assignments = node.args
        src, diagnostics = context.resolve(source_word, "file")
        diagnostics += _check_dst(dst_word)
        values, problems = _check_values(assignments)
        diagnostics += problems
        if src is not None:
            diagnostics += _check_placeholders(src, source_word, node.keyword_span, values)
        if src is None or any(d.is_error for d in diagnostics):
            return None, diagnostics
        return TemplateSpec(src, dst_word.text, tuple(values.items())), diagnostics


def _check_dst(word: nodes.Word) -> list[Diagnostic]:
    """The same rules as COPY's dst: a file path, no ``..``."""
    dst = word.text
    parts = PurePosixPath(dst).parts
    if not dst or dst.endswith("/") or parts in ((), ("/",), (".",)):
        return [error("TPL002", f"`{dst}` is not a file path", word.span,
                      "name the file to write, e.g. /app/settings.ini or conf/app.ini")]
    if ".." in parts:
        return [error("TPL002", f"`{dst}` must not contain `..`", word.span,
                      "write the destination as an absolute path, or one relative to "
                      "the worker's working folder without `..`")]
    return []


def _check_values(words: list[nodes.Word]) -> tuple[dict[str, str], list[Diagnostic]]:
    values: dict[str, str] = {}
    seen: dict[str, Span] = {}
    diagnostics: list[Diagnostic] = []
    for word in words:
        key, equals, value = word.text.partition("=")
        key_span = _prefix_span(word.span, len(key) or 1)
        if not equals or not _KEY.fullmatch(key):
            diagnostics.append(error(
                "TPL003", f"`{word.raw}` is not KEY=VALUE", word.span,
                "after the destination, each word sets a placeholder: NAME=value "
                "(NAME made of letters, digits and _, not starting with a digit)"))
        elif key in seen:
            diagnostics.append(error(
                "TPL004", f"`{key}` is set twice on this line", key_span,
                f"remove one of the two `{key}=...`", [Note(seen[key], "first set here")]))
        else:
            values[key] = value
            seen[key] = key_span
    return values, diagnostics


def _check_placeholders(src: Path, source_word: nodes.Word, keyword_span: Span,
                        values: dict[str, str]) -> list[Diagnostic]:
    try:
        text = src.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [error("TPL005", f"cannot read `{source_word.text}` as UTF-8 text: {exc}",
                      source_word.span, "a template must be a UTF-8 text file")]
    template = string.Template(text)
    if not template.is_valid():
        return [error("TPL006", f"`{source_word.text}` has a `$` that starts no placeholder",
                      source_word.span,
                      "placeholders are $NAME or ${NAME}; write $$ for a literal $")]
    wanted = template.get_identifiers()
    missing = [name for name in wanted if name not in values]
    diagnostics: list[Diagnostic] = []
    if missing:
        diagnostics.append(error(
            "TPL007", f"`{source_word.text}` needs a value for "
            + ", ".join(f"${name}" for name in missing), keyword_span,
            "add " + " ".join(f"{name}=..." for name in missing) + " to this line"))
    unused = [name for name in values if name not in wanted]
    if unused:
        diagnostics.append(warning(
            "TPL008", f"`{source_word.text}` has no placeholder "
            + ", ".join(f"${name}" for name in unused), keyword_span,
            "remove the unused values, or use them in the template"))
    return diagnostics


def _prefix_span(span: Span, width: int) -> Span:
    """The first ``width`` columns of a one-line span (a KEY inside KEY=VALUE)."""
    return Span(span.path, span.line, span.col, span.line, span.col + width)


directive = TemplateDirective()
