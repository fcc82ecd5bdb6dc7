"""The canonical tar stream of a deployment, cut into chunks and compressed chunk by chunk.

Everything that makes two builds of the same inputs byte-identical lives here:
fixed header fields (mtime 0 or ``SOURCE_DATE_EPOCH``, uid/gid 0, owner
``root``, normalised modes, pax headers only for long or non-ASCII names and
huge sizes, never timestamps), how the member list is cut into chunks so that an
edit disturbs one chunk only, and how a chunk becomes one gzip member or one
zstd frame. A chunk's identity is a digest of its headers and its members'
content digests, so it is known without reading a file; see docs/build.md.
"""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
import stat
import struct
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import BinaryIO, Literal, Protocol

from vastbuild.canonical import JsonValue
from vastbuild.errors import VastbuildError

BLOCK = 512
#: tar archives end with two zero blocks and are padded to a whole record, as GNU tar
#: and Python's tarfile write them
RECORD = 20 * BLOCK
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

MemberType = Literal["file", "dir", "symlink"]
_TAR_TYPES: dict[str, bytes] = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
                                "symlink": tarfile.SYMTYPE}

#: domain tag of a chunk digest; bump when the digest's definition changes
CHUNK_TAG = b"vastbuild chunk v1\n"

#: Chunking: a member starts a new chunk when the hash of its name falls under
#: 2**64 / AVERAGE_MEMBERS; a run over MAX_CHUNK_BYTES is split again by the finer
#: rule (2**64 / SPLIT_MEMBERS), and then member by member. The rules look at names
#: (and, for over-long runs, sizes), never at running offsets, so a changed file
#: changes its own chunk and at most its neighbours.
AVERAGE_MEMBERS = 128
SPLIT_MEMBERS = 16
MAX_CHUNK_BYTES = 4 << 20

#: the compressor is fed the chunk's bytes in slices of this size, whatever the
#: files' sizes, so that its output depends on the bytes alone
SLICE = 1 << 20

Format = Literal["gz", "zst"]
FORMATS: tuple[Format, ...] = ("gz", "zst")
SUFFIXES: dict[str, str] = {"gz": ".tar.gz", "zst": ".tar.zst"}
#: isal levels run 0..3; 2 is zlib -6's ratio at several times its speed
GZIP_LEVEL = 2
#: zstd level of vastbuild's own artifacts: close to -19's ratio on source trees at
#: a fraction of its time
ZSTD_LEVEL = 3
LEVELS: dict[str, int] = {"gz": GZIP_LEVEL, "zst": ZSTD_LEVEL}

#: A gzip member header with no name, mtime 0, no extra flags, OS "unknown":
#: nothing in it depends on the machine or the time.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


@dataclass(frozen=True, slots=True)
class Member:
    """One tar entry as it will appear in the archive.

    ``sha256`` is the digest of the content (of nothing for folders and links).
    ``hash_size``/``hash_sha256`` are set when the content hash must see other
    bytes than the archive holds (CODE lines marked ``# !VAST_IGNORE_CHANGES``).
    """

    name: str
    type: MemberType
    mode: int
    size: int = 0
    sha256: str = EMPTY_SHA256
    linkname: str = ""
    hash_size: int | None = None
    hash_sha256: str | None = None

    def hash_view(self) -> Member:
        """The member as the content hash sees it."""
        if self.hash_sha256 is None or self.hash_size is None:
            return self
        return replace(self, size=self.hash_size, sha256=self.hash_sha256,
                       hash_size=None, hash_sha256=None)

    def to_json(self) -> list[JsonValue]:
        return [self.name, self.type, self.mode, self.size, self.sha256, self.linkname,
                self.hash_size, self.hash_sha256]

    @classmethod
    def from_json(cls, row: JsonValue) -> Member:
        """The member :meth:`to_json` wrote; ValueError for any other shape."""
        if not isinstance(row, list) or len(row) != 8:
            raise ValueError("a member is a list of 8 fields")
        name, kind, mode, size, sha, link, hash_size, hash_sha = row
        if not (isinstance(name, str) and isinstance(mode, int) and isinstance(size, int)
                and isinstance(sha, str) and isinstance(link, str)
                and (hash_size is None or isinstance(hash_size, int))
                and (hash_sha is None or isinstance(hash_sha, str))):
            raise ValueError(f"a member's fields have the wrong types: {row!r}")
        if kind == "file":
            return cls(name, "file", mode, size, sha, link, hash_size, hash_sha)
        if kind == "dir":
            return cls(name, "dir", mode, size, sha, link, hash_size, hash_sha)
        if kind == "symlink":
            return cls(name, "symlink", mode, size, sha, link, hash_size, hash_sha)
        raise ValueError(f"{kind!r} is not a member type")


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """What packing a chunk found: its identity, the identity the content hash uses,
    and its uncompressed length (in the archive and in the hash's view)."""

    digest: str
    size: int
    hash_digest: str
    hash_size: int


def normal_mode(member_type: MemberType, st_mode: int) -> int:
    """0755 for folders and for files with any execute bit, 0644 for other files,
    0777 for links: the only modes an archive carries."""
    if member_type == "dir":
        return 0o755
    if member_type == "symlink":
        return 0o777
    return 0o755 if st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else 0o644


def arcname_join(root: str, rel: str) -> str:
    """The archive name of ``rel`` (a posix path inside a tree, ``""`` for the tree
    itself) under the tree's archive root (``./deployment``, ``/app/lib``, ``.``)."""
    if not rel:
        return root
    if root == "/":
        return "/" + rel
    return f"{root}/{rel}"


def normal_arcname(name: str) -> str:
    """The path a member takes on the worker, spelled one way: ``./a/../b``, ``a//b``
    and ``b`` are all ``./b``; an absolute name stays absolute (``/app/x`` is not
    ``./app/x``: the worker extracts relative names into its working folder, which
    is not known here)."""
    normal = posixpath.normpath(name)
    if name.startswith("/"):
        return "/" + normal.lstrip("/")
    return "." if normal == "." else f"./{normal}"


_TYPE_WORDS: dict[str, str] = {"file": "a file", "dir": "a folder", "symlink": "a symbolic link"}


@dataclass(frozen=True)
class Origin:
    """A source of archive members, as an error about a clash names it."""

    kind: Literal["config", "code", "copy", "plugin"]
    #: ``COPY ../lib /app/lib at Vastfile:7:1``
    label: str
    #: where its files come from, as shown (``../lib``); None for generated files
    root: str | None = None
    #: a COPY of a folder, whose members ``.vastignore`` can leave out
    folder: bool = False

    def source(self, rel: str | None) -> str | None:
        """The file behind a member, as shown, or None for a generated one."""
        if self.root is None or rel is None:
            return None
        return posixpath.join(self.root, rel) if rel else self.root


class ArchivePaths:
    """The paths an archive's members take on the worker, and the source of each.

    The worker extracts every member in order, so two members at one path would
    both travel and the last would silently win, and a member below a file or a
    link would fail to extract or land elsewhere. This is where both stop the
    build, naming the two sources. Folder entries are all alike (0755, root, one
    mtime), so a folder that is already in the archive is simply not repeated.
    ``reserved`` paths (what vastbuild writes for CODE and ``./config.json``) take
    no member, at them or below them, from any other source.
    """

    def __init__(self, reserved: Mapping[str, Origin] | None = None) -> None:
        self._reserved: dict[str, Origin] = dict(reserved or {})
        #: path -> (member type, origin, rel)
        self._taken: dict[str, tuple[MemberType, Origin, str | None]] = {}
        #: folder path -> (first member below it, its origin, its rel)
        self._below: dict[str, tuple[str, Origin, str | None]] = {}

    def copy(self) -> ArchivePaths:
        other = ArchivePaths(self._reserved)
        other._taken = dict(self._taken)
        other._below = dict(self._below)
        return other

    def add(self, name: str, member_type: MemberType, origin: Origin,
            rel: str | None = None) -> bool:
        """Record the member ``name`` from ``origin`` (``rel``: its path inside the
        source tree). Returns False for a folder the archive already has (leave it
        out); raises :class:`VastbuildError` for a clash."""
        path = normal_arcname(name)
        if path.startswith("./"):
            top = "./" + path[2:].split("/", 1)[0]
            owner = self._reserved.get(top)
            if owner is not None and owner != origin:
                where = f"{path} is" if path == top else f"{path} would land in {top}, which is"
                raise VastbuildError(
                    f"{where} reserved for {owner.label}\n"
                    + _line(member_type, origin, rel, path),
                    _hint([(origin, rel)]))
        taken = self._taken.get(path)
        if taken is not None:
            if taken[0] == "dir" and member_type == "dir":
                return False
            first_type, first, first_rel = taken
            same = _same(first.source(first_rel), origin.source(rel))
            raise VastbuildError(
                f"two members at {path}: the worker would keep only the last\n"
                + _line(first_type, first, first_rel) + "\n"
                + _line(member_type, origin, rel),
                _hint([(first, first_rel), (origin, rel)], same_file=same))
        if member_type != "dir" and path in self._below:
            inner, first, first_rel = self._below[path]
            raise VastbuildError(
                f"{path} would be {_TYPE_WORDS[member_type]}, but the archive already "
                f"holds {inner} below it\n" + _line(None, first, first_rel, inner) + "\n"
                + _line(member_type, origin, rel, path),
                _hint([(first, first_rel), (origin, rel)]))
        parent = _parent(path)
        while parent not in (".", "/") and parent not in self._below:
            holder = self._taken.get(parent)
            if holder is not None and holder[0] != "dir":
                raise VastbuildError(
                    f"{path} would be extracted below {parent}, which is "
                    f"{_TYPE_WORDS[holder[0]]}\n" + _line(*holder, parent) + "\n"
                    + _line(member_type, origin, rel, path),
                    _hint([(holder[1], holder[2]), (origin, rel)]))
            self._below[parent] = (path, origin, rel)
            parent = _parent(parent)
        self._taken[path] = (member_type, origin, rel)
        return True


def _parent(path: str) -> str:
    """The folder of a normal archive path (``./a`` -> ``.``, ``/a`` -> ``/``; ``.``
    itself -> ``.``): a string cut, which planning does for every member."""
    head, slash, _ = path.rpartition("/")
    return (head or "/") if slash else "."


def _line(member_type: MemberType | None, origin: Origin, rel: str | None,
          path: str | None = None) -> str:
    """One source of a clash: ``  - [path: ]a file from ORIGIN (its file)``."""
    source = origin.source(rel)
    return "  - " + (f"{path}: " if path else "") + \
        (f"{_TYPE_WORDS[member_type]} " if member_type else "") + f"from {origin.label}" + \
        (f" ({source})" if source is not None else "")


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and posixpath.normpath(a) == posixpath.normpath(b)


def _hint(sources: Sequence[tuple[Origin, str | None]], same_file: bool = False) -> str:
    """What to do about a clash between ``sources`` (members by origin and path inside
    it; one source alone went into a path vastbuild reserves)."""
    origins = [o for o, _ in sources]
    copies = sum(1 for o in origins if o.kind == "copy")
    fixes = []
    if same_file and copies == 2:
        fixes.append("remove the COPY whose files the other already brings")
    if copies:
        fixes.append("give " + ("one of the COPYs" if copies == 2 else "the COPY")
                     + " another destination")
    if any(o.kind == "copy" and o.folder and rel for o, rel in sources):
        fixes.append("leave the path out of the copied folder with a .vastignore pattern "
                     "(matched relative to each COPY's source)")
    if any(o.kind == "plugin" for o in origins):
        fixes.append("change the destination of the plugin's directive")
    return fixes[0] if len(fixes) == 1 else ", ".join(fixes[:-1]) + ", or " + fixes[-1]


@functools.lru_cache(maxsize=1 << 16)
def header(member: Member, mtime: int = 0) -> bytes:
    """The tar header block(s) of ``member``: ustar, plus a pax record only where ustar
    cannot say it (a long or non-ASCII name or link, a size over 8 GiB). Remembered:
    a cold build needs each header to pack the chunk and again per format."""
    info = tarfile.TarInfo(member.name)
    info.type = _TAR_TYPES[member.type]
    info.mode = member.mode
    info.size = member.size if member.type == "file" else 0
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.linkname = member.linkname
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def padded(size: int) -> int:
    """``size`` rounded up to whole tar blocks."""
    return -(-size // BLOCK) * BLOCK


#: the largest mtime a ustar header holds (eleven octal digits)
MAX_USTAR_MTIME = 8 ** 11 - 1


def source_date_epoch() -> int:
    """The mtime every member carries: ``$SOURCE_DATE_EPOCH`` when set, else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    try:
        epoch = int(value)
    except ValueError:
        raise VastbuildError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds",
                             "set it to a Unix time such as 1700000000, or unset it") from None
    if epoch > MAX_USTAR_MTIME:  # a later time would need a pax record in every header
        raise VastbuildError(f"SOURCE_DATE_EPOCH={value!r} is past the tar header's limit "
                             f"({MAX_USTAR_MTIME})",
                             "set it to a Unix time such as 1700000000, or unset it")
    return max(epoch, 0)


def _digest_members(members: Iterable[Member], mtime: int) -> tuple[str, int]:
    h = hashlib.sha256(CHUNK_TAG)
    size = 0
    for member in members:
        block = header(member, mtime)
        h.update(len(block).to_bytes(8, "big"))
        h.update(block)
        h.update(member.size.to_bytes(8, "big"))
        h.update(bytes.fromhex(member.sha256))
        size += len(block) + padded(member.size)
    return h.hexdigest(), size


def chunk_info(members: Sequence[Member], mtime: int = 0) -> ChunkInfo:
    """The digest of a chunk: SHA-256 over each member's header bytes and content
    digest, length-framed. Headers and contents fix the chunk's bytes one to one,
    so this names the uncompressed bytes without reading a file."""
    digest, size = _digest_members(members, mtime)
    if all(m.hash_sha256 is None for m in members):
        return ChunkInfo(digest, size, digest, size)
    hash_digest, hash_size = _digest_members((m.hash_view() for m in members), mtime)
    return ChunkInfo(digest, size, hash_digest, hash_size)


def _name_hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(os.fsencode(name)).digest()[:8], "big")


def _approximate_length(member: Member) -> int:
    return BLOCK + padded(member.size)


def plan_chunks(members: Sequence[Member]) -> list[tuple[int, int]]:
    """Cut one tree's member list into chunks: ``[(start, stop), ...]`` covering it.

    Boundaries come from the members' names (content-defined chunking on a name
    hash), so adding, removing or editing a file moves no boundary elsewhere.
    """
    if not members:
        return []
    return _split(members, 0, len(members), (AVERAGE_MEMBERS, SPLIT_MEMBERS, 1))


def _split(members: Sequence[Member], start: int, stop: int,
           rules: tuple[int, ...]) -> list[tuple[int, int]]:
    average, finer = rules[0], rules[1:]
    threshold = (1 << 64) // average
    cuts = [start] + [i for i in range(start + 1, stop)
                      if average == 1 or _name_hash(members[i].name) < threshold] + [stop]
    chunks: list[tuple[int, int]] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if finer and b - a > 1 and sum(_approximate_length(m) for m in members[a:b]) \
                > MAX_CHUNK_BYTES:
            chunks.extend(_split(members, a, b, finer))
        else:
            chunks.append((a, b))
    return chunks


def end_of_archive(length: int) -> bytes:
    """The bytes after the last member of an archive of ``length`` bytes: two zero
    blocks, then zeros up to a whole record."""
    total = length + 2 * BLOCK
    return bytes(2 * BLOCK + (-total % RECORD))


def chunk_stream(members: Sequence[Member], mtime: int,
                 open_content: Callable[[Member], Iterable[bytes]]) -> Iterator[bytes]:
    """The chunk's uncompressed bytes, in slices of exactly :data:`SLICE` bytes (the
    last may be shorter). ``open_content`` yields a file member's bytes; it is
    trusted to yield exactly ``member.size`` of them (the caller verifies digests)."""
    buffer = bytearray()
    for member in members:
        buffer += header(member, mtime)
        if member.type == "file" and member.size:
            for piece in open_content(member):
                buffer += piece
                while len(buffer) >= SLICE:
                    yield bytes(buffer[:SLICE])
                    del buffer[:SLICE]
            buffer += bytes(-member.size % BLOCK)
        while len(buffer) >= SLICE:
            yield bytes(buffer[:SLICE])
            del buffer[:SLICE]
    if buffer:
        yield bytes(buffer)


class _Engine(Protocol):
    """What isal's and zstandard's compression objects have in common."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class Compressor:
    """One gzip member or one zstd frame from a stream of slices, written to ``out``.

    Fixed settings, fixed slicing: the output is a function of the input bytes,
    the format, the level and the library's version (see :func:`compressor_version`).
    """

    def __init__(self, fmt: str, level: int, size: int, out: BinaryIO):
        self.fmt = fmt
        self.out = out
        self.size = 0
        self.written = 0
        self.sha256 = hashlib.sha256()
        self._engine: _Engine
        if fmt == "gz":
            from isal import isal_zlib

            self._crc32 = isal_zlib.crc32
            self._crc = 0
            self._engine = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
            self._emit(_GZIP_HEADER)
        elif fmt == "zst":
            import zstandard

            context = zstandard.ZstdCompressor(level=level, write_checksum=True,
                                               write_content_size=True, threads=0)
            self._engine = context.compressobj(size=size)
        else:
            raise ValueError(f"unknown format {fmt!r}")

    def _emit(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            self.sha256.update(data)
            self.written += len(data)

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.fmt == "gz":
            self._crc = self._crc32(data, self._crc)
        self._emit(self._engine.compress(data))

    def finish(self) -> None:
        self._emit(self._engine.flush())
        if self.fmt == "gz":
            self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF))


def compress_bytes(fmt: str, level: int, data: bytes, out: BinaryIO) -> Compressor:
    """Compress a small buffer (the end-of-archive blocks) as one member/frame."""
    compressor = Compressor(fmt, level, len(data), out)
    for offset in range(0, len(data), SLICE):
        compressor.feed(data[offset:offset + SLICE])
    compressor.finish()
    return compressor


def compressor_version(fmt: str) -> str:
    """The library that produces ``fmt``'s bytes, with its version: part of every
    compressed chunk's cache key, since a new version may emit other bytes."""
    if fmt == "gz":
        import isal

        return f"isal {isal.__version__}"
    import zstandard

    return f"zstandard {zstandard.__version__} (libzstd {zstandard.ZSTD_VERSION})"
