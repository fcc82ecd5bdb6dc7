""".vastignore: the paths a deployment's source trees leave behind.

A ``.vastignore`` holds gitignore patterns (pathspec's ``GitIgnoreSpec``, so
negation, ``**`` and trailing-slash folder patterns mean what they mean to git)
and governs its own folder and everything below it, as a ``.gitignore`` does:
each pattern is matched against the path relative to the folder holding the
file. Files nest: a ``.vastignore`` deeper down is consulted first, and the first
one with a pattern matching a path decides (so a deeper file can re-include what
a higher one leaves out). The files that apply to a tree are the one beside the
Vastfile and those in the folders between it and the tree (when the tree is
inside the Vastfile's folder), and those inside the tree. A folder that is
excluded is not entered, so nothing below it can be re-included. A
``.vastignore`` never travels itself.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vastbuild.errors import VastbuildError

if TYPE_CHECKING:
    import pathspec

IGNORE_FILE = ".vastignore"


@dataclass(frozen=True)
class _Layer:
    """One ``.vastignore``: the folder it governs, its text and compiled patterns."""

    folder: str
    path: Path
    text: str
    spec: pathspec.GitIgnoreSpec | None


class IgnoreRules:
    """The ``.vastignore`` files that govern a place, deepest last."""

    def __init__(self, layers: tuple[_Layer, ...] = ()):
        self._layers = layers

    @property
    def paths(self) -> list[Path]:
        """The files the rules come from (inputs of whatever they shape)."""
        return [layer.path for layer in self._layers]

    @property
    def digest(self) -> str:
        """Identifies the rules in step keys."""
        h = hashlib.sha256()
        for layer in self._layers:
            h.update(os.fsencode(layer.folder) + b"\0" +
                     layer.text.encode("utf-8", "surrogateescape") + b"\0")
        return h.hexdigest()

    def excludes(self, path: str, is_dir: bool) -> bool:
        """Whether ``path`` (absolute) is left out: the deepest file with a pattern that
        matches it decides."""
        for layer in reversed(self._layers):
            if layer.spec is None or not (path + "/").startswith(layer.folder.rstrip("/") + "/"):
                continue
            rel = os.path.relpath(path, layer.folder).replace(os.sep, "/")
            if rel == ".":
                continue
            result = layer.spec.check_file(rel + "/" if is_dir else rel)
            if result.include is not None:
                return bool(result.include)
        return False

    def with_folder(self, folder: str) -> IgnoreRules:
        """These rules, and ``folder/.vastignore`` when there is one (for ``folder`` and
        below)."""
        layer = _read(Path(folder))
        return self if layer is None else IgnoreRules((*self._layers, layer))


def rules_for(tree: Path, vastfile_folder: Path) -> IgnoreRules:
    """The rules that govern the tree at ``tree`` from above it: the ``.vastignore``
    beside the Vastfile and those in the folders down to the tree's own (excluded:
    the walk of the tree reads that one and those below)."""
    top, below = os.path.realpath(vastfile_folder), os.path.realpath(tree)
    rules = IgnoreRules()
    if below == top or not below.startswith(top.rstrip("/") + "/"):
        return rules
    folder = top
    rules = rules.with_folder(folder)
    between = os.path.relpath(os.path.dirname(below), top)
    for name in [] if between == "." else between.split(os.sep):
        folder = os.path.join(folder, name)
        rules = rules.with_folder(folder)
    return rules


def _read(folder: Path) -> _Layer | None:
    path = folder / IGNORE_FILE
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        raise VastbuildError(f"{path} is a folder", "a .vastignore is a file of patterns; "
                             "rename the folder") from None
    except OSError as exc:
        raise VastbuildError(f"cannot read {path}: {exc.strerror or exc}",
                             "make it readable, or remove it") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VastbuildError(f"{path} is not UTF-8 (byte {exc.start})",
                             "save it as UTF-8") from None
    spec = None
    if text.strip():
        import pathspec

        try:
            spec = pathspec.GitIgnoreSpec.from_lines(text.splitlines())
        except Exception as exc:  # pathspec reports a bad pattern by its own exceptions
            raise VastbuildError(f"{path}: {exc}",
                                 "fix the pattern; the syntax is gitignore's") from None
    return _Layer(os.path.realpath(folder), path, text, spec)
