"""File digests remembered by stat, as git's index remembers them.

A file whose stat (:mod:`vastbuild.stats`) is what it was when it was last
hashed has the digest it had then, so a warm build or ``hash`` stats files and
reads none. The index of a tree is one cache entry, loaded in one read. A racy
file's digest is not remembered: it is read again next time.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

from vastbuild.cache import BuildCache
from vastbuild.errors import VastbuildError
from vastbuild.stats import StatKey, is_racy, stat_key

#: files are read in blocks of this size
READ_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class FileDigest:
    """A file's SHA-256 and size; ``hash_*`` when the content hash sees filtered bytes."""

    sha256: str
    size: int
    hash_sha256: str | None = None
    hash_size: int | None = None


class FileChanged(VastbuildError):
    """A file changed, vanished or became unreadable while vastbuild was reading it."""


class FileIndex:
    """The remembered digests of one tree (keyed by its absolute root)."""

    def __init__(self, cache: BuildCache, root: str):
        self._cache = cache
        self.root = root
        loaded = cache.get_index(root)
        self._entries: dict[str, tuple[StatKey, FileDigest]] = (
            loaded if isinstance(loaded, dict) else {})
        self._seen: set[str] = set()
        self._changed = False

    def lookup(self, rel: str, key: StatKey) -> FileDigest | None:
        """The remembered digest of ``rel`` if its stat is still ``key``."""
        self._seen.add(rel)
        entry = self._entries.get(rel)
        if entry is not None and entry[0] == key:
            return entry[1]
        return None

    def remember(self, rel: str, key: StatKey, digest: FileDigest, scanned_ns: int) -> None:
        self._seen.add(rel)
        if is_racy(key, scanned_ns):
            if self._entries.pop(rel, None) is not None:
                self._changed = True
            return
        self._entries[rel] = (key, digest)
        self._changed = True

    def save(self, prune: bool = True) -> None:
        """Write the index back when it changed; ``prune`` forgets the files not seen
        this time (a tree's index), which an output folder's index must not."""
        stale = self._entries.keys() - self._seen if prune else set()
        for rel in stale:
            del self._entries[rel]
        if self._changed or stale:
            self._cache.put_index(self.root, self._entries)


def read_file(path: str, key: StatKey, keep: bool) -> tuple[str, bytes | None]:
    """Read and hash the regular file ``path`` whose lstat was ``key``; return its
    SHA-256 and, when ``keep``, its bytes. One read serves both.

    Raises :class:`FileChanged` when the file is not what the scan saw (changed,
    replaced, vanished) and a :class:`VastbuildError` when it cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileChanged(f"{path} vanished during the build",
                          "run the build again once nothing is writing to the tree") from None
    except PermissionError:
        raise VastbuildError(f"cannot read {path}: permission denied",
                             "make it readable, or exclude it in .vastignore") from None
    except OSError as exc:
        raise FileChanged(f"cannot read {path}: {exc.strerror or exc}",
                          "run the build again once nothing is writing to the tree") from None
    with os.fdopen(fd, "rb", buffering=0) as handle:
        if stat_key(os.fstat(fd)) != key:
            raise _changed(path)
        h = hashlib.sha256()
        pieces: list[bytes] = []
        try:
            while piece := handle.read(READ_BLOCK):
                h.update(piece)
                if keep:
                    pieces.append(piece)
        except OSError as exc:
            raise VastbuildError(f"cannot read {path}: {exc.strerror or exc}",
                                 "check the file, or exclude it in .vastignore") from None
        if stat_key(os.fstat(fd)) != key:
            raise _changed(path)
    return h.hexdigest(), (b"".join(pieces) if keep else None)


def _changed(path: str) -> FileChanged:
    return FileChanged(f"{path} changed during the build",
                       "run the build again once nothing is writing to the tree")


def now_ns() -> int:
    return time.time_ns()
