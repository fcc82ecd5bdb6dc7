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
from collections.abc import Sequence
from concurrent.futures import Future

from vastbuild.archive import SUFFIXES, compress_bytes, end_of_archive
from vastbuild.canonical import JsonValue, canonical_json
from vastbuild.errors import VastbuildError
from vastbuild.files import PendingFile
from vastbuild.filestate import FileDigest, FileIndex
from vastbuild.graph import Step
from vastbuild.stats import StatKey, stat_key
from vastbuild.steps.base import (
    ArtifactResult,
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
        return {"params": dict(step.params), "layout": _layout(step, inputs)}

    def result_from_json(self, value: JsonValue) -> StepResult:
        return ArtifactResult.from_json(value)

    def is_fresh(self, step: Step, result: StepResult, ctx: StepContext) -> bool:
        artifact = expect(result, ArtifactResult)
        folder, file = os.path.split(artifact.path)
        return _holds(ctx.output_index(folder), folder, file, artifact.layout, artifact.length)

    def run(self, step: Step, inputs: Sequence[StepResult], ctx: StepContext) -> StepResult:
        fmt, level = step.str_param("format"), step.int_param("level")
        folder = step.str_param("folder")
        layout = _layout(step, inputs)
        file = step.optional_str_param("file") or layout[:40] + SUFFIXES[fmt]
        path = os.path.join(folder, file)
        trees = [expect(tree, CompressedTree) for tree in inputs]
        tail = io.BytesIO()
        compress_bytes(fmt, level, end_of_archive(sum(c.size for t in trees for c in t.chunks)),
                       tail)
        try:
            pending = PendingFile(path)
        except OSError as exc:
            raise VastbuildError(f"cannot write to {folder}: {exc.strerror or exc}",
                                 "choose another output folder", setting="outdir") from None
        with pending:
            try:
                length = self._fill(step, trees, tail.getvalue(), pending, ctx)
                index = ctx.output_index(folder)
                if not _holds(index, folder, file, layout, length, compare=pending):
                    pending.commit()
                    index.remember(file, stat_key(os.stat(path)), FileDigest(layout, length),
                                   None)
            except OSError as exc:  # the cache reports its own failures otherwise
                raise VastbuildError(f"cannot write {path}: {exc.strerror or exc}",
                                     "free some space, or choose another output folder",
                                     setting="outdir") from None
        return ArtifactResult(path, layout, length)

    def _fill(self, step: Step, trees: Sequence[CompressedTree], tail: bytes,
              pending: PendingFile, ctx: StepContext) -> int:
        """Copy every blob and the tail into the pending file; its length."""
        fd = pending.stream.fileno()
        total = sum(c.length for t in trees for c in t.chunks) + len(tail)
        os.ftruncate(fd, total)
        tasks: list[tuple[str, Future[None]]] = []
        batch: list[tuple[str, StatKey, int]] = []
        offset = batched = 0
        for dep, tree in zip(step.deps, trees, strict=True):
            for chunk in tree.chunks:
                batch.append((chunk.name, chunk.key, offset))
                offset += chunk.length
                batched += chunk.length
                if batched >= COPY_BATCH:
                    tasks.append((dep, ctx.pool.submit(_copy, batch, fd, ctx)))
                    batch, batched = [], 0
            if batch:  # a batch never spans two trees: a missing blob names its step
                tasks.append((dep, ctx.pool.submit(_copy, batch, fd, ctx)))
                batch, batched = [], 0
        for dep, task in tasks:
            try:
                task.result()
            except KeyError:
                raise StaleInput(dep) from None
        os.pwrite(fd, tail, offset)
        return total


def _copy(batch: Sequence[tuple[str, StatKey, int]], fd: int, ctx: StepContext) -> None:
    for name, key, offset in batch:
        ctx.checkpoint("assemble")
        ctx.cache.blobs.copy_into(name, key, fd, offset)


def _layout(step: Step, inputs: Sequence[StepResult]) -> str:
    """What the artifact is made of: its blobs in order and its format and level (which
    fix the tail). Equal layouts are equal bytes."""
    blobs: list[JsonValue] = [c.name for tree in inputs
                              for c in expect(tree, CompressedTree).chunks]
    sizes = sum(c.size for tree in inputs for c in expect(tree, CompressedTree).chunks)
    material: JsonValue = {"format": step.str_param("format"),
                           "level": step.int_param("level"), "blobs": blobs, "size": sizes}
    return hashlib.sha256(canonical_json(material)).hexdigest()


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
