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
from collections.abc import Iterator
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

    def remember(self, rel: str, key: StatKey, digest: FileDigest,
                 scanned_ns: int | None) -> None:
        """Remember ``rel``'s digest by its stat ``key``, unless the file was modified too
        close to ``scanned_ns`` for its stat to vouch for it (``None``: a file vastbuild
        just wrote itself, which only a writer racing vastbuild could change unseen)."""
        self._seen.add(rel)
        if scanned_ns is not None and is_racy(key, scanned_ns):
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


def _open(path: str) -> int:
    """A file descriptor of the regular file ``path`` (never following a last link)."""
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileChanged(f"{path} vanished during the build",
                          "run the build again once nothing is writing to the tree") from None
    except PermissionError:
        raise VastbuildError(f"cannot read {path}: permission denied",
                             "make it readable, or exclude it in .vastignore") from None
    except OSError as exc:
        raise FileChanged(f"cannot read {path}: {exc.strerror or exc}",
                          "run the build again once nothing is writing to the tree") from None


def file_pieces(path: str, key: StatKey, sha256: str | None = None) -> Iterator[bytes]:
    """The bytes of the regular file ``path`` whose lstat was ``key``, in pieces of at
    most :data:`READ_BLOCK` (a small file in one piece). The stat is checked before
    and after, so the bytes are the ones the stat vouches for; ``sha256``, when
    given, is checked too (for a file modified too recently for its stat to vouch for
    it). Raises :class:`FileChanged` when the file is not what was scanned,
    :class:`VastbuildError` when it cannot be read."""
    fd = _open(path)
    try:
        if stat_key(os.fstat(fd)) != key:
            raise _changed(path)
        h = hashlib.sha256() if sha256 is not None else None
        left = key[0]
        try:
            while left:
                # one read for a small file; the extra byte proves its end
                piece = os.read(fd, left + 1 if left <= READ_BLOCK else READ_BLOCK)
                if not piece or len(piece) > left:
                    raise _changed(path)
                left -= len(piece)
                if h is not None:
                    h.update(piece)
                yield piece
            extra = os.read(fd, 1) if key[0] > READ_BLOCK or not key[0] else b""
        except OSError as exc:
            raise VastbuildError(f"cannot read {path}: {exc.strerror or exc}",
                                 "check the file, or exclude it in .vastignore") from None
        if extra or stat_key(os.fstat(fd)) != key or (h is not None and h.hexdigest() != sha256):
            raise _changed(path)
    finally:
        os.close(fd)


def read_file(path: str, key: StatKey, keep: bool) -> tuple[str, bytes | None]:
    """Read and hash the regular file ``path`` whose lstat was ``key``; return its
    SHA-256 and, when ``keep``, its bytes. One read serves both."""
    pieces = list(file_pieces(path, key)) if key[0] <= READ_BLOCK else None
    if pieces is not None:  # small: hashed in one call, kept at no cost
        data = pieces[0] if pieces else b""
        return hashlib.sha256(data).hexdigest(), data if keep else None
    h = hashlib.sha256()
    kept: list[bytes] = []
    for piece in file_pieces(path, key):
        h.update(piece)
        if keep:
            kept.append(piece)
    return h.hexdigest(), (b"".join(kept) if keep else None)


def _changed(path: str) -> FileChanged:
    return FileChanged(f"{path} changed during the build",
                       "run the build again once nothing is writing to the tree")


def now_ns() -> int:
    return time.time_ns()
