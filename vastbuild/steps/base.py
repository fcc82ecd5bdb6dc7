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
them as JSON: :class:`TreeResult` (a source tree's members), :class:`ChunkResult`
(a chunk's identity), :class:`BlobResult` (a compressed chunk in the cache),
:class:`ArtifactResult` (a file written for the user).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from vastbuild.archive import Member, normal_mode
from vastbuild.canonical import JsonValue, canonical_json

if TYPE_CHECKING:
    from vastbuild.cache import BuildCache
    from vastbuild.filestate import FileIndex
    from vastbuild.graph import Step
    from vastbuild.model import Deployment
    from vastbuild.progress import Reporter

#: bytes of file content held in memory between hashing and tarring in one build
CONTENT_BUDGET = 256 << 20

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
    """A source tree: its members in archive order and, for each file read from
    disk, its path relative to ``root`` (``None`` for folders, links and
    generated files, whose bytes the cache holds by digest)."""

    root: str | None
    members: tuple[Member, ...]
    rels: tuple[str | None, ...]

    def to_json(self) -> JsonValue:
        return {"root": self.root, "members": [m.to_json() for m in self.members],
                "rels": list(self.rels)}

    @classmethod
    def from_json(cls, value: JsonValue) -> TreeResult:
        doc = _object(value)
        try:
            root, rows, rels = doc["root"], doc["members"], doc["rels"]
            if not isinstance(rows, list) or not isinstance(rels, list):
                raise MalformedResult("members and rels are lists")
            members = tuple(Member.from_json(row) for row in rows)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResult(str(exc)) from None
        if (root is not None and not isinstance(root, str)) or len(rels) != len(members) \
                or not all(rel is None or isinstance(rel, str) for rel in rels):
            raise MalformedResult("root and rels are strings")
        return cls(root, members, tuple(rel if isinstance(rel, str) else None for rel in rels))


@dataclass(frozen=True)
class ChunkResult(StepResult):
    """A chunk's identity: the digest and length of its uncompressed bytes, the same
    as the content hash sees them (``hash_*``), and how many members it holds."""

    digest: str
    size: int
    hash_digest: str
    hash_size: int
    count: int

    def to_json(self) -> JsonValue:
        return {"digest": self.digest, "size": self.size, "hash_digest": self.hash_digest,
                "hash_size": self.hash_size, "count": self.count}

    @classmethod
    def from_json(cls, value: JsonValue) -> ChunkResult:
        doc = _object(value)
        return cls(_str(doc, "digest"), _int(doc, "size"), _str(doc, "hash_digest"),
                   _int(doc, "hash_size"), _int(doc, "count"))


@dataclass(frozen=True)
class BlobResult(StepResult):
    """A compressed chunk in the cache: its blob's name, the SHA-256 and length of
    the compressed bytes, and the length of the uncompressed chunk."""

    blob: str
    sha256: str
    length: int
    size: int

    def to_json(self) -> JsonValue:
        return {"blob": self.blob, "sha256": self.sha256, "length": self.length,
                "size": self.size}

    @classmethod
    def from_json(cls, value: JsonValue) -> BlobResult:
        doc = _object(value)
        return cls(_str(doc, "blob"), _str(doc, "sha256"), _int(doc, "length"),
                   _int(doc, "size"))


@dataclass(frozen=True)
class ArtifactResult(StepResult):
    """A file written for the user: where, and the SHA-256 and length of its bytes."""

    path: str
    sha256: str
    length: int

    def to_json(self) -> JsonValue:
        return {"path": self.path, "sha256": self.sha256, "length": self.length}

    @classmethod
    def from_json(cls, value: JsonValue) -> ArtifactResult:
        doc = _object(value)
        return cls(_str(doc, "path"), _str(doc, "sha256"), _int(doc, "length"))


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


class ContentBuffer:
    """File bytes read while hashing, kept for the tar writer so that a cold build
    reads each file once. Bounded by :data:`CONTENT_BUDGET`; each entry is dropped
    after its last expected use."""

    def __init__(self, uses: int, budget: int = CONTENT_BUDGET):
        self.uses = uses
        self._budget = budget
        self._held: dict[str, tuple[bytes, int]] = {}
        self._lock = threading.Lock()

    def wants(self, size: int) -> bool:
        return self.uses > 0 and size <= self._budget

    def put(self, path: str, data: bytes) -> None:
        with self._lock:
            if self.uses > 0 and len(data) <= self._budget:
                self._held[path] = (data, self.uses)
                self._budget -= len(data)

    def take(self, path: str) -> bytes | None:
        with self._lock:
            found = self._held.get(path)
            if found is None:
                return None
            data, left = found
            if left <= 1:
                del self._held[path]
                self._budget += len(data)
            else:
                self._held[path] = (data, left - 1)
            return data


#: names a checkpoint where a build pauses until it is interrupted: a hook for tests
#: that must interrupt a build at a known point (``assemble``: an artifact half written)
PAUSE_VARIABLE = "VASTBUILD_PAUSE_AT"


@dataclass
class StepContext:
    """What a running step may use besides its inputs."""

    cache: BuildCache
    reporter: Reporter
    content: ContentBuffer
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
    return TreeResult(None, tuple(members), (None,) * len(members))


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
