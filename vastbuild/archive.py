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
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO, Literal

from vastbuild.canonical import JsonValue
from vastbuild.errors import VastbuildError

if TYPE_CHECKING:
    import zstandard

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

#: Chunking: a member starts a new chunk with a probability of its length in the tar
#: stream over TARGET_CHUNK_BYTES, drawn from the hash of its name: chunks of about
#: that many bytes, whatever the files' sizes, and whether a member starts one depends
#: on its own name and size only, so an edit moves no boundary but its own, and
#: adding or removing a file changes its own chunk and at most the one before. A
#: chunk over MAX_CHUNK_BYTES (names that drew badly) is cut again by the same rule
#: at a quarter of the target, and so on down to single members.
TARGET_CHUNK_BYTES = 4 << 20
MAX_CHUNK_BYTES = 16 << 20

#: a gzip chunk is cut into members of this many uncompressed bytes, whatever the
#: files' sizes, so that its output depends on the bytes alone
SLICE = 1 << 20

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
        fixes.append("leave the path out with a .vastignore pattern (matched relative to "
                     "the folder holding the .vastignore)")
    if any(o.kind == "plugin" for o in origins):
        fixes.append("change the destination of the plugin's directive")
    return fixes[0] if len(fixes) == 1 else ", ".join(fixes[:-1]) + ", or " + fixes[-1]


@functools.lru_cache(maxsize=1 << 16)
def header(member: Member, mtime: int = 0) -> bytes:
    """The tar header block(s) of ``member``: ustar, plus a pax record only where ustar
    cannot say it (a long or non-ASCII name or link, a size over 8 GiB). The common
    case is built here directly, byte for byte what :mod:`tarfile` writes (a test
    holds them equal), in a tenth of the time; the rest is left to tarfile."""
    return _ustar_header(member, mtime) or _tarfile_header(member, mtime)


def _tarfile_header(member: Member, mtime: int) -> bytes:
    info = tarfile.TarInfo(member.name)
    info.type = _TAR_TYPES[member.type]
    info.mode = member.mode
    info.size = member.size if member.type == "file" else 0
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.linkname = member.linkname
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


#: the fields after the name, mode, ids, size and mtime that are the same in every header
_USTAR_OWNERS = b"ustar\x0000" + b"root".ljust(32, b"\0") * 2 + b"\0" * 16 + b"\0" * 155
_USTAR_LIMIT = 8 ** 11


def _ustar_header(member: Member, mtime: int) -> bytes | None:
    """The header tarfile writes for a member that needs no pax record, or None."""
    name = member.name + "/" if member.type == "dir" and not member.name.endswith("/") \
        else member.name
    size = member.size if member.type == "file" else 0
    if (len(name) > 100 or len(member.linkname) > 100 or not name.isascii()
            or not member.linkname.isascii() or not 0 <= size < _USTAR_LIMIT
            or not 0 <= mtime < _USTAR_LIMIT):
        return None
    block = b"".join((
        name.encode("ascii").ljust(100, b"\0"), b"%07o\0" % (member.mode & 0o7777),
        b"0000000\0" * 2, b"%011o\0" % size, b"%011o\0" % mtime, b"        ",
        _TAR_TYPES[member.type], member.linkname.encode("ascii").ljust(100, b"\0"),
        _USTAR_OWNERS)).ljust(BLOCK, b"\0")
    # the checksum counts its own field as eight spaces, as the block holds it now
    return block[:148] + b"%06o\0" % sum(block) + block[155:]


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
    so this names the uncompressed bytes without reading a file. Remembered: a build
    needs it per format and again for the content hash."""
    return _chunk_info(tuple(members), mtime)


@functools.lru_cache(maxsize=1 << 14)
def _chunk_info(members: tuple[Member, ...], mtime: int) -> ChunkInfo:
    digest, size = _digest_members(members, mtime)
    if all(m.hash_sha256 is None for m in members):
        return ChunkInfo(digest, size, digest, size)
    hash_digest, hash_size = _digest_members((m.hash_view() for m in members), mtime)
    return ChunkInfo(digest, size, hash_digest, hash_size)


def tree_chunks(members: tuple[Member, ...], mtime: int,
                whole: bool = False) -> list[tuple[int, int, ChunkInfo]]:
    """A tree's chunks: ``(start, stop, info)`` for each slice of ``members``, cut by
    :func:`plan_chunks`, or one chunk of everything when ``whole`` (the files a plugin
    contributes, which stay together)."""
    spans = [(0, len(members))] if whole and members else plan_chunks(members)
    return [(start, stop, chunk_info(members[start:stop], mtime)) for start, stop in spans]


@functools.lru_cache(maxsize=1 << 17)
def _name_hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(os.fsencode(name)).digest()[:8], "big")


def _approximate_length(member: Member) -> int:
    return BLOCK + padded(member.size)


def plan_chunks(members: Sequence[Member]) -> list[tuple[int, int]]:
    """Cut one tree's member list into chunks: ``[(start, stop), ...]`` covering it.

    Boundaries come from the members' names and sizes (content-defined chunking on
    a name hash, weighted by length), see :data:`TARGET_CHUNK_BYTES`.
    """
    if not members:
        return []
    return _split(members, 0, len(members), TARGET_CHUNK_BYTES)


def replan_chunks(members: Sequence[Member], spans: Sequence[tuple[int, int]],
                  changed: Iterable[int]) -> list[tuple[int, int]]:
    """:func:`plan_chunks` of ``members``, given its ``spans`` before the members at the
    positions ``changed`` changed size (names and positions stay): a member decides
    alone whether it starts a chunk, and each region between two such members is
    split on its own, so only the regions around the changed members are cut again."""
    if not members:
        return []
    regions: list[tuple[int, int]] = []
    for j in sorted(set(changed)):
        low = j - 1
        while low > 0 and not _starts_chunk(members[low], TARGET_CHUNK_BYTES):
            low -= 1
        high = j + 1
        while high < len(members) and not _starts_chunk(members[high], TARGET_CHUNK_BYTES):
            high += 1
        low = max(low, 0)
        if regions and low <= regions[-1][1]:
            regions[-1] = (regions[-1][0], max(high, regions[-1][1]))
        else:
            regions.append((low, high))
    cut: list[tuple[int, int]] = []
    before = 0
    for low, high in regions:
        while before < len(spans) and spans[before][1] <= low:
            cut.append(spans[before])
            before += 1
        cut.extend(_split(members, low, high, TARGET_CHUNK_BYTES))
        while before < len(spans) and spans[before][0] < high:
            before += 1
    cut.extend(spans[before:])
    return cut


def _starts_chunk(member: Member, target: int) -> bool:
    return _name_hash(member.name) < (1 << 64) * _approximate_length(member) // target


def _split(members: Sequence[Member], start: int, stop: int,
           target: int) -> list[tuple[int, int]]:
    cuts = [start] + [i for i in range(start + 1, stop)
                      if target <= BLOCK or _starts_chunk(members[i], target)] + [stop]
    chunks: list[tuple[int, int]] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if b - a > 1 and target > BLOCK and \
                sum(_approximate_length(m) for m in members[a:b]) > MAX_CHUNK_BYTES:
            chunks.extend(_split(members, a, b, target // 4))
        else:
            chunks.append((a, b))
    return chunks


def end_of_archive(length: int) -> bytes:
    """The bytes after the last member of an archive of ``length`` bytes: two zero
    blocks, then zeros up to a whole record."""
    total = length + 2 * BLOCK
    return bytes(2 * BLOCK + (-total % RECORD))


def chunk_stream(members: Sequence[Member], mtime: int,
                 open_content: Callable[[int, Member], Iterable[bytes]]) -> Iterator[bytes]:
    """The chunk's uncompressed bytes, in pieces as they come: each member's header,
    its content as ``open_content(position, member)`` yields it (trusted to be exactly
    ``member.size`` bytes: the caller checks), and the padding to a whole block.
    Nothing is copied; :class:`Compressor` cuts what needs fixed slices."""
    for position, member in enumerate(members):
        yield header(member, mtime)
        if member.type == "file" and member.size:
            yield from open_content(position, member)
            if member.size % BLOCK:
                yield _PADDING[member.size % BLOCK:]


_PADDING = bytes(BLOCK)


class Compressor:
    """A chunk's compressed bytes from its pieces, written to ``out``: one zstd frame,
    or gzip members, one a :data:`SLICE` of the chunk.

    The output is a function of the input bytes, the format, the level and the
    library's version (see :func:`compressor_version`): zstd's frame does not depend
    on how its input is cut into calls, and the gzip members are cut at fixed
    offsets. A gzip member a slice costs 18 bytes a megabyte and no ratio (deflate
    looks back 32 KiB only), and lets a slice that does not compress be stored as it
    is, at the speed of a copy, instead of costing the compressor's time for nothing.
    """

    def __init__(self, fmt: str, level: int, size: int, out: BinaryIO):
        self.fmt = fmt
        self.level = level
        self.out = out
        self.size = 0
        self.written = 0
        self._pending: list[bytes | memoryview] = []
        self._pending_size = 0
        if fmt == "zst":
            self._frame = _zstd_context(level).compressobj(size=size)
        elif fmt != "gz":
            raise ValueError(f"unknown format {fmt!r}")

    def _emit(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            self.written += len(data)

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.fmt == "zst":
            self._emit(self._frame.compress(data))
            return
        view = memoryview(data)
        while view:  # gather exactly SLICE bytes a member, copying each byte once
            take = view[:SLICE - self._pending_size]
            self._pending.append(take)
            self._pending_size += len(take)
            view = view[len(take):]
            if self._pending_size == SLICE:
                self._flush_slice()

    def _flush_slice(self) -> None:
        self._emit(gzip_member(b"".join(self._pending), self.level))
        self._pending, self._pending_size = [], 0

    def finish(self) -> None:
        if self.fmt == "zst":
            self._emit(self._frame.flush())
        elif self._pending_size:
            self._flush_slice()


_zstd_contexts = threading.local()


def _zstd_context(level: int) -> zstandard.ZstdCompressor:
    """A zstd compression context for ``level``, one a thread: it keeps its buffers."""
    import zstandard

    contexts: dict[int, zstandard.ZstdCompressor] = _zstd_contexts.__dict__.setdefault(
        "by_level", {})
    if level not in contexts:
        contexts[level] = zstandard.ZstdCompressor(level=level, write_checksum=True,
                                                   write_content_size=True, threads=0)
    return contexts[level]


#: A gzip member's deflate stream is decided segment by segment: a segment whose
#: middle SAMPLE_BYTES do not shrink below STORED_RATIO at isal's fastest level is
#: stored as it is (random bytes, weights, archives: a copy instead of the
#: compressor's time for nothing); runs of the others are deflated, each run by one
#: engine, which sees no byte of a stored segment.
SEGMENT = 64 << 10
SAMPLE_BYTES = 1024
STORED_RATIO = 0.97
#: a stored deflate block holds at most this many bytes
_STORED_BLOCK = 65535
#: an empty stored block that ends a deflate stream
_LAST_EMPTY_BLOCK = b"\x01\x00\x00\xff\xff"


def gzip_member(data: bytes, level: int) -> bytes:
    """``data`` as one gzip member (RFC 1952): a raw deflate stream of its segments,
    each deflated by isal at ``level`` or stored (see :data:`SEGMENT`)."""
    from isal import isal_zlib

    trailer = struct.pack("<II", isal_zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return b"".join((_GZIP_HEADER, *_deflate(data, level), trailer))


def _deflate(data: bytes, level: int) -> Iterator[bytes | memoryview]:
    from isal import isal_zlib

    view = memoryview(data)
    engine = None
    for offset in range(0, len(data), SEGMENT):
        segment = view[offset:offset + SEGMENT]
        if compresses(segment):
            if engine is None:
                engine = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
            yield engine.compress(segment)
            continue
        if engine is not None:  # end the run on a byte boundary, the stream not ended
            yield engine.flush(isal_zlib.Z_SYNC_FLUSH)
            engine = None
        for start in range(0, len(segment), _STORED_BLOCK):
            piece = segment[start:start + _STORED_BLOCK]
            yield struct.pack("<BHH", 0, len(piece), len(piece) ^ 0xFFFF)
            yield piece
    yield engine.flush() if engine is not None else _LAST_EMPTY_BLOCK


def compresses(segment: bytes | memoryview) -> bool:
    """Whether deflating ``segment`` is worth it: the sample in its middle shrinks
    (a function of the bytes, so the member is too)."""
    from isal import isal_zlib

    start = max(0, (len(segment) - SAMPLE_BYTES) // 2)
    sample = segment[start:start + SAMPLE_BYTES]
    return len(isal_zlib.compress(sample, 0, -15)) < STORED_RATIO * len(sample)


def compress_bytes(fmt: str, level: int, data: bytes, out: BinaryIO) -> Compressor:
    """Compress a small buffer (the end-of-archive blocks) as one member/frame."""
    compressor = Compressor(fmt, level, len(data), out)
    compressor.feed(data)
    compressor.finish()
    return compressor


def compressor_version(fmt: str) -> str:
    """The library that produces ``fmt``'s bytes, with its version: part of every
    compressed chunk's cache key, since a new version may emit other bytes."""
    if fmt == "gz":
        import isal

        return (f"isal {isal.__version__}, a member a slice, each {SEGMENT}-byte segment "
                "deflated or stored")
    import zstandard

    return f"zstandard {zstandard.__version__} (libzstd {zstandard.ZSTD_VERSION})"
