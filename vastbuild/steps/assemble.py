"""The ``assemble`` step: the artifact file, the compressed chunks end to end.

gzip members concatenate into one gzip file and zstd frames into one zstd
stream, so the artifact is the chunks' blobs in order, then the end-of-archive
blocks as a member (frame) of their own, so that a size change in one chunk
does not recompress the last one. The file is written beside its destination
and renamed over it, and only when its bytes differ from what is there: an
unchanged artifact keeps its mtime, and ``make`` sees nothing new.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence

from vastbuild.archive import SUFFIXES, compress_bytes, end_of_archive
from vastbuild.cache import CorruptEntry
from vastbuild.canonical import JsonValue, canonical_json
from vastbuild.errors import VastbuildError
from vastbuild.files import PendingFile
from vastbuild.filestate import FileDigest, FileIndex, now_ns, read_file
from vastbuild.graph import Step
from vastbuild.stats import stat_key
from vastbuild.steps.base import (
    ArtifactResult,
    BlobResult,
    StaleInput,
    StepContext,
    StepKindBase,
    StepResult,
    expect,
)


class Assemble(StepKindBase):
    name = "assemble"
    version = 1

    def key_material(self, step: Step, inputs: Sequence[StepResult]) -> JsonValue:
        chunks = [expect(chunk, BlobResult) for chunk in inputs]
        return {"format": step.str_param("format"), "level": step.int_param("level"),
                "folder": step.str_param("folder"), "file": step.optional_str_param("file"),
                "chunks": [c.sha256 for c in chunks], "size": sum(c.size for c in chunks)}

    def result_from_json(self, value: JsonValue) -> StepResult:
        return ArtifactResult.from_json(value)

    def is_fresh(self, step: Step, result: StepResult, ctx: StepContext) -> bool:
        artifact = expect(result, ArtifactResult)
        folder, file = os.path.split(artifact.path)
        return matches(ctx.output_index(folder), folder, file, artifact.sha256, artifact.length)

    def run(self, step: Step, inputs: Sequence[StepResult], ctx: StepContext) -> StepResult:
        chunks = [expect(chunk, BlobResult) for chunk in inputs]
        fmt, level = step.str_param("format"), step.int_param("level")
        folder = step.str_param("folder")
        file = step.optional_str_param("file") or (
            hashlib.sha256(canonical_json(self.key_material(step, inputs))).hexdigest()[:40]
            + SUFFIXES[fmt])
        path = os.path.join(folder, file)
        tail = io.BytesIO()
        compress_bytes(fmt, level, end_of_archive(sum(c.size for c in chunks)), tail)
        try:
            pending = PendingFile(path)
        except OSError as exc:
            raise VastbuildError(f"cannot write to {folder}: {exc.strerror or exc}",
                                 "choose another output folder", setting="outdir") from None
        h = hashlib.sha256()
        with pending:
            try:
                for dep, chunk in zip(step.deps, chunks, strict=True):
                    ctx.checkpoint("assemble")
                    try:
                        ctx.cache.copy_blob(chunk.blob, pending.stream, h)
                    except (KeyError, CorruptEntry):
                        raise StaleInput(dep) from None
                pending.write(tail.getvalue())
                h.update(tail.getvalue())
                pending.stream.flush()
                length = os.fstat(pending.stream.fileno()).st_size
                digest = h.hexdigest()
                index = ctx.output_index(folder)
                if not matches(index, folder, file, digest, length):
                    pending.commit()
                    index.remember(file, stat_key(os.stat(path)), FileDigest(digest, length),
                                   now_ns())
            except OSError as exc:  # the cache reports its own failures otherwise
                raise VastbuildError(f"cannot write {path}: {exc.strerror or exc}",
                                     "free some space, or choose another output folder",
                                     setting="outdir") from None
        return ArtifactResult(path, digest, length)


def matches(index: FileIndex, folder: str, file: str, sha256: str, length: int) -> bool:
    """Whether ``folder/file`` holds exactly the bytes with ``sha256`` (read only when
    the index does not know its stat)."""
    path = os.path.join(folder, file)
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_size != length:
        return False
    key = stat_key(st)
    known = index.lookup(file, key)
    if known is None:
        try:
            digest, _ = read_file(path, key, keep=False)
        except VastbuildError:
            return False
        known = FileDigest(digest, length)
        index.remember(file, key, known, now_ns())
    return known.sha256 == sha256
