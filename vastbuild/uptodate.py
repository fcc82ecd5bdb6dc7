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

A record is trusted only if no input was modified within
:data:`~vastbuild.stats.RACY_NS` before the run began: every stat is taken
after that moment, so a change the run might have missed has a recent mtime,
and such a record is not written at all. Records are plain files under the
cache folder, written atomically and read with :mod:`marshal`; one that cannot
be read is ignored. This module imports nothing heavier than :mod:`os`, so the
commands that use it start fast.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from collections.abc import Iterable, Sequence

from vastbuild.stats import StatKey, is_racy, stat_key

#: bumped when a record's shape changes
FORMAT = 1
FOLDER = "uptodate-v1"

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


def lookup(cache_dir: str | os.PathLike[str], vastfile: str, purpose: str,
           env: str) -> Payload | None:
    """The payload recorded for ``vastfile`` (absolute, links resolved) and ``purpose``
    when every input is unchanged and the environment is ``env``; else None."""
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
    lstat = os.lstat
    try:
        for path, size, mtime, ctime, inode, mode in inputs:
            st = lstat(path)
            if (st.st_mtime_ns != mtime or st.st_size != size or st.st_ino != inode
                    or st.st_ctime_ns != ctime or st.st_mode != mode):
                return None
    except (OSError, ValueError, TypeError):
        return None
    return payload


def save(cache_dir: str | os.PathLike[str], vastfile: str, purpose: str, env: str, *,
         root: str, started_ns: int, inputs: Iterable[tuple[str, StatKey]],
         payload: Payload) -> bool:
    """Record ``payload`` for ``vastfile`` and ``purpose``, unless an input changed
    within the racy window before ``started_ns`` (when the run began): then nothing
    is written, and the next run works it out again. Whether it wrote."""
    flat = []
    for path, key in dict(inputs).items():
        if is_racy(key, started_ns):
            return False
        flat.append((path, *key))
    from vastbuild.files import atomic_write

    data = marshal.dumps((FORMAT, env, root, tuple(flat), payload))
    try:
        atomic_write(_record_path(cache_dir, vastfile, purpose), data, mode=0o600)
    except OSError:
        return False  # only a shortcut: the next run works it out again
    return True

