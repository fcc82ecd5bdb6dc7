""".vastignore: the paths a deployment's source trees leave behind.

A ``.vastignore`` beside the Vastfile holds gitignore patterns (pathspec's
``GitIgnoreSpec``, so negation, ``**`` and trailing-slash folder patterns mean
what they mean to git). Each pattern is matched against a path relative to the
root of the tree being collected (a COPY's source folder, CODE's package
folder), as a ``.dockerignore`` is matched against its build context. A folder
that is excluded is not entered, so nothing below it can be re-included.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from vastbuild.errors import VastbuildError

IGNORE_FILE = ".vastignore"


class IgnoreRules:
    """The compiled patterns of one ``.vastignore`` (or none)."""

    def __init__(self, path: Path | None, text: str):
        self.path = path
        self.text = text
        self._spec = None
        if text.strip():
            import pathspec

            try:
                self._spec = pathspec.GitIgnoreSpec.from_lines(text.splitlines())
            except Exception as exc:  # pathspec reports a bad pattern by its own exceptions
                raise VastbuildError(f"{path}: {exc}",
                                     "fix the pattern; the syntax is gitignore's") from None

    @property
    def digest(self) -> str:
        """Identifies the rules in step keys."""
        return hashlib.sha256(self.text.encode("utf-8", "surrogateescape")).hexdigest()

    def excludes(self, rel: str, is_dir: bool) -> bool:
        """Whether the tree path ``rel`` (posix, relative to the tree root) is left out."""
        if self._spec is None:
            return False
        return self._spec.match_file(rel + "/" if is_dir else rel)


def load_rules(folder: Path) -> IgnoreRules:
    """The rules of ``folder/.vastignore``; no rules when there is no such file."""
    path = folder / IGNORE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return IgnoreRules(None, "")
    except OSError as exc:
        raise VastbuildError(f"cannot read {path}: {exc.strerror or exc}",
                             "make it readable, or remove it") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VastbuildError(f"{path} is not UTF-8 (byte {exc.start})",
                             "save it as UTF-8") from None
    return IgnoreRules(path, text)
