"""The ``compress`` step: one tree's chunks, each one gzip member or one zstd frame.

A tree is cut into chunks by :func:`vastbuild.archive.tree_chunks` (by name, so
that an edit disturbs one chunk only). Each chunk's compressed bytes are a blob
of the cache named by what determines them -- the chunk's digest, the format,
the level, the compressor's version -- so a chunk compressed once is never
compressed again, whichever target, tree, build or clone it comes from. The
chunks that have no blob yet are compressed in parallel on the build's pool:
the tar bytes are built from the files the tree's result names, read with the
stat they were hashed with (and checked against their digest when modified too
recently for the stat to vouch for them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from vastbuild.archive import (
    ChunkInfo,
    Compressor,
    Member,
    chunk_stream,
    compressor_version,
    tree_chunks,
)
from vastbuild.canonical import JsonValue, canonical_json
from vastbuild.filestate import FileChanged, file_pieces
from vastbuild.graph import Step
from vastbuild.stats import StatKey, is_racy
from vastbuild.steps.base import (
    ChunkBlob,
    CompressedTree,
    StaleInput,
    StepContext,
    StepKindBase,
    StepResult,
    TreeResult,
    expect,
)


def blob_name(chunk: ChunkInfo, fmt: str, level: int) -> str:
    """The blob a chunk compressed in ``fmt`` at ``level`` is kept as."""
    material: JsonValue = {"chunk": chunk.digest, "format": fmt, "level": level,
                           "compressor": compressor_version(fmt)}
    return hashlib.sha256(canonical_json(material)).hexdigest()


class Compress(StepKindBase):
    name = "compress"
    version = 2

    def key_material(self, step: Step, inputs: Sequence[StepResult]) -> JsonValue:
        fmt = step.str_param("format")
        return {"params": dict(step.params), "tree": inputs[0].json_digest(),
                "compressor": compressor_version(fmt)}

    def result_from_json(self, value: JsonValue) -> StepResult:
        return CompressedTree.from_json(value)

    def is_fresh(self, step: Step, result: StepResult, ctx: StepContext) -> bool:
        for chunk in expect(result, CompressedTree).chunks:
            key = ctx.cache.blob(chunk.name)
            if key is None or key[0] != chunk.length:
                return False
        return True

    def run(self, step: Step, inputs: Sequence[StepResult], ctx: StepContext) -> StepResult:
        tree = expect(inputs[0], TreeResult)
        fmt, level, mtime = step.str_param("format"), step.int_param("level"), \
            step.int_param("mtime")
        chunks = tree_chunks(tree.members, mtime, whole=step.bool_param("whole"))
        names = [blob_name(info, fmt, level) for _, _, info in chunks]
        blobs = ctx.cache.blobs
        # a blob is used when its stat is the one it was written with (or it came from
        # the remote cache); otherwise (gone, overwritten, no record of it) the chunk is
        # compressed again
        keys: list[StatKey | None] = list(ctx.pool.map(ctx.cache.blob, names))
        futures = [(i, ctx.pool.submit(_compress_chunk, step, tree, chunks[i], fmt, level,
                                       mtime, names[i], ctx))
                   for i, key in enumerate(keys) if key is None]
        for i, future in futures:
            future.result()
            keys[i] = blobs.written_keys[names[i]]
        return CompressedTree(tuple(
            ChunkBlob(name, key[0], info.size)
            for name, key, (_, _, info) in zip(names, keys, chunks, strict=True)
            if key is not None))


def _compress_chunk(step: Step, tree: TreeResult, chunk: tuple[int, int, ChunkInfo], fmt: str,
                    level: int, mtime: int, name: str, ctx: StepContext) -> int:
    """Compress the members ``chunk`` names of ``tree`` into the blob ``name``; its length."""
    start, stop, info = chunk
    try:
        return write_blob(ctx, name, tree.members[start:stop], info, fmt, level, mtime,
                          tree_content(tree, start, ctx), tree.root)
    except MissingContent:  # the generated file fell out of the cache
        raise StaleInput(step.deps[0]) from None


class MissingContent(KeyError):
    """A generated file's bytes are no longer in the cache."""


def tree_content(tree: TreeResult, start: int, ctx: StepContext,
                 kept: Mapping[int, bytes] | None = None,
                 ) -> Callable[[int, Member], Iterator[bytes]]:
    """The bytes of the members of ``tree`` from position ``start`` on, by their position
    from there: ``kept`` (by position in the tree) when at hand, else read from their
    file with the stat they were hashed with (and their digest checked when modified
    too recently for the stat to vouch for them), or from the cache for a generated
    file (:class:`MissingContent` when it is gone)."""
    def content(position: int, member: Member) -> Iterator[bytes]:
        data = kept.get(start + position) if kept else None
        if data is not None:
            yield data
            return
        path, key = tree.path(start + position), tree.keys[start + position]
        if path is None or key is None:
            data = ctx.cache.get_content(member.sha256)
            if data is None:
                raise MissingContent(member.sha256)
            yield data
            return
        racy = is_racy(key, ctx.started_ns)
        yield from file_pieces(path, key, member.sha256 if racy else None)

    return content


def write_blob(ctx: StepContext, name: str, members: Sequence[Member], info: ChunkInfo,
               fmt: str, level: int, mtime: int,
               content: Callable[[int, Member], Iterable[bytes]], root: str | None) -> int:
    """Compress the chunk of ``members`` (whose bytes ``content`` gives) into the blob
    ``name``; the blob's length."""
    with ctx.cache.blobs.writer(name) as out:
        compressor = Compressor(fmt, level, info.size, out)
        for piece in chunk_stream(members, mtime, content):
            ctx.checkpoint("compress")
            compressor.feed(piece)
            ctx.reporter.advance(len(piece))
        compressor.finish()
        if compressor.size != info.size:
            raise FileChanged(f"a file of {root} changed during the build",
                              "run the build again once nothing is writing to the tree")
    return compressor.written
