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
    IDENTITY,
    LISTING,
    NO_CHECK,
    RACY_NS,
    WRITTEN,
    Input,
    StatKey,
    listing_digest,
    stat_key,
)

#: bumped when a record's shape changes
FORMAT = 2
FOLDER = "uptodate-v2"
#: the suffix of the file a record's state is kept in
STATE_SUFFIX = ".state"

Payload = dict[str, object]
#: the payload key of what a build keeps for the next ``build --explain``
#: (:func:`vastbuild.explain.facts`), carried over when a build is patched
FACTS = "facts"


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
    #: the workspace root the record was made in (the Vastfile's still)
    root: str
    #: the inputs as recorded: (path, *stat, check)
    recorded: tuple[tuple[str, int, int, int, int, int, str], ...]

    def inputs(self) -> list[Input]:
        """The inputs as recorded."""
        return [(path, (size, mtime, ctime, inode, mode), check)
                for path, size, mtime, ctime, inode, mode, check in self.recorded]


def lookup(cache_dir: str | os.PathLike[str], vastfile: str, purpose: str,
           env: str) -> Found | None:
    """The record of ``vastfile`` (absolute, links resolved) for ``purpose``, made in the
    environment ``env``, with the inputs that changed since; None when there is none
    that can be used (another environment, another workspace root, unreadable)."""
    found = peek(cache_dir, vastfile, purpose, env)
    return None if found is None else found[1]


def peek(cache_dir: str | os.PathLike[str], vastfile: str, purpose: str,
         env: str | None = None) -> tuple[str, Found] | None:
    """The record of ``vastfile`` for ``purpose`` with the environment it was made in
    (``env``: only one made in that environment, refused before any input is
    stat'ed; None: whatever the environment, what ``build --explain`` compares a build
    with). None when there is none, it cannot be read, or it was made in another
    workspace root."""
    try:
        with open(_record_path(cache_dir, vastfile, purpose), "rb") as handle:
            record = marshal.loads(handle.read())
        form, recorded_env, root, inputs, payload = record
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if form != FORMAT or not isinstance(recorded_env, str) or not isinstance(payload, dict) \
            or (env is not None and recorded_env != env):
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
    return recorded_env, Found(payload, tuple(changed), root, inputs)


def _holds(path: str, check: str) -> bool:
    """Whether a racy input still is what was recorded of it."""
    try:
        if check[0] == CONTENT:
            with open(path, "rb") as handle:
                return hashlib.file_digest(handle, "sha256").hexdigest() == check[1:]
        return listing_digest(os.listdir(path)) == check[1:]
    except OSError:
        return False


@dataclass(frozen=True)
class NewRecord:
    """A record to write: its purpose, the environment it holds in, the result, and
    the files the run wrote (a build's outputs), which join the inputs."""

    purpose: str
    env: str
    payload: Payload
    written: Sequence[Input] = ()


def save(cache_dir: str | os.PathLike[str], vastfile: str, records: Sequence[NewRecord], *,
         root: str, started_ns: int, inputs: Iterable[Input],
         state: StateRef | None = None) -> bool:
    """Write the ``records`` of ``vastfile``, all made from ``inputs`` (a path given
    twice counts as its last). An input modified within the racy window before
    ``started_ns`` (when the run began) is recorded with what its content or listing
    was, to be checked next time; one with nothing to check it by makes the records
    unsafe, and then none is written (the next run works it out again). Files
    vastbuild wrote itself are trusted by their stat. ``state`` names what
    :mod:`vastbuild.patch` works from (see :func:`save_state`). Whether it wrote."""
    common = _rows(inputs, started_ns)
    if common is None:
        return False
    from vastbuild.files import atomic_write

    try:
        for record in records:
            rows = {**common, **(_rows(record.written, started_ns) or {})}
            payload = record.payload if state is None else {**record.payload, "state": state}
            atomic_write(_record_path(cache_dir, vastfile, record.purpose),
                         marshal.dumps((FORMAT, record.env, root, tuple(rows.values()),
                                        payload)), mode=0o600)
    except OSError:
        return False  # only a shortcut: the next run works it out again
    return True


def _rows(inputs: Iterable[Input],
          started_ns: int) -> dict[str, tuple[str, int, int, int, int, int, str]] | None:
    """Each input as a record holds it, by path; None when one racy input has nothing
    to be checked by."""
    racy_from = started_ns - RACY_NS
    rows = {}
    for path, key, check in inputs:
        if check in (WRITTEN, IDENTITY):
            pass  # trusted by its stat alone, racy or not
        elif key[1] < racy_from:
            check = NO_CHECK
        elif not check:
            return None
        rows[path] = (path, *key, check)
    return rows


#: a state's file name (in the records' folder) and its digest
StateRef = tuple[str, str]


def save_state(cache_dir: str | os.PathLike[str], vastfile: str, purpose: str,
               data: bytes) -> StateRef | None:
    """Keep ``data`` (a target's state) beside the record of ``vastfile`` for
    ``purpose``; records that name the reference returned find it with
    :func:`load_state`, which reads it only when needed. None when it cannot be
    written."""
    from vastbuild.files import atomic_write

    path = _record_path(cache_dir, vastfile, purpose) + STATE_SUFFIX
    try:
        atomic_write(path, data, mode=0o600)
    except OSError:
        return None
    return os.path.basename(path), hashlib.sha256(data).hexdigest()


def load_state(cache_dir: str | os.PathLike[str], payload: Payload) -> bytes | None:
    """The state the record whose payload is ``payload`` names; None when there is
    none, or the file is not the one the record was made with."""
    ref = payload.get("state")
    if not isinstance(ref, tuple) or len(ref) != 2 or os.path.basename(ref[0]) != ref[0]:
        return None
    try:
        with open(os.path.join(cache_dir, FOLDER, ref[0]), "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == ref[1] else None
