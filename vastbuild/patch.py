"""Building a target again from its last state when only its files' contents changed.

The up-to-date record of a build (:mod:`vastbuild.uptodate`) names the inputs
that changed since. When each of them is a file of a CODE or COPY tree, still a
regular file, and nothing else changed (no folder's listing, no link, not the
Vastfile, a requirements file, a plugin's input or an output), what the build
would do is known without parsing or planning: hash the changed files again,
cut their trees into chunks again, compress the chunks that have no blob yet,
and assemble each artifact from its blobs. The target's state -- every tree's
members, chunks and blobs, kept beside the record -- holds the rest. The same
functions as the full build do each part, so the bytes are the same; anything
the state cannot answer raises :class:`NotPatchable`, and the full build runs.
"""

from __future__ import annotations

import marshal
import os
import stat
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace

from vastbuild.archive import (
    LEVELS,
    ChunkInfo,
    Member,
    chunk_info,
    end_of_archive,
    normal_mode,
    replan_chunks,
)
from vastbuild.errors import VastbuildError
from vastbuild.hashing import code_and_copies, content_hash, tree_components
from vastbuild.stats import CONTENT, Input, StatKey, stat_key
from vastbuild.steps.assemble import Earlier, MissingBlob, write_artifact
from vastbuild.steps.base import ChunkBlob, StepContext, TreeResult
from vastbuild.steps.collect import KEEP_BYTES, hash_file
from vastbuild.steps.compress import MissingContent, blob_name, tree_content, write_blob

#: bumped when the state's shape changes
STATE_FORMAT = 1


class NotPatchable(Exception):
    """The state cannot answer for what changed: the full build must run."""


@dataclass(frozen=True)
class TreeState:
    """One tree of a target as its last build left it: its role and place in the
    archive, its members, its chunks, and each chunk's blob per format built."""

    role: str
    arcroot: str
    whole: bool
    #: whether ``.py`` files are hashed without their ignored lines (the CODE tree)
    filter_python: bool
    tree: TreeResult
    chunks: tuple[tuple[int, int, ChunkInfo], ...]
    blobs: Mapping[str, tuple[ChunkBlob, ...]]


@dataclass(frozen=True)
class TargetState:
    """Every tree of a target, in archive order, and the tar headers' mtime."""

    mtime: int
    trees: tuple[TreeState, ...]

    def formats(self) -> set[str]:
        """The formats every tree has blobs for."""
        return set.intersection(*(set(t.blobs) for t in self.trees)) if self.trees else set()

    def to_bytes(self) -> bytes:
        return marshal.dumps((STATE_FORMAT, self.mtime, [
            (t.role, t.arcroot, t.whole, t.filter_python, t.tree.root,
             [m.to_json() for m in t.tree.members], list(t.tree.rels), list(t.tree.keys),
             [(a, b, i.digest, i.size, i.hash_digest, i.hash_size) for a, b, i in t.chunks],
             {fmt: [(c.name, c.length, c.size) for c in blobs] for fmt, blobs in t.blobs.items()})
            for t in self.trees]))

    @classmethod
    def from_bytes(cls, data: bytes) -> TargetState:
        """The state :meth:`to_bytes` wrote (the record names its digest, so it is read
        as written, without checking each field); :class:`NotPatchable` for another
        format."""
        try:
            form, mtime, rows = marshal.loads(data)
            if form != STATE_FORMAT:
                raise NotPatchable("another state format")
            trees = []
            for role, arcroot, whole, filter_python, root, members, rels, keys, chunks, \
                    blobs in rows:
                result = TreeResult(root, tuple(Member(*row) for row in members), tuple(rels),
                                    tuple(None if k is None else tuple(k) for k in keys))
                cut = tuple((a, b, ChunkInfo(d, s, hd, hs)) for a, b, d, s, hd, hs in chunks)
                per_format = {fmt: tuple(ChunkBlob(name, length, size)
                                         for name, length, size in found)
                              for fmt, found in blobs.items()}
                if any(len(found) != len(cut) for found in per_format.values()):
                    raise NotPatchable("a format's blobs do not match the chunks")
                trees.append(TreeState(role, arcroot, whole, filter_python, result, cut,
                                       per_format))
        except (ValueError, TypeError, EOFError) as exc:
            raise NotPatchable(f"an unreadable state: {exc}") from None
        return cls(mtime, tuple(trees))


@dataclass(frozen=True)
class Patched:
    """What patching gave: the new state, the content hash, the two components files
    make (``code``, ``copies``), the sizes (``tar`` and each format's artifact), the
    changed files as inputs of the next record, and how many of the steps a full
    build would have run did run."""

    state: TargetState
    hash: str
    components: dict[str, str]
    sizes: dict[str, int]
    inputs: list[Input]
    built_steps: int


def patch(state: TargetState, changed: Iterable[str], ctx: StepContext, *,
          artifacts: Mapping[str, str]) -> Patched:
    """Bring ``state`` up to date with the files ``changed`` (absolute paths), writing
    each artifact of ``artifacts`` (format -> path) again. :class:`NotPatchable` when
    a changed path is not a regular file of a tree, or something the state relies on
    is gone (a blob, a generated file's bytes); nothing is written then but blobs."""
    if not set(artifacts) <= state.formats():
        raise NotPatchable("a format the last build did not make")
    touched: dict[int, dict[int, Member]] = {}
    keys: dict[int, dict[int, StatKey]] = {}
    kept: dict[int, dict[int, bytes]] = {}
    inputs: list[Input] = []
    for path in changed:
        places = _places(state, path)
        if not places:
            raise NotPatchable(f"{path} is not a file of a tree")
        try:
            st = os.lstat(path)
        except OSError:
            raise NotPatchable(f"{path} is gone") from None
        if not stat.S_ISREG(st.st_mode):
            raise NotPatchable(f"{path} is no longer a regular file")
        key = stat_key(st)
        digest = data = None
        for t, m in places:
            tree = state.trees[t]
            try:
                digest, data = hash_file(path, key, tree.filter_python,
                                         keep=bool(artifacts) and key[0] <= KEEP_BYTES)
            except VastbuildError:
                raise NotPatchable(f"{path} changed while read") from None
            touched.setdefault(t, {})[m] = replace(
                tree.tree.members[m], mode=normal_mode("file", st.st_mode), size=digest.size,
                sha256=digest.sha256, hash_size=digest.hash_size,
                hash_sha256=digest.hash_sha256)
            keys.setdefault(t, {})[m] = key
            if data is not None:
                kept.setdefault(t, {})[m] = data
        if digest is not None:
            inputs.append((path, key, CONTENT + digest.sha256))
    trees = list(state.trees)
    for t, members_changed in touched.items():
        trees[t] = _recut(trees[t], members_changed, keys[t], kept.get(t, {}), state.mtime,
                          artifacts, ctx)
    built = len(touched) * (1 + len(artifacts)) + len(artifacts)
    chunks = [info for tree in trees for _, _, info in tree.chunks]
    tar = sum(info.size for info in chunks)
    sizes = {"tar": tar + len(end_of_archive(tar))}
    for fmt, path in artifacts.items():
        sizes[fmt] = _write(path, fmt, [t.blobs[fmt] for t in trees],
                            [t.blobs[fmt] for t in state.trees], ctx)
    members = [(t.role, t.arcroot, t.tree.members) for t in trees]
    return Patched(TargetState(state.mtime, tuple(trees)), content_hash(chunks),
                   tree_components(*code_and_copies(members)), sizes, inputs, built)


def _write(path: str, fmt: str, trees: list[tuple[ChunkBlob, ...]],
           before: list[tuple[ChunkBlob, ...]], ctx: StepContext) -> int:
    """Write the artifact of ``trees`` at ``path``, copying what the artifact there
    (made of ``before``, its stat vouched for by the record) already holds from it;
    its length."""
    try:
        old = os.open(path, os.O_RDONLY)
    except OSError:
        raise NotPatchable(f"{path} is gone") from None
    try:
        return write_artifact(path, fmt, LEVELS[fmt], trees, ctx,
                              Earlier.of(old, before)).length
    except MissingBlob:
        raise NotPatchable("a blob of the last build is gone") from None
    finally:
        os.close(old)


def _places(state: TargetState, path: str) -> list[tuple[int, int]]:
    """Where the file ``path`` is in the state's trees: (tree, member) positions."""
    found: list[tuple[int, int]] = []
    for t, tree in enumerate(state.trees):
        root = tree.tree.root
        if root is None or not (path == root or path.startswith(root.rstrip("/") + "/")):
            continue
        rel = "" if path == root else path[len(root.rstrip("/")) + 1:]
        found.extend((t, m) for m, known in enumerate(tree.tree.rels) if known == rel)
    return found


def _recut(tree: TreeState, changed: Mapping[int, Member], keys: Mapping[int, StatKey],
           kept: Mapping[int, bytes], mtime: int, artifacts: Mapping[str, str],
           ctx: StepContext) -> TreeState:
    """``tree`` with the members ``changed`` (by position; ``kept``: the bytes read of
    them), cut into chunks again. A chunk with the span it had and no changed member
    keeps its info and blobs; each other chunk takes, per format, the blob already
    there when one is trusted, or one compressed now (on the build's pool)."""
    old = tree.tree
    members = tuple(changed.get(i, m) for i, m in enumerate(old.members))
    result = TreeResult(old.root, members, old.rels,
                        tuple(keys.get(i, k) for i, k in enumerate(old.keys)))
    before = {(a, b): n for n, (a, b, _) in enumerate(tree.chunks)}
    resized = [i for i in changed if members[i].size != old.members[i].size]
    spans = list(before)  # the cuts depend on the members' names and sizes only
    if resized and not tree.whole:
        spans = replan_chunks(members, spans, resized)
    cut = []
    blobs: dict[str, list[ChunkBlob | Future[ChunkBlob]]] = {fmt: [] for fmt in artifacts}
    for start, stop in spans:
        n = before.get((start, stop))
        if n is not None and not any(start <= i < stop for i in changed):
            cut.append(tree.chunks[n])
            for fmt in artifacts:
                blobs[fmt].append(tree.blobs[fmt][n])
            continue
        info = chunk_info(members[start:stop], mtime)
        cut.append((start, stop, info))
        for fmt in artifacts:
            name = blob_name(info, fmt, LEVELS[fmt])
            key = ctx.cache.blob(name)
            blobs[fmt].append(ChunkBlob(name, key[0], info.size) if key is not None else
                              ctx.pool.submit(_compressed, result, start, stop, info, fmt,
                                              name, kept, mtime, ctx))
    return TreeState(tree.role, tree.arcroot, tree.whole, tree.filter_python, result,
                     tuple(cut), {fmt: tuple(b if isinstance(b, ChunkBlob) else b.result()
                                             for b in found)
                                  for fmt, found in blobs.items()})


def _compressed(tree: TreeResult, start: int, stop: int, info: ChunkInfo, fmt: str, name: str,
                kept: Mapping[int, bytes], mtime: int, ctx: StepContext) -> ChunkBlob:
    try:
        write_blob(ctx, name, tree.members[start:stop], info, fmt, LEVELS[fmt], mtime,
                   tree_content(tree, start, ctx, kept), tree.root)
    except MissingContent:
        raise NotPatchable("a generated file's bytes are gone from the cache") from None
    except VastbuildError:
        raise NotPatchable("a file changed while read") from None
    return ChunkBlob(name, ctx.cache.blobs.written_keys[name][0], info.size)
