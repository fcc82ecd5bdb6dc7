"""What a file's stat says about its content, and when it cannot be trusted.

A file whose (size, mtime_ns, ctime_ns, inode, mode) are what they were when it
was read still holds what was read then, as git's index assumes: the file
index (:mod:`vastbuild.filestate`) remembers digests by it, and the up-to-date
records (:mod:`vastbuild.uptodate`) whole results. A file modified within
:data:`RACY_NS` of the moment it was looked at is "racy": a second write in the
same timestamp tick would leave its stat unchanged, so nothing is remembered by
its stat, and it is read again next time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

#: how close to the moment it was looked at a modification must be to count as racy
RACY_NS = 2_000_000_000

StatKey = tuple[int, int, int, int, int]


def stat_key(st: os.stat_result) -> StatKey:
    """What must be unchanged for something remembered about a file to hold."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)


def is_racy(key: StatKey, looked_ns: int) -> bool:
    """Whether a file with ``key``, looked at at ``looked_ns``, may change unseen."""
    return key[1] >= looked_ns - RACY_NS


#: how an input is checked when its stat cannot vouch for it (the first letter of
#: its check): not at all (a racy input with no check makes a record unsafe), by the
#: file's content ("s<sha256>"), by the folder's listing ("d<digest>"), or never:
#: "w", a file vastbuild wrote itself, and "i", a folder on the way to an input,
#: which matters by its identity alone (replacing it changes its inode and its
#: parent's stat; what it lists is the inputs' to tell)
NO_CHECK, CONTENT, LISTING, WRITTEN, IDENTITY = "", "s", "d", "w", "i"

#: something a result was made from: its path, its stat, and its check
Input = tuple[str, StatKey, str]


def stat_paths(paths: Iterable[str], check: str = NO_CHECK) -> list[Input]:
    """The stat of each path, not following a last symbolic link; a path that does not
    exist is left out (whoever looks again cannot mistake it for unchanged)."""
    found = []
    for path in paths:
        try:
            found.append((path, stat_key(os.lstat(path)), check))
        except OSError:
            pass
    return found


def listing_digest(names: Iterable[str]) -> str:
    """What a folder's listing is: checks a folder modified too recently for its stat."""
    h = hashlib.sha256()
    for name in sorted(names, key=os.fsencode):
        h.update(os.fsencode(name) + b"\0")
    return h.hexdigest()
