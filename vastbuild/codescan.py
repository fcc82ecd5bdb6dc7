"""Reading CODE statically for the names it gives its ``Deployment``.

The worker imports ``deployment`` and looks up the Deployment named in
config.json, so the name the code passes to ``Deployment(name=...)`` must be
the one the Vastfile's DEPLOYMENT gives. The checker finds that name without
running the user's code: importing it would run arbitrary module-level code
(model downloads, GPU probes) inside the build tool, and need its dependencies
installed. So the source is parsed with :mod:`ast` and only constant names are
read.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vastbuild.diagnostics import Diagnostic, Span, error


@dataclass(frozen=True)
class DeploymentCall:
    """One ``Deployment(...)`` call found in the code.

    ``name`` is the constant string passed as ``name=``, ``""`` when the call
    gives no name (the SDK then registers the deployment under ``""``), and
    ``None`` when the name is not a constant the checker can read.
    ``positional`` says the call passes positional arguments: the client takes
    the first one as its API key, not as the name.
    """

    name: str | None
    positional: bool
    span: Span


def scan_code(path: Path, kind: Literal["module", "package"],
              display: Callable[[Path], str]
              ) -> tuple[list[DeploymentCall], list[Diagnostic]]:
    """The Deployment calls of a CODE module, or of a package: its ``__init__.py``
    first, and its other modules only when ``__init__.py`` creates none.

    ``display`` turns a file's path into the path diagnostics show. A file that
    does not parse is an error (E029) at its line and column: the worker's
    ``import deployment`` would fail the same way.
    """
    if kind == "module":
        return _scan_file(path, display)
    calls, diagnostics = _scan_file(path / "__init__.py", display)
    if calls or diagnostics:
        return calls, diagnostics
    for module in sorted(path.rglob("*.py")):
        if module.name == "__init__.py" and module.parent == path:
            continue
        found, problems = _scan_file(module, display)
        calls.extend(found)
        diagnostics.extend(problems)
    return calls, diagnostics


def _scan_file(path: Path, display: Callable[[Path], str]
               ) -> tuple[list[DeploymentCall], list[Diagnostic]]:
    shown = display(path)
    if not path.is_file():  # a named pipe would block the read; the build refuses it anyway
        return [], [error("E033", f"{shown} is not a regular file", Span.point(shown, 1, 1),
                          "the worker imports CODE: make it a Python file")]
    try:
        source = path.read_bytes()
    except OSError as exc:
        return [], [error("E033", f"cannot read {shown}: {exc.strerror or exc}",
                          Span.point(shown, 1, 1),
                          "check the file's permissions")]
    try:
        tree = ast.parse(source, filename=shown)
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte, before Python 3.11.4
        return [], [_syntax_error(exc, shown)]
    except (RecursionError, MemoryError):  # Python's own compiler gives up the same way
        return [], [error("E029", f"{shown} is nested too deeply for Python to compile",
                          Span.point(shown, 1, 1), "the worker imports this file; split "
                          "the deeply nested expression")]
    lines = source.splitlines()
    names = _aliases(tree)
    return [_call(node, shown, lines) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and _is_deployment(node.func, names)], []


def _syntax_error(exc: SyntaxError | ValueError, shown: str) -> Diagnostic:
    line = getattr(exc, "lineno", None) or 1
    col = getattr(exc, "offset", None) or 1
    end_line = getattr(exc, "end_lineno", None) or line
    end_col = getattr(exc, "end_offset", None) or 0
    if end_line != line or end_col <= col:
        end_line, end_col = line, col + 1
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return error("E029", f"Python syntax error in {shown}: {message}",
                 Span(shown, line, col, end_line, end_col),
                 "the worker imports this file; fix the syntax error")


def _aliases(tree: ast.Module) -> frozenset[str]:
    """Local names ``Deployment`` goes by (``from ... import Deployment as App``)."""
    names = {"Deployment"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.update(alias.asname for alias in node.names
                         if alias.name == "Deployment" and alias.asname)
    return frozenset(names)


def _is_deployment(func: ast.expr, names: frozenset[str]) -> bool:
    if isinstance(func, ast.Name):
        return func.id in names
    return isinstance(func, ast.Attribute) and func.attr == "Deployment"


def _call(node: ast.Call, shown: str, lines: list[bytes]) -> DeploymentCall:
    name: str | None = ""
    target: ast.expr = node
    for keyword in node.keywords:
        if keyword.arg == "name":
            target = keyword.value
            if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                name = keyword.value.value
            elif isinstance(keyword.value, ast.Constant) and keyword.value.value is None:
                name = ""
            else:
                name = None
        elif keyword.arg is None:  # **options: the name may hide in there
            name = None
    if node.args:
        target = node.args[0]
    return DeploymentCall(name, bool(node.args), _span(target, shown, lines))


def _span(node: ast.expr, shown: str, lines: list[bytes]) -> Span:
    """A node's span in characters (ast counts columns in UTF-8 bytes)."""
    def column(line: int, offset: int) -> int:
        text = lines[line - 1] if 0 < line <= len(lines) else b""
        return len(text[:offset].decode("utf-8", "replace")) + 1

    end_line = node.end_lineno or node.lineno
    end_offset = node.end_col_offset if node.end_col_offset is not None else node.col_offset + 1
    return Span(shown, node.lineno, column(node.lineno, node.col_offset),
                end_line, column(end_line, end_offset))
