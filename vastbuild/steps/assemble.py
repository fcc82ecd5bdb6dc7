"""The ``assemble`` step: the artifact file, the compressed chunks end to end.

gzip members concatenate into one gzip file and zstd frames into one zstd
stream, so the artifact is its trees' blobs in archive order, then the
end-of-archive blocks as a member (frame) of their own, so that a size change in
one chunk does not recompress the last one. The blobs are copied into place by
the kernel (``copy_file_range``), several at once; the file is written beside
its destination and renamed over it, and only when its bytes differ from what
is there: an unchanged artifact keeps its mtime, and ``make`` sees nothing new.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass

from vastbuild.archive import compress_bytes, end_of_archive
from vastbuild.cache import BlobStore, copy_range
from vastbuild.canonical import JsonValue, canonical_json
from vastbuild.errors import VastbuildError
from vastbuild.files import PendingFile
from vastbuild.filestate import FileDigest, FileIndex
from vastbuild.formats import SUFFIXES
from vastbuild.graph import Step
from vastbuild.stats import stat_key
from vastbuild.steps.base import (
    ArtifactResult,
    ChunkBlob,
    CompressedTree,
    StaleInput,
    StepContext,
    StepKindBase,
    StepResult,
    expect,
)

#: blobs are copied by tasks of about this many bytes each
COPY_BATCH = 32 << 20


class Assemble(StepKindBase):
    name = "assemble"
    version = 2

    def key_material(self, step: Step, inputs: Sequence[StepResult]) -> JsonValue:
        return {"params": dict(step.params), "layout": layout_of(
            step.str_param("format"), step.int_param("level"), _chunks(inputs))}

    def result_from_json(self, value: JsonValue) -> StepResult:
        return ArtifactResult.from_json(value)

    def is_fresh(self, step: Step, result: StepResult, ctx: StepContext) -> bool:
        artifact = expect(result, ArtifactResult)
        folder, file = os.path.split(artifact.path)
        return _holds(ctx.output_index(folder), folder, file, artifact.layout, artifact.length)

    def restore(self, step: Step, result: StepResult, inputs: Sequence[StepResult],
                ctx: StepContext) -> bool:
        """Write the artifact again from its blobs, when they are all there."""
        artifact = expect(result, ArtifactResult)
        try:
            write_artifact(artifact.path, step.str_param("format"), step.int_param("level"),
                           [expect(tree, CompressedTree).chunks for tree in inputs], ctx)
        except MissingBlob:
            return False
        return True

    def run(self, step: Step, inputs: Sequence[StepResult], ctx: StepContext) -> StepResult:
        fmt, level = step.str_param("format"), step.int_param("level")
        folder = step.str_param("folder")
        trees = [expect(tree, CompressedTree).chunks for tree in inputs]
        file = step.optional_str_param("file") or \
            layout_of(fmt, level, _chunks(inputs))[:40] + SUFFIXES[fmt]
        try:
            return write_artifact(os.path.join(folder, file), fmt, level, trees, ctx)
        except MissingBlob as missing:
            raise StaleInput(step.deps[missing.tree]) from None


def write_artifact(path: str, fmt: str, level: int, trees: Sequence[Sequence[ChunkBlob]],
                   ctx: StepContext, earlier: Earlier | None = None) -> ArtifactResult:
    """Write the artifact of ``trees`` (each tree's chunk blobs, in archive order) at
    ``path``, unless the file there already holds those bytes. :class:`MissingBlob`
    names a tree whose blob is gone."""
    folder, file = os.path.split(path)
    chunks = [c for tree in trees for c in tree]
    layout = layout_of(fmt, level, chunks)
    try:
        pending = PendingFile(path)
    except OSError as exc:
        raise VastbuildError(f"cannot write to {folder}: {exc.strerror or exc}",
                             "choose another output folder", setting="outdir") from None
    with pending:
        try:
            length = fill(pending.stream.fileno(), trees, artifact_tail(fmt, level, chunks),
                          ctx.cache.blobs, ctx.pool, lambda: ctx.checkpoint("assemble"),
                          earlier)
            index = ctx.output_index(folder)
            if not _holds(index, folder, file, layout, length, compare=pending):
                pending.commit()
                index.remember(file, stat_key(os.stat(path)), FileDigest(layout, length), None)
        except OSError as exc:  # the cache reports its own failures otherwise
            raise VastbuildError(f"cannot write {path}: {exc.strerror or exc}",
                                 "free some space, or choose another output folder",
                                 setting="outdir") from None
    return ArtifactResult(path, layout, length)


@dataclass(frozen=True)
class Earlier:
    """An artifact written before (open as ``fd``, its bytes vouched for by its stat),
    and where each of its blobs is in it: name -> (offset, length)."""

    fd: int
    offsets: Mapping[str, tuple[int, int]]

    @classmethod
    def of(cls, fd: int, trees: Sequence[Sequence[ChunkBlob]]) -> Earlier:
        offsets, at = {}, 0
        for tree in trees:
            for chunk in tree:
                offsets[chunk.name] = (at, chunk.length)
                at += chunk.length
        return cls(fd, offsets)


class MissingBlob(KeyError):
    """A blob of tree ``tree`` is not there as it was written."""

    def __init__(self, tree: int):
        super().__init__(tree)
        self.tree = tree


def _chunks(inputs: Sequence[StepResult]) -> list[ChunkBlob]:
    return [c for tree in inputs for c in expect(tree, CompressedTree).chunks]


def layout_of(fmt: str, level: int, chunks: Sequence[ChunkBlob]) -> str:
    """What an artifact is made of: its blobs in order, its format and level and the
    length of its tar stream (which fix the tail). Equal layouts are equal bytes."""
    material: JsonValue = {"format": fmt, "level": level,
                           "blobs": [c.name for c in chunks], "size": sum(c.size for c in chunks)}
    return hashlib.sha256(canonical_json(material)).hexdigest()


def artifact_tail(fmt: str, level: int, chunks: Sequence[ChunkBlob]) -> bytes:
    """The compressed end-of-archive blocks of an artifact made of ``chunks``."""
    tail = io.BytesIO()
    compress_bytes(fmt, level, end_of_archive(sum(c.size for c in chunks)), tail)
    return tail.getvalue()


def fill(fd: int, trees: Sequence[Sequence[ChunkBlob]], tail: bytes, blobs: BlobStore,
         pool: Executor, checkpoint: Callable[[], None],
         earlier: Earlier | None = None) -> int:
    """Copy every tree's blobs, then ``tail``, into the file ``fd``, several blobs at
    once; the file's length. A blob the ``earlier`` artifact holds is copied from
    there (a file just written is likelier in memory than blobs written long ago).
    :class:`MissingBlob` names a tree whose blob is not there."""
    total = sum(c.length for tree in trees for c in tree) + len(tail)
    os.ftruncate(fd, total)
    tasks: list[tuple[int, Future[None]]] = []
    batch: list[tuple[str, int, int]] = []
    offset = batched = 0

    def copy(batch: Sequence[tuple[str, int, int]]) -> None:
        for name, length, at in batch:
            checkpoint()
            found = earlier.offsets.get(name) if earlier is not None else None
            if earlier is not None and found is not None and found[1] == length:
                if not copy_range(earlier.fd, fd, length, found[0], at):
                    raise KeyError(name)  # the earlier artifact is shorter than it was
                continue
            key = blobs.trusted(name)
            if key is None or key[0] != length:
                raise KeyError(name)
            blobs.copy_into(name, key, fd, at)

    for number, tree in enumerate(trees):
        for chunk in tree:
            batch.append((chunk.name, chunk.length, offset))
            offset += chunk.length
            batched += chunk.length
            if batched >= COPY_BATCH:
                tasks.append((number, pool.submit(copy, batch)))
                batch, batched = [], 0
        if batch:  # a batch never spans two trees: a missing blob names its tree
            tasks.append((number, pool.submit(copy, batch)))
            batch, batched = [], 0
    for number, task in tasks:
        try:
            task.result()
        except KeyError:
            raise MissingBlob(number) from None
    os.pwrite(fd, tail, offset)
    return total


def _holds(index: FileIndex, folder: str, file: str, layout: str, length: int,
           compare: PendingFile | None = None) -> bool:
    """Whether ``folder/file`` holds the artifact of ``layout``: by the output folder's
    index when it knows the file's stat; otherwise, when the new bytes are at hand
    (``compare``), by comparing the two files (then the index learns the stat)."""
    path = os.path.join(folder, file)
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_size != length:
        return False
    key = stat_key(st)
    known = index.lookup(file, key)
    if known is None and compare is not None and _same_bytes(path, compare, length):
        known = FileDigest(layout, length)
        index.remember(file, key, known, None)
    return known is not None and known.sha256 == layout


def _same_bytes(path: str, pending: PendingFile, length: int) -> bool:
    """Whether the file at ``path`` holds the bytes just written to ``pending``."""
    new = pending.stream.fileno()
    try:
        with open(path, "rb", buffering=0) as old:
            offset = 0
            while offset < length:
                step = min(1 << 20, length - offset)
                if old.read(step) != os.pread(new, step, offset):
                    return False
                offset += step
    except OSError:
        return False
    return True
