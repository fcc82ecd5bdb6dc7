"""The local build cache: step results, compressed chunks, generated files and file indexes.

One diskcache store per cache folder. diskcache writes a value's file first and
commits its row after, in SQLite, so a killed build leaves no entry a later
build would trust, and two vastbuild processes can share the folder. Every
value is stored with the SHA-256 of its bytes and checked when it is read: an
entry that does not match is deleted and reported as missing, so the caller
rebuilds it instead of using it. Nothing in here is needed for correctness;
deleting the folder only costs time. So a store whose database is damaged is
emptied and started afresh when it is opened, and any other failure of the
folder (a full disk, a damaged page found later, no permission) is a
:class:`~vastbuild.errors.VastbuildError` naming the folder, never a traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

#: the store's own layout version: a new layout gets a new folder beside the old
STORE_FOLDER = "store-v1"
ARTIFACTS_FOLDER = "artifacts"
#: values from this size on are stored as files (diskcache's own threshold)
LARGE_VALUE = 1 << 15
#: the size the store culls itself back to (least recently used first)
DEFAULT_SIZE_LIMIT = 10 << 30
#: artifacts written for `deploy` into the cache folder are removed by `cache gc`
#: when they have not been written or read for this long
ARTIFACT_MAX_AGE = 7 * 24 * 3600



_KINDS = {"step": "step results", "blob": "compressed chunks", "cas": "generated files",
          "files": "file indexes"}


class CorruptEntry(Exception):
    """A cache entry whose bytes do not match the digest stored with them; it has
    been deleted (raised while streaming, when the caller already used part of it)."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class CacheStats:
    directory: Path
    entries: dict[str, int]
    volume: int
    size_limit: int
    artifacts: int
    artifact_bytes: int


class BuildCache:
    """A cache folder. Thread-safe; safe to open from several processes at once."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.artifacts = directory / ARTIFACTS_FOLDER
        with self._reporting():
            directory.mkdir(parents=True, exist_ok=True)
            try:
                self._cache = self._open()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise  # locked, full, unwritable: not damage, so nothing is deleted
                # "file is not a database", "disk image is malformed": its entries cannot
                # be trusted, and rebuilding them only costs time
                shutil.rmtree(directory / STORE_FOLDER)
                self._cache = self._open()

    def _open(self) -> Any:
        import diskcache  # imported here: commands that never open the cache skip it

        return diskcache.Cache(str(self.directory / STORE_FOLDER),
                               eviction_policy="least-recently-stored",
                               size_limit=DEFAULT_SIZE_LIMIT)

    @contextmanager
    def _reporting(self) -> Iterator[None]:
        """Turn a failure of the folder or its database into an error that says what to do."""
        try:
            yield
        except (OSError, sqlite3.Error) as exc:
            from vastbuild.errors import VastbuildError

            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise VastbuildError(
                f"cannot use the cache folder {self.directory}: {reason}",
                "free some space, or delete the folder (it holds nothing that cannot be "
                "rebuilt), or use another cache folder", setting="cache_dir") from None

    def close(self) -> None:
        self._cache.close()

    # -- small values, checked on read -------------------------------------------------

    def _get(self, key: str) -> bytes | None:
        with self._reporting():
            found = self._cache.get(key, default=None, tag=True)
            value, digest = found if found else (None, None)
            if value is None:
                return None
            if not isinstance(value, bytes) or hashlib.sha256(value).hexdigest() != digest:
                self._cache.delete(key)
                return None
            return value

    def _set(self, key: str, value: bytes, digest: str | None = None) -> None:
        # diskcache copies a file object in large pieces but a bytes value line by line
        # (binary data: thousands of writes), so larger values go in as files
        tag = digest or hashlib.sha256(value).hexdigest()
        with self._reporting():
            if len(value) < LARGE_VALUE:
                self._cache.set(key, value, tag=tag)
            else:
                self._cache.set(key, io.BytesIO(value), read=True, tag=tag)

    def get_result(self, kind: str, key: str) -> bytes | None:
        """The stored result of the step of ``kind`` with ``key``, or None."""
        return self._get(f"step:{kind}:{key}")

    def put_result(self, kind: str, key: str, value: bytes) -> None:
        self._set(f"step:{kind}:{key}", value)

    def drop_result(self, kind: str, key: str) -> None:
        with self._reporting():
            self._cache.delete(f"step:{kind}:{key}")

    def put_content(self, data: bytes) -> str:
        """Store generated file content (config.json, plugin output) by its SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        key = f"cas:{digest}"
        with self._reporting():
            known = key in self._cache
        if not known:
            self._set(key, data, digest)
        return digest

    def get_content(self, digest: str) -> bytes | None:
        return self._get(f"cas:{digest}")

    def get_index(self, root: str) -> object:
        """The file index of a tree (one read for the whole tree), as
        :meth:`put_index` stored it; None when there is none."""
        data = self._get(_index_key(root))
        if data is None:
            return None
        try:
            return pickle.loads(data)
        except Exception:  # an index written by another version: start afresh
            return None

    def put_index(self, root: str, index: object) -> None:
        self._set(_index_key(root), pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL))

    # -- blobs: compressed chunks, possibly large, streamed --------------------------

    def has_blob(self, name: str) -> bool:
        with self._reporting():
            return f"blob:{name}" in self._cache

    def put_blob(self, name: str, source: BinaryIO | bytes, digest: str) -> None:
        """Store a compressed chunk with the SHA-256 of its bytes (``source`` is a
        buffer, or a file object positioned at its start)."""
        if isinstance(source, bytes):
            self._set(f"blob:{name}", source, digest)
        else:
            with self._reporting():
                self._cache.set(f"blob:{name}", source, read=True, tag=digest)

    def drop_blob(self, name: str) -> None:
        with self._reporting():
            self._cache.delete(f"blob:{name}")

    def copy_blob(self, name: str, out: BinaryIO, hasher: hashlib._Hash | None = None) -> int:
        """Append the blob to ``out`` and return its length. Raises :class:`KeyError`
        when it is missing and :class:`CorruptEntry` (after deleting it) when its
        bytes do not match their digest. A failure to write ``out`` is the caller's
        OSError; a failure to read the cache is reported as the cache's."""
        with self._reporting():
            found = self._cache.get(f"blob:{name}", default=None, read=True, tag=True)
        handle, digest = found if found else (None, None)
        if handle is None:
            raise KeyError(name)
        if isinstance(handle, bytes):  # small values live in SQLite, not in a file
            handle = io.BytesIO(handle)
        check = hashlib.sha256()
        length = 0
        with handle:
            while True:
                with self._reporting():
                    piece = handle.read(1 << 20)
                if not piece:
                    break
                check.update(piece)
                if hasher is not None:
                    hasher.update(piece)
                out.write(piece)
                length += len(piece)
        if check.hexdigest() != digest:
            self.drop_blob(name)
            raise CorruptEntry(name)
        return length

    # -- housekeeping ------------------------------------------------------------------

    def stats(self) -> CacheStats:
        entries = {label: 0 for label in _KINDS.values()}
        with self._reporting():
            for key in self._cache.iterkeys():
                label = _KINDS.get(str(key).split(":", 1)[0])
                if label:
                    entries[label] += 1
            files = list(self._artifact_files())
            return CacheStats(self.directory, entries, self._cache.volume(),
                              int(self._cache.size_limit), len(files),
                              sum(f.stat().st_size for f in files))

    def _artifact_files(self) -> Iterator[Path]:
        if self.artifacts.is_dir():
            yield from (p for p in self.artifacts.iterdir() if p.is_file())

    def gc(self, max_size: int | None = None, max_age: float = ARTIFACT_MAX_AGE) -> tuple[int, int]:
        """Evict least recently used entries down to ``max_size`` bytes (default: the
        store's limit) and delete cached artifacts unused for ``max_age`` seconds.
        Returns (entries evicted, artifacts deleted)."""
        with self._reporting():
            evicted = self._cache.expire()
            if max_size is not None:
                self._cache.reset("size_limit", max_size)
            evicted += self._cache.cull()
            if max_size is not None:
                self._cache.reset("size_limit", DEFAULT_SIZE_LIMIT)
        deleted = 0
        now = time.time()
        for path in self._artifact_files():
            try:
                st = path.stat()
                if now - max(st.st_mtime, st.st_atime) > max_age:
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:
                pass
        return evicted, deleted

    def clear(self) -> int:
        """Delete every entry and every cached artifact; returns the entries deleted."""
        with self._reporting():
            try:
                count = self._cache.clear()
            except sqlite3.DatabaseError:  # damage found past the first pages: start afresh
                self._cache.close()
                shutil.rmtree(self.directory / STORE_FOLDER)
                self._cache, count = self._open(), 0
        if self.artifacts.is_dir():
            shutil.rmtree(self.artifacts, ignore_errors=True)
        return int(count)


def _index_key(root: str) -> str:
    """The key of a tree's file index. SQLite keeps keys as UTF-8 text, so a root whose
    name is not UTF-8 (surrogate escapes) is spelled in JSON's escapes, which cannot
    meet an absolute path's own spelling."""
    try:
        root.encode("utf-8")
    except UnicodeEncodeError:
        root = json.dumps(root)
    return f"files:{root}"
