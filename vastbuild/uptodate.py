"""Knowing, without planning anything, that a target's last result still holds.

After a ``hash`` or a ``build``, vastbuild writes a record per target: the
result, and the stat (:mod:`vastbuild.stats`) of every input it read -- the
Vastfile, the folders from it up to the workspace root, every file, link and
folder of every tree, plugins' input files -- and, for a build, of every file
it wrote. The next run looks the record up: when every stat is unchanged, the
result holds and nothing is parsed, planned, hashed or written. This is how a
warm ``vastbuild hash`` stays within a few stats of ``git status``, and it is
the persistent log Ninja keeps, in spirit.

What else a result depends on is the record's environment: vastbuild's own
files, the installed distributions (the ``site-packages`` folders, whose stat
changes with every install), the settings that reach the wire (API and
autoscaler URLs, ``SOURCE_DATE_EPOCH``) and the plugins' modules. A record
made in another environment is not used.

An input modified within :data:`~vastbuild.stats.RACY_NS` before the run began
is "racy": a second change in the same timestamp tick would leave its stat as it
was. Such an input is recorded with what the run saw of it -- a file's content
digest, a folder's listing digest -- and the next lookup reads it again to
compare; a racy input with nothing to compare by (a plugin's input file) makes
the record unsafe, and none is written. Files vastbuild wrote itself are
trusted by their stat. Records are plain files under the cache folder, written
atomically and read with :mod:`marshal`; one that cannot be read is ignored.
A lookup reports which inputs changed, not only whether one did. This module
imports nothing heavier than :mod:`os`, so the commands that use it start fast.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vastbuild.stats import (
    CONTENT,
    LISTING,
    NO_CHECK,
    WRITTEN,
    Input,
    StatKey,
    is_racy,
    listing_digest,
    stat_key,
)

#: bumped when a record's shape changes
FORMAT = 2
FOLDER = "uptodate-v2"

Payload = dict[str, object]


def _package_stats() -> list[tuple[str, StatKey]]:
    """The stat of every file of vastbuild itself (and of the checkout's grammar)."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = []
    stack = [here]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                else:
                    found.append((entry.path, stat_key(entry.stat(follow_symlinks=False))))
    grammar = os.path.join(os.path.dirname(here), "grammar", "vastfile.lark")
    if os.path.exists(grammar):
        found.append((grammar, stat_key(os.stat(grammar))))
    return sorted(found)


def _installed_stats() -> list[tuple[str, StatKey]]:
    """The stat of each folder distributions are installed in."""
    found = []
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")):
            try:
                found.append((entry, stat_key(os.stat(entry))))
            except OSError:
                pass
    return found


def environment(settings: Sequence[str]) -> str:
    """The digest of what, besides its inputs, a result depends on: vastbuild's files,
    the installed distributions, the Python version, and ``settings`` (the values of
    the options that reach the result)."""
    from vastbuild import __version__

    material = (FORMAT, __version__, sys.version, _package_stats(), _installed_stats(),
                os.environ.get("SOURCE_DATE_EPOCH", ""), tuple(settings))
    return hashlib.sha256(repr(material).encode("utf-8", "surrogateescape")).hexdigest()


def _record_path(cache_dir: str | os.PathLike[str], vastfile: str, purpose: str) -> str:
    key = hashlib.sha256(f"{purpose}\0{vastfile}".encode("utf-8", "surrogateescape"))
    return os.path.join(cache_dir, FOLDER, key.hexdigest()[:40])


@dataclass(frozen=True)
class Found:
    """A record's payload, and the inputs that changed since (none: it holds as it is)."""

    payload: Payload
    changed: tuple[str, ...]


def lookup(cache_dir: str | os.PathLike[str], vastfile: str, purpose: str,
           env: str) -> Found | None:
    """The record of ``vastfile`` (absolute, links resolved) for ``purpose``, made in the
    environment ``env``, with the inputs that changed since; None when there is none
    that can be used (another environment, another workspace root, unreadable)."""
    try:
        with open(_record_path(cache_dir, vastfile, purpose), "rb") as handle:
            record = marshal.loads(handle.read())
        form, recorded_env, root, inputs, payload = record
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if form != FORMAT or recorded_env != env or not isinstance(payload, dict):
        return None
    from pathlib import Path

    from vastbuild.workspace import find_root

    if os.fspath(find_root(Path(vastfile))) != root:
        return None
    changed = []
    lstat = os.lstat
    try:
        for path, size, mtime, ctime, inode, mode, check in inputs:
            try:
                st = lstat(path)
            except OSError:
                changed.append(path)
                continue
            if (st.st_mtime_ns != mtime or st.st_size != size or st.st_ino != inode
                    or st.st_ctime_ns != ctime or st.st_mode != mode) \
                    or (check[:1] in (CONTENT, LISTING) and not _holds(path, check)):
                changed.append(path)
    except (ValueError, TypeError):
        return None
    return Found(payload, tuple(changed))


def _holds(path: str, check: str) -> bool:
    """Whether a racy input still is what was recorded of it."""
    try:
        if check[0] == CONTENT:
            with open(path, "rb") as handle:
                return hashlib.file_digest(handle, "sha256").hexdigest() == check[1:]
        return listing_digest(os.listdir(path)) == check[1:]
    except OSError:
        return False


def save(cache_dir: str | os.PathLike[str], vastfile: str, purpose: str, env: str, *,
         root: str, started_ns: int, inputs: Iterable[Input], payload: Payload) -> bool:
    """Record ``payload`` for ``vastfile`` and ``purpose``. An input modified within the
    racy window before ``started_ns`` (when the run began) is recorded with what its
    content or listing was, to be checked next time; one with nothing to check it by
    makes the record unsafe, and then nothing is written (the next run works it out
    again). Files vastbuild wrote itself are trusted by their stat. Whether it wrote."""
    flat = []
    for path, (key, check) in {path: (key, check) for path, key, check in inputs}.items():
        if check != WRITTEN and is_racy(key, started_ns):
            if not check:
                return False
        elif check != WRITTEN:
            check = NO_CHECK
        flat.append((path, *key, check))
    from vastbuild.files import atomic_write

    data = marshal.dumps((FORMAT, env, root, tuple(flat), payload))
    try:
        atomic_write(_record_path(cache_dir, vastfile, purpose), data, mode=0o600)
    except OSError:
        return False  # only a shortcut: the next run works it out again
    return True
