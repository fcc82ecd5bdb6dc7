"""Step kinds: what a node of the build graph does when it runs, and how kinds are found.

Every kind, built-in or not, is found through the ``vastbuild.steps`` entry
point group, so a plugin adds a kind exactly as vastbuild adds its own. A kind
is an object (or a class, instantiated once) with:

- ``name`` (the entry point's name) and ``version``: part of every key, bumped
  whenever the kind's output for the same inputs changes;
- ``run(step, inputs, ctx)``: the step's result, a JSON value, from its
  upstream results (``inputs``, in the order of ``step.deps``);
- optionally ``key_material(step, inputs)``: what the key hashes, when it is
  not "params and every input's digest" (a chunk depends on its own members,
  not on its whole tree);
- optionally ``is_fresh(step, result, ctx)``: whether a cached result still
  holds outside the cache (an artifact file still there, unchanged);
- optionally ``plan(deployment)``: for a kind that contributes files to the
  tarball, the params of one source step per contribution. Such a step's result
  is a source tree (:func:`generated_tree`), placed after the COPYs;
- optionally ``input_files(step)``: the files such a step reads, for
  ``vastbuild deps``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from vastbuild.errors import VastbuildError

if TYPE_CHECKING:
    from vastbuild.cache import Store
    from vastbuild.filestate import FileIndex
    from vastbuild.graph import Step
    from vastbuild.progress import Reporter

ENTRY_POINT_GROUP = "vastbuild.steps"
#: bytes of file content held in memory between hashing and tarring in one build
CONTENT_BUDGET = 256 << 20


@runtime_checkable
class StepKind(Protocol):
    name: str
    version: int

    def run(self, step: Step, inputs: Sequence[Any], ctx: StepContext) -> Any: ...


@dataclass(frozen=True)
class Volatile:
    """A result valid for this build only: returned by a step whose output cannot be
    trusted later under the same key (a tree holding racy files); not cached."""

    value: Any


class StaleInput(Exception):
    """Raised by a step that found an upstream result unusable (a cached chunk gone
    or corrupt): the builder runs that upstream step again, then this one."""

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


@dataclass
class StepContext:
    """What a running step may use besides its inputs."""

    store: Store
    reporter: Reporter
    content: ContentBuffer
    #: file indexes of output folders, shared by the steps that write there
    outputs: dict[str, FileIndex] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def output_index(self, folder: str) -> FileIndex:
        from vastbuild.filestate import FileIndex

        with self.lock:
            if folder not in self.outputs:
                self.outputs[folder] = FileIndex(self.store, folder)
            return self.outputs[folder]


def generated_tree(ctx: StepContext, files: Sequence[tuple[str, bytes, int]]) -> dict[str, Any]:
    """A source-tree result for generated files ``(archive name, bytes, mode)``; the
    bytes go to the cache by digest, where the tar writer finds them."""
    from vastbuild.archive import Member, normal_mode

    members = []
    for name, data, mode in files:
        digest = ctx.store.put_content(data)
        members.append(Member(name, "file", normal_mode("file", mode), len(data), digest).to_json())
    return {"root": None, "members": members, "rels": [None] * len(members)}


_registry: dict[str, Any] | None = None
_registry_lock = threading.Lock()


def registry() -> Mapping[str, Any]:
    """Every step kind installed, by name (loaded once per process)."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = _load()
        return _registry


def _load() -> dict[str, Any]:
    from importlib.metadata import entry_points

    kinds: dict[str, Any] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            kind = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:
            raise VastbuildError(f"the step kind `{entry.name}` ({entry.value}) cannot be "
                                 f"loaded: {type(exc).__name__}: {exc}",
                                 "reinstall or uninstall the plugin that provides it") from None
        if not isinstance(kind, StepKind) or getattr(kind, "name", None) != entry.name:
            raise VastbuildError(f"the step kind `{entry.name}` ({entry.value}) is not a step "
                                 "kind with that name",
                                 "a step kind needs `name`, an integer `version` and `run`")
        kinds[entry.name] = kind
    return kinds


def kind(name: str) -> Any:
    """The installed step kind ``name``."""
    found = registry().get(name)
    if found is None:
        raise VastbuildError(f"no step kind `{name}` is installed",
                             "reinstall vastbuild (`pip install -e .` in a checkout)")
    return found
