"""The ``collect`` step: a source tree (CODE, a COPY source, a ``PIP -r`` file) as members.

Planning scans the tree: one ``lstat`` per entry, in canonical order (names
sorted by their bytes, folders before their contents), leaving out what
``.vastignore`` and the built-in exclusions (``.git``, ``__pycache__``) name.
Folders that an earlier tree of the archive already holds are left out of the
members (``params["skip"]``), so each folder appears once. The step's key is the digest
of that stat listing, so an untouched tree is a cache hit without a read; when
the key changed, the step hashes only the files whose stat the file index does
not know. Symbolic links stay links when they point inside the tree; anything
that is not a file, a folder or such a link stops the build with its path.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from vastbuild.archive import (
    Member,
    MemberType,
    arcname_join,
    chunk_info,
    normal_mode,
    plan_chunks,
)
from vastbuild.canonical import JsonValue
from vastbuild.errors import VastbuildError
from vastbuild.filestate import FileDigest, FileIndex, file_pieces, now_ns, read_file
from vastbuild.graph import Step
from vastbuild.hashing import filter_ignored_lines
from vastbuild.ignore import IGNORE_FILE, IgnoreRules
from vastbuild.stats import LISTING, NO_CHECK, Input, StatKey, is_racy, listing_digest, stat_key
from vastbuild.steps.base import SourceKind, StepContext, StepResult, TreeResult, Volatile
from vastbuild.steps.compress import blob_name, write_blob

#: folders never entered, wherever they are, unless a COPY names one as its source:
#: a repository's history, and Python's bytecode, which changes with the interpreter
#: and with every local run and would make the content hash unstable
ALWAYS_EXCLUDED_NAMES = frozenset({".git", "__pycache__"})


#: what a scan finds: a member to be, or a ``.vastignore`` (read, never carried)
EntryType = MemberType | Literal["rules"]


@dataclass(frozen=True, slots=True)
class ScanEntry:
    rel: str
    type: EntryType
    mode: int
    key: StatKey | None
    linkname: str = ""


@dataclass(frozen=True)
class Scan:
    """A tree's stat listing: what the collect step will turn into members.

    ``folders`` holds the stat of each folder walked, taken before it was listed
    (a file added to it later changes it), and the digest of that listing (which
    checks a folder changed too recently for its stat to vouch for it); it is not
    part of the ``signature``, which is what the collect step's key sees."""

    root: str
    entries: tuple[ScanEntry, ...]
    signature: str
    scanned_ns: int
    folders: tuple[tuple[str, StatKey, str], ...] = ()
    #: the ``.vastignore`` files above the tree that shaped the listing
    rule_files: tuple[str, ...] = ()

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def files(self) -> list[str]:
        """Absolute paths of every file and folder in the listing and of the
        ``.vastignore`` files above it (for depfiles)."""
        return [*self.rule_files, *(self.path(e.rel) for e in self.entries)]

    def stats(self) -> list[Input]:
        """Every link and folder walked, by absolute path, with its stat (folders checked
        by their listing); files are the collect step's to tell (it knows their
        content)."""
        found = [(self.path(e.rel), e.key, NO_CHECK) for e in self.entries
                 if e.key is not None and e.type != "file"]  # links and .vastignore files
        return found + [(self.path(rel), key, LISTING + digest)
                        for rel, key, digest in self.folders]


def scan_tree(src: Path, *, rules: IgnoreRules | None,
              exclude: Collection[str] = ()) -> Scan:
    """Stat-walk ``src`` (a file or a folder, absolute) in canonical order.

    ``exclude`` holds absolute paths left out wherever they appear below ``src``
    (the Vastfile, ``.vastignore``, the cache and output folders). Raises
    :class:`VastbuildError` for a device, a socket, a pipe, a link leaving the
    tree, or a folder that cannot be read.
    """
    root = os.fspath(src)
    scanned = now_ns()
    try:
        st = os.stat(root)
    except OSError as exc:
        raise VastbuildError(f"cannot read {root}: {exc.strerror or exc}",
                             "check that the path exists and is readable") from None
    entries: list[ScanEntry] = []
    folders: list[tuple[str, StatKey, str]] = []
    if stat.S_ISDIR(st.st_mode):
        entries.append(ScanEntry("", "dir", 0o755, None))
        _walk(root, root, "", stat_key(st), rules or IgnoreRules(), frozenset(exclude),
              entries, folders)
    elif stat.S_ISREG(st.st_mode):
        entries.append(ScanEntry("", "file", normal_mode("file", st.st_mode), stat_key(st)))
    else:
        raise _not_a_file(root, st.st_mode)
    listing = [(e.rel, e.type, e.key, e.linkname) for e in entries]
    signature = hashlib.sha256(repr((root, listing)).encode("utf-8", "surrogateescape"))
    return Scan(root, tuple(entries), signature.hexdigest(), scanned, tuple(folders),
                tuple(str(p) for p in rules.paths) if rules else ())


def _walk(root: str, folder: str, prefix: str, key: StatKey, rules: IgnoreRules,
          exclude: frozenset[str], out: list[ScanEntry],
          folders: list[tuple[str, StatKey, str]]) -> None:
    """Walk ``folder`` (whose stat, taken before listing it, is ``key``), under the
    ``.vastignore`` files above it and its own."""
    try:
        with os.scandir(folder) as listing:
            children = sorted(listing, key=lambda e: os.fsencode(e.name))
    except OSError as exc:
        raise VastbuildError(f"cannot list {folder}: {exc.strerror or exc}",
                             "make it readable, or exclude it in .vastignore") from None
    folders.append((prefix.rstrip("/"), key, listing_digest(c.name for c in children)))
    if any(child.name == IGNORE_FILE for child in children):
        rules = rules.with_folder(folder)
    for child in children:
        rel = f"{prefix}{child.name}"
        if child.path in exclude:
            continue
        try:
            st = child.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone between listing and stat: as if it had never been there
        except OSError as exc:
            raise VastbuildError(f"cannot read {child.path}: {exc.strerror or exc}",
                                 "make it readable, or exclude it in .vastignore") from None
        mode = st.st_mode
        if child.name == IGNORE_FILE and stat.S_ISREG(mode):
            out.append(ScanEntry(rel, "rules", 0o644, stat_key(st)))  # read, never carried
            continue
        if stat.S_ISDIR(mode):
            if child.name in ALWAYS_EXCLUDED_NAMES or rules.excludes(child.path, True):
                continue
            out.append(ScanEntry(rel, "dir", 0o755, None))
            _walk(root, child.path, rel + "/", stat_key(st), rules, exclude, out, folders)
        elif rules.excludes(child.path, False):
            continue
        elif stat.S_ISREG(mode):
            out.append(ScanEntry(rel, "file", normal_mode("file", mode), stat_key(st)))
        elif stat.S_ISLNK(mode):
            out.append(ScanEntry(rel, "symlink", 0o777, stat_key(st),
                                 _link_inside(root, child.path)))
        else:
            raise _not_a_file(child.path, mode)


def would_collect(root: str, path: str, rules: IgnoreRules | None) -> bool:
    """Whether the walk of the tree at ``root`` would have listed ``path`` (absolute), which
    is no longer there: it lies below the root, no folder on the way is excluded, and
    no ``.vastignore`` (``rules``, those above the tree) leaves it out. A deleted
    ``.vastignore`` counts: it shaped the listing. For telling which targets a
    deletion affects, as :func:`_walk` would have decided."""
    if not path.startswith(root.rstrip("/") + "/"):
        return False
    rules = rules or IgnoreRules()
    folder = root
    parts = path[len(root.rstrip("/")) + 1:].split("/")
    for depth, name in enumerate(parts):
        rules = rules.with_folder(folder)
        child = os.path.join(folder, name)
        last = depth == len(parts) - 1
        if last and name == IGNORE_FILE:
            return True
        if (not last and name in ALWAYS_EXCLUDED_NAMES) or rules.excludes(child, not last):
            return False
        folder = child
    return True


def _link_inside(root: str, link: str) -> str:
    """The link's target, relative to its folder, when it stays inside ``root``."""
    target = os.readlink(link)
    folder = os.path.dirname(link)
    lexical = os.path.normpath(os.path.join(folder, target))
    resolved = os.path.realpath(link)
    if not (_inside(lexical, root) and _inside(resolved, root)):
        raise VastbuildError(
            f"{link} is a symbolic link to {target}, which is outside the copied tree {root}",
            "replace the link with what it points to, make it point inside the tree, "
            "or exclude it in .vastignore")
    return os.path.relpath(lexical, folder)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _not_a_file(path: str, mode: int) -> VastbuildError:
    what = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a named pipe" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    return VastbuildError(f"{path} is {what}; a deployment carries only files, folders "
                          "and symbolic links", "exclude it in .vastignore")


def member_type(entry: ScanEntry) -> MemberType:
    """The member a scanned entry that travels (see :func:`travels`) becomes."""
    if entry.type == "rules":
        raise ValueError(f"{entry.rel} is a .vastignore, which never travels")
    return entry.type


def travels(entry: ScanEntry, arcroot: str, skip: Collection[str] = ()) -> bool:
    """Whether a scanned entry becomes a member: everything but the root folder of a
    tree copied onto ``.`` or ``/`` (the worker's own folders keep their modes) and
    the folders in ``skip`` (already in the archive, from an earlier tree)."""
    if entry.type == "rules" or (entry.rel == "" and entry.type == "dir"
                                 and arcroot in (".", "/")):
        return False
    return not (entry.type == "dir" and entry.rel in skip)


#: a file up to this size read to be hashed is kept for the chunk's compression, so
#: that a cold build reads it once; a larger one is read again when compressed
KEEP_BYTES = 16 << 20


class Collect(SourceKind):
    """Hash a scanned tree into members (archive names under ``params["arcroot"]``).

    The tree is worked on chunk by chunk (the chunks :mod:`vastbuild.steps.compress`
    will cut it into), each chunk a task of the build's pool. When a chunk's files
    have to be read to be hashed and the build compresses (``ctx.formats``), the
    same task compresses the chunk from the bytes it read, so a cold build reads
    each file once; the compress step then finds the blobs there.
    """

    name = "collect"
    version = 2

    def key_material(self, step: Step, inputs: Sequence[StepResult]) -> JsonValue:
        return {"params": dict(step.params), "listing": step.attached(Scan).signature}

    def run(self, step: Step, inputs: Sequence[StepResult],
            ctx: StepContext) -> StepResult | Volatile:
        scan = step.attached(Scan)
        arcroot = step.str_param("arcroot")
        skip = frozenset(step.str_list_param("skip"))
        entries = [entry for entry in scan.entries if travels(entry, arcroot, skip)]
        planned = [Member(arcname_join(arcroot, e.rel), member_type(e), e.mode,
                          e.key[0] if e.type == "file" and e.key else 0,
                          linkname=e.linkname) for e in entries]
        index = FileIndex(ctx.cache, scan.root)
        known = [index.lookup(e.rel, e.key) if e.type == "file" and e.key is not None else None
                 for e in entries]
        work = _TreeWork(scan, entries, planned, known, step.bool_param("filter"), ctx)
        digests: list[FileDigest | None] = []
        for future in [ctx.pool.submit(work.chunk, start, stop)
                       for start, stop in plan_chunks(planned)]:
            digests.extend(future.result())
        members: list[Member] = []
        racy = False
        for entry, member, digest, before in zip(entries, planned, digests, known, strict=True):
            if entry.type != "file":
                members.append(member)
                continue
            assert digest is not None and entry.key is not None
            if before is None:
                index.remember(entry.rel, entry.key, digest, scan.scanned_ns)
            racy = racy or is_racy(entry.key, scan.scanned_ns)
            members.append(replace(member, size=digest.size, sha256=digest.sha256,
                                   hash_size=digest.hash_size, hash_sha256=digest.hash_sha256))
        index.save()
        result = TreeResult(scan.root, tuple(members),
                            tuple(e.rel if e.type == "file" else None for e in entries),
                            tuple(e.key if e.type == "file" else None for e in entries))
        return Volatile(result) if racy else result


class _TreeWork:
    """The chunks of one tree, each hashed (and compressed, when read) by a pool task."""

    def __init__(self, scan: Scan, entries: Sequence[ScanEntry], planned: Sequence[Member],
                 known: Sequence[FileDigest | None], filter_python: bool, ctx: StepContext):
        self.scan, self.entries, self.planned, self.known = scan, entries, planned, known
        self.filter_python, self.ctx = filter_python, ctx

    def chunk(self, start: int, stop: int) -> list[FileDigest | None]:
        digests: list[FileDigest | None] = []
        kept: dict[int, bytes] = {}
        for position in range(start, stop):
            entry, digest = self.entries[position], self.known[position]
            if entry.type == "file" and digest is None:
                self.ctx.checkpoint("collect")
                assert entry.key is not None
                keep = bool(self.ctx.formats) and entry.key[0] <= KEEP_BYTES
                digest, data = hash_file(self.scan.path(entry.rel), entry.key,
                                         self.filter_python, keep)
                if data is not None:
                    kept[position] = data
            digests.append(digest)
        if kept:  # read anyway: compress now, from the bytes at hand
            self._compress(start, stop, digests, kept)
        return digests

    def _compress(self, start: int, stop: int, digests: Sequence[FileDigest | None],
                  kept: dict[int, bytes]) -> None:
        members = tuple(
            member if digest is None else replace(
                member, size=digest.size, sha256=digest.sha256, hash_size=digest.hash_size,
                hash_sha256=digest.hash_sha256)
            for member, digest in zip(self.planned[start:stop], digests, strict=True))
        info = chunk_info(members, self.ctx.mtime)

        def content(position: int, member: Member) -> Iterator[bytes]:
            data = kept.get(start + position)
            if data is not None:
                yield data
                return
            entry = self.entries[start + position]
            assert entry.key is not None
            racy = is_racy(entry.key, self.ctx.started_ns)
            yield from file_pieces(self.scan.path(entry.rel), entry.key,
                                   member.sha256 if racy else None)

        for fmt, level in self.ctx.formats:
            name = blob_name(info, fmt, level)
            # a blob already there is the compress step's to judge: its own record
            # vouches for it, or it compresses the chunk again
            cache = self.ctx.cache
            if cache.blobs.key(name) is None and (cache.remote is None
                                                  or cache.blob(name) is None):
                write_blob(self.ctx, name, members, info, fmt, level, self.ctx.mtime, content,
                           self.scan.root)


def hash_file(path: str, key: StatKey, filter_python: bool,
              keep: bool) -> tuple[FileDigest, bytes | None]:
    """The digest of the file ``path`` whose lstat was ``key`` (and, with ``keep``, its
    bytes); ``filter_python``: a ``.py`` file is hashed for the content hash without
    its lines marked ``# !VAST_IGNORE_CHANGES``."""
    size = key[0]
    python = filter_python and path.endswith(".py")
    sha, data = read_file(path, key, keep=keep or python)
    digest = FileDigest(sha, size)
    if python and data is not None:
        filtered = filter_ignored_lines(data)
        if filtered != data:
            digest = FileDigest(sha, size, hashlib.sha256(filtered).hexdigest(), len(filtered))
    return digest, data if keep else None
