"""The library API: from a path on disk to a checked deployment.

This is what the CLI and Python users call. It finds the Vastfile, reads it as
bytes (the parser owns decoding, so a bad byte is a diagnostic with a line and
column), parses and checks it. Problems in the file come back as diagnostics;
a path that names no Vastfile at all is a :class:`~vastbuild.errors.VastbuildError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from vastbuild.diagnostics import Diagnostic, DiagnosticError, Span, error, has_errors
from vastbuild.errors import VastbuildError
from vastbuild.model import Deployment

VASTFILE = "Vastfile"
#: checker codes that a directive lost to a syntax error could cause
DEPENDS_ON_ABSENCE = frozenset({"E020", "E030"})


def find_vastfile(path: str | os.PathLike[str]) -> Path:
    """``path`` itself when it is a regular file, ``path/Vastfile`` when it is a folder
    holding one; otherwise a :class:`VastbuildError` that says what is missing."""
    path = Path(path)
    # os.path's tests answer False for any OSError (a name too long, say)
    if os.path.isdir(path):
        candidate = path / VASTFILE
        if os.path.isfile(candidate):
            return candidate
        raise VastbuildError(f"no {VASTFILE} in {path}",
                             f"create {candidate}, or name the Vastfile to use")
    if os.path.isfile(path):
        return path
    if os.path.exists(path):  # reading a named pipe or a device could wait forever
        raise VastbuildError(f"{path} is not a regular file",
                             "name a Vastfile, or a folder that holds one")
    if os.path.islink(path):
        raise VastbuildError(f"{path} is a symbolic link to {os.readlink(path)}, which does "
                             "not exist (or is a loop of links)",
                             "point the link at a Vastfile, or name the Vastfile itself")
    raise VastbuildError(f"{path} does not exist",
                         "name a Vastfile, or a folder that holds one")


def check_path(path: str | os.PathLike[str]) -> tuple[Deployment | None, list[Diagnostic]]:
    """Find, read, parse and check a Vastfile. The model is ``None`` when there is
    an error; diagnostics hold every error and warning found."""
    from vastbuild.check import check
    from vastbuild.syntax import parse

    vastfile = find_vastfile(path)
    shown = vastfile.as_posix()
    try:
        source = vastfile.read_bytes()
    except OSError as exc:
        return None, [error("E033", f"cannot read {shown}: {exc.strerror or exc}",
                            Span.point(shown, 1, 1), "check the file's permissions")]
    tree, diagnostics = parse(source, shown)
    if tree is None:
        return None, diagnostics
    model, problems = check(tree, vastfile)
    if has_errors(diagnostics):
        # The lines that parsed are still checked, so one run shows every mistake;
        # but a line with a syntax error is missing from the tree, so what depends
        # on its absence (no FROM, no DEPLOYMENT to match CODE) is not reported.
        return None, diagnostics + [d for d in problems if d.code not in DEPENDS_ON_ABSENCE]
    return model, diagnostics + problems


def load(path: str | os.PathLike[str]) -> Deployment:
    """The checked deployment of a Vastfile (or of the folder holding one). Raises
    :class:`DiagnosticError` carrying every diagnostic when the file has errors."""
    model, diagnostics = check_path(path)
    if model is None or has_errors(diagnostics):
        raise DiagnosticError(diagnostics)
    return model
