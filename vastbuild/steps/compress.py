"""The ``compress`` step: one chunk as one gzip member or one zstd frame, in the cache.

Its key is the chunk's digest (the identity of its uncompressed bytes), the
format, the level and the compressor's version: a chunk compressed once is
never compressed again, whichever target, tree or clone it comes from. The tar
bytes are written from the files named by the source tree's result, read once
and checked against the digests the chunk was packed from (or taken from the
bytes the collect step kept), and the compressed blob goes to the cache with
the SHA-256 of its own bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from vastbuild.archive import Compressor, Member, chunk_stream, compressor_version
from vastbuild.canonical import JsonValue, canonical_json
from vastbuild.filestate import READ_BLOCK, FileChanged
from vastbuild.graph import Step
from vastbuild.steps.base import (
    BlobResult,
    ChunkResult,
    StaleInput,
    StepContext,
    StepKindBase,
    StepResult,
    TreeResult,
    expect,
)
from vastbuild.steps.pack import chunk_members

#: compressed chunks up to this size are assembled in memory, larger ones in a file
IN_MEMORY = 64 << 20


class Compress(StepKindBase):
    name = "compress"
    version = 1

    def key_material(self, step: Step, inputs: Sequence[StepResult]) -> JsonValue:
        fmt = step.str_param("format")
        return {"chunk": expect(inputs[0], ChunkResult).digest, "format": fmt,
                "level": step.int_param("level"), "compressor": compressor_version(fmt)}

    def result_from_json(self, value: JsonValue) -> StepResult:
        return BlobResult.from_json(value)

    def is_fresh(self, step: Step, result: StepResult, ctx: StepContext) -> bool:
        return ctx.cache.has_blob(expect(result, BlobResult).blob)

    def run(self, step: Step, inputs: Sequence[StepResult], ctx: StepContext) -> StepResult:
        pack, source = expect(inputs[0], ChunkResult), expect(inputs[1], TreeResult)
        start, stop = step.int_param("start"), step.optional_int_param("stop")
        members = chunk_members(step, source)
        paths: dict[str, str | None] = {}
        for member, rel in zip(members, source.rels[start:stop], strict=True):
            if rel is None or source.root is None:
                paths[member.name] = None
            else:
                paths[member.name] = os.path.join(source.root, rel) if rel else source.root

        def content(member: Member) -> Iterator[bytes]:
            path = paths[member.name]
            if path is None:
                data = ctx.cache.get_content(member.sha256)
                if data is None:
                    raise StaleInput(step.deps[1])
                yield data
                return
            kept = ctx.content.take(path)
            if kept is not None:
                yield kept
                return
            yield from _read_checked(path, member)

        name = hashlib.sha256(canonical_json(self.key_material(step, inputs))).hexdigest()
        big = pack.size > IN_MEMORY
        out: BinaryIO = (tempfile.TemporaryFile(dir=ctx.cache.directory) if big
                         else io.BytesIO())
        with out:
            compressor = Compressor(step.str_param("format"), step.int_param("level"),
                                    pack.size, out)
            for piece in chunk_stream(members, step.int_param("mtime"), content):
                ctx.checkpoint("compress")
                compressor.feed(piece)
                ctx.reporter.advance(len(piece))
            compressor.finish()
            if compressor.size != pack.size:
                raise FileChanged(f"a file of {source.root} changed during the build",
                                  "run the build again once nothing is writing to the tree")
            digest = compressor.sha256.hexdigest()
            if big:
                out.seek(0)
                ctx.cache.put_blob(name, out, digest)
            else:
                assert isinstance(out, io.BytesIO)
                ctx.cache.put_blob(name, out.getvalue(), digest)
        return BlobResult(name, digest, compressor.written, pack.size)


def _read_checked(path: str, member: Member) -> Iterator[bytes]:
    """The file's bytes, exactly ``member.size`` of them, checked against its digest."""
    h = hashlib.sha256()
    left = member.size
    try:
        with open(path, "rb", buffering=0) as handle:
            while left:
                piece = handle.read(min(READ_BLOCK, left))
                if not piece:
                    break
                h.update(piece)
                left -= len(piece)
                yield piece
            extra = handle.read(1)
    except OSError as exc:
        raise FileChanged(f"cannot read {path} any more: {exc.strerror or exc}",
                          "run the build again once nothing is writing to the tree") from None
    if left or extra or h.hexdigest() != member.sha256:
        raise FileChanged(f"{path} changed during the build",
                          "run the build again once nothing is writing to the tree")
