"""Running a build graph: each step looked up in the cache by key, run only on a miss.

Steps run in topological order on a thread pool, as many at once as the graph
and the cores allow (hashing, isal and zstd release the GIL). A step's key is
computed when its inputs are known: SHA-256 over its kind, the kind's version
and its key material. A cached result is used when the kind agrees it still
holds (``is_fresh``: a blob still in the cache, an artifact file unchanged);
otherwise the step runs and its result is stored. The executor knows nothing of
targets or artifacts: :mod:`vastbuild.builder` decides what to run.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from vastbuild.canonical import canonical_json
from vastbuild.errors import VastbuildError
from vastbuild.graph import BuildGraph, Step
from vastbuild.plugins import registry
from vastbuild.steps.base import MalformedResult, StaleInput, StepContext, StepResult, Volatile

KEY_TAG = b"vastbuild step v1\n"
#: how many times a step is retried after an upstream result proved unusable
STALE_RETRIES = 2


@dataclass(frozen=True)
class StepOutcome:
    """A step's result, the digest of its JSON, its key, whether it came from the cache,
    and how long running it took (0 for a cached one)."""

    result: StepResult
    digest: str
    key: str
    cached: bool
    seconds: float = 0.0


def step_key(step: Step, inputs: Iterable[StepResult]) -> str:
    """The key of ``step`` given its inputs: equal keys mean equal results."""
    kind = registry().step_kind(step.kind)
    material = kind.key_material(step, list(inputs))
    return hashlib.sha256(KEY_TAG + canonical_json([kind.name, kind.version, material])
                          ).hexdigest()


def cache_status(graph: BuildGraph, ctx: StepContext, wanted: Iterable[str]) -> dict[str, bool]:
    """For each step ``wanted`` needs, whether the cache holds a result that still
    holds (True) or the step would run (False), without running or restoring
    anything. A step below one that would run would run too: its key is not known."""
    cached: dict[str, StepResult] = {}
    status: dict[str, bool] = {}
    for ident in graph.needed(wanted):
        step = graph.step(ident)
        status[ident] = False
        if not all(dep in cached for dep in step.deps):
            continue
        kind = registry().step_kind(step.kind)
        inputs = [cached[dep] for dep in step.deps]
        raw = ctx.cache.get_result(step.kind, step_key(step, inputs))
        if raw is None:
            continue
        try:
            result = kind.result_from_json(json.loads(raw))
        except (ValueError, MalformedResult):
            continue
        if kind.is_fresh(step, result, ctx):
            cached[ident] = result
            status[ident] = True
    return status


class Executor:
    """Runs the steps a set of wanted steps needs, each at most once.

    ``on_finished(step_id)`` is called for each step as it finishes, before any
    step that depends on it is started: a check there (an exception) stops the
    build before the step's result is used.
    """

    def __init__(self, graph: BuildGraph, ctx: StepContext, jobs: int | None = None,
                 on_finished: Callable[[str], None] | None = None):
        self.graph = graph
        self.ctx = ctx
        self.jobs = jobs or os.cpu_count() or 2
        self.on_finished = on_finished
        self.outcomes: dict[str, StepOutcome] = {}

    def run(self, wanted: Iterable[str]) -> dict[str, StepOutcome]:
        order = [i for i in self.graph.needed(wanted) if i not in self.outcomes]
        waiting = {i: sum(1 for d in self.graph.step(i).deps if d not in self.outcomes)
                   for i in order}
        self.ctx.reporter.begin(len(order))
        finished: queue.SimpleQueue[tuple[str, Future[StepOutcome]]] = queue.SimpleQueue()
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="vastbuild") as pool:
            running: set[Future[StepOutcome]] = set()

            def submit(ident: str) -> None:
                future = pool.submit(self._execute, self.graph.step(ident))
                running.add(future)
                future.add_done_callback(lambda f: finished.put((ident, f)))

            for ident in order:
                if waiting[ident] == 0:
                    submit(ident)
            try:
                while running:
                    ident, future = finished.get()
                    running.discard(future)
                    self.outcomes[ident] = future.result()
                    if self.on_finished is not None:
                        self.on_finished(ident)
                    for dependent in self.graph.dependents(ident):
                        if dependent in waiting:
                            waiting[dependent] -= 1
                            if waiting[dependent] == 0:
                                submit(dependent)
            except BaseException:
                self.ctx.cancelled.set()  # running steps stop at their next checkpoint
                for future in running:
                    future.cancel()
                raise
        return self.outcomes

    def _execute(self, step: Step, force: bool = False) -> StepOutcome:
        kind = registry().step_kind(step.kind)
        for attempt in range(STALE_RETRIES + 1):
            inputs = [self.outcomes[d].result for d in step.deps]
            key = step_key(step, inputs)
            if not force:
                cached = self._cached(step, key, inputs)
                if cached is not None:
                    return cached
            self.ctx.reporter.started(step)
            began = time.perf_counter()
            try:
                out = kind.run(step, inputs, self.ctx)
            except StaleInput as stale:
                if stale.step_id not in step.deps:
                    raise
                if attempt == STALE_RETRIES:
                    raise VastbuildError(
                        f"the cached result of {stale.step_id} keeps failing its check",
                        "the cache folder may be damaged: run `vastbuild cache clear`") from None
                upstream = self.graph.step(stale.step_id)
                self.ctx.cache.drop_result(upstream.kind, self.outcomes[stale.step_id].key)
                self.outcomes[stale.step_id] = self._execute(upstream, force=True)
                continue
            result = out.result if isinstance(out, Volatile) else out
            raw = canonical_json(result.to_json())
            if not isinstance(out, Volatile):
                self.ctx.cache.put_result(step.kind, key, raw)
            self.ctx.reporter.finished(step, cached=False)
            return StepOutcome(result, hashlib.sha256(raw).hexdigest(), key, False,
                               time.perf_counter() - began)
        raise AssertionError("unreachable")

    def _cached(self, step: Step, key: str,
                inputs: Sequence[StepResult]) -> StepOutcome | None:
        """The stored result of ``step`` under ``key``, when there is one that still holds
        (or whose outputs the kind restores from what the caches hold: an artifact
        written again from its blobs is a cached result, nothing was built)."""
        raw = self.ctx.cache.get_result(step.kind, key)
        if raw is None:
            return None
        kind = registry().step_kind(step.kind)
        try:
            result = kind.result_from_json(json.loads(raw))
        except (ValueError, MalformedResult):  # written by another version: a miss
            return None
        if not kind.is_fresh(step, result, self.ctx) \
                and not kind.restore(step, result, inputs, self.ctx):
            return None
        self.ctx.reporter.finished(step, cached=True)
        return StepOutcome(result, hashlib.sha256(raw).hexdigest(), key, True)
