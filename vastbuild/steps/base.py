"""What a step kind is: the protocol the executor calls, the results steps pass along.

A step kind turns its upstream results into a result of its own. Every kind,
built-in or from a plugin, implements :class:`StepKind`; :class:`StepKindBase`
gives the optional hooks their defaults, so a kind writes only what differs:

- ``name`` and ``version``: part of every key, bumped whenever the kind's
  output for the same inputs changes;
- ``run(step, inputs, ctx)``: the result, from the upstream results
  (``inputs``, in the order of ``step.deps``);
- ``result_from_json(value)``: a cached result back from its JSON;
- ``key_material(step, inputs)``: what the key hashes (default: the params and
  every input's digest);
- ``is_fresh(step, result, ctx)``: whether a cached result still holds outside
  the cache (default: always);
- ``plan(deployment)``: for a kind that contributes files to the tarball, the
  params of one step per contribution (default: none); such a step returns a
  :class:`TreeResult` (:func:`generated_tree`), placed after the COPYs;
- ``input_files(step)``: the files such a step reads, for depfiles (default:
  none).

Results are frozen dataclasses with a JSON round trip, because the cache keeps
them as JSON: :class:`TreeResult` (a source tree's members),
:class:`CompressedTree` (a tree's chunks compressed, in the cache's blobs),
:class:`ArtifactResult` (a file written for the user).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from vastbuild.archive import Member, normal_mode
from vastbuild.canonical import JsonValue, canonical_json
from vastbuild.stats import StatKey

if TYPE_CHECKING:
    from vastbuild.cache import BuildCache
    from vastbuild.filestate import FileIndex
    from vastbuild.graph import Step
    from vastbuild.model import Deployment
    from vastbuild.progress import Reporter

Params = Mapping[str, JsonValue]


class MalformedResult(ValueError):
    """A result's JSON does not have the shape its kind writes (an old or damaged entry)."""


class StepResult:
    """Base of every step result: a frozen dataclass that round-trips through JSON."""

    def to_json(self) -> JsonValue:
        raise NotImplementedError

    def json_digest(self) -> str:
        """SHA-256 of the result's canonical JSON: what a default key sees of it."""
        return hashlib.sha256(canonical_json(self.to_json())).hexdigest()


R = TypeVar("R", bound=StepResult)


def expect(result: StepResult, kind: type[R]) -> R:
    """``result`` as a ``kind``; a step wired to the wrong kind of input is a bug."""
    if not isinstance(result, kind):
        raise TypeError(f"expected a {kind.__name__}, got a {type(result).__name__}")
    return result


def _object(value: JsonValue) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise MalformedResult("not a JSON object")
    return value


@dataclass(frozen=True)
class TreeResult(StepResult):
    """A source tree: its members in archive order and, for each file read from disk,
    its path relative to ``root`` and the stat it was hashed with (``None`` for
    folders, links and generated files, whose bytes the cache holds by digest)."""

    root: str | None
    members: tuple[Member, ...]
    rels: tuple[str | None, ...]
    keys: tuple[StatKey | None, ...]

    def to_json(self) -> JsonValue:
        return {"root": self.root, "members": [m.to_json() for m in self.members],
                "rels": list(self.rels), "keys": [None if k is None else list(k)
                                                  for k in self.keys]}

    @classmethod
    def from_json(cls, value: JsonValue) -> TreeResult:
        doc = _object(value)
        try:
            root, rows, rels, keys = doc["root"], doc["members"], doc["rels"], doc["keys"]
            if not isinstance(rows, list) or not isinstance(rels, list) \
                    or not isinstance(keys, list):
                raise MalformedResult("members, rels and keys are lists")
            members = tuple(Member.from_json(row) for row in rows)
            stat_keys = tuple(_stat_key(key) for key in keys)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResult(str(exc)) from None
        if (root is not None and not isinstance(root, str)) \
                or not len(rels) == len(members) == len(stat_keys) \
                or not all(rel is None or isinstance(rel, str) for rel in rels):
            raise MalformedResult("root and rels are strings")
        return cls(root, members, tuple(rel if isinstance(rel, str) else None for rel in rels),
                   stat_keys)

    def path(self, index: int) -> str | None:
        """The file behind member ``index``, or None for a generated one."""
        rel = self.rels[index]
        if rel is None or self.root is None:
            return None
        return os.path.join(self.root, rel) if rel else self.root


def _stat_key(value: JsonValue) -> StatKey | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 5 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError("a stat key is five whole numbers")
    size, mtime, ctime, inode, mode = (int(v) for v in value if isinstance(v, int))
    return (size, mtime, ctime, inode, mode)


@dataclass(frozen=True)
class ChunkBlob:
    """One compressed chunk of a tree: the blob holding it (whose stat the cache
    vouches for, see :meth:`vastbuild.cache.BuildCache.blob`), the blob's length, and
    the length of the chunk's uncompressed tar bytes. Nothing in it depends on the
    machine, so the result travels through a remote cache."""

    name: str
    length: int
    size: int


@dataclass(frozen=True)
class CompressedTree(StepResult):
    """A tree's chunks compressed in one format, in archive order."""

    chunks: tuple[ChunkBlob, ...]

    def to_json(self) -> JsonValue:
        return [[c.name, c.length, c.size] for c in self.chunks]

    @classmethod
    def from_json(cls, value: JsonValue) -> CompressedTree:
        if not isinstance(value, list):
            raise MalformedResult("not a list")
        chunks = []
        for row in value:
            if not isinstance(row, list) or len(row) != 3:
                raise MalformedResult("a chunk is [name, length, size]")
            name, length, size = row
            if not isinstance(name, str) or not isinstance(length, int) \
                    or not isinstance(size, int):
                raise MalformedResult("a chunk is [name, length, size]")
            chunks.append(ChunkBlob(name, length, size))
        return cls(tuple(chunks))


@dataclass(frozen=True)
class ArtifactResult(StepResult):
    """A file written for the user: where, what it is made of (the digest of its
    blobs' names and of its tail: it names the bytes), and its length."""

    path: str
    layout: str
    length: int

    def to_json(self) -> JsonValue:
        return {"path": self.path, "layout": self.layout, "length": self.length}

    @classmethod
    def from_json(cls, value: JsonValue) -> ArtifactResult:
        doc = _object(value)
        return cls(_str(doc, "path"), _str(doc, "layout"), _int(doc, "length"))


def _str(doc: dict[str, JsonValue], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise MalformedResult(f"{key} is not a string")
    return value


def _int(doc: dict[str, JsonValue], key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedResult(f"{key} is not a whole number")
    return value


@dataclass(frozen=True)
class Volatile:
    """A result valid for this build only: returned by a step whose output cannot be
    trusted later under the same key (a tree holding racy files); not cached."""

    result: StepResult


class BuildCancelled(Exception):
    """The build was interrupted: a running step stops at its next checkpoint."""


class StaleInput(Exception):
    """Raised by a step that found an upstream result unusable (a cached chunk gone
    or corrupt): the executor runs that upstream step again, then this one."""

    def __init__(self, step_id: str):
        super().__init__(step_id)
        self.step_id = step_id


#: names a checkpoint where a build pauses until it is interrupted: a hook for tests
#: that must interrupt a build at a known point (``assemble``: an artifact half written)
PAUSE_VARIABLE = "VASTBUILD_PAUSE_AT"


@dataclass
class StepContext:
    """What a running step may use besides its inputs."""

    cache: BuildCache
    reporter: Reporter
    #: threads for the work inside a step (hashing files, compressing chunks, copying
    #: blobs), shared by every step of the build
    pool: Executor
    #: when the build began: a file modified since may change unseen by its stat
    started_ns: int = field(default_factory=time.time_ns)
    #: the (format, level) pairs the build compresses into, and the mtime of every tar
    #: header: a step that reads a chunk's files anyway may compress it right away
    formats: tuple[tuple[str, int], ...] = ()
    mtime: int = 0
    #: file indexes of output folders, shared by the steps that write there
    outputs: dict[str, FileIndex] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: set when the build is interrupted (Ctrl-C, a failed step): running steps stop
    cancelled: threading.Event = field(default_factory=threading.Event)
    pause_at: str | None = field(default_factory=lambda: os.environ.get(PAUSE_VARIABLE))

    def checkpoint(self, name: str) -> None:
        """A point where a step may stop: raises :class:`BuildCancelled` once the build
        is interrupted. With ``$VASTBUILD_PAUSE_AT`` naming it, the step waits here
        until then, so a test can interrupt a build at a known point."""
        if self.pause_at == name:
            self.cancelled.wait()
        if self.cancelled.is_set():
            raise BuildCancelled(name)

    def output_index(self, folder: str) -> FileIndex:
        from vastbuild.filestate import FileIndex

        with self.lock:
            if folder not in self.outputs:
                self.outputs[folder] = FileIndex(self.cache, folder)
            return self.outputs[folder]


@runtime_checkable
class StepKind(Protocol):
    """What the executor and the planner call on a step kind (see the module docstring)."""

    name: str
    version: int

    def run(self, step: Step, inputs: Sequence[StepResult],
            ctx: StepContext) -> StepResult | Volatile: ...

    def result_from_json(self, value: JsonValue) -> StepResult: ...

    def key_material(self, step: Step, inputs: Sequence[StepResult]) -> JsonValue: ...

    def is_fresh(self, step: Step, result: StepResult, ctx: StepContext) -> bool: ...

    def restore(self, step: Step, result: StepResult, inputs: Sequence[StepResult],
                ctx: StepContext) -> bool: ...

    def plan(self, deployment: Deployment) -> Sequence[Params]: ...

    def input_files(self, step: Step) -> Sequence[str]: ...


class StepKindBase:
    """The optional hooks of :class:`StepKind` with their defaults; a kind subclasses
    this and writes ``name``, ``version``, ``run`` and ``result_from_json``."""

    name: str
    version: int

    def key_material(self, step: Step, inputs: Sequence[StepResult]) -> JsonValue:
        return {"params": dict(step.params), "inputs": [r.json_digest() for r in inputs]}

    def is_fresh(self, step: Step, result: StepResult, ctx: StepContext) -> bool:
        return True

    def restore(self, step: Step, result: StepResult, inputs: Sequence[StepResult],
                ctx: StepContext) -> bool:
        return False

    def plan(self, deployment: Deployment) -> Sequence[Params]:
        return ()

    def input_files(self, step: Step) -> Sequence[str]:
        return ()


class SourceKind(StepKindBase):
    """Base of a kind whose steps produce a source tree: results are :class:`TreeResult`."""

    def result_from_json(self, value: JsonValue) -> StepResult:
        return TreeResult.from_json(value)


def generated_tree(ctx: StepContext, files: Sequence[tuple[str, bytes, int]]) -> TreeResult:
    """A source tree of generated files ``(archive name, bytes, mode)``; the bytes go
    to the cache by digest, where the tar writer finds them."""
    members = []
    for name, data, mode in files:
        digest = ctx.cache.put_content(data)
        members.append(Member(name, "file", normal_mode("file", mode), len(data), digest))
    return TreeResult(None, tuple(members), (None,) * len(members), (None,) * len(members))


def require_kind_shape(kind: object) -> str | None:
    """Why ``kind`` cannot serve as a step kind, or None when it can."""
    if not isinstance(kind, StepKind):
        missing = [hook for hook in ("run", "result_from_json", "key_material", "is_fresh",
                                     "plan", "input_files") if not callable(getattr(kind, hook,
                                                                                    None))]
        return ("it lacks " + ", ".join(f"`{hook}`" for hook in missing)
                + " (subclass vastbuild.steps.StepKindBase for the optional hooks)"
                if missing else "it lacks `name` or `version`")
    if not isinstance(kind.name, str) or not isinstance(kind.version, int):
        return "its `name` is not a string or its `version` not an integer"
    return None
