"""The local build cache: step results, compressed chunks, generated files and file indexes.

Compressed chunks are files of their own (:class:`BlobStore`), named by what
made them, so that an artifact is assembled from them by the kernel
(``copy_file_range``) without passing through Python. Everything else lives in
one diskcache store per cache folder. diskcache writes a value's file first and
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

import errno
import functools
import hashlib
import io
import json
import os
import pickle
import shutil
import sqlite3
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from vastbuild.stats import StatKey, stat_key

if TYPE_CHECKING:
    from vastbuild.remote import RemoteCache

#: the store's own layout version: a new layout gets a new folder beside the old
STORE_FOLDER = "store-v1"
BLOBS_FOLDER = "blobs-v1"
ARTIFACTS_FOLDER = "artifacts"
#: values from this size on are stored as files (diskcache's own threshold)
LARGE_VALUE = 1 << 15
#: the size the store culls itself back to (least recently used first)
DEFAULT_SIZE_LIMIT = 10 << 30
#: artifacts written for `deploy` into the cache folder are removed by `cache gc`
#: when they have not been written or read for this long
ARTIFACT_MAX_AGE = 7 * 24 * 3600
#: a blob's temporary file that no write touched for this long was left by a build
#: killed while writing it (a live writer touches it as it goes): culling removes it
ABANDONED_AFTER = 3600



_KINDS = {"step": "step results", "cas": "generated files", "files": "file indexes",
          "blob": "compressed chunks' records"}
BLOBS_LABEL = "compressed chunks"
ARTIFACTS_LABEL = "artifacts"


@contextmanager
def _reporting(directory: Path) -> Iterator[None]:
    """Turn a failure of the folder or its database into an error that says what to do."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        from vastbuild.errors import VastbuildError

        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, OSError) and exc.errno in _NOT_A_PLACE:
            # the folder cannot be made or written: a setting to change, not a full disk
            from vastbuild.errors import InvalidArgument

            raise InvalidArgument(
                f"cannot use the cache folder {directory}: {reason}",
                "use a folder you can create and write", setting="cache_dir") from None
        hint = ("free some space, or delete the folder (it holds nothing that cannot be "
                "rebuilt), or use another cache folder"
                if isinstance(exc, OSError) and exc.errno in _OUT_OF_SPACE
                else "delete the folder (it holds nothing that cannot be rebuilt), or use "
                     "another cache folder")
        raise VastbuildError(f"cannot use the cache folder {directory}: {reason}", hint,
                             setting="cache_dir") from None


#: errors that say the disk (or the file size limit) is full
_OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: errors that say the cache folder is not a place vastbuild may keep a cache
_NOT_A_PLACE = frozenset({errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS,
                          errno.ENOTDIR, errno.EEXIST})


class BlobStore:
    """Compressed chunks as files, each named by the key that made it.

    A blob's bytes are a function of its name (its chunk's digest, the format, the
    level, the compressor's version). It is written to a temporary file and renamed
    into place, never seen half written, and from then on trusted by the stat it
    had when it was written (as sources are trusted by their stat): a blob whose
    stat changed (overwritten, damaged by a write) or that vanished (evicted by a
    concurrent ``cache gc``) is never used, and its chunk is compressed again.
    Eviction goes by the time a blob was written, oldest first, as diskcache's own
    (recording each use would change the stat blobs are trusted by).
    """

    def __init__(self, folder: Path, record: Callable[[str, StatKey], None],
                 recall: Callable[[str], StatKey | None]):
        self.folder = folder
        #: bytes this process wrote (a reason to see whether the store outgrew its limit)
        self.written = 0
        #: the stat of each blob this process wrote
        self.written_keys: dict[str, StatKey] = {}
        self._record, self._recall = record, recall
        self._lock = threading.Lock()

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name[:2], name)

    def key(self, name: str) -> StatKey | None:
        """The blob's stat, or None when it is not there."""
        try:
            return stat_key(os.stat(self.path(name)))
        except FileNotFoundError:
            return None

    @contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        """A file to write the blob ``name`` into; it is the blob once the ``with`` block
        ends without an error, and nothing otherwise."""
        target = self.path(name)
        with _reporting(self.folder):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".")
        try:
            with _reporting(self.folder):  # a write that fails is the cache folder's
                with os.fdopen(handle, "wb") as stream:
                    yield stream
                    written = stream.tell()
                os.replace(temporary, target)
                key = stat_key(os.stat(target))
        except BaseException:
            os.unlink(temporary)
            raise
        with self._lock:
            self.written += written
            self.written_keys[name] = key
        self._record(name, key)

    def trusted(self, name: str) -> StatKey | None:
        """The blob's stat when it is the blob that was written under ``name`` (its stat
        is the one recorded then); None when it is missing or cannot be vouched for."""
        key = self.key(name)
        if key is None:
            return None
        known = self.written_keys.get(name) or self._recall(name)
        return key if known == key else None

    def copy_into(self, name: str, key: StatKey, fd: int, offset: int) -> None:
        """Write the blob ``name`` into the file ``fd`` at ``offset``, in the kernel where
        it can. :class:`KeyError` unless the blob is there with the stat ``key``."""
        try:
            source = os.open(self.path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KeyError(name) from None
        try:
            st = os.fstat(source)
            if stat_key(st) != key:
                raise KeyError(name)
            length = st.st_size
            if not copy_range(source, fd, length, 0, offset):
                raise KeyError(name)  # shorter than it said: gone while copied
        finally:
            os.close(source)

    def _entries(self) -> Iterator[tuple[os.DirEntry[str], os.stat_result]]:
        """Every file of the store, blobs and temporary files, with its stat."""
        if self.folder.is_dir():
            for entry in os.scandir(self.folder):
                if entry.is_dir(follow_symlinks=False):
                    for found in os.scandir(entry.path):
                        try:
                            yield found, found.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            pass  # renamed into place or deleted meanwhile

    def files(self) -> list[tuple[str, os.stat_result]]:
        """Every blob with its stat."""
        return [(entry.path, st) for entry, st in self._entries()
                if not entry.name.startswith(".")]

    def cull(self, limit: int) -> int:
        """Delete the blobs written longest ago until they take at most ``limit`` bytes,
        and the temporary files of blobs abandoned by killed builds (untouched for
        :data:`ABANDONED_AFTER`: nothing else would ever delete them, and no limit
        counts them); how many were deleted."""
        blobs, deleted, now = [], 0, time.time()
        for entry, st in self._entries():
            if not entry.name.startswith("."):
                blobs.append((entry.path, st))
            elif now - st.st_mtime > ABANDONED_AFTER:
                _unlink(entry.path)
                deleted += 1
        blobs.sort(key=lambda found: found[1].st_mtime)
        total = sum(st.st_size for _, st in blobs)
        for path, st in blobs:
            if total <= limit:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            total -= st.st_size
            deleted += 1
        return deleted


def copy_range(source: int, target: int, count: int, at: int, to: int) -> bool:
    """Copy ``count`` bytes from ``source`` at ``at`` to ``target`` at ``to``; False when
    ``source`` ended first. The kernel copies where it can (no read into user space)."""
    copied = 0
    while copied < count:
        done = _copy_some(source, target, count - copied, at + copied, to + copied)
        if done <= 0:
            return False
        copied += done
    return True


def _copy_some(source: int, target: int, count: int, at: int, to: int) -> int:
    """Copy up to ``count`` bytes; how many were copied."""
    try:
        return os.copy_file_range(source, target, count, at, to)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    data = os.pread(source, min(count, 1 << 20), at)
    return os.pwrite(target, data, to) if data else 0


@dataclass(frozen=True)
class CacheStats:
    directory: Path
    entries: dict[str, int]
    volume: int
    size_limit: int
    artifacts: int
    artifact_bytes: int


@dataclass(frozen=True)
class Damaged:
    """An entry :meth:`BuildCache.verify` found damaged and dropped: its kind (a label of
    :class:`CacheStats`' entries, or ``artifacts``), its key or file, and what was wrong."""

    kind: str
    name: str
    reason: str


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`BuildCache.verify` checked (entries by kind) and the damaged ones it
    dropped."""

    directory: Path
    checked: dict[str, int]
    damaged: tuple[Damaged, ...]


class BuildCache:
    """A cache folder. Thread-safe; safe to open from several processes at once."""

    def __init__(self, directory: Path, remote: RemoteCache | None = None):
        self.directory = directory
        self.artifacts = directory / ARTIFACTS_FOLDER
        self.blobs = BlobStore(directory / BLOBS_FOLDER, self._record_blob, self._recall_blob)
        #: the cache shared with other machines, when there is one (see vastbuild.remote)
        self.remote = remote
        self._fetching = threading.local()
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

    def _reporting(self) -> AbstractContextManager[None]:
        return _reporting(self.directory)

    def close(self) -> None:
        """Close the store; when this process wrote compressed chunks, cull them back to
        the store's limit (what diskcache does for its own entries as it goes)."""
        try:
            if self.blobs.written:
                with self._reporting():
                    self.blobs.cull(max(0, DEFAULT_SIZE_LIMIT - self._cache.volume()))
        finally:
            self._cache.close()

    # -- small values, checked on read -------------------------------------------------

    def _get(self, key: str) -> bytes | None:
        with self._reporting():
            found = self._cache.get(key, default=None, tag=True)
            value, digest = found if found else (None, None)
            if value is None:
                return None
            if not isinstance(value, bytes) or _damage(value, digest) is not None:
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
        """The stored result of the step of ``kind`` with ``key``, or None; from the
        remote cache (and then kept here) when this one has none."""
        found = self._get(f"step:{kind}:{key}")
        if found is None and self.remote is not None:
            found = self.remote.get_record(f"step {kind} {key}")
            if found is not None:
                self._set(f"step:{kind}:{key}", found)
        return found

    def put_result(self, kind: str, key: str, value: bytes) -> None:
        self._set(f"step:{kind}:{key}", value)
        if self.remote is not None:
            self.remote.put_record(f"step {kind} {key}", value)

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
            if self.remote is not None:
                self.remote.put_content(data)
        return digest

    def _record_blob(self, name: str, key: StatKey) -> None:
        self._set(f"blob:{name}", json.dumps(list(key)).encode())
        if self.remote is not None and not getattr(self._fetching, "name", None) == name:
            try:
                with open(self.blobs.path(name), "rb") as handle:
                    data = handle.read()
            except OSError:
                return  # gone already (a concurrent cull): nothing to share
            self.remote.put_record(f"blob {name}", data)

    def blob(self, name: str) -> StatKey | None:
        """The stat of the blob ``name`` when it is here as it was written (see
        :meth:`BlobStore.trusted`), or, when it is not, once it is fetched from the
        remote cache; None when it is in neither."""
        key = self.blobs.trusted(name)
        if key is not None or self.remote is None:
            return key
        data = self.remote.get_record(f"blob {name}")
        if data is None:
            return None
        self._fetching.name = name
        try:
            with self.blobs.writer(name) as out:
                out.write(data)
        finally:
            self._fetching.name = None
        return self.blobs.written_keys.get(name)

    def _recall_blob(self, name: str) -> StatKey | None:
        found = self._get(f"blob:{name}")
        try:
            values = json.loads(found) if found else None
        except ValueError:
            return None
        if not isinstance(values, list) or len(values) != 5 or \
                not all(isinstance(v, int) for v in values):
            return None
        size, mtime, ctime, inode, mode = values
        return (size, mtime, ctime, inode, mode)

    def get_content(self, digest: str) -> bytes | None:
        found = self._get(f"cas:{digest}")
        if found is None and self.remote is not None:
            found = self.remote.get_content(digest)
            if found is not None:
                self._set(f"cas:{digest}", found, digest)
        return found

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

    # -- housekeeping ------------------------------------------------------------------

    def stats(self) -> CacheStats:
        entries = {label: 0 for label in [*_KINDS.values(), BLOBS_LABEL]}
        with self._reporting():
            for key in self._cache.iterkeys():
                label = _KINDS.get(str(key).split(":", 1)[0])
                if label:
                    entries[label] += 1
            blobs = self.blobs.files()
            entries[BLOBS_LABEL] = len(blobs)
            files = list(self._artifact_files())
            return CacheStats(self.directory, entries,
                              self._cache.volume() + sum(st.st_size for _, st in blobs),
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
            limit = DEFAULT_SIZE_LIMIT if max_size is None else max_size
            evicted += self.blobs.cull(max(0, limit - self._cache.volume()))
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

    def verify(self) -> VerifyReport:
        """Read every entry and check it against what vouches for it; drop the damaged.

        A build already refuses a damaged entry it reads (see the module's docstring),
        but only the entries it reads, and only then: this finds damage everywhere
        ahead of time (a disk going bad, a tool that wrote into the folder) and drops
        it, so the next build makes those entries again. What is checked:

        - step results, generated files, file indexes and blob records: the SHA-256 of
          the bytes against the digest stored with them (and a generated file's
          against its key, its content address);
        - compressed chunks: the stat against the one recorded when the blob was
          written (what a build trusts it by), then the bytes against the checksums
          their format carries -- each gzip member's CRC-32 and length, each zstd
          frame's checksum -- and that the last member or frame is whole, since a
          blob is named by what made it, not by its bytes, and nothing else records
          them (damage below the file system leaves the stat as it was);
        - artifacts written into the cache for ``deploy``: the same checksums.

        Left alone, so that a build may run meanwhile and a build that was killed
        leaves nothing to report: files being written (temporary names, starting
        with a dot), and blobs with no record (a build stopped between writing a
        blob and recording it; no build uses such a blob, and the next one that
        needs it writes it again)."""
        checked = {label: 0 for label in [*_KINDS.values(), BLOBS_LABEL, ARTIFACTS_LABEL]}
        damaged: list[Damaged] = []
        with self._reporting():
            for key in list(self._cache.iterkeys()):
                kind = str(key).split(":", 1)[0]
                if kind not in _KINDS:
                    continue
                found = self._cache.get(key, default=None, tag=True)
                value, digest = found if found else (None, None)
                if value is None and key not in self._cache:
                    continue  # evicted meanwhile, by a build's cull
                checked[_KINDS[kind]] += 1
                if value is None:
                    reason: str | None = "its value's file is missing"
                elif kind == "cas" and digest != str(key).split(":", 1)[1]:
                    reason = "its digest is not its content address"
                else:
                    reason = _damage(value, digest)
                if reason is not None:
                    self._cache.delete(key)
                    damaged.append(Damaged(_KINDS[kind], str(key), reason))
            for path, st in self.blobs.files():
                name = os.path.basename(path)
                recorded = self._recall_blob(name)
                if recorded is None:
                    continue  # no build uses it; the next that needs it writes it again
                checked[BLOBS_LABEL] += 1
                if recorded != stat_key(st):
                    reason = "changed since it was written (its stat is not the recorded one)"
                else:
                    reason = _compressed_damage(path)
                if reason is not None:
                    _unlink(path)
                    self._cache.delete(f"blob:{name}")
                    damaged.append(Damaged(BLOBS_LABEL, name, reason))
            for artifact in self._artifact_files():
                if artifact.name.startswith("."):
                    continue
                checked[ARTIFACTS_LABEL] += 1
                reason = _compressed_damage(str(artifact))
                if reason is not None:
                    _unlink(str(artifact))
                    damaged.append(Damaged(ARTIFACTS_LABEL, artifact.name, reason))
        return VerifyReport(self.directory, checked, tuple(damaged))

    def clear(self) -> int:
        """Delete every entry and every cached artifact; returns the entries deleted."""
        with self._reporting():
            try:
                count = self._cache.clear()
            except sqlite3.DatabaseError:  # damage found past the first pages: start afresh
                self._cache.close()
                shutil.rmtree(self.directory / STORE_FOLDER)
                self._cache, count = self._open(), 0
        count += len(self.blobs.files())
        for folder in (self.artifacts, self.blobs.folder):
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
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


def _damage(value: object, digest: object) -> str | None:
    """What is wrong with a value of the store, judged by the SHA-256 stored with it;
    None when nothing is."""
    if not isinstance(value, bytes):
        return "not bytes"
    if hashlib.sha256(value).hexdigest() != digest:
        return "its bytes do not match their SHA-256"
    return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # gone already (a concurrent gc)


class _Decoder(Protocol):
    """A gzip member's or a zstd frame's decompressor, fed piece by piece."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes) -> bytes: ...


_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: bytes fed to a decompressor at once: zstd expands one to at most 32 KiB and deflate
#: to about 1 KiB, so one piece never becomes more than 32 MiB (a chunk of zeros)
_PIECE = 1 << 10


def _compressed_damage(path: str) -> str | None:
    """What is wrong with the file at ``path``, gzip members or zstd frames end to end,
    by the checks its format carries: each member's CRC-32 and length, each frame's
    checksum, and the last member or frame whole; None when nothing is."""
    import zstandard  # imported here: only `cache verify` decompresses

    try:
        with open(path, "rb") as stream:
            magic = stream.read(4)
            stream.seek(0)
            start: Callable[[], _Decoder]
            if magic[:2] == _GZIP_MAGIC:
                start = functools.partial(zlib.decompressobj, 31)  # 31: gzip's framing
            elif magic == _ZSTD_MAGIC:
                start = zstandard.ZstdDecompressor().decompressobj
            else:
                return "neither gzip nor zstd data" if magic else "empty"
            decoder = start()
            while piece := stream.read(_PIECE):
                while piece:
                    if decoder.eof:  # the next member or frame
                        decoder = start()
                    decoder.decompress(piece)
                    piece = decoder.unused_data if decoder.eof else b""
    except FileNotFoundError:
        return None  # gone meanwhile (a concurrent gc): nothing to drop
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    except (zlib.error, zstandard.ZstdError) as exc:
        return f"damaged: {exc}"
    return None if decoder.eof else "truncated: its last member or frame is cut short"
