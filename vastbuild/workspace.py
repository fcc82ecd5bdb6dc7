"""The workspace: the folder a Vastfile's paths may reach, and resolving paths inside it.

A build must depend only on files inside the workspace, so that a checkout on
another machine builds the same artifact and a Vastfile cannot pull in
``~/.ssh`` by a ``..`` or a symbolic link. The root is the nearest folder upward
from the Vastfile holding ``vastbuild.toml`` (a monorepo marks its root so),
else the nearest holding ``.git``, else the Vastfile's own folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from vastbuild.errors import VastbuildError

#: files that mark a workspace root, strongest first
ROOT_MARKERS = ("vastbuild.toml", ".git")


class PathOutsideWorkspace(VastbuildError):
    """A path that leaves the workspace root after ``..`` and symbolic links are resolved."""


class PathMissing(VastbuildError):
    """A path that does not exist."""


def root_from(folder: Path) -> Path:
    """The workspace root seen from ``folder`` (absolute, links resolved): the nearest
    folder upward holding a marker, else ``folder`` itself."""
    start = folder.resolve()
    for marker in ROOT_MARKERS:
        for candidate in (start, *start.parents):
            if (candidate / marker).exists():
                return candidate
    return start


def find_root(vastfile: Path) -> Path:
    """The workspace root of ``vastfile`` (absolute, symbolic links resolved)."""
    return root_from(vastfile.resolve().parent)


def label_of(vastfile: Path, root: Path) -> str:
    """How commands name a target: ``//`` and the folder of ``vastfile`` relative to
    ``root`` (``//services/llm``; ``//`` for the root's own); outside the root, the
    folder's absolute path."""
    folder = vastfile.resolve().parent
    try:
        rel = folder.relative_to(root).as_posix()
    except ValueError:
        return folder.as_posix()
    return "//" if rel == "." else f"//{rel}"


def folders_between(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> list[str]:
    """The folders from ``path``'s parent up to ``root`` (both absolute): replacing one
    of them (by a link, say) changes what ``path`` resolves to, and changes the stat
    of the folder above it."""
    folders: list[str] = []
    folder, top = os.path.dirname(os.fspath(path)), os.fspath(root).rstrip("/") or "/"
    while (folder == top or folder.startswith(top.rstrip("/") + "/")) and folder not in folders:
        folders.append(folder)
        folder = os.path.dirname(folder)
    return folders


def resolve_inside(root: Path, base: Path, written: str) -> Path:
    """Resolve ``written`` (relative to ``base``, or absolute) to an existing path inside
    ``root``, following ``..`` and symbolic links the way the build will read it.

    Raises :class:`PathOutsideWorkspace` or :class:`PathMissing`, whose messages name
    the resolved path and whose hints say what to do.
    """
    root = root.resolve()
    try:
        resolved = (base / written).resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop, an unreadable folder
        raise PathMissing(f"`{written}` cannot be resolved: {exc}",
                          "fix or remove the symbolic link") from None
    if not resolved.is_relative_to(root):
        raise PathOutsideWorkspace(
            f"`{written}` leaves the workspace {root} (it resolves to {resolved})",
            "a build may only read files inside the workspace root; move the file inside it, "
            "or mark a higher folder as the root with a `vastbuild.toml`")
    try:
        resolved.stat()
    except FileNotFoundError:
        raise PathMissing(f"`{written}` does not exist (looked for {resolved})",
                          "check the spelling; paths are relative to the Vastfile's folder"
                          ) from None
    except OSError as exc:  # a name too long, a folder that cannot be searched
        raise PathMissing(f"`{written}` cannot be read: {exc.strerror or exc}",
                          "check the path and its folders' permissions") from None
    return resolved
