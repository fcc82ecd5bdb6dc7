"""Naming targets: paths, labels, patterns and deployment names.

A target is a Vastfile. Commands name one by

- a path: the Vastfile, or the folder that holds it (``services/llm``);
- a label: its folder from the workspace root, ``//services/llm`` (``//`` alone is
  the root's own Vastfile);
- a pattern: every Vastfile below a folder, ``//services/...``, ``//...`` (the
  whole workspace), ``./...`` or ``services/...`` (relative to the current folder);
- a deployment name, ``qwen-chat``, or ``name:tag``: the Vastfiles of the workspace
  that register it.

The workspace root is the nearest folder upward holding ``vastbuild.toml``, else
``.git``, else the current folder (see :mod:`vastbuild.workspace`). A pattern
walks the folders below it, never entering a hidden folder (``.git``, ``.venv``),
``__pycache__``, ``node_modules`` or a virtual environment (a folder holding
``pyvenv.cfg``). Resolving a name checks every Vastfile of the workspace; paths,
labels and patterns read none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vastbuild.errors import InvalidArgument
from vastbuild.workspace import label_of, root_from

VASTFILE = "Vastfile"
#: folders a pattern never enters, besides hidden ones and virtual environments
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules"})
#: what a deployment name (and tag) may look like, as DEPLOYMENT and TAG accept them
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9][A-Za-z0-9._-]*)?")


class NoVastfile(InvalidArgument):
    """A path, label, pattern or name that names no Vastfile."""


@dataclass(frozen=True)
class TargetName:
    """A Vastfile found by a name or pattern, and its label."""

    label: str
    vastfile: Path


def vastfiles_below(folder: Path) -> list[Path]:
    """Every Vastfile in ``folder`` and below, in path order (see the module's rules
    on the folders a pattern does not enter)."""
    found = []
    for current, folders, files in os.walk(folder):
        folders[:] = sorted(
            name for name in folders
            if not name.startswith(".") and name not in SKIPPED_FOLDERS
            and not os.path.exists(os.path.join(current, name, "pyvenv.cfg")))
        if VASTFILE in files and os.path.isfile(os.path.join(current, VASTFILE)):
            found.append(Path(current) / VASTFILE)
    return found


def resolve(names: Sequence[str | os.PathLike[str]],
            deployment: Callable[[Path], tuple[str, str] | None], *,
            cwd: Path | None = None) -> list[Path]:
    """The Vastfiles ``names`` name (default: ``./Vastfile``), in the order named, each
    once; ``deployment`` tells a Vastfile's (name, tag), for names that are
    deployment names. :class:`NoVastfile` for a name that names none, saying what
    is there."""
    here = cwd or Path.cwd()
    found: dict[Path, None] = {}
    for name in names or (VASTFILE,):
        for vastfile in _resolve_one(name, here, deployment):
            found.setdefault(_near(vastfile), None)
    return list(found)


def _near(path: Path) -> Path:
    """``path`` relative to the current folder when it is below it, as a user would
    write it (absolute otherwise)."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd())
    except ValueError:
        return absolute


def _resolve_one(name: str | os.PathLike[str], cwd: Path,
                 deployment: Callable[[Path], tuple[str, str] | None]) -> list[Path]:
    if not isinstance(name, str):  # a path object is a path, whatever it spells
        return [find_vastfile(Path(name))]
    if name.startswith("//"):
        root = root_from(cwd)
        rest = name[2:]
        if rest == "..." or rest.endswith("/..."):
            return _pattern(root / rest[:-3], name)
        if not os.path.lexists(root / rest):
            _no_such_label(name, root)
        return [find_vastfile(root / rest, shown=name)]
    if name == "..." or name.endswith("/..."):
        return _pattern(cwd / name[:-3], name)
    path = Path(name) if os.path.isabs(name) else cwd / name
    if os.path.lexists(path) or "/" in name or not _NAME.fullmatch(name):
        return [find_vastfile(path, shown=name)]
    return by_deployment_name(name, cwd, deployment)


def _no_such_label(label: str, root: Path) -> None:
    """Raise :class:`NoVastfile` for a label that names nothing in the workspace at
    ``root``, suggesting the labels it is the tail of (``//llm`` for
    ``//examples/llm``: a label printed in another workspace, nested in this one)."""
    tail = "/" + label[2:].strip("/")
    labels = [label_of(vastfile, root) for vastfile in vastfiles_below(root)]
    near = [found for found in labels if found.endswith(tail)]
    hint = (f"did you mean {' or '.join(near[:3])}? Labels start at the workspace root"
            if near else "`vastbuild targets //...` lists the workspace's labels")
    raise NoVastfile(f"{label} does not exist in the workspace {root}", hint)


def _pattern(folder: Path, shown: str) -> list[Path]:
    if not folder.is_dir():
        raise NoVastfile(f"{shown}: {folder} is not a folder",
                         "name a folder of the workspace: //path/to/folder/...")
    found = vastfiles_below(folder)
    if not found:
        raise NoVastfile(f"{shown}: no Vastfile in {folder} or below",
                         "`vastbuild targets //...` lists the workspace's targets")
    return found


def find_vastfile(path: str | os.PathLike[str], shown: str | None = None) -> Path:
    """``path`` itself when it is a regular file, ``path/Vastfile`` when it is a folder
    holding one; otherwise :class:`NoVastfile`, saying what is missing (and, for a
    folder with Vastfiles below it, how to name them)."""
    path = Path(path)
    shown = shown or str(path)
    # os.path's tests answer False for any OSError (a name too long, say)
    if os.path.isdir(path):
        candidate = path / VASTFILE
        if os.path.isfile(candidate):
            return candidate
        if os.path.isdir(candidate):
            raise NoVastfile(f"{candidate} is a folder, not a Vastfile",
                             "name the Vastfile itself, or the folder that holds it")
        below = vastfiles_below(path)
        if below:
            root = root_from(path)
            some = ", ".join(label_of(v, root) for v in below[:3])
            more = f" and {len(below) - 3} more" if len(below) > 3 else ""
            pattern = f"{shown.rstrip('/')}/..."
            raise NoVastfile(f"no {VASTFILE} in {shown}, but {len(below)} below it: "
                             f"{some}{more}",
                             f"name them all with `{pattern}`, or one by its label")
        if path.name == VASTFILE:  # a folder that took the name a Vastfile would have
            raise NoVastfile(f"{shown} is a folder named {VASTFILE}, holding no Vastfile",
                             "name the Vastfile itself (a file), or the folder that holds it")
        raise NoVastfile(f"no {VASTFILE} in {shown}",
                         f"create {candidate}, or name the Vastfile to use")
    if os.path.isfile(path):
        return path
    if os.path.exists(path):  # reading a named pipe or a device could wait forever
        raise NoVastfile(f"{shown} is not a regular file",
                         "name a Vastfile, or a folder that holds one")
    if os.path.islink(path):
        raise NoVastfile(f"{shown} is a symbolic link to {os.readlink(path)}, which does "
                         "not exist (or is a loop of links)",
                         "point the link at a Vastfile, or name the Vastfile itself")
    raise NoVastfile(f"{shown} does not exist",
                     "name a Vastfile, a folder that holds one, a label (//path), a "
                     "pattern (//path/...) or a deployment name")


def by_deployment_name(name: str, cwd: Path,
                       deployment: Callable[[Path], tuple[str, str] | None]) -> list[Path]:
    """The Vastfiles of the workspace that register ``name`` (or ``name:tag``);
    ``deployment`` tells a Vastfile's (name, tag), None for one that does not check."""
    wanted, _, tag = name.partition(":")
    root = root_from(cwd)
    found = []
    for vastfile in vastfiles_below(root):
        registered = deployment(vastfile)
        if registered is not None and registered[0] == wanted and tag in ("", registered[1]):
            found.append(vastfile)
    if not found:
        raise NoVastfile(f"{name} does not exist, and no deployment of the workspace "
                         f"{root} is named so",
                         "name a Vastfile, a folder that holds one, a label (//path) or a "
                         "pattern (//path/...); `vastbuild targets` lists the workspace's")
    return found


def names_of(vastfiles: Iterable[Path], cwd: Path | None = None) -> list[TargetName]:
    """Each Vastfile with its label."""
    root = root_from(cwd or Path.cwd())
    return [TargetName(label_of(v, root), v) for v in vastfiles]
